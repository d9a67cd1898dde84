//! `CredentialStore`: invites (used once by the account they create, with their role; expiry;
//! eight registrations racing for one invite) and API
//! tokens (lookup by hash, revocation by their owner only, per-user lists).

use loquat_core::domain::{ApiToken, Invite, Role};
use loquat_core::id::UserId;
use loquat_core::store::{AccountGrant, AccountRefusal, CredentialStore, StoreErrorKind, UserStore};
use loquat_store::SqlStore;

use crate::fixtures::{account, assistant, at, new_account, world};
use crate::harness::on_every_backend;

fn invite(created_by: UserId, code_hash: &str, role: Role, created: i64, expires: i64) -> Invite {
    Invite {
        code_hash: code_hash.to_owned(),
        created_by,
        role,
        created_at: at(created),
        expires_at: at(expires),
        used_by: None,
        used_at: None,
    }
}

fn token(user: UserId, id: &str, token_hash: &str, created: i64) -> ApiToken {
    ApiToken {
        id: id.to_owned(),
        user_id: user,
        name: format!("token {id}"),
        token_hash: token_hash.to_owned(),
        prefix: "lq_3f9a".to_owned(),
        created_at: at(created),
        last_used_at: None,
        revoked_at: None,
    }
}

/// Creates an account for `name` with the invite `code`; its role, or the refusal.
async fn register_with(store: &SqlStore, code: &str, name: &str, now: i64) -> Result<Role, AccountRefusal> {
    let person = account(name, &format!("{}@example.com", name.to_lowercase()), now);
    let default = assistant(person.id, true, "", now);
    let grant = AccountGrant::Invite { code_hash: code, now: at(now) };
    store.create_account(&new_account(&person, None, grant, &default)).await.expect("runs").map(|user| user.role)
}

async fn invites_are_used_once(store: SqlStore) {
    let w = world(&store).await;
    let member = invite(w.alice.id, "member", Role::User, 10, 1_000);
    let admin = invite(w.alice.id, "admin", Role::Admin, 20, 1_000);
    store.insert_invite(&member).await.expect("inserted");
    store.insert_invite(&admin).await.expect("inserted");
    assert_eq!(store.insert_invite(&member).await.expect_err("taken").kind, StoreErrorKind::Conflict);

    assert_eq!(store.get_valid_invite("member", at(500)).await.expect("loads"), Some(member.clone()));
    assert_eq!(store.list_invites().await.expect("lists"), vec![admin.clone(), member.clone()], "newest first");

    assert_eq!(register_with(&store, "member", "Carol", 600).await, Ok(Role::User));
    let carol = store.find_user_by_email("carol@example.com").await.expect("loads").expect("carol exists");
    let expected = Invite { used_by: Some(carol.id), used_at: Some(at(600)), ..member.clone() };
    assert_eq!(register_with(&store, "member", "Dave", 601).await, Err(AccountRefusal::InviteInvalid), "used once");
    assert_eq!(store.find_user_by_email("dave@example.com").await.expect("loads"), None, "nothing was written");
    assert_eq!(store.get_valid_invite("member", at(601)).await.expect("loads"), None);
    assert_eq!(store.list_invites().await.expect("lists"), vec![admin.clone(), expected]);

    assert_eq!(register_with(&store, "unknown", "Erin", 600).await, Err(AccountRefusal::InviteInvalid));
    assert!(store.delete_invite("admin").await.expect("deleted"));
    assert!(!store.delete_invite("admin").await.expect("runs"));
    assert_eq!(register_with(&store, "admin", "Frank", 600).await, Err(AccountRefusal::InviteInvalid));
    assert_eq!(store.list_invites().await.expect("lists").len(), 1);
}

async fn an_invite_gives_its_role(store: SqlStore) {
    let w = world(&store).await;
    store.insert_invite(&invite(w.alice.id, "admin", Role::Admin, 10, 1_000)).await.expect("inserted");
    assert_eq!(register_with(&store, "admin", "Grace", 20).await, Ok(Role::Admin));
}

async fn expired_invites_are_refused(store: SqlStore) {
    let w = world(&store).await;
    store.insert_invite(&invite(w.alice.id, "soon", Role::User, 0, 100)).await.expect("inserted");
    assert!(store.get_valid_invite("soon", at(99)).await.expect("loads").is_some());
    assert_eq!(store.get_valid_invite("soon", at(100)).await.expect("loads"), None, "expired at expires_at");
    assert_eq!(register_with(&store, "soon", "Heidi", 100).await, Err(AccountRefusal::InviteInvalid));
    assert_eq!(register_with(&store, "soon", "Ivan", 5_000).await, Err(AccountRefusal::InviteInvalid));
    let listed = store.list_invites().await.expect("lists");
    assert_eq!(listed.first().map(|i| i.used_by), Some(None), "an expired invite stays unused");
    assert_eq!(register_with(&store, "soon", "Judy", 99).await, Ok(Role::User), "still valid at 99");
}

