//! The route table: every URL Loquat serves, grouped by page. Handlers live in `pages` (HTML
//! forms and pages) and `api` (what the page scripts fetch); both call the same services.

use axum::Router;
use axum::routing::{get, post};
use std::time::Duration;

use axum::http::StatusCode;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api::{chat as chat_api, events};
use crate::pages::{account, admin, assistants, auth, chat, settings, sso};
use crate::{AppState, assets, health, metrics, middleware, request_id};

/// The longest a request may wait for its response head (provider checks take up to 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.body_limit;
    let content_security_policy = middleware::content_security_policy(&state.settings.image_hosts);
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
        // Getting in.
        .route("/access", get(auth::access_page).post(auth::submit_access))
        .route("/login", get(auth::show_login).post(auth::submit_login))
        .route("/register", get(auth::show_register).post(auth::submit_register))
        .route("/logout", post(auth::sign_out))
        .route("/api/auth/signin/{idp}", get(sso::sso_sign_in))
        .route("/api/auth/callback/{idp}", get(sso::sso_callback))
        // The user's account.
        .route("/account", get(account::show_account))
        .route("/account/name", post(account::save_name))
        .route("/account/password", post(account::change_password))
        .route("/account/sessions/end-all", post(account::sign_out_everywhere))
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        // Administration.
        .route("/admin", get(admin::list_users))
        .route("/admin/users", post(admin::create_user))
        .route("/admin/users/{id}", get(admin::show_user))
        .route("/admin/users/{id}/{action}", post(admin::user_action))
        .route("/admin/invites", get(admin::list_invites).post(admin::create_invite))
        .route("/admin/invites/{hash}/delete", post(admin::delete_invite))
        .route("/admin/settings", get(admin::show_settings))
        .route("/admin/settings/{setting}", post(admin::save_setting))
        .route("/admin/usage", get(admin::show_usage))
        .route("/admin/audit", get(admin::show_audit))
        // Plumbing.
        .route("/static/{name}", get(assets::serve_asset))
        .route("/healthz", get(|| async { "ok" }))
        // Operations: readiness and Prometheus metrics (health.rs, metrics.rs); no sign-in, and
        // the access-code gate lets them through.
        .route("/readyz", get(health::readiness))
        .route("/metrics", get(metrics::serve_metrics))
        .fallback(chat::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::access_gate))
        .layer(axum::middleware::from_fn(middleware::cross_origin_protection))
        .layer(axum::middleware::from_fn_with_state(content_security_policy.clone(), middleware::security_headers))
        .layer(RequestBodyLimitLayer::new(body_limit))
        // Bounds how long a handler may take to answer; a stream's body is not affected (its
        // response head is sent at once).
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        // The OpenAI-compatible API (api/openai): bearer tokens only, OpenAI's error shape, its
        // own body limit; outside the page layers above (access gate, cross-origin check,
        // request timeout: a whole answer takes as long as the model needs).
        .merge(crate::api::openai::routes(body_limit, content_security_policy))
        // Operations, outermost so they see every answer: requests counted and timed per route
        // template; a request id (the caller's if sane, else a UUID) in the trace span of every
        // log line and echoed on the response (request_id.rs). Layers run bottom-up.
        .layer(axum::middleware::from_fn(metrics::track_requests))
        .layer(axum::middleware::from_fn(request_id::carry_request_id))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_id::request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::from_fn(request_id::drop_unsafe_request_id))
        .with_state(state)
}
