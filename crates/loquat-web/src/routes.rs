//! The route table: every URL Loquat serves, grouped by page. Handlers live in `pages` (HTML
//! forms and pages) and `api` (what the page scripts fetch); both call the same services.

use axum::Router;
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;

use crate::api::{chat as chat_api, events};
use crate::pages::{assistants, chat, settings};
use crate::{AppState, assets, middleware};

pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.body_limit;
    Router::new()
        // Chat pages.
        .route("/", get(chat::index))
        .route("/chat/{assistant}", get(chat::show_new_topic))
        .route("/chat/{assistant}/{topic}", get(chat::show_topic))
        .route("/chat/{assistant}/send", post(chat_api::send_message))
        // Messages.
        .route("/messages/{id}/events", get(events::message_events))
        .route("/messages/{id}/raw", get(chat_api::raw_message))
        .route("/messages/{id}/stop", post(chat_api::stop_message))
        .route("/messages/{id}/edit", get(chat::edit_message_page).post(chat::edit_message))
        .route("/messages/{id}/regenerate", post(chat::regenerate_message))
        .route("/messages/{id}/delete", post(chat::delete_message))
        .route("/messages/{id}/switch", post(chat::switch_branch))
        // Topics.
        .route("/topics/{id}/rename", post(chat::rename_topic))
        .route("/topics/{id}/delete", post(chat::delete_topic))
        // Assistants.
        .route("/assistants/new", get(assistants::new_assistant_page))
        .route("/assistants", post(assistants::create_assistant))
        .route("/assistants/{id}/edit", get(assistants::edit_assistant_page))
        .route("/assistants/{id}", post(assistants::update_assistant))
        .route("/assistants/{id}/delete", post(assistants::delete_assistant))
        .route("/assistants/{id}/model", post(assistants::set_assistant_model))
        // Settings.
        .route("/settings", get(settings::settings_page))
        .route("/settings/preferences", post(settings::save_preferences))
        .route("/settings/theme", post(settings::cycle_theme))
        .route("/settings/providers", post(settings::create_provider))
        .route("/settings/providers/probe", post(settings::probe_provider))
        .route("/settings/providers/{id}", get(settings::edit_provider_page).post(settings::update_provider))
        .route("/settings/providers/{id}/delete", post(settings::delete_provider))
        .route("/settings/server-providers/{id}", post(settings::save_server_provider_key))
        .route("/settings/pull", post(settings::pull_model))
        // Plumbing.
        .route("/static/{name}", get(assets::serve_asset))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(chat::not_found)
        .layer(axum::middleware::from_fn(middleware::cross_origin_protection))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .with_state(state)
}
