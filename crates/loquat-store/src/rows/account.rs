//! Row structs of the account tables (sessions, identities, invites, API tokens, usage sums,
//! quotas, the audit log) and their conversion into domain types, plus the checked conversions
//! between the domain's unsigned counts and the databases' signed integers.

use loquat_core::domain::{ApiToken, AuditEvent, Identity, Invite, Quota, Role, Session, UsageRow};
use loquat_core::store::StoreResult;
use loquat_core::time::Timestamp;

use super::{corrupt, id, optional_id};
use crate::pool::other_error;

const DAY_MS: i64 = 86_400_000;

/// A stored count or sum as the domain's unsigned type; a negative value is `Corrupt`.
pub(crate) fn count<T: TryFrom<i64>>(table: &str, column: &str, value: i64) -> StoreResult<T> {
    T::try_from(value).map_err(|_| corrupt(table, column, &value.to_string()))
}

fn optional_count<T: TryFrom<i64>>(table: &str, column: &str, value: Option<i64>) -> StoreResult<Option<T>> {
    value.map(|value| count(table, column, value)).transpose()
}

/// A quota limit as stored (`BIGINT`); limits beyond `i64::MAX` cannot be written.
pub(crate) fn quota_limit(value: Option<u64>) -> StoreResult<Option<i64>> {
    value
        .map(|value| i64::try_from(value).map_err(|_| other_error(format!("quota limit {value} is too large"))))
        .transpose()
}

fn role(table: &str, text: String) -> StoreResult<Role> {
    Role::parse(&text).ok_or_else(|| corrupt(table, "role", &text))
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    token_hash: String,
    user_id: String,
    created_at: i64,
    expires_at: i64,
    last_seen_at: i64,
    ip: String,
    user_agent: String,
}

