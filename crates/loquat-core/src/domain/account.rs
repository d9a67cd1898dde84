//! Accounts around a user: sessions, linked SSO identities, invitations, API tokens, usage
//! records, quotas and the audit log. Secrets (session tokens, invite codes, API tokens) are
//! stored only as SHA-256 hashes.

use serde::{Deserialize, Serialize};

use super::user::Role;
use crate::id::{AssistantId, UserId};
use crate::time::Timestamp;

/// A signed-in browser. The cookie holds the token; the store holds its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// Where it signed in from, for the user's session list.
    pub ip: String,
    pub user_agent: String,
}

/// An SSO identity linked to a user (`provider` is the SSO provider id, e.g. `keycloak`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub provider: String,
    pub subject: String,
    pub user_id: UserId,
    pub email: Option<String>,
    pub created_at: Timestamp,
}

/// An invitation link. Single use; the link carries the code, the store its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub code_hash: String,
    pub created_by: UserId,
    pub role: Role,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_by: Option<UserId>,
    pub used_at: Option<Timestamp>,
}

/// A personal API token for the OpenAI-compatible API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub user_id: UserId,
    pub name: String,
    pub token_hash: String,
    /// The first characters of the token, to recognise it in a list.
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// One generation, as counted for usage statistics and quotas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    pub id: String,
    pub user_id: UserId,
    pub assistant_id: Option<AssistantId>,
    pub provider: String,
    pub model: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub reasoning_tokens: u32,
    pub duration_ms: i64,
    /// `complete`, `error`, `stopped`…
    pub outcome: String,
    pub created_at: Timestamp,
}

/// How usage is grouped in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGrouping {
    User,
    Model,
    /// UTC calendar day.
    Day,
}

/// One row of a usage report: the group's key and its sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// A user id, `provider/model`, or a day as `YYYY-MM-DD` (UTC).
    pub key: String,
    /// For grouping by model: the provider and model separately.
    pub provider: String,
    pub model: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
}

/// Limits for a role or one user. `None` = unlimited (for a user: the role's limit applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Quota {
    pub tokens_per_day: Option<u64>,
    pub tokens_per_month: Option<u64>,
    pub requests_per_minute: Option<u32>,
    /// How much the user's files may hold in all, in MiB.
    pub storage_mb: Option<u64>,
}

/// Who a quota is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaScope {
    Role(Role),
    /// A named role the administrator defined.
    Named(String),
    User(UserId),
}

/// A security-relevant action, for the admin's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: String,
    /// Who acted; `None` for anonymous actions (a failed login).
    pub actor: Option<UserId>,
    /// A stable code: `login`, `login_failed`, `logout_everywhere`, `role_changed`, `user_disabled`,
    /// `password_reset`, `provider_key_changed`, `token_created`, `token_revoked`, `settings_changed`…
    pub action: String,
    /// What it was done to (a user id, a provider id, an email), free text.
    pub target: String,
    /// Extra detail (never a secret).
    pub detail: String,
    pub ip: String,
    pub created_at: Timestamp,
}
