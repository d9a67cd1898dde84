//! Usage and quotas: every generation is recorded (user, assistant, provider, model, tokens,
//! duration); quotas per role and per user cap tokens per day and month; reports group usage
//! per user, model or day, with costs from the model bank's prices.

use std::sync::Arc;

use super::Instance;
use crate::domain::{Quota, Role, UsageEvent, UsageGrouping, UsageRow, User};
use crate::error::{CoreError, CoreResult};
use crate::id::{AssistantId, UserId};
use crate::store::{FinishedAnswer, Store};
use crate::time::Timestamp;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// A usage report row with its estimated cost.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageLine {
    pub row: UsageRow,
    /// US dollars, when the model bank knows the model's prices.
    pub cost: Option<f64>,
}

/// Usage records, reports and the token quotas. Cheap to clone.
#[derive(Clone)]
pub struct Usage {
    store: Arc<dyn Store>,
    instance: Instance,
}

impl Usage {
    pub(crate) fn new(store: Arc<dyn Store>, instance: Instance) -> Self {
        Self { store, instance }
    }

    /// Records a finished generation (whatever its outcome) for statistics and quotas.
    pub(crate) async fn record(&self, user: UserId, assistant: Option<AssistantId>, answer: &FinishedAnswer) {
        self.record_exchange(user, assistant, answer, None).await;
    }

    /// A one-shot request (a translation, a summary, speech, a transcription, a drawing) in the
    /// usage records: complete, with what the provider reported and how long it took.
    pub(crate) async fn record_request(
        &self,
        user: UserId,
        assistant: Option<AssistantId>,
        (provider, model): (&str, &str),
        usage: Option<crate::domain::TokenUsage>,
        started: std::time::Instant,
    ) {
        let answer = FinishedAnswer {
            status: crate::domain::MessageStatus::Complete,
            content: String::new(),
            reasoning: String::new(),
            error_kind: None,
            error_message: None,
            provider: Some(provider.to_owned()),
            model: Some(model.to_owned()),
            usage,
            ttft_ms: None,
            duration_ms: Some(started.elapsed().as_millis() as i64),
            updated_at: Timestamp::now(),
        };
        self.record(user, assistant, &answer).await;
    }

    /// [`Usage::record`], with the question asked, for the audit log when the administrator
    /// archives content.
    pub(crate) async fn record_exchange(
        &self,
        user: UserId,
        assistant: Option<AssistantId>,
        answer: &FinishedAnswer,
        question: Option<&str>,
    ) {
        self.record_usage(user, assistant, answer).await;
        let mode = match self.instance.request_audit().await {
            Ok(mode) => mode,
            Err(error) => {
                tracing::error!(%error, "could not read the request audit setting");
                return;
            }
        };
        if mode == super::RequestAudit::Off {
            return;
        }
        let usage = answer.usage.unwrap_or_default();
        let mut detail = format!(
            "{}, {} prompt + {} completion tokens",
            answer.status.as_str(),
            usage.prompt_tokens,
            usage.completion_tokens
        );
        if mode == super::RequestAudit::Content {
            let clip = |text: &str| text.chars().take(4_000).collect::<String>();
            if let Some(question) = question {
                detail.push_str(&format!("\nQ: {}", clip(question)));
            }
            if !answer.content.is_empty() {
                detail.push_str(&format!("\nA: {}", clip(&answer.content)));
            }
        }
        let event = crate::domain::AuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            actor: Some(user),
            action: "model_request".to_owned(),
            target: format!(
                "{}::{}",
                answer.provider.as_deref().unwrap_or_default(),
                answer.model.as_deref().unwrap_or_default()
            ),
            detail,
            ip: String::new(),
            created_at: answer.updated_at,
        };
        if let Err(error) = self.store.insert_audit(&event).await {
            tracing::error!(%error, "could not record the request in the audit log");
        }
    }

    async fn record_usage(&self, user: UserId, assistant: Option<AssistantId>, answer: &FinishedAnswer) {
        let usage = answer.usage.unwrap_or_default();
        let event = UsageEvent {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user,
            assistant_id: assistant,
            provider: answer.provider.clone().unwrap_or_default(),
            model: answer.model.clone().unwrap_or_default(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            duration_ms: answer.duration_ms.unwrap_or(0),
            outcome: answer.status.as_str().to_owned(),
            created_at: answer.updated_at,
        };
        if let Err(error) = self.store.insert_usage(&event).await {
            tracing::error!(%error, "could not record usage");
        }
    }

    /// The quota that applies to a user: their own limits, each unset one taken from the role.
    pub async fn effective_quota(&self, user: &User) -> CoreResult<Quota> {
        self.instance.quota(user).await
    }

    /// Refuses a new generation when the user has used up a daily or monthly token quota.
    /// (Requests per minute are enforced by the web layer's rate limiter.) Without token
    /// quotas this reads nothing but the cached instance settings.
    pub(crate) async fn check_quota(&self, user: &User) -> CoreResult<()> {
        let quota = self.instance.quota(user).await?;
        let now = Timestamp::now();
        let day_start = Timestamp(now.0 - now.0.rem_euclid(DAY_MS));
        if let Some(limit) = quota.tokens_per_day
            && self.store.user_tokens_since(user.id, day_start).await? >= limit
        {
            return Err(CoreError::Limited { code: "quota_day", detail: limit.to_string() });
        }
        if let Some(limit) = quota.tokens_per_month
            && self.store.user_tokens_since(user.id, month_start(now)).await? >= limit
        {
            return Err(CoreError::Limited { code: "quota_month", detail: limit.to_string() });
        }
        Ok(())
    }

    /// Tokens the user used today and this month (UTC), for their account page.
    pub async fn usage_so_far(&self, user: UserId) -> CoreResult<(u64, u64)> {
        let now = Timestamp::now();
        let day_start = Timestamp(now.0 - now.0.rem_euclid(DAY_MS));
        let today = self.store.user_tokens_since(user, day_start).await?;
        let month = self.store.user_tokens_since(user, month_start(now)).await?;
        Ok((today, month))
    }

    /// A usage report over the last `days` days. Admins may see everybody; others only
    /// themselves (`only` is forced to the actor).
    pub async fn usage_report(
        &self,
        actor: UserId,
        grouping: UsageGrouping,
        days: u32,
        only: Option<UserId>,
    ) -> CoreResult<Vec<UsageLine>> {
        let me = super::existing_user(self.store.as_ref(), actor).await?;
        let only = if me.role == Role::Admin { only } else { Some(actor) };
        let now = Timestamp::now();
        let from = Timestamp(now.0 - now.0.rem_euclid(DAY_MS) - i64::from(days.saturating_sub(1)) * DAY_MS);
        let rows = self.store.usage_report(grouping, from, Timestamp(now.0 + 1), only).await?;
        Ok(rows.into_iter().map(|row| UsageLine { cost: cost_of(&row), row }).collect())
    }
}

