//! `UserStore`: insert-if-absent, lookup, preferences; another id finds and changes nothing.

use loquat_core::domain::{Locale, Theme};
use loquat_core::id::UserId;
use loquat_core::store::UserStore;
use loquat_store::SqlStore;

use crate::fixtures::user;
use crate::harness::on_every_backend;

async fn ensure_user_inserts_once(store: SqlStore) {
    let mut alice = user("Alice 爱丽丝");
    alice.locale = Some(Locale::SimplifiedChinese);
    alice.theme = Theme::Dark;
    store.ensure_user(&alice).await.expect("inserted");
    assert_eq!(store.get_user(alice.id).await.expect("loads"), Some(alice.clone()));

    let renamed = loquat_core::domain::User { name: "Someone else".into(), theme: Theme::Light, ..alice.clone() };
    store.ensure_user(&renamed).await.expect("a second ensure is fine");
    assert_eq!(store.get_user(alice.id).await.expect("loads"), Some(alice), "an existing user is kept as is");
}

async fn unknown_user_is_none(store: SqlStore) {
    store.ensure_user(&user("Alice")).await.expect("inserted");
    assert_eq!(store.get_user(UserId::new()).await.expect("query runs"), None);
}

async fn preferences_are_updated(store: SqlStore) {
    let alice = user("Alice");
    let bob = user("Bob");
    store.ensure_user(&alice).await.expect("alice");
    store.ensure_user(&bob).await.expect("bob");

    assert!(store.update_user_preferences(alice.id, Some(Locale::SimplifiedChinese), Theme::Dark).await.expect("ok"));
    let stored = store.get_user(alice.id).await.expect("loads").expect("exists");
    assert_eq!((stored.locale, stored.theme), (Some(Locale::SimplifiedChinese), Theme::Dark));

    assert!(store.update_user_preferences(alice.id, None, Theme::Light).await.expect("ok"));
    let stored = store.get_user(alice.id).await.expect("loads").expect("exists");
    assert_eq!((stored.locale, stored.theme), (None, Theme::Light));

    assert_eq!(store.get_user(bob.id).await.expect("loads"), Some(bob), "the other user is untouched");
    assert!(!store.update_user_preferences(UserId::new(), None, Theme::Dark).await.expect("ok"));
}

on_every_backend!(ensure_user_inserts_once, unknown_user_is_none, preferences_are_updated);
