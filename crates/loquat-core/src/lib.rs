//! Loquat's core: the domain types, the rules, the services every front door calls, and the
//! generation job. It knows the store and the providers only through traits; it contains no
//! SQL and speaks no HTTP.

pub mod bus;
pub mod catalogue;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod generation;
pub mod id;
pub mod llm;
pub mod model_list;
pub mod prompt;
pub mod request;
pub mod secret;
pub mod service;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
pub mod time;
pub mod tools;
pub mod tree;

pub use error::{CoreError, CoreResult, ErrorKind};
pub use secret::Secret;
pub use service::Services;
