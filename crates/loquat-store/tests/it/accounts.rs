//! `UserStore`, accounts: inserting users, creating accounts (the first one once, taking over
//! the local user; whole or not at all), emails (lower-cased, unique whatever
//! their case), password hashes, the searchable paged user list, roles, disabling, renaming and
//! activity; and the upgrade of a database created before accounts (its local user becomes the
//! admin).

use std::borrow::Cow;

use loquat_core::domain::{Identity, Locale, MessageRole, Role, Theme, User};
use loquat_core::id::UserId;
use loquat_core::store::{
    AccountGrant, AccountRefusal, AssistantStore, MessageStore, NewAccount, SessionStore, StoreErrorKind, TopicStore,
    UserStore,
};
use loquat_store::{SQLITE_FILE_NAME, SqlStore, StoreOptions, open};
use loquat_test_support::postgres::TestDatabase;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::fixtures::{account, assistant, at, message, new_account, topic, user};
use crate::harness::{TempDir, on_every_backend};

async fn insert_user_round_trips(store: SqlStore) {
    let mut alice = account("Alice", "alice@example.com", 1);
    alice.role = Role::Admin;
    alice.locale = Some(Locale::SimplifiedChinese);
    alice.theme = Theme::Dark;
    alice.last_active_at = Some(at(5));
    store.insert_user(&alice, Some("$argon2id$alice")).await.expect("inserted");
    assert_eq!(store.get_user(alice.id).await.expect("loads"), Some(alice.clone()));
    assert_eq!(store.password_hash(alice.id).await.expect("loads").as_deref(), Some("$argon2id$alice"));

    // An SSO-only account has no password.
    let mut bob = account("Bob", "bob@example.com", 2);
    bob.disabled = true;
    store.insert_user(&bob, None).await.expect("inserted");
    assert_eq!(store.get_user(bob.id).await.expect("loads"), Some(bob.clone()));
    assert_eq!(store.password_hash(bob.id).await.expect("loads"), None);
    assert_eq!(store.password_hash(UserId::new()).await.expect("loads"), None);

    assert!(store.set_password_hash(bob.id, "$argon2id$bob").await.expect("set"));
    assert_eq!(store.password_hash(bob.id).await.expect("loads").as_deref(), Some("$argon2id$bob"));
    assert_eq!(store.password_hash(alice.id).await.expect("loads").as_deref(), Some("$argon2id$alice"));
    assert!(!store.set_password_hash(UserId::new(), "x").await.expect("runs"));

    let error = store.insert_user(&alice, None).await.expect_err("the id is taken");
    assert_eq!(error.kind, StoreErrorKind::Conflict);
}

async fn emails_are_unique_whatever_their_case(store: SqlStore) {
    // The store lower-cases what it is given.
    let alice = account("Alice", "Alice@Example.COM", 1);
    store.insert_user(&alice, None).await.expect("inserted");
    let stored = store.get_user(alice.id).await.expect("loads").expect("exists");
    assert_eq!(stored.email.as_deref(), Some("alice@example.com"));

    let twin = account("Alice again", "alice@example.com", 2);
    assert_eq!(store.insert_user(&twin, None).await.expect_err("taken").kind, StoreErrorKind::Conflict);
    let shouting = account("ALICE", "ALICE@EXAMPLE.COM", 3);
    assert_eq!(store.insert_user(&shouting, None).await.expect_err("taken").kind, StoreErrorKind::Conflict);
    assert_eq!(store.get_user(twin.id).await.expect("loads"), None);

    for email in ["alice@example.com", "ALICE@example.com", "Alice@Example.COM"] {
        let found = store.find_user_by_email(email).await.expect("loads").map(|user| user.id);
        assert_eq!(found, Some(alice.id), "{email}");
    }
    assert_eq!(store.find_user_by_email("nobody@example.com").await.expect("loads"), None);

    // Users without an email never collide.
    store.ensure_user(&user("Local one")).await.expect("inserted");
    store.ensure_user(&user("Local two")).await.expect("inserted");
    store.insert_user(&user("Local three"), None).await.expect("inserted");
    assert_eq!(store.count_accounts().await.expect("counts"), 1);
}

async fn ensure_user_keeps_every_column(store: SqlStore) {
    let mut local = user("Local user");
    local.role = Role::Admin;
    store.ensure_user(&local).await.expect("inserted");
    assert_eq!(store.get_user(local.id).await.expect("loads"), Some(local.clone()));
    assert_eq!(store.password_hash(local.id).await.expect("loads"), None);

    let mut other = account("Someone", "someone@example.com", 3);
    other.id = local.id;
    store.ensure_user(&other).await.expect("an existing id is left alone");
    assert_eq!(store.get_user(local.id).await.expect("loads"), Some(local));
    assert_eq!(store.count_accounts().await.expect("counts"), 0);
}

