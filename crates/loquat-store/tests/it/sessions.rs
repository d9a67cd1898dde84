//! `SessionStore`: sessions (expiry, touch, per-user list and deletion; another user's sessions
//! are untouched), SSO identities, and single-use pending logins (also under a race).

use loquat_core::domain::{Identity, Session};
use loquat_core::id::UserId;
use loquat_core::store::{SessionStore, StoreErrorKind};
use loquat_store::SqlStore;

use crate::fixtures::{at, world};
use crate::harness::on_every_backend;

fn session(user: UserId, token_hash: &str, created: i64, expires: i64) -> Session {
    Session {
        token_hash: token_hash.to_owned(),
        user_id: user,
        created_at: at(created),
        expires_at: at(expires),
        last_seen_at: at(created),
        ip: "203.0.113.7".to_owned(),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0".to_owned(),
    }
}

async fn sessions_expire(store: SqlStore) {
    let w = world(&store).await;
    let live = session(w.alice.id, "live", 10, 1_000);
    let expired = session(w.alice.id, "expired", 0, 100);
    store.insert_session(&live).await.expect("inserted");
    store.insert_session(&expired).await.expect("inserted");

    assert_eq!(store.get_session("live", at(500)).await.expect("loads"), Some(live.clone()));
    assert_eq!(store.get_session("expired", at(99)).await.expect("loads"), Some(expired.clone()));
    assert_eq!(store.get_session("expired", at(100)).await.expect("loads"), None, "expired at expires_at");
    assert_eq!(store.get_session("expired", at(500)).await.expect("loads"), None);
    assert_eq!(store.get_session("live", at(1_000)).await.expect("loads"), None);
    assert_eq!(store.get_session("unknown", at(0)).await.expect("loads"), None);

    // The session's user in the same query, while the session lives.
    let (seen, user) = store.session_user("live", at(500)).await.expect("loads").expect("a live session");
    assert_eq!((seen, user), (at(10), w.alice.clone()));
    assert_eq!(store.session_user("expired", at(500)).await.expect("loads"), None);
    assert_eq!(store.session_user("unknown", at(0)).await.expect("loads"), None);

    assert_eq!(store.list_sessions(w.alice.id, at(500)).await.expect("lists"), vec![live.clone()]);
    assert_eq!(store.list_sessions(w.alice.id, at(50)).await.expect("lists"), vec![live, expired]);
}

async fn sessions_are_listed_touched_and_deleted_per_user(store: SqlStore) {
    let w = world(&store).await;
    let first = session(w.alice.id, "first", 10, 10_000);
    let second = session(w.alice.id, "second", 20, 10_000);
    let bobs = session(w.bob.id, "bobs", 30, 10_000);
    for s in [&first, &second, &bobs] {
        store.insert_session(s).await.expect("inserted");
    }
    let hashes = async |user: UserId| -> Vec<String> {
        let sessions = store.list_sessions(user, at(100)).await.expect("lists");
        sessions.into_iter().map(|s| s.token_hash).collect()
    };
    assert_eq!(hashes(w.alice.id).await, ["second", "first"], "most recently seen first");
    assert_eq!(hashes(w.bob.id).await, ["bobs"]);
    assert!(hashes(UserId::new()).await.is_empty());

    store.touch_session("first", at(50)).await.expect("touched");
    assert_eq!(hashes(w.alice.id).await, ["first", "second"]);
    let touched = store.get_session("first", at(60)).await.expect("loads").expect("exists");
    assert_eq!(touched.last_seen_at, at(50));
    assert_eq!(touched.created_at, at(10));
    store.touch_session("unknown", at(50)).await.expect("touching nothing is fine");

    assert!(store.delete_session("second").await.expect("deleted"));
    assert!(!store.delete_session("second").await.expect("runs"));
    assert_eq!(hashes(w.alice.id).await, ["first"]);

    store.insert_session(&second).await.expect("inserted again");
    assert_eq!(store.delete_user_sessions(w.alice.id).await.expect("deleted"), 2);
    assert_eq!(store.delete_user_sessions(w.alice.id).await.expect("deleted"), 0);
    assert!(hashes(w.alice.id).await.is_empty());
    assert_eq!(hashes(w.bob.id).await, ["bobs"], "the other user's sessions survive");
    assert_eq!(store.get_session("bobs", at(100)).await.expect("loads"), Some(bobs));
}

