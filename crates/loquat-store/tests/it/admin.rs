//! `AdminStore`: usage sums and the three report groupings (UTC day strings identical on both
//! backends), quotas per role and per user, audit paging and filtering, and settings.

use loquat_core::domain::{AuditEvent, Quota, QuotaScope, Role, UsageEvent, UsageGrouping, UsageRow};
use loquat_core::id::UserId;
use loquat_core::store::{AdminStore, AuditFilter, StoreErrorKind};
use loquat_store::SqlStore;

use crate::fixtures::{at, world};
use crate::harness::on_every_backend;

/// `at(0)` is 2023-11-14T22:13:20Z; the next UTC day starts at `at(6_400_000)`.
const NEXT_DAY: i64 = 6_400_000;

fn usage(user: UserId, provider: &str, model: &str, tokens: [u32; 3], created: i64) -> UsageEvent {
    UsageEvent {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user,
        assistant_id: None,
        provider: provider.to_owned(),
        model: model.to_owned(),
        prompt_tokens: tokens[0],
        completion_tokens: tokens[1],
        reasoning_tokens: tokens[2],
        duration_ms: 1_234,
        outcome: "complete".to_owned(),
        created_at: at(created),
    }
}

fn row(key: &str, provider: &str, model: &str, requests: u64, tokens: [u64; 3]) -> UsageRow {
    UsageRow {
        key: key.to_owned(),
        provider: provider.to_owned(),
        model: model.to_owned(),
        requests,
        prompt_tokens: tokens[0],
        completion_tokens: tokens[1],
        reasoning_tokens: tokens[2],
    }
}

async fn usage_is_summed_and_grouped(store: SqlStore) {
    let w = world(&store).await;
    let (alice, bob) = (w.alice.id, w.bob.id);
    let mut with_assistant = usage(alice, "openai", "gpt-4o", [100, 50, 0], 0);
    with_assistant.assistant_id = Some(w.assistant.id);
    let events = [
        usage(alice, "openai", "gpt-4o", [7, 7, 7], -10_000_000),
        with_assistant,
        usage(alice, "anthropic", "claude-sonnet", [200, 20, 10], 1_000),
        usage(alice, "openai", "gpt-4o", [10, 5, 1], NEXT_DAY + 600_000),
        usage(bob, "openai", "gpt-4o", [1_000, 500, 100], NEXT_DAY + 1_600_000),
        // At the end of the report's range: outside `[from, to)`.
        usage(alice, "openai", "gpt-4o", [9, 9, 9], 100_000_000),
    ];
    for event in &events {
        store.insert_usage(event).await.expect("inserted");
    }
    let error = store.insert_usage(&events[0]).await.expect_err("the id is taken");
    assert_eq!(error.kind, StoreErrorKind::Conflict);

    assert_eq!(store.user_tokens_since(alice, at(-20_000_000)).await.expect("sums"), 14 + 150 + 220 + 15 + 18);
    assert_eq!(store.user_tokens_since(alice, at(0)).await.expect("sums"), 150 + 220 + 15 + 18);
    assert_eq!(store.user_tokens_since(alice, at(1)).await.expect("sums"), 220 + 15 + 18);
    assert_eq!(store.user_tokens_since(bob, at(0)).await.expect("sums"), 1_500);
    assert_eq!(store.user_tokens_since(bob, at(100_000_001)).await.expect("sums"), 0);
    assert_eq!(store.user_tokens_since(UserId::new(), at(0)).await.expect("sums"), 0);

    let report = async |grouping: UsageGrouping, user: Option<UserId>| -> Vec<UsageRow> {
        store.usage_report(grouping, at(0), at(100_000_000), user).await.expect("reports")
    };
    assert_eq!(
        report(UsageGrouping::Day, None).await,
        vec![row("2023-11-14", "", "", 2, [300, 70, 10]), row("2023-11-15", "", "", 2, [1_010, 505, 101])]
    );
    assert_eq!(
        report(UsageGrouping::Day, Some(alice)).await,
        vec![row("2023-11-14", "", "", 2, [300, 70, 10]), row("2023-11-15", "", "", 1, [10, 5, 1])]
    );
    assert_eq!(
        report(UsageGrouping::Model, None).await,
        vec![
            row("anthropic/claude-sonnet", "anthropic", "claude-sonnet", 1, [200, 20, 10]),
            row("openai/gpt-4o", "openai", "gpt-4o", 3, [1_110, 555, 101]),
        ]
    );
    assert_eq!(
        report(UsageGrouping::Model, Some(bob)).await,
        vec![row("openai/gpt-4o", "openai", "gpt-4o", 1, [1_000, 500, 100])]
    );
    let mut by_user =
        vec![row(&alice.to_string(), "", "", 3, [310, 75, 11]), row(&bob.to_string(), "", "", 1, [1_000, 500, 100])];
    by_user.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(report(UsageGrouping::User, None).await, by_user);
    assert_eq!(report(UsageGrouping::User, Some(alice)).await, vec![row(&alice.to_string(), "", "", 3, [310, 75, 11])]);
    assert!(report(UsageGrouping::User, Some(UserId::new())).await.is_empty());

    // The whole history, and an empty range.
    let all = store.usage_report(UsageGrouping::Day, at(-20_000_000), at(200_000_000), None).await.expect("reports");
    let days: Vec<&str> = all.iter().map(|row| row.key.as_str()).collect();
    assert_eq!(days, ["2023-11-14", "2023-11-15", "2023-11-16"]);
    assert_eq!(all[0].requests, 3);
    let none = store.usage_report(UsageGrouping::Model, at(1), at(1), None).await;
    assert!(none.is_ok_and(|rows| rows.is_empty()));
}

