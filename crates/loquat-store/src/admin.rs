//! `AdminStore` for `SqlStore`: `usage_events` (one row per generation, summed for reports and
//! quotas), `quotas` (per role and per user), `audit_log` and `settings` (instance-wide key/value
//! pairs).

use async_trait::async_trait;
use loquat_core::domain::{AuditEvent, Quota, QuotaScope, Role, UsageEvent, UsageGrouping, UsageRow};
use loquat_core::id::UserId;
use loquat_core::store::{AdminStore, AuditFilter, StoreResult};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{execute, on_pool, store_error};
use crate::rows::{AuditRow, QuotaRow, UsageDayRow, UsageModelRow, UsageUserRow, convert_all, count, quota_limit};

/// A quota row with its key.
#[derive(sqlx::FromRow)]
struct ScopedQuotaRow {
    scope: String,
    subject: String,
    #[sqlx(flatten)]
    quota: QuotaRow,
}

/// The `(scope, subject)` key of a quota row.
fn quota_key(scope: &QuotaScope) -> (&'static str, String) {
    match scope {
        QuotaScope::Role(role) => ("role", role.as_str().to_owned()),
        QuotaScope::Named(name) => ("named", name.clone()),
        QuotaScope::User(user) => ("user", user.to_string()),
    }
}

#[async_trait]
impl AdminStore for SqlStore {
    async fn insert_usage(&self, event: &UsageEvent) -> StoreResult<()> {
        execute!(
            &self.pools,
            "insert_usage",
            "INSERT INTO usage_events (id, user_id, assistant_id, provider, model, prompt_tokens, \
                 completion_tokens, reasoning_tokens, duration_ms, outcome, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &event.id,
            event.user_id.to_string(),
            event.assistant_id.map(|assistant| assistant.to_string()),
            &event.provider,
            &event.model,
            i64::from(event.prompt_tokens),
            i64::from(event.completion_tokens),
            i64::from(event.reasoning_tokens),
            event.duration_ms,
            &event.outcome,
            event.created_at.as_millis()
        )
        .map(|_| ())
    }

