//! Loquat's integration tests: the real server on port 0 with a fresh store and a fake
//! upstream, driven over HTTP (and, in `browser`, through headless Chromium).

mod attachments;
mod backup;
mod browser;
mod browser_features;
mod chat;
mod cli;
mod company;
mod docker;
mod files_api;
mod hardening;
mod health;
mod helpers;
mod ldap;
mod mcp;
mod mcp_stored;
mod media;
mod metrics;
mod openai_api;
mod openai_api_limits;
mod openai_python;
mod pages;
mod people;
mod processes;
mod recovery;
mod replicas;
mod security;
mod sharing;
mod tidy;
mod tools;
mod transfer;