async fn quotas_are_kept_per_role_and_per_user(store: SqlStore) {
    let w = world(&store).await;
    let users = QuotaScope::Role(Role::User);
    let admins = QuotaScope::Role(Role::Admin);
    let alice = QuotaScope::User(w.alice.id);
    let bob = QuotaScope::User(w.bob.id);
    for scope in [&users, &admins, &alice, &bob] {
        assert_eq!(store.get_quota(scope).await.expect("loads"), None);
    }

    let daily = Quota {
        tokens_per_day: Some(100_000),
        tokens_per_month: Some(2_000_000),
        requests_per_minute: Some(20),
        storage_mb: Some(10_240),
    };
    store.set_quota(&users, &daily).await.expect("set");
    assert_eq!(store.get_quota(&users).await.expect("loads"), Some(daily));
    assert_eq!(store.get_quota(&admins).await.expect("loads"), None);

    let generous = Quota { tokens_per_day: Some(u64::try_from(i64::MAX).expect("fits")), ..Quota::default() };
    store.set_quota(&alice, &generous).await.expect("set");
    assert_eq!(store.get_quota(&alice).await.expect("loads"), Some(generous));
    assert_eq!(store.get_quota(&bob).await.expect("loads"), None, "bob has no quota of his own");

    // Replacing, with every limit unlimited: the row stays (it overrides the role's).
    store.set_quota(&alice, &Quota::default()).await.expect("replaced");
    assert_eq!(store.get_quota(&alice).await.expect("loads"), Some(Quota::default()));
    let replaced = Quota { requests_per_minute: Some(u32::MAX), ..daily };
    store.set_quota(&users, &replaced).await.expect("replaced");
    assert_eq!(store.get_quota(&users).await.expect("loads"), Some(replaced));

    let too_large = Quota { tokens_per_month: Some(u64::MAX), ..Quota::default() };
    assert_eq!(store.set_quota(&bob, &too_large).await.expect_err("too large").kind, StoreErrorKind::Other);

    assert!(store.delete_quota(&alice).await.expect("deleted"));
    assert!(!store.delete_quota(&alice).await.expect("runs"));
    assert!(!store.delete_quota(&bob).await.expect("runs"));
    assert_eq!(store.get_quota(&alice).await.expect("loads"), None);
    assert_eq!(store.get_quota(&users).await.expect("loads"), Some(replaced), "the role's quota stays");
}