    async fn user_tokens_since(&self, user: UserId, since: Timestamp) -> StoreResult<u64> {
        // PostgreSQL sums a BIGINT as NUMERIC: cast back. Served by (user_id, created_at).
        let tokens: i64 = on_pool!(&self.pools, read, "user_tokens_since", |pool| {
            sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS BIGINT) FROM usage_events \
                 WHERE user_id = $1 AND created_at >= $2",
            )
            .bind(user.to_string())
            .bind(since.as_millis())
            .fetch_one(pool)
            .await
        })
        .map_err(store_error)?;
        count("usage_events", "sum(tokens)", tokens)
    }

    async fn usage_report(
        &self,
        grouping: UsageGrouping,
        from: Timestamp,
        to: Timestamp,
        user: Option<UserId>,
    ) -> StoreResult<Vec<UsageRow>> {
        let (from, to, user) = (from.as_millis(), to.as_millis(), user.map(|user| user.to_string()));
        let mut rows = match grouping {
            UsageGrouping::User => {
                let rows = on_pool!(&self.pools, read, "usage_report", |pool| {
                    sqlx::query_as::<_, UsageUserRow>(
                        "SELECT user_id, COUNT(*) AS requests, CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
                         CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
                         CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens FROM usage_events \
                         WHERE created_at >= $1 AND created_at < $2 AND ($3 IS NULL OR user_id = $3) \
                         GROUP BY user_id",
                    )
                    .bind(from)
                    .bind(to)
                    .bind(user.as_deref())
                    .fetch_all(pool)
                    .await
                })
                .map_err(store_error)?;
                convert_all(rows, UsageUserRow::into_domain)?
            }
            UsageGrouping::Model => {
                let rows = on_pool!(&self.pools, read, "usage_report", |pool| {
                    sqlx::query_as::<_, UsageModelRow>(
                        "SELECT provider, model, COUNT(*) AS requests, \
                         CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
                         CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
                         CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens FROM usage_events \
                         WHERE created_at >= $1 AND created_at < $2 AND ($3 IS NULL OR user_id = $3) \
                         GROUP BY provider, model",
                    )
                    .bind(from)
                    .bind(to)
                    .bind(user.as_deref())
                    .fetch_all(pool)
                    .await
                })
                .map_err(store_error)?;
                convert_all(rows, UsageModelRow::into_domain)?
            }
            UsageGrouping::Day => {
                // Whole UTC days since the epoch: BIGINT integer division on both backends; the
                // date text is made in Rust so that both give the same `YYYY-MM-DD`.
                let rows = on_pool!(&self.pools, read, "usage_report", |pool| {
                    sqlx::query_as::<_, UsageDayRow>(
                        "SELECT created_at / 86400000 AS day, COUNT(*) AS requests, \
                         CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
                         CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
                         CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens FROM usage_events \
                         WHERE created_at >= $1 AND created_at < $2 AND ($3 IS NULL OR user_id = $3) \
                         GROUP BY created_at / 86400000",
                    )
                    .bind(from)
                    .bind(to)
                    .bind(user.as_deref())
                    .fetch_all(pool)
                    .await
                })
                .map_err(store_error)?;
                convert_all(rows, UsageDayRow::into_domain)?
            }
        };
        // By key in byte order, the same on both backends whatever their collation.
        rows.sort_by(|a, b| (&a.key, &a.provider, &a.model).cmp(&(&b.key, &b.provider, &b.model)));
        Ok(rows)
    }

    async fn get_quota(&self, scope: &QuotaScope) -> StoreResult<Option<Quota>> {
        let (scope, subject) = quota_key(scope);
        let row = on_pool!(&self.pools, read, "get_quota", |pool| {
            sqlx::query_as::<_, QuotaRow>(
                "SELECT tokens_per_day, tokens_per_month, requests_per_minute, storage_mb FROM quotas \
                 WHERE scope = $1 AND subject = $2",
            )
            .bind(scope)
            .bind(&subject)
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(QuotaRow::into_domain).transpose()
    }

    async fn list_quotas(&self) -> StoreResult<Vec<(QuotaScope, Quota)>> {
        let rows = on_pool!(&self.pools, read, "list_quotas", |pool| {
            sqlx::query_as::<_, ScopedQuotaRow>(
                "SELECT scope, subject, tokens_per_day, tokens_per_month, requests_per_minute, storage_mb FROM quotas",
            )
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        let mut quotas = Vec::with_capacity(rows.len());
        for row in rows {
            let scope = match row.scope.as_str() {
                "role" => Role::parse(&row.subject).map(QuotaScope::Role),
                "named" => Some(QuotaScope::Named(row.subject.clone())),
                "user" => row.subject.parse().ok().map(QuotaScope::User),
                _ => None,
            };
            // A row nobody could have written (a manual edit) is skipped, not fatal.
            let Some(scope) = scope else { continue };
            quotas.push((scope, row.quota.into_domain()?));
        }
        Ok(quotas)
    }

    async fn set_quota(&self, scope: &QuotaScope, quota: &Quota) -> StoreResult<()> {
        let (scope, subject) = quota_key(scope);
        let tokens_per_day = quota_limit(quota.tokens_per_day)?;
        let tokens_per_month = quota_limit(quota.tokens_per_month)?;
        let storage_mb = quota_limit(quota.storage_mb)?;
        execute!(
            &self.pools,
            "set_quota",
            "INSERT INTO quotas (scope, subject, tokens_per_day, tokens_per_month, requests_per_minute, storage_mb) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, subject) DO UPDATE SET \
                 tokens_per_day = excluded.tokens_per_day, tokens_per_month = excluded.tokens_per_month, \
                 requests_per_minute = excluded.requests_per_minute, storage_mb = excluded.storage_mb",
            scope,
            &subject,
            tokens_per_day,
            tokens_per_month,
            quota.requests_per_minute.map(i64::from),
            storage_mb
        )
        .map(|_| ())
    }

    async fn delete_quota(&self, scope: &QuotaScope) -> StoreResult<bool> {
        let (scope, subject) = quota_key(scope);
        let deleted = execute!(
            &self.pools,
            "delete_quota",
            "DELETE FROM quotas WHERE scope = $1 AND subject = $2",
            scope,
            &subject
        )?;
        Ok(deleted > 0)
    }

    async fn insert_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        execute!(
            &self.pools,
            "insert_audit",
            "INSERT INTO audit_log (id, actor, action, target, detail, ip, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &event.id,
            event.actor.map(|actor| actor.to_string()),
            &event.action,
            &event.target,
            &event.detail,
            &event.ip,
            event.created_at.as_millis()
        )
        .map(|_| ())
    }

    async fn list_audit(&self, filter: &AuditFilter, limit: u32, offset: u32) -> StoreResult<Vec<AuditEvent>> {
        let (limit, offset) = (i64::from(limit), i64::from(offset));
        let since = filter.since.map_or(i64::MIN, Timestamp::as_millis);
        let until = filter.until.map_or(i64::MAX, Timestamp::as_millis);
        // Two fixed texts rather than `$1 IS NULL OR …` for the action, so each walks its own
        // index; the person and the times narrow what that finds.
        let rows = match &filter.action {
            Some(action) => on_pool!(&self.pools, read, "list_audit", |pool| {
                sqlx::query_as::<_, AuditRow>(
                    "SELECT id, actor, action, target, detail, ip, created_at FROM audit_log WHERE action = $1 \
                     AND ($2 = '' OR actor = $2) AND created_at >= $3 AND created_at < $4 \
                     ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6",
                )
                .bind(action)
                .bind(filter.actor.map(|actor| actor.to_string()).unwrap_or_default())
                .bind(since)
                .bind(until)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
            }),
            None => on_pool!(&self.pools, read, "list_audit", |pool| {
                sqlx::query_as::<_, AuditRow>(
                    "SELECT id, actor, action, target, detail, ip, created_at FROM audit_log \
                     WHERE ($1 = '' OR actor = $1) AND created_at >= $2 AND created_at < $3 \
                     ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5",
                )
                .bind(filter.actor.map(|actor| actor.to_string()).unwrap_or_default())
                .bind(since)
                .bind(until)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
            }),
        }
        .map_err(store_error)?;
        convert_all(rows, AuditRow::into_domain)
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        on_pool!(&self.pools, read, "get_setting", |pool| {
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(pool).await
        })
        .map_err(store_error)
    }

    async fn list_settings(&self) -> StoreResult<Vec<(String, String)>> {
        on_pool!(&self.pools, read, "list_settings", |pool| {
            sqlx::query_as::<_, (String, String)>("SELECT key, value FROM settings").fetch_all(pool).await
        })
        .map_err(store_error)
    }

    async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        execute!(
            &self.pools,
            "set_setting",
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key,
            value
        )
        .map(|_| ())
    }

    async fn advance_setting(&self, key: &str, at_most: &str, value: &str) -> StoreResult<bool> {
        execute!(
            &self.pools,
            "advance_setting",
            "INSERT INTO settings (key, value) VALUES ($1, $3) ON CONFLICT (key) \
             DO UPDATE SET value = excluded.value WHERE settings.value <= $2",
            key,
            at_most,
            value
        )
        .map(|changed| changed > 0)
    }
}
