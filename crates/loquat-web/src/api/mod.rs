//! Endpoints the page scripts call: sending with a JSON answer, the raw text of a message,
//! stop, and the server-sent event stream of a generating answer.

pub mod chat;
pub mod events;
