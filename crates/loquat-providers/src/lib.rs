//! Loquat's LLM wire protocols: the only crate that speaks to providers. [`HttpChatClient`]
//! implements core's `ChatClient` over one pooled HTTP client and dispatches on the endpoint's
//! protocol to one module per protocol (today `openai`).

mod errors;
mod http;
mod openai;

pub use http::{ClientInitError, HttpChatClient, HttpClientSettings};
