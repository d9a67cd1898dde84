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
    /// A quota or rate limit was reached; retrying later will work.
    Limited,
    /// A dependency (database, provider) is unavailable; retrying later may work.
    Unavailable,
    /// A bug or an unexpected failure; details go to the log only.
    Internal,
    /// The input is larger than allowed (an upload past the file size limit).
    TooLarge,
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The input broke a rule. `code` names the rule (front doors translate `invalid.<code>`);
    /// `detail` is its variable part (a field name, a limit), empty when there is none.
    #[error("invalid input ({code}): {detail}")]
    Invalid { code: &'static str, detail: String },
    /// The request conflicts with the current state; `code` names the conflict
    /// (`conflict.<code>`).
    #[error("conflict ({0})")]
    Conflict(&'static str),
    /// A quota was used up; `code` names it (`limited.<code>`), `detail` the limit.
    #[error("limited ({code}): {detail}")]
    Limited { code: &'static str, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// An upload past the file size limit, in bytes.
    #[error("larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// File storage (the folder or the bucket) failed; the detail goes to the log only.
    #[error("file storage: {0}")]
    Files(String),
}

impl CoreError {
    /// An input error without a variable part.
    pub fn invalid(code: &'static str) -> Self {
        CoreError::Invalid { code, detail: String::new() }
    }

    /// An input error whose message names something (a field, a limit, a value).
    pub fn invalid_with(code: &'static str, detail: impl Into<String>) -> Self {
        CoreError::Invalid { code, detail: detail.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::NotFound(_) => ErrorKind::NotFound,
            CoreError::Invalid { .. } => ErrorKind::Invalid,
            CoreError::Conflict(_) => ErrorKind::Conflict,
            CoreError::Limited { .. } => ErrorKind::Limited,
            CoreError::Store(error) if error.is_unavailable() => ErrorKind::Unavailable,
            CoreError::Store(_) | CoreError::Vault(_) => ErrorKind::Internal,
            CoreError::Provider(_) | CoreError::Files(_) => ErrorKind::Unavailable,
            CoreError::TooLarge { .. } => ErrorKind::TooLarge,
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;

impl From<loquat_files::BlobError> for CoreError {
    fn from(error: loquat_files::BlobError) -> Self {
        use loquat_files::BlobError;
        match error {
            BlobError::TooLarge { limit } => CoreError::TooLarge { limit },
            BlobError::Empty => CoreError::invalid("file_empty"),
            BlobError::Upload(_) => CoreError::invalid("upload_incomplete"),
            // A record whose bytes are gone: storage lost them.
            BlobError::NotFound => CoreError::Files("the file's bytes are missing".to_owned()),
            BlobError::Storage(detail) => CoreError::Files(detail),
        }
    }
}
