//! Typed identifiers: one newtype per aggregate so a topic id can never be passed where a
//! message id is expected. All ids are UUIDv7 (time-ordered), stored as text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Returned when text is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id: {0:?}")]
pub struct InvalidId(pub String);

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// The id `owner`'s copy of something known elsewhere by `key` always gets (an
            /// import: the same source imported twice names the same rows). Not time-ordered.
            pub fn derived(owner: UserId, key: &str) -> Self {
                use sha2::Digest;
                let digest = sha2::Sha256::new()
                    .chain_update(owner.0.as_bytes())
                    .chain_update(stringify!($name).as_bytes())
                    .chain_update(key.as_bytes())
                    .finalize();
                let mut bytes = [0; 16];
                bytes.copy_from_slice(&digest[..16]);
                Self(Uuid::new_v8(bytes))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map(Self).map_err(|_| InvalidId(text.to_owned()))
            }
        }
    };
}

define_id!(
    /// A person using Loquat (for now the single local user).
    UserId
);
define_id!(
    /// An assistant ("agent" in LobeChat): a system role, a model and its parameters.
    AssistantId
);
define_id!(
    /// A conversation inside an assistant.
    TopicId
);
define_id!(
    /// One message in a topic's message tree.
    MessageId
);
define_id!(
    /// A provider configured from the settings page.
    ProviderSettingId
);
define_id!(
    /// A file a user uploaded.
    FileId
);
define_id!(
    /// A passage of a document, as search finds it.
    ChunkId
);
define_id!(
    /// A set of a user's documents an assistant answers from.
    KnowledgeBaseId
);
define_id!(
    /// An MCP server added from the settings page or the admin panel.
    McpServerId
);

define_id!(
    /// A read-only link to a topic (its public secret is separate: `Share::token`).
    ShareId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_are_time_ordered() {
        let first = MessageId::new();
        let second = MessageId::new();
        assert!(first < second);
        let parsed: MessageId = first.to_string().parse().expect("parses");
        assert_eq!(parsed, first);
        assert!("not-an-id".parse::<TopicId>().is_err());
    }
}
