//! Loquat's LLM wire protocols: the only crate that speaks to providers. [`HttpChatClient`]
//! (`http`) implements core's `ChatClient` over pooled HTTP clients and dispatches on the
//! endpoint's protocol to one module per protocol: `openai` (and every compatible server),
//! `anthropic`, `gemini`, `ollama` and `azure`. Those build on a shared toolbox — `transport`
//! (sending, URLs, bounded reads), `stream` (framing and the one stream adapter), `errors` —
//! and never on the dispatcher. Adding a protocol is a request mapper, a `stream::EventHandler`
//! and an error mapper, plus its arms in `http`. URLs users typed go through the SSRF guard
//! ([`ssrf`]).

mod anthropic;
mod azure;
mod errors;
mod gemini;
mod http;
mod ollama;
mod openai;
mod retry;
pub mod ssrf;
mod stream;
mod transport;
pub mod web;

pub use http::{ClientInitError, HttpChatClient, HttpClientSettings};
pub use retry::RetryPolicy;
pub use ssrf::SsrfPolicy;
/// Server-sent events framing, for other readers of SSE (the benchmark's clients).
pub use stream::sse::{Event as SseEvent, SseFrames};