async fn racing_registrations_use_an_invite_once(store: SqlStore) {
    let w = world(&store).await;
    for round in 0..5 {
        let code = format!("race-{round}");
        store.insert_invite(&invite(w.alice.id, &code, Role::Admin, round, 10_000)).await.expect("inserted");
        let tasks: Vec<_> = (0..8)
            .map(|index| {
                let (store, code) = (store.clone(), code.clone());
                tokio::spawn(async move { register_with(&store, &code, &format!("Racer{round}x{index}"), 500).await })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            match task.await.expect("the task succeeds") {
                Ok(role) => {
                    assert_eq!(role, Role::Admin);
                    winners += 1;
                }
                Err(refusal) => assert_eq!(refusal, AccountRefusal::InviteInvalid),
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one registration wins");
        let admins = store.list_users(&format!("racer{round}x"), 100, 0).await.expect("lists");
        assert_eq!(admins.len(), 1, "round {round}: one account exists");
        let stored = store.list_invites().await.expect("lists");
        let stored = stored.iter().find(|i| i.code_hash == code).expect("listed");
        assert_eq!(stored.used_by, admins.first().map(|user| user.id));
    }
}

async fn api_tokens_are_found_listed_and_revoked_by_their_owner(store: SqlStore) {
    let w = world(&store).await;
    let old = token(w.alice.id, "t1", "hash-1", 10);
    let new = token(w.alice.id, "t2", "hash-2", 20);
    let bobs = token(w.bob.id, "t3", "hash-3", 30);
    for t in [&old, &new, &bobs] {
        store.insert_api_token(t).await.expect("inserted");
    }
    assert_eq!(store.find_api_token("hash-1").await.expect("loads"), Some(old.clone()));
    assert_eq!(store.find_api_token("hash-3").await.expect("loads"), Some(bobs.clone()));
    assert_eq!(store.find_api_token("unknown").await.expect("loads"), None);
    assert_eq!(store.list_api_tokens(w.alice.id).await.expect("lists"), vec![new.clone(), old.clone()]);
    assert_eq!(store.list_api_tokens(w.bob.id).await.expect("lists"), vec![bobs.clone()]);
    assert!(store.list_api_tokens(UserId::new()).await.expect("lists").is_empty());

    store.touch_api_token("t1", at(40)).await.expect("touched");
    let touched = ApiToken { last_used_at: Some(at(40)), ..old.clone() };
    assert_eq!(store.find_api_token("hash-1").await.expect("loads"), Some(touched.clone()));

    // Bob's id revokes nothing of Alice's.
    assert!(!store.revoke_api_token(w.bob.id, "t1", at(50)).await.expect("runs"));
    assert_eq!(store.find_api_token("hash-1").await.expect("loads"), Some(touched.clone()));
    assert!(store.revoke_api_token(w.alice.id, "t1", at(50)).await.expect("revoked"));
    assert_eq!(store.find_api_token("hash-1").await.expect("loads"), None, "a revoked token is not found");
    assert!(!store.revoke_api_token(w.alice.id, "t1", at(60)).await.expect("runs"), "revoked once");
    assert!(!store.revoke_api_token(w.alice.id, "unknown", at(60)).await.expect("runs"));
    let revoked = ApiToken { revoked_at: Some(at(50)), ..touched };
    assert_eq!(store.list_api_tokens(w.alice.id).await.expect("lists"), vec![new.clone(), revoked]);
    assert_eq!(store.find_api_token("hash-2").await.expect("loads"), Some(new));
    assert_eq!(store.find_api_token("hash-3").await.expect("loads"), Some(bobs));
}

async fn all_of_a_users_tokens_are_revoked_at_once(store: SqlStore) {
    let w = world(&store).await;
    for (id, hash, user) in [("t1", "hash-1", w.alice.id), ("t2", "hash-2", w.alice.id), ("t3", "hash-3", w.bob.id)] {
        store.insert_api_token(&token(user, id, hash, 10)).await.expect("inserted");
    }
    let owner = store.api_token_user("hash-2").await.expect("loads").expect("a live token");
    assert_eq!((owner.token_id.as_str(), owner.last_used_at, &owner.user), ("t2", None, &w.alice));
    assert!(store.revoke_api_token(w.alice.id, "t1", at(20)).await.expect("revoked"));
    assert_eq!(store.api_token_user("hash-1").await.expect("loads"), None, "a revoked token has no owner");
    assert_eq!(store.revoke_user_api_tokens(w.alice.id, at(30)).await.expect("revoked"), 1, "t1 was revoked already");
    let alices = store.list_api_tokens(w.alice.id).await.expect("lists");
    let revoked: Vec<_> = alices.iter().map(|token| (token.id.as_str(), token.revoked_at)).collect();
    assert_eq!(revoked, [("t2", Some(at(30))), ("t1", Some(at(20)))]);
    assert!(store.find_api_token("hash-3").await.expect("loads").is_some(), "bob's token is untouched");
}

async fn api_token_rules_are_enforced(store: SqlStore) {
    let w = world(&store).await;
    store.insert_api_token(&token(w.alice.id, "t1", "hash-1", 10)).await.expect("inserted");
    let same_hash = token(w.bob.id, "t2", "hash-1", 20);
    assert_eq!(store.insert_api_token(&same_hash).await.expect_err("hash taken").kind, StoreErrorKind::Conflict);
    let same_id = token(w.bob.id, "t1", "hash-2", 20);
    assert_eq!(store.insert_api_token(&same_id).await.expect_err("id taken").kind, StoreErrorKind::Conflict);
    let orphan = token(UserId::new(), "t3", "hash-3", 20);
    assert_eq!(store.insert_api_token(&orphan).await.expect_err("no such user").kind, StoreErrorKind::Conflict);
    assert!(store.list_api_tokens(w.bob.id).await.expect("lists").is_empty());
}

on_every_backend!(
    invites_are_used_once,
    an_invite_gives_its_role,
    expired_invites_are_refused,
    racing_registrations_use_an_invite_once,
    api_tokens_are_found_listed_and_revoked_by_their_owner,
    api_token_rules_are_enforced,
    all_of_a_users_tokens_are_revoked_at_once,
);
