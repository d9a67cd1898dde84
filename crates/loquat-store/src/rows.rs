//! Row structs as both drivers decode them (plain `String`/`i64`/`bool`/`Option` fields) and
//! their conversion into domain types. A row that does not convert is `Corrupt`: a bug or a
//! manual edit of the database.

use std::str::FromStr;

use loquat_core::domain::{
    Assistant, AssistantConfig, Locale, Message, MessageRole, MessageStatus, Protocol, ProviderOverride,
    ProviderSetting, Role, Theme, TokenUsage, Topic, User,
};
use loquat_core::store::{StoreError, StoreErrorKind, StoreResult};
use loquat_core::time::Timestamp;

mod account;

pub(crate) use account::{
    ApiTokenRow, AuditRow, IdentityRow, InviteRow, QuotaRow, SessionRow, UsageDayRow, UsageModelRow, UsageUserRow,
    count, quota_limit,
};

pub(crate) fn corrupt(table: &str, column: &str, value: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("{table}.{column} holds an invalid value: {value:?}"))
}

pub(crate) fn id<T: FromStr>(table: &str, column: &str, text: String) -> StoreResult<T> {
    text.parse().map_err(|_| corrupt(table, column, &text))
}

fn optional_id<T: FromStr>(table: &str, column: &str, text: Option<String>) -> StoreResult<Option<T>> {
    text.map(|text| id(table, column, text)).transpose()
}

/// The text stored for a locale (its code); parsed strictly so a bad value is noticed.
pub(crate) fn locale_code(locale: Option<Locale>) -> Option<&'static str> {
    locale.map(Locale::code)
}

fn parse_locale(code: &str) -> Option<Locale> {
    Locale::ALL.into_iter().find(|locale| locale.code() == code)
}

/// Token usage as its three nullable columns.
pub(crate) fn usage_columns(usage: Option<TokenUsage>) -> [Option<i64>; 3] {
    match usage {
        Some(usage) => [
            Some(i64::from(usage.prompt_tokens)),
            Some(i64::from(usage.completion_tokens)),
            Some(i64::from(usage.reasoning_tokens)),
        ],
        None => [None; 3],
    }
}

fn parse_usage(
    prompt: Option<i64>,
    completion: Option<i64>,
    reasoning: Option<i64>,
) -> StoreResult<Option<TokenUsage>> {
    let count =
        |column: &str, value: i64| u32::try_from(value).map_err(|_| corrupt("messages", column, &value.to_string()));
    match (prompt, completion, reasoning) {
        (None, None, None) => Ok(None),
        (Some(prompt), Some(completion), Some(reasoning)) => Ok(Some(TokenUsage {
            prompt_tokens: count("prompt_tokens", prompt)?,
            completion_tokens: count("completion_tokens", completion)?,
            reasoning_tokens: count("reasoning_tokens", reasoning)?,
            ..TokenUsage::default()
        })),
        partial => Err(corrupt("messages", "prompt_tokens", &format!("partial usage {partial:?}"))),
    }
}

/// The JSON stored for an assistant's config.
pub(crate) fn config_json(config: &AssistantConfig) -> StoreResult<String> {
    serde_json::to_string(config).map_err(crate::pool::other_error)
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    name: String,
    email: Option<String>,
    role: String,
    disabled: bool,
    locale: Option<String>,
    theme: String,
    created_at: i64,
    last_active_at: Option<i64>,
    named_role: Option<String>,
}