fn cost_of(row: &UsageRow) -> Option<f64> {
    if row.model.is_empty() {
        return None;
    }
    let card = crate::catalogue::catalogue()
        .iter()
        .filter(|entry| entry.id == row.provider)
        .flat_map(|entry| entry.models.iter())
        .find(|card| card.id == row.model)?;
    let input = card.price_input? * row.prompt_tokens as f64 / 1_000_000.0;
    let output = card.price_output? * row.completion_tokens as f64 / 1_000_000.0;
    Some(input + output)
}

/// The most requests per minute a quota may allow: far beyond any real client, and a rate
/// the rate limiter keeps exactly. More is "no limit" (an empty field).
pub const MAX_REQUESTS_PER_MINUTE: u32 = 1_000_000;
/// The most tokens a quota may allow (stored as a signed 64-bit number).
pub const MAX_QUOTA_TOKENS: u64 = 1_000_000_000_000_000;

/// Limits are checked where they are set, so the rate limiter never meets one it cannot keep.
/// The largest storage quota, in MiB (a petabyte).
pub const MAX_STORAGE_MB: u64 = 1 << 30;

pub(crate) fn validate_quota(quota: &Quota) -> CoreResult<()> {
    if quota.requests_per_minute.is_some_and(|rate| rate == 0 || rate > MAX_REQUESTS_PER_MINUTE) {
        return Err(CoreError::invalid_with("quota_requests", MAX_REQUESTS_PER_MINUTE.to_string()));
    }
    if quota.storage_mb.is_some_and(|mb| mb == 0 || mb > MAX_STORAGE_MB) {
        return Err(CoreError::invalid_with("quota_storage", MAX_STORAGE_MB.to_string()));
    }
    let tokens = [quota.tokens_per_day, quota.tokens_per_month];
    if tokens.into_iter().flatten().any(|limit| limit == 0 || limit > MAX_QUOTA_TOKENS) {
        return Err(CoreError::invalid_with("quota_tokens", MAX_QUOTA_TOKENS.to_string()));
    }
    Ok(())
}

/// The first instant of the current UTC month.
fn month_start(now: Timestamp) -> Timestamp {
    let date = now.to_jiff().to_zoned(jiff::tz::TimeZone::UTC).date();
    let first = jiff::civil::date(date.year(), date.month(), 1);
    first
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|zoned| Timestamp(zoned.timestamp().as_millisecond()))
        .unwrap_or(Timestamp(now.0 - now.0.rem_euclid(DAY_MS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_are_checked_where_they_are_set() {
        let quota = |rate: Option<u32>, day: Option<u64>| Quota {
            tokens_per_day: day,
            tokens_per_month: None,
            requests_per_minute: rate,
            storage_mb: None,
        };
        assert!(validate_quota(&quota(None, None)).is_ok());
        assert!(validate_quota(&quota(Some(MAX_REQUESTS_PER_MINUTE), Some(MAX_QUOTA_TOKENS))).is_ok());
        assert!(validate_quota(&quota(Some(100_000_000), None)).is_err());
        assert!(validate_quota(&quota(Some(0), None)).is_err());
        assert!(validate_quota(&quota(None, Some(0))).is_err());
        assert!(validate_quota(&quota(None, Some(u64::MAX))).is_err());
    }

    #[test]
    fn months_start_on_the_first_at_midnight_utc() {
        let mid_november: jiff::Timestamp = "2026-11-22T15:30:00Z".parse().expect("valid");
        let start = month_start(Timestamp(mid_november.as_millisecond()));
        assert_eq!(start.to_jiff().to_string(), "2026-11-01T00:00:00Z");
    }
}