impl SessionRow {
    pub(crate) fn into_domain(self) -> StoreResult<Session> {
        Ok(Session {
            token_hash: self.token_hash,
            user_id: id("sessions", "user_id", self.user_id)?,
            created_at: Timestamp(self.created_at),
            expires_at: Timestamp(self.expires_at),
            last_seen_at: Timestamp(self.last_seen_at),
            ip: self.ip,
            user_agent: self.user_agent,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct IdentityRow {
    provider: String,
    subject: String,
    user_id: String,
    email: Option<String>,
    created_at: i64,
}

impl IdentityRow {
    pub(crate) fn into_domain(self) -> StoreResult<Identity> {
        Ok(Identity {
            provider: self.provider,
            subject: self.subject,
            user_id: id("identities", "user_id", self.user_id)?,
            email: self.email,
            created_at: Timestamp(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct InviteRow {
    code_hash: String,
    created_by: String,
    role: String,
    created_at: i64,
    expires_at: i64,
    used_by: Option<String>,
    used_at: Option<i64>,
}

impl InviteRow {
    pub(crate) fn into_domain(self) -> StoreResult<Invite> {
        Ok(Invite {
            code_hash: self.code_hash,
            created_by: id("invites", "created_by", self.created_by)?,
            role: role("invites", self.role)?,
            created_at: Timestamp(self.created_at),
            expires_at: Timestamp(self.expires_at),
            used_by: optional_id("invites", "used_by", self.used_by)?,
            used_at: self.used_at.map(Timestamp),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiTokenRow {
    id: String,
    user_id: String,
    name: String,
    token_hash: String,
    prefix: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl ApiTokenRow {
    pub(crate) fn into_domain(self) -> StoreResult<ApiToken> {
        Ok(ApiToken {
            id: self.id,
            user_id: id("api_tokens", "user_id", self.user_id)?,
            name: self.name,
            token_hash: self.token_hash,
            prefix: self.prefix,
            created_at: Timestamp(self.created_at),
            last_used_at: self.last_used_at.map(Timestamp),
            revoked_at: self.revoked_at.map(Timestamp),
        })
    }
}

/// The sums of one group of `usage_events` (each column `CAST(… AS BIGINT)`: PostgreSQL sums
/// a `BIGINT` as `NUMERIC`).
#[derive(sqlx::FromRow)]
pub(crate) struct UsageSums {
    requests: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    reasoning_tokens: i64,
}

impl UsageSums {
    fn into_row(self, key: String, provider: String, model: String) -> StoreResult<UsageRow> {
        Ok(UsageRow {
            key,
            provider,
            model,
            requests: count("usage_events", "count(*)", self.requests)?,
            prompt_tokens: count("usage_events", "prompt_tokens", self.prompt_tokens)?,
            completion_tokens: count("usage_events", "completion_tokens", self.completion_tokens)?,
            reasoning_tokens: count("usage_events", "reasoning_tokens", self.reasoning_tokens)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UsageUserRow {
    user_id: String,
    #[sqlx(flatten)]
    sums: UsageSums,
}

impl UsageUserRow {
    pub(crate) fn into_domain(self) -> StoreResult<UsageRow> {
        self.sums.into_row(self.user_id, String::new(), String::new())
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UsageModelRow {
    provider: String,
    model: String,
    #[sqlx(flatten)]
    sums: UsageSums,
}

impl UsageModelRow {
    pub(crate) fn into_domain(self) -> StoreResult<UsageRow> {
        let key = format!("{}/{}", self.provider, self.model);
        self.sums.into_row(key, self.provider, self.model)
    }
}

/// `day` is `created_at / 86400000`: whole UTC days since the epoch (the same integer division
/// on both backends).
#[derive(sqlx::FromRow)]
pub(crate) struct UsageDayRow {
    day: i64,
    #[sqlx(flatten)]
    sums: UsageSums,
}

impl UsageDayRow {
    pub(crate) fn into_domain(self) -> StoreResult<UsageRow> {
        self.sums.into_row(day_key(self.day)?, String::new(), String::new())
    }
}

/// `YYYY-MM-DD` (UTC) of a day number.
fn day_key(day: i64) -> StoreResult<String> {
    let millis = day.checked_mul(DAY_MS).ok_or_else(|| corrupt("usage_events", "created_at", &day.to_string()))?;
    Ok(Timestamp(millis).to_jiff().strftime("%Y-%m-%d").to_string())
}

#[derive(sqlx::FromRow)]
pub(crate) struct QuotaRow {
    tokens_per_day: Option<i64>,
    tokens_per_month: Option<i64>,
    requests_per_minute: Option<i64>,
    storage_mb: Option<i64>,
}

impl QuotaRow {
    pub(crate) fn into_domain(self) -> StoreResult<Quota> {
        Ok(Quota {
            tokens_per_day: optional_count("quotas", "tokens_per_day", self.tokens_per_day)?,
            tokens_per_month: optional_count("quotas", "tokens_per_month", self.tokens_per_month)?,
            requests_per_minute: optional_count("quotas", "requests_per_minute", self.requests_per_minute)?,
            storage_mb: optional_count("quotas", "storage_mb", self.storage_mb)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: String,
    actor: Option<String>,
    action: String,
    target: String,
    detail: String,
    ip: String,
    created_at: i64,
}

impl AuditRow {
    pub(crate) fn into_domain(self) -> StoreResult<AuditEvent> {
        Ok(AuditEvent {
            id: self.id,
            actor: optional_id("audit_log", "actor", self.actor)?,
            action: self.action,
            target: self.target,
            detail: self.detail,
            ip: self.ip,
            created_at: Timestamp(self.created_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use loquat_core::store::StoreErrorKind;

    use super::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_key(0).ok().as_deref(), Some("1970-01-01"));
        // 2023-11-14T22:13:20Z is day 19_675.
        assert_eq!(day_key(1_700_000_000_000 / DAY_MS).ok().as_deref(), Some("2023-11-14"));
        assert_eq!(day_key(i64::MAX).err().map(|e| e.kind), Some(StoreErrorKind::Corrupt));
    }

    #[test]
    fn counts_are_checked() {
        assert_eq!(count::<u64>("t", "c", 7).ok(), Some(7));
        assert_eq!(count::<u64>("t", "c", -1).err().map(|e| e.kind), Some(StoreErrorKind::Corrupt));
        assert_eq!(
            count::<u32>("t", "c", i64::from(u32::MAX) + 1).err().map(|e| e.kind),
            Some(StoreErrorKind::Corrupt)
        );
        assert_eq!(quota_limit(Some(5)).ok(), Some(Some(5)));
        assert_eq!(quota_limit(None).ok(), Some(None));
        assert_eq!(quota_limit(Some(u64::MAX)).err().map(|e| e.kind), Some(StoreErrorKind::Other));
    }

    #[test]
    fn bad_rows_are_corrupt() {
        let invite = InviteRow {
            code_hash: "h".into(),
            created_by: loquat_core::id::UserId::new().to_string(),
            role: "owner".into(),
            created_at: 0,
            expires_at: 0,
            used_by: None,
            used_at: None,
        };
        assert_eq!(invite.into_domain().err().map(|e| e.kind), Some(StoreErrorKind::Corrupt));
        let quota =
            QuotaRow { tokens_per_day: Some(-5), tokens_per_month: None, requests_per_minute: None, storage_mb: None };
        assert_eq!(quota.into_domain().err().map(|e| e.kind), Some(StoreErrorKind::Corrupt));
    }
}