async fn session_rules_are_enforced(store: SqlStore) {
    let w = world(&store).await;
    store.insert_session(&session(w.alice.id, "token", 0, 100)).await.expect("inserted");
    let error = store.insert_session(&session(w.bob.id, "token", 0, 100)).await.expect_err("the hash is taken");
    assert_eq!(error.kind, StoreErrorKind::Conflict);
    let error = store.insert_session(&session(UserId::new(), "orphan", 0, 100)).await.expect_err("no such user");
    assert_eq!(error.kind, StoreErrorKind::Conflict);
    let kept = store.get_session("token", at(0)).await.expect("loads").expect("exists");
    assert_eq!(kept.user_id, w.alice.id);
}

async fn identities_are_found_by_provider_and_subject(store: SqlStore) {
    let w = world(&store).await;
    let keycloak = Identity {
        provider: "keycloak".into(),
        subject: "f3b1c2d4".into(),
        user_id: w.alice.id,
        email: Some("alice@example.com".into()),
        created_at: at(1),
    };
    let github = Identity {
        provider: "github".into(),
        subject: "f3b1c2d4".into(),
        user_id: w.bob.id,
        email: None,
        created_at: at(2),
    };
    store.insert_identity(&keycloak).await.expect("inserted");
    store.insert_identity(&github).await.expect("inserted");
    assert_eq!(store.find_identity("keycloak", "f3b1c2d4").await.expect("loads"), Some(keycloak.clone()));
    assert_eq!(store.find_identity("github", "f3b1c2d4").await.expect("loads"), Some(github));
    assert_eq!(store.find_identity("keycloak", "F3B1C2D4").await.expect("loads"), None, "subjects are exact");
    assert_eq!(store.find_identity("gitlab", "f3b1c2d4").await.expect("loads"), None);

    let again = Identity { user_id: w.bob.id, ..keycloak.clone() };
    assert_eq!(store.insert_identity(&again).await.expect_err("linked").kind, StoreErrorKind::Conflict);
    let orphan = Identity { subject: "other".into(), user_id: UserId::new(), ..keycloak.clone() };
    assert_eq!(store.insert_identity(&orphan).await.expect_err("no such user").kind, StoreErrorKind::Conflict);
    assert_eq!(store.find_identity("keycloak", "f3b1c2d4").await.expect("loads"), Some(keycloak));
}

async fn login_states_are_taken_once(store: SqlStore) {
    let data = r#"{"provider":"keycloak","nonce":"n-0S6_WzA2Mj","pkce_verifier":"dBjftJeZ4CVP","next":"/chat"}"#;
    store.put_login_state("state-1", data, at(5)).await.expect("put");
    store.put_login_state("state-2", "{}", at(6)).await.expect("put");
    let error = store.put_login_state("state-1", "{}", at(7)).await.expect_err("the state is taken");
    assert_eq!(error.kind, StoreErrorKind::Conflict);

    assert_eq!(store.take_login_state("state-1").await.expect("taken"), Some((data.to_owned(), at(5))));
    assert_eq!(store.take_login_state("state-1").await.expect("runs"), None, "a state is used once");
    assert_eq!(store.take_login_state("unknown").await.expect("runs"), None);
    assert_eq!(store.take_login_state("state-2").await.expect("taken"), Some(("{}".to_owned(), at(6))));
}

async fn racing_callbacks_take_a_login_state_once(store: SqlStore) {
    for round in 0..5 {
        let state = format!("race-{round}");
        store.put_login_state(&state, "{}", at(round)).await.expect("put");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, state) = (store.clone(), state.clone());
                tokio::spawn(async move { store.take_login_state(&state).await.expect("runs") })
            })
            .collect();
        let mut taken = 0;
        for task in tasks {
            taken += usize::from(task.await.expect("the task succeeds").is_some());
        }
        assert_eq!(taken, 1, "round {round}");
    }
}

async fn expired_sessions_and_old_logins_are_purged(store: SqlStore) {
    let w = world(&store).await;
    store.insert_session(&session(w.alice.id, "live", 10, 1_000)).await.expect("inserted");
    store.insert_session(&session(w.bob.id, "expired", 0, 100)).await.expect("inserted");
    store.put_login_state("old", "{}", at(5)).await.expect("stored");
    store.put_login_state("fresh", "{}", at(400)).await.expect("stored");
    assert_eq!(store.purge_expired(at(500), at(300)).await.expect("purges"), 2);
    assert!(store.get_session("live", at(500)).await.expect("loads").is_some());
    assert!(store.take_login_state("old").await.expect("runs").is_none());
    assert!(store.take_login_state("fresh").await.expect("runs").is_some());
}

on_every_backend!(
    sessions_expire,
    sessions_are_listed_touched_and_deleted_per_user,
    session_rules_are_enforced,
    identities_are_found_by_provider_and_subject,
    login_states_are_taken_once,
    racing_callbacks_take_a_login_state_once,
    expired_sessions_and_old_logins_are_purged
);
