//! The person using Loquat and their preferences.

use serde::{Deserialize, Serialize};

use crate::id::UserId;
use crate::time::Timestamp;

/// The interface languages Loquat ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Locale {
    #[default]
    #[serde(rename = "en")]
    English,
    #[serde(rename = "zh-CN")]
    SimplifiedChinese,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::English, Locale::SimplifiedChinese];

    pub fn code(self) -> &'static str {
        match self {
            Locale::English => "en",
            Locale::SimplifiedChinese => "zh-CN",
        }
    }

    /// The language's own name, for the language picker.
    pub fn native_name(self) -> &'static str {
        match self {
            Locale::English => "English",
            Locale::SimplifiedChinese => "简体中文",
        }
    }

    /// Parses a locale code leniently (`zh`, `zh-cn`, `zh-Hans` are all Simplified Chinese).
    pub fn parse(code: &str) -> Option<Locale> {
        let code = code.trim().to_ascii_lowercase();
        if code.starts_with("zh") {
            Some(Locale::SimplifiedChinese)
        } else if code.starts_with("en") {
            Some(Locale::English)
        } else {
            None
        }
    }

    /// Picks the best locale from an `Accept-Language` header, honouring q-values.
    pub fn from_accept_language(header: &str) -> Locale {
        let mut best: Option<(f32, Locale)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or_default();
            let quality =
                pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
            if let Some(locale) = Locale::parse(tag)
                && best.is_none_or(|(q, _)| quality > q)
            {
                best = Some((quality, locale));
            }
        }
        best.map(|(_, locale)| locale).unwrap_or_default()
    }
}

/// The colour scheme; `System` follows the operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

impl Theme {
    pub fn code(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    pub fn parse(code: &str) -> Option<Theme> {
        match code {
            "system" => Some(Theme::System),
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            _ => None,
        }
    }
}

/// What a person may do: admins configure the instance and manage people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    #[default]
    User,
}

/// What decides a person's models, tools and quota: their role, or for a member the named
/// role they have (when the administrator defined it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Policy {
    Role(Role),
    Named(String),
}

/// The longest name of a named role.
pub const MAX_NAMED_ROLE_CHARS: usize = 40;

impl Policy {
    /// The key of its settings: `admin`, `user`, or `role:<name>`.
    pub fn key(&self) -> String {
        match self {
            Policy::Role(role) => role.as_str().to_owned(),
            Policy::Named(name) => format!("role:{name}"),
        }
    }

    pub fn parse(key: &str) -> Option<Policy> {
        match key.strip_prefix("role:") {
            Some(name) => valid_named_role(name).then(|| Policy::Named(name.to_owned())),
            None => Role::parse(key).map(Policy::Role),
        }
    }

    pub fn quota_scope(&self) -> super::QuotaScope {
        match self {
            Policy::Role(role) => super::QuotaScope::Role(*role),
            Policy::Named(name) => super::QuotaScope::Named(name.clone()),
        }
    }
}

/// A named role's name: lower-case letters, digits, `-` and `_`, 1 to 40 of them (directory
/// groups of the same name, any case, give it).
pub fn valid_named_role(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAMED_ROLE_CHARS
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && Role::parse(name).is_none()
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Admin, Role::User];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    /// Lower-cased; `None` only for the local user of an instance without accounts yet.
    pub email: Option<String>,
    pub role: Role,
    /// A disabled user cannot sign in and their sessions and tokens stop working.
    pub disabled: bool,
    /// `None` means "follow the browser's Accept-Language".
    pub locale: Option<Locale>,
    pub theme: Theme,
    pub created_at: Timestamp,
    /// The last request seen from this user (updated at most every few minutes).
    pub last_active_at: Option<Timestamp>,
    /// A member's named role, one the administrator defined with its own models, tools and
    /// quota (given by hand or by the directory's groups); `None`: the member role's.
    pub named_role: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_prefers_highest_quality() {
        assert_eq!(Locale::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"), Locale::SimplifiedChinese);
        assert_eq!(Locale::from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8"), Locale::English);
        assert_eq!(Locale::from_accept_language("fr-FR,zh;q=0.5"), Locale::SimplifiedChinese);
        assert_eq!(Locale::from_accept_language("fr-FR"), Locale::English);
        assert_eq!(Locale::from_accept_language(""), Locale::English);
    }
}