impl UserRow {
    pub(crate) fn into_domain(self) -> StoreResult<User> {
        let locale = match self.locale {
            Some(code) => Some(parse_locale(&code).ok_or_else(|| corrupt("users", "locale", &code))?),
            None => None,
        };
        Ok(User {
            id: id("users", "id", self.id)?,
            name: self.name,
            email: self.email,
            role: Role::parse(&self.role).ok_or_else(|| corrupt("users", "role", &self.role))?,
            disabled: self.disabled,
            locale,
            theme: Theme::parse(&self.theme).ok_or_else(|| corrupt("users", "theme", &self.theme))?,
            created_at: Timestamp(self.created_at),
            last_active_at: self.last_active_at.map(Timestamp),
            named_role: self.named_role,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AssistantRow {
    id: String,
    user_id: String,
    is_default: bool,
    config: String,
    created_at: i64,
    updated_at: i64,
}

impl AssistantRow {
    pub(crate) fn into_domain(self) -> StoreResult<Assistant> {
        let config: AssistantConfig = serde_json::from_str(&self.config).map_err(|error| {
            StoreError::new(
                StoreErrorKind::Corrupt,
                format!("assistants.config of {} does not parse: {error}", self.id),
            )
        })?;
        Ok(Assistant {
            id: id("assistants", "id", self.id)?,
            user_id: id("assistants", "user_id", self.user_id)?,
            is_default: self.is_default,
            config,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TopicRow {
    id: String,
    user_id: String,
    assistant_id: String,
    title: String,
    active_leaf_id: Option<String>,
    pinned: bool,
    created_at: i64,
    updated_at: i64,
}

impl TopicRow {
    pub(crate) fn into_domain(self) -> StoreResult<Topic> {
        Ok(Topic {
            id: id("topics", "id", self.id)?,
            user_id: id("topics", "user_id", self.user_id)?,
            assistant_id: id("topics", "assistant_id", self.assistant_id)?,
            title: self.title,
            active_leaf_id: optional_id("topics", "active_leaf_id", self.active_leaf_id)?,
            pinned: self.pinned,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: String,
    user_id: String,
    topic_id: String,
    parent_id: Option<String>,
    role: String,
    content: String,
    reasoning: String,
    status: String,
    error_kind: Option<String>,
    error_message: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    reasoning_tokens: Option<i64>,
    ttft_ms: Option<i64>,
    duration_ms: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl MessageRow {
    pub(crate) fn into_domain(self) -> StoreResult<Message> {
        Ok(Message {
            id: id("messages", "id", self.id)?,
            user_id: id("messages", "user_id", self.user_id)?,
            topic_id: id("messages", "topic_id", self.topic_id)?,
            parent_id: optional_id("messages", "parent_id", self.parent_id)?,
            role: MessageRole::parse(&self.role).ok_or_else(|| corrupt("messages", "role", &self.role))?,
            content: self.content,
            reasoning: self.reasoning,
            status: MessageStatus::parse(&self.status).ok_or_else(|| corrupt("messages", "status", &self.status))?,
            error_kind: self.error_kind,
            error_message: self.error_message,
            provider: self.provider,
            model: self.model,
            usage: parse_usage(self.prompt_tokens, self.completion_tokens, self.reasoning_tokens)?,
            ttft_ms: self.ttft_ms,
            duration_ms: self.duration_ms,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ProviderRow {
    id: String,
    user_id: String,
    name: String,
    protocol: String,
    base_url: String,
    api_key_encrypted: Option<String>,
    model_list: String,
    api_version: String,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl ProviderRow {
    pub(crate) fn into_domain(self) -> StoreResult<ProviderSetting> {
        Ok(ProviderSetting {
            id: id("provider_settings", "id", self.id)?,
            user_id: id("provider_settings", "user_id", self.user_id)?,
            name: self.name,
            protocol: Protocol::parse(&self.protocol)
                .ok_or_else(|| corrupt("provider_settings", "protocol", &self.protocol))?,
            base_url: self.base_url,
            api_key_encrypted: self.api_key_encrypted,
            model_list: self.model_list,
            api_version: self.api_version,
            enabled: self.enabled,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OverrideRow {
    user_id: String,
    provider_id: String,
    api_key_encrypted: Option<String>,
    base_url: String,
    updated_at: i64,
}

impl OverrideRow {
    pub(crate) fn into_domain(self) -> StoreResult<ProviderOverride> {
        Ok(ProviderOverride {
            user_id: id("provider_overrides", "user_id", self.user_id)?,
            provider_id: self.provider_id,
            api_key_encrypted: self.api_key_encrypted,
            base_url: self.base_url,
            updated_at: Timestamp(self.updated_at),
        })
    }
}

/// Converts every row, failing on the first that does not convert.
pub(crate) fn convert_all<R, T>(rows: Vec<R>, convert: impl Fn(R) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.into_iter().map(convert).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_round_trips_and_partial_usage_is_corrupt() {
        let usage = TokenUsage { prompt_tokens: 1, completion_tokens: 2, reasoning_tokens: 3, ..TokenUsage::default() };
        let [p, c, r] = usage_columns(Some(usage));
        assert_eq!(parse_usage(p, c, r).ok().flatten(), Some(usage));
        assert_eq!(parse_usage(None, None, None).ok().flatten(), None);
        let error = parse_usage(Some(1), None, None).err().map(|e| e.kind);
        assert_eq!(error, Some(StoreErrorKind::Corrupt));
        assert_eq!(parse_usage(Some(-1), Some(0), Some(0)).err().map(|e| e.kind), Some(StoreErrorKind::Corrupt));
    }

    #[test]
    fn locales_parse_strictly() {
        for locale in Locale::ALL {
            assert_eq!(parse_locale(locale.code()), Some(locale));
        }
        assert_eq!(parse_locale("zh"), None);
    }

    fn user_row() -> UserRow {
        UserRow {
            id: loquat_core::id::UserId::new().to_string(),
            name: "x".into(),
            email: Some("x@example.com".into()),
            role: "user".into(),
            disabled: false,
            locale: None,
            theme: "dark".into(),
            created_at: 0,
            last_active_at: Some(1),
            named_role: None,
        }
    }

    #[test]
    fn bad_rows_are_corrupt() {
        assert!(user_row().into_domain().is_ok());
        let row = UserRow { id: "nope".into(), ..user_row() };
        assert_eq!(row.into_domain().err().map(|e| e.kind), Some(StoreErrorKind::Corrupt));
        let row = UserRow { locale: Some("fr".into()), ..user_row() };
        assert_eq!(row.into_domain().err().map(|e| e.kind), Some(StoreErrorKind::Corrupt));
        let row = UserRow { role: "root".into(), ..user_row() };
        assert_eq!(row.into_domain().err().map(|e| e.kind), Some(StoreErrorKind::Corrupt));
    }
}
