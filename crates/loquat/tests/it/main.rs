//! Loquat's integration tests: the real server on port 0 with a fresh store and a fake
//! upstream, driven over HTTP (and, in `browser`, through headless Chromium).

mod browser;
mod chat;
mod helpers;
mod pages;
mod people;
mod processes;
mod recovery;
mod security;
mod tidy;
