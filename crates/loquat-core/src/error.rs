//! The core layer's error type. Every error has a coarse [`ErrorKind`]; the web crate maps that
//! kind to an HTTP status in exactly one place.

use crate::crypto::VaultError;
use crate::llm::ProviderError;
use crate::store::StoreError;

/// The coarse class of an error, which decides the HTTP status and what the user is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object does not exist or belongs to someone else (never distinguish the two).
    NotFound,
    /// The request is wrong; the message says how.
    Invalid,
    /// The request conflicts with the current state (e.g. regenerate while generating).
    Conflict,
    /// A dependency (database, provider) is unavailable; retrying later may work.
    Unavailable,
    /// A bug or an unexpected failure; details go to the log only.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl CoreError {
    pub fn invalid(message: impl Into<String>) -> Self {
        CoreError::Invalid(message.into())
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::NotFound(_) => ErrorKind::NotFound,
            CoreError::Invalid(_) => ErrorKind::Invalid,
            CoreError::Conflict(_) => ErrorKind::Conflict,
            CoreError::Store(error) if error.is_unavailable() => ErrorKind::Unavailable,
            CoreError::Store(_) | CoreError::Vault(_) => ErrorKind::Internal,
            CoreError::Provider(_) => ErrorKind::Unavailable,
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