async fn the_first_account_takes_over_the_local_user(store: SqlStore) {
    // An instance used before accounts: its local user owns an assistant, a topic, a message.
    let local = user("Local user");
    store.ensure_user(&local).await.expect("inserted");
    let old_assistant = assistant(local.id, true, "", 0);
    store.insert_assistant(&old_assistant).await.expect("assistant");
    let old_topic = topic(local.id, old_assistant.id, "Before accounts", 1);
    store.insert_topic(&old_topic).await.expect("topic");
    let old_message = message(&old_topic, None, MessageRole::User, "hello", 2);
    store.insert_message(&old_message).await.expect("message");

    let alice = account("Alice", "Alice@Example.com", 5);
    let new_assistant = assistant(alice.id, true, "", 5);
    let created = store
        .create_account(&new_account(&alice, Some("$argon2id$alice"), AccountGrant::First, &new_assistant))
        .await
        .expect("runs")
        .expect("the first account is created");
    assert_eq!(created, User { role: Role::Admin, email: Some("alice@example.com".into()), ..alice.clone() });
    assert_ne!(created.id, local.id, "the administrator gets a fresh id");
    assert_eq!(store.get_user(alice.id).await.expect("loads"), Some(created.clone()));
    assert_eq!(store.password_hash(alice.id).await.expect("loads").as_deref(), Some("$argon2id$alice"));
    // The local user's data moved to the new account; the local user is gone.
    assert_eq!(store.get_user(local.id).await.expect("loads"), None);
    let assistants = store.list_assistants(alice.id).await.expect("lists");
    assert_eq!(assistants.iter().map(|a| a.id).collect::<Vec<_>>(), [old_assistant.id], "one default assistant");
    let moved = store.get_topic(alice.id, old_topic.id).await.expect("loads").expect("the topic moved");
    assert_eq!(moved.title, "Before accounts");
    assert!(store.get_message(alice.id, old_message.id).await.expect("loads").is_some());
    assert_eq!(store.count_accounts().await.expect("counts"), 1);
}