fn audit(actor: Option<UserId>, action: &str, created: i64) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::now_v7().to_string(),
        actor,
        action: action.to_owned(),
        target: "alice@example.com".to_owned(),
        detail: format!("{action} at {created}"),
        ip: "198.51.100.4".to_owned(),
        created_at: at(created),
    }
}

async fn audit_is_paged_newest_first_and_filtered(store: SqlStore) {
    let w = world(&store).await;
    let events = [
        audit(None, "login_failed", 10),
        audit(Some(w.alice.id), "login", 20),
        audit(Some(w.alice.id), "token_created", 30),
        audit(Some(w.bob.id), "login", 40),
        audit(Some(w.alice.id), "role_changed", 50),
    ];
    for event in &events {
        store.insert_audit(event).await.expect("inserted");
    }
    let page = async |action: Option<&str>, limit: u32, offset: u32| -> Vec<AuditEvent> {
        let filter = AuditFilter { action: action.map(str::to_owned), ..AuditFilter::default() };
        store.list_audit(&filter, limit, offset).await.expect("lists")
    };
    let newest_first: Vec<AuditEvent> = events.iter().rev().cloned().collect();
    assert_eq!(page(None, 100, 0).await, newest_first);
    assert_eq!(page(None, 2, 0).await, newest_first[..2]);
    assert_eq!(page(None, 2, 2).await, newest_first[2..4]);
    assert_eq!(page(None, 2, 4).await, newest_first[4..]);
    assert!(page(None, 2, 6).await.is_empty());

    assert_eq!(page(Some("login"), 100, 0).await, vec![events[3].clone(), events[1].clone()]);
    assert_eq!(page(Some("login"), 1, 1).await, vec![events[1].clone()]);
    assert_eq!(page(Some("login_failed"), 100, 0).await, vec![events[0].clone()], "actions match exactly");
    assert!(page(Some("logout_everywhere"), 100, 0).await.is_empty());

    // By person and time, with or without an action.
    let filtered = async |filter: AuditFilter| store.list_audit(&filter, 100, 0).await.expect("lists");
    let alice = AuditFilter { actor: Some(w.alice.id), ..AuditFilter::default() };
    assert_eq!(filtered(alice.clone()).await, vec![events[4].clone(), events[2].clone(), events[1].clone()]);
    let window = AuditFilter { since: Some(at(20)), until: Some(at(50)), ..alice.clone() };
    assert_eq!(filtered(window).await, vec![events[2].clone(), events[1].clone()], "since inclusive, until not");
    let logins = AuditFilter { action: Some("login".into()), ..alice };
    assert_eq!(filtered(logins).await, vec![events[1].clone()]);
}

async fn settings_are_set_and_replaced(store: SqlStore) {
    assert_eq!(store.get_setting("registration").await.expect("loads"), None);
    store.set_setting("registration", "invite").await.expect("set");
    store.set_setting("instance_name", "Loquat 团队").await.expect("set");
    assert_eq!(store.get_setting("registration").await.expect("loads").as_deref(), Some("invite"));
    store.set_setting("registration", r#"{"mode":"open","domains":["example.com"]}"#).await.expect("replaced");
    assert_eq!(
        store.get_setting("registration").await.expect("loads").as_deref(),
        Some(r#"{"mode":"open","domains":["example.com"]}"#)
    );
    assert_eq!(store.get_setting("instance_name").await.expect("loads").as_deref(), Some("Loquat 团队"));
    store.set_setting("empty", "").await.expect("set");
    assert_eq!(store.get_setting("empty").await.expect("loads").as_deref(), Some(""));
    assert_eq!(store.get_setting("Registration").await.expect("loads"), None, "keys are exact");
}

on_every_backend!(
    usage_is_summed_and_grouped,
    quotas_are_kept_per_role_and_per_user,
    audit_is_paged_newest_first_and_filtered,
    settings_are_set_and_replaced,
);
