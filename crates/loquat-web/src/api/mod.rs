//! Endpoints the page scripts call: sending with a JSON answer, the raw text of a message,
//! stop, and the server-sent event stream of a generating answer; and `openai`, the
//! OpenAI-compatible API for programs (`/v1`).

pub mod chat;
pub mod events;
pub mod openai;