async fn the_first_account_is_created_once(store: SqlStore) {
    let tasks: Vec<_> = (0..8)
        .map(|index| {
            let store = store.clone();
            tokio::spawn(async move {
                let candidate = account(&format!("Admin {index}"), &format!("admin{index}@example.com"), index);
                let default = assistant(candidate.id, true, "", index);
                let account = new_account(&candidate, None, AccountGrant::First, &default);
                store.create_account(&account).await.expect("runs")
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.expect("the task succeeds") {
            Ok(user) => {
                assert_eq!(user.role, Role::Admin);
                winners += 1;
            }
            Err(refusal) => assert_eq!(refusal, AccountRefusal::FirstAccountTaken),
        }
    }
    assert_eq!(winners, 1, "exactly one first account");
    assert_eq!(store.count_accounts().await.expect("counts"), 1);
    // Later accounts need another grant.
    let late = account("Late", "late@example.com", 99);
    let default = assistant(late.id, true, "", 99);
    let refused = store.create_account(&new_account(&late, None, AccountGrant::First, &default)).await.expect("runs");
    assert_eq!(refused, Err(AccountRefusal::FirstAccountTaken));
    let granted = store.create_account(&new_account(&late, None, AccountGrant::Granted, &default)).await.expect("runs");
    assert_eq!(granted.map(|user| user.role), Ok(Role::User));
}

async fn a_new_account_is_written_whole_or_not_at_all(store: SqlStore) {
    let alice = account("Alice", "alice@example.com", 1);
    let default = assistant(alice.id, true, "", 1);
    let identity = Identity {
        provider: "keycloak".into(),
        subject: "sub-1".into(),
        user_id: alice.id,
        email: Some("alice@example.com".into()),
        created_at: at(1),
    };
    let with_identity =
        NewAccount { identity: Some(&identity), ..new_account(&alice, None, AccountGrant::Granted, &default) };
    store.create_account(&with_identity).await.expect("runs").expect("created");
    assert_eq!(store.find_identity("keycloak", "sub-1").await.expect("loads").map(|i| i.user_id), Some(alice.id));
    assert_eq!(store.list_assistants(alice.id).await.expect("lists"), vec![default.clone()]);

    // The same email in any case is refused before anything is written.
    let twin = account("Twin", "ALICE@example.com", 2);
    let twin_default = assistant(twin.id, true, "", 2);
    let refused = store.create_account(&new_account(&twin, None, AccountGrant::Granted, &twin_default)).await;
    assert_eq!(refused.expect("runs"), Err(AccountRefusal::EmailTaken));
    // An identity already linked makes the whole account fail: no user, no assistant.
    let bob = account("Bob", "bob@example.com", 3);
    let bob_default = assistant(bob.id, true, "", 3);
    let stolen =
        NewAccount { identity: Some(&identity), ..new_account(&bob, None, AccountGrant::Granted, &bob_default) };
    assert!(store.create_account(&stolen).await.expect("runs").is_err());
    assert_eq!(store.get_user(bob.id).await.expect("loads"), None);
    assert!(store.list_assistants(bob.id).await.expect("lists").is_empty());
}

async fn users_are_listed_newest_first_and_searched(store: SqlStore) {
    let local = user("Local user");
    let ann = account("Ann Lee", "ann@example.com", 1);
    let bob = account("Bob", "bob@corp.io", 2);
    let carol = account("Carol", "carol@example.com", 3);
    let odd = account("100%_Real", "odd@corp.io", 4);
    store.ensure_user(&local).await.expect("inserted");
    for u in [&ann, &bob, &carol, &odd] {
        store.insert_user(u, None).await.expect("inserted");
    }
    let names = async |search: &str, limit: u32, offset: u32| -> Vec<String> {
        let users = store.list_users(search, limit, offset).await.expect("lists");
        users.into_iter().map(|user| user.name).collect()
    };

    assert_eq!(names("", 100, 0).await, ["100%_Real", "Carol", "Bob", "Ann Lee", "Local user"]);
    assert_eq!(names("", 2, 0).await, ["100%_Real", "Carol"]);
    assert_eq!(names("", 2, 2).await, ["Bob", "Ann Lee"]);
    assert_eq!(names("", 2, 4).await, ["Local user"]);
    assert!(names("", 2, 5).await.is_empty());

    // Name or email, ignoring case.
    assert_eq!(names("EXAMPLE", 100, 0).await, ["Carol", "Ann Lee"]);
    assert_eq!(names("corp.IO", 100, 0).await, ["100%_Real", "Bob"]);
    assert_eq!(names("aNn", 100, 0).await, ["Ann Lee"]);
    assert_eq!(names("local", 100, 0).await, ["Local user"]);
    assert_eq!(names("real", 100, 0).await, ["100%_Real"]);
    assert_eq!(names("EXAMPLE", 1, 1).await, ["Ann Lee"]);
    // `%` and `_` are literal, not wildcards.
    assert_eq!(names("%", 100, 0).await, ["100%_Real"]);
    assert_eq!(names("_", 100, 0).await, ["100%_Real"]);
    assert_eq!(names("0%_r", 100, 0).await, ["100%_Real"]);
    assert!(names("b_b", 100, 0).await.is_empty());
    assert!(names("\\", 100, 0).await.is_empty());
    assert!(names("nobody", 100, 0).await.is_empty());

    let listed = store.list_users("carol", 10, 0).await.expect("lists");
    assert_eq!(listed, vec![carol]);
}

async fn role_disabled_name_and_activity_change_one_user(store: SqlStore) {
    let alice = account("Alice", "alice@example.com", 1);
    let bob = account("Bob", "bob@example.com", 2);
    store.insert_user(&alice, None).await.expect("inserted");
    store.insert_user(&bob, None).await.expect("inserted");

    assert!(store.set_user_role(alice.id, Role::Admin).await.expect("set"));
    assert!(store.set_user_disabled(alice.id, true).await.expect("set"));
    assert!(store.set_user_name(alice.id, "Alice 爱丽丝").await.expect("set"));
    store.touch_user(alice.id, at(1_000)).await.expect("touched");
    let expected = User {
        role: Role::Admin,
        disabled: true,
        name: "Alice 爱丽丝".into(),
        last_active_at: Some(at(1_000)),
        named_role: None,
        ..alice.clone()
    };
    assert_eq!(store.get_user(alice.id).await.expect("loads"), Some(expected.clone()));

    store.touch_user(alice.id, at(2_000)).await.expect("touched");
    assert!(store.set_user_disabled(alice.id, false).await.expect("set"));
    assert!(store.set_user_role(alice.id, Role::User).await.expect("set"));
    let stored = store.get_user(alice.id).await.expect("loads").expect("exists");
    assert_eq!((stored.role, stored.disabled, stored.last_active_at), (Role::User, false, Some(at(2_000))));

    assert_eq!(store.get_user(bob.id).await.expect("loads"), Some(bob), "the other user is untouched");
    let nobody = UserId::new();
    assert!(!store.set_user_role(nobody, Role::Admin).await.expect("runs"));
    assert!(!store.set_user_disabled(nobody, true).await.expect("runs"));
    assert!(!store.set_user_name(nobody, "x").await.expect("runs"));
    store.touch_user(nobody, at(1)).await.expect("touching nobody does nothing");
    assert_eq!(store.get_user(nobody).await.expect("loads"), None);
}

on_every_backend!(
    insert_user_round_trips,
    emails_are_unique_whatever_their_case,
    ensure_user_keeps_every_column,
    the_first_account_takes_over_the_local_user,
    the_first_account_is_created_once,
    a_new_account_is_written_whole_or_not_at_all,
    users_are_listed_newest_first_and_searched,
    role_disabled_name_and_activity_change_one_user,
);

/// The migrations a database had before accounts (0001, 0002), as sqlx recorded them.
fn pre_accounts_migrator(first: &'static str, second: &'static str) -> Migrator {
    let migration = |version: i64, description: &'static str, sql: &'static str| {
        Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, sql.into_sql_str(), false)
    };
    Migrator::with_migrations(vec![migration(1, "init", first), migration(2, "provider overrides", second)])
}

const LOCAL_USER_ID: &str = "00000000-0000-7000-8000-000000000001";

/// Inserts the local user the way Loquat did before accounts.
const INSERT_LOCAL_USER: &str =
    "INSERT INTO users (id, name, locale, theme, created_at) VALUES ($1, 'Local user', 'zh-CN', 'dark', 1)";

/// Opens the upgraded store and checks the local user became the admin, without an account.
async fn assert_local_user_is_admin(store: &SqlStore) {
    let id: UserId = LOCAL_USER_ID.parse().expect("an id");
    let local = store.get_user(id).await.expect("loads").expect("the local user survives the upgrade");
    assert_eq!(
        local,
        User {
            id,
            name: "Local user".into(),
            email: None,
            role: Role::Admin,
            disabled: false,
            locale: Some(Locale::SimplifiedChinese),
            theme: Theme::Dark,
            created_at: loquat_core::time::Timestamp(1),
            last_active_at: None,
            named_role: None,
        }
    );
    assert_eq!(store.count_accounts().await.expect("counts"), 0);
    // Users created afterwards get the role they are given.
    let later = user("Later");
    store.ensure_user(&later).await.expect("inserted");
    assert_eq!(store.get_user(later.id).await.expect("loads").map(|u| u.role), Some(Role::User));
}

#[tokio::test]
async fn sqlite_upgrade_makes_the_local_user_admin() {
    use sqlx::{ConnectOptions, Connection};

    let dir = TempDir::new("upgrade");
    std::fs::create_dir_all(&dir.path).expect("the directory is created");
    let file = dir.path.join(SQLITE_FILE_NAME);
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&file).create_if_missing(true);
    let mut connection = options.connect().await.expect("opens");
    pre_accounts_migrator(
        include_str!("../../migrations/sqlite/0001_init.sql"),
        include_str!("../../migrations/sqlite/0002_provider_overrides.sql"),
    )
    .run(&mut connection)
    .await
    .expect("the old schema is created");
    sqlx::query(INSERT_LOCAL_USER).bind(LOCAL_USER_ID).execute(&mut connection).await.expect("inserted");
    connection.close().await.expect("closes");

    let store = open(&StoreOptions { database_url: None, data_dir: dir.path.clone() }).await.expect("upgrades");
    assert_local_user_is_admin(&store).await;
    store.close().await;
}

#[tokio::test]
async fn postgres_upgrade_makes_the_local_user_admin() {
    use sqlx::Connection;

    let Some(database) = TestDatabase::from_env().await else {
        println!("postgres_upgrade_makes_the_local_user_admin: skipped (LOQUAT_TEST_DATABASE_URL is not set)");
        return;
    };
    let mut connection = sqlx::PgConnection::connect(&database.url).await.expect("connects");
    pre_accounts_migrator(
        include_str!("../../migrations/postgres/0001_init.sql"),
        include_str!("../../migrations/postgres/0002_provider_overrides.sql"),
    )
    .run(&mut connection)
    .await
    .expect("the old schema is created");
    sqlx::query(INSERT_LOCAL_USER).bind(LOCAL_USER_ID).execute(&mut connection).await.expect("inserted");
    connection.close().await.expect("closes");

    let options = StoreOptions { database_url: Some(database.url.clone()), data_dir: std::env::temp_dir() };
    let store = open(&options).await.expect("upgrades");
    assert_local_user_is_admin(&store).await;
    store.close().await;
    database.drop().await.expect("dropped");
}
