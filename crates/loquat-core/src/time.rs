//! Wall-clock time as unix milliseconds, the one representation stored in both databases.

use serde::{Deserialize, Serialize};

/// Milliseconds since the unix epoch (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self(jiff::Timestamp::now().as_millisecond())
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// The instant as a `jiff` timestamp, for formatting.
    pub fn to_jiff(self) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(self.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }
}
