//! The store conformance suite: every test is written once, as an `async fn(SqlStore)`, and run
//! against a fresh SQLite store and (when `LOQUAT_TEST_DATABASE_URL` is set) a fresh PostgreSQL
//! database. `harness` runs them; `fixtures` builds domain values.

mod accounts;
mod admin;
mod assistants;
mod credentials;
mod dump;
mod files;
mod fixtures;
mod harness;
mod knowledge;
mod mcp_servers;
mod messages;
mod open;
mod plans;
mod providers;
mod search;
mod sessions;
mod shares;
mod topics;
mod users;
