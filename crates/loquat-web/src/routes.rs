//! The route table: every URL Loquat serves, grouped by page. Handlers live in `pages` (HTML
//! forms and pages) and `api` (what the page scripts fetch); both call the same services.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post};
use std::time::Duration;

use axum::http::StatusCode;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api::{chat as chat_api, events};
use crate::pages::{
    account, admin, admin_audit, admin_features, assistants, auth, chat, data, files, knowledge, mcp, media, search,
    settings, share, sso,
};
use crate::{AppState, assets, health, metrics, middleware, pwa, request_id};

/// Routes as data: each one added records its method and path beside the router it extends.
#[derive(Default)]
pub(crate) struct RouteTable {
    pub(crate) router: Router<AppState>,
    pub(crate) list: Vec<(Method, &'static str)>,
}

impl RouteTable {
    pub(crate) fn route(mut self, path: &'static str, methods: &[Method], handler: MethodRouter<AppState>) -> Self {
        self.list.extend(methods.iter().map(|method| (method.clone(), path)));
        self.router = self.router.route(path, handler);
        self
    }

    pub(crate) fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.route(path, &[Method::GET], get(handler))
    }

    pub(crate) fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.route(path, &[Method::POST], post(handler))
    }

    fn get_post<G, TG, P, TP>(self, path: &'static str, show: G, submit: P) -> Self
    where
        G: Handler<TG, AppState>,
        TG: 'static,
        P: Handler<TP, AppState>,
        TP: 'static,
    {
        self.route(path, &[Method::GET, Method::POST], get(show).post(submit))
    }
}

/// Uploads from the pages: the page layers but the pages' body limit and the request timeout
/// (a file is bounded by the file size limit as it streams, the request by `upload_limit`, and
/// a large one on a slow link takes as long as it takes).
fn uploads() -> RouteTable {
    RouteTable::default()
        .post("/files", files::upload_files)
        .post("/knowledge/{id}/upload", knowledge::upload)
        .post("/settings/data/import", data::import)
        .post("/assistants/import", data::import_agent)
        .post("/chat/transcribe", media::transcribe)
}

/// What an upload's form adds to its file (part headers, small fields).
const UPLOAD_OVERHEAD: usize = 1024 * 1024;

/// The body limit of the upload routes: one file of the largest size and its form. (The parser
/// keeps a part's headers in memory until they end; this bounds them too.)
pub(crate) fn upload_limit(max_file_bytes: u64) -> usize {
    usize::try_from(max_file_bytes).unwrap_or(usize::MAX).saturating_add(UPLOAD_OVERHEAD)
}

/// The longest a request may wait for its response head (provider checks take up to 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Every page, form and script endpoint, with the router they make.
fn pages() -> RouteTable {
    RouteTable::default()
        // Chat pages.
        .get("/", chat::index)
        .get("/chat/{assistant}", chat::show_new_topic)
        .get("/chat/{assistant}/{topic}", chat::show_topic)
        .get("/chat/{assistant}/{topic}/earlier", chat::earlier_messages)
        .post("/chat/{assistant}/send", chat_api::send_message)
        .post("/chat/{assistant}/tokens", chat_api::estimate_tokens)
        .post("/chat/{assistant}/draw", media::draw)
        // Messages.
        .get("/messages/{id}/events", events::message_events)
        .get("/messages/{id}/raw", chat_api::raw_message)
        .post("/messages/{id}/stop", chat_api::stop_message)
        .get_post("/messages/{id}/edit", chat::edit_message_page, chat::edit_message)
        .post("/messages/{id}/regenerate", chat::regenerate_message)
        .post("/messages/{id}/continue", chat::continue_message)
        .post("/messages/{id}/translate", chat_api::translate_message)
        .post("/messages/{id}/speech", media::speak)
        .post("/messages/{id}/delete", chat::delete_message)
        .post("/messages/{id}/switch", chat::switch_branch)
        .get("/messages/{id}/sources/{number}", knowledge::source)
        .post("/topics/{id}/knowledge", chat::set_topic_knowledge)
        .post("/topics/{id}/tools", chat::set_topic_tools)
        .get_post("/knowledge", knowledge::list, knowledge::create)
        .get("/knowledge/{id}", knowledge::show)
        .post("/knowledge/{id}/edit", knowledge::update)
        .post("/knowledge/{id}/delete", knowledge::delete)
        .post("/knowledge/{id}/sharing", knowledge::set_sharing)
        .post("/knowledge/{id}/files", knowledge::add_file)
        .post("/knowledge/{id}/files/{file}/remove", knowledge::remove_file)
        .post("/knowledge/{id}/files/{file}/retry", knowledge::retry_file)
        .post("/knowledge/{id}/assistants", knowledge::toggle_assistant)
        // Topics.
        .post("/topics/{id}/rename", chat::rename_topic)
        .post("/topics/{id}/pin", chat::pin_topic)
        .post("/topics/{id}/summary", chat::regenerate_summary)
        .get("/search", search::search)
        .post("/topics/{id}/delete", chat::delete_topic)
        .get("/topics/{id}/export", data::export_topic)
        .get_post("/topics/{id}/shares", share::show_shares, share::create_share)
        .post("/topics/{id}/shares/{share}/revoke", share::revoke_share)
        .get("/share/{token}", share::open_share)
        // Assistants.
        .get("/assistants/new", assistants::new_assistant_page)
        .post("/assistants", assistants::create_assistant)
        .get("/assistants/{id}/edit", assistants::edit_assistant_page)
        .post("/assistants/{id}", assistants::update_assistant)
        .post("/assistants/{id}/delete", assistants::delete_assistant)
        .post("/assistants/{id}/model", assistants::set_assistant_model)
        .get("/assistants/{id}/export", data::export_agent)
        .post("/assistants/{id}/arrange/{action}", assistants::arrange_assistant)
        // Settings.
        .get("/settings", settings::settings_page)
        .post("/settings/preferences", settings::save_preferences)
        .post("/settings/theme", settings::cycle_theme)
        .post("/settings/providers", settings::create_provider)
        .post("/settings/providers/probe", settings::probe_provider)
        .get_post("/settings/providers/{id}", settings::edit_provider_page, settings::update_provider)
        .post("/settings/providers/{id}/delete", settings::delete_provider)
        .post("/settings/server-providers/{id}", settings::save_server_provider_key)
        .post("/settings/pull", settings::pull_model)
        .get("/settings/data", data::show)
        .get("/settings/data/export", data::export_everything)
        .get_post("/settings/mcp", mcp::show_servers, mcp::add_server)
        .get_post("/settings/mcp/{id}", mcp::edit_server, mcp::update_server)
        .post("/settings/mcp/{id}/delete", mcp::delete_server)
        .post("/settings/mcp/{id}/check", mcp::check_server)
        // Getting in.
        .get_post("/access", auth::access_page, auth::submit_access)
        .get_post("/login", auth::show_login, auth::submit_login)
        .get_post("/register", auth::show_register, auth::submit_register)
        .post("/logout", auth::sign_out)
        .get("/api/auth/signin/{idp}", sso::sso_sign_in)
        .get("/api/auth/callback/{idp}", sso::sso_callback)
        // Files (uploads are in `uploads()`).
        .get("/files", files::show_files)
        .get("/files/{id}", files::download_file)
        .get("/files/{id}/view", files::view_file)
        .post("/files/{id}/delete", files::delete_file)
        // The user's account.
        .get("/account", account::show_account)
        .post("/account/name", account::save_name)
        .post("/account/password", account::change_password)
        .post("/account/sessions/end-all", account::sign_out_everywhere)
        .post("/account/tokens", account::create_token)
        .post("/account/tokens/{id}/revoke", account::revoke_token)
        // Administration.
        .get("/admin", admin::list_users)
        .post("/admin/users", admin::create_user)
        .get("/admin/users/{id}", admin::show_user)
        .post("/admin/users/{id}/{action}", admin::user_action)
        .get_post("/admin/invites", admin::list_invites, admin::create_invite)
        .post("/admin/invites/{hash}/delete", admin::delete_invite)
        .get("/admin/settings", admin::show_settings)
        .post("/admin/settings/{setting}", admin::save_setting)
        .get("/admin/knowledge", admin_features::show_knowledge)
        .post("/admin/knowledge/embedding", admin_features::save_embedding_model)
        .post("/admin/knowledge/{id}/unshare", admin_features::unshare_knowledge)
        .get("/admin/tools", admin_features::show_tools)
        .post("/admin/tools/check", admin_features::check_tool_source)
        .post("/admin/tools/servers", mcp::admin_add_server)
        .get_post("/admin/tools/servers/{id}", mcp::admin_edit_server, mcp::admin_update_server)
        .post("/admin/tools/servers/{id}/delete", mcp::admin_delete_server)
        .get("/admin/usage", admin::show_usage)
        .get("/admin/audit", admin_audit::show_audit)
        .get("/admin/audit/export", admin_audit::export_audit)
        // Plumbing.
        .get("/static/{name}", assets::serve_asset)
        .get(pwa::MANIFEST, pwa::manifest)
        .get(pwa::WORKER, pwa::service_worker)
        .get(pwa::OFFLINE, pwa::offline)
        .get("/static/pwa/{icon}", pwa::icon)
        .get("/healthz", || async { "ok" })
        // Operations: readiness and Prometheus metrics (health.rs, metrics.rs); no sign-in, and
        // the access-code gate lets them through.
        .get("/readyz", health::readiness)
        .get("/metrics", metrics::serve_metrics)
}

/// Every route: (method, path template) as the router serves it, the `/v1` API included. Built
/// by the same code that builds the router, so tests that walk it (ownership, API tokens on
/// pages) cover a new route without being edited.
pub fn route_list() -> Vec<(Method, &'static str)> {
    let mut list = pages().list;
    list.extend(uploads().list);
    let no_policy = axum::http::HeaderValue::from_static("default-src 'none'");
    list.extend(crate::api::openai::route_table(usize::MAX, usize::MAX, no_policy).list);
    list
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.body_limit;
    let upload_limit = upload_limit(state.services.files.max_bytes());
    let content_security_policy = middleware::content_security_policy(&state.settings.image_hosts);
    pages()
        .router
        .fallback(chat::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::access_gate))
        .layer(axum::middleware::from_fn(middleware::cross_origin_protection))
        .layer(axum::middleware::from_fn_with_state(content_security_policy.clone(), middleware::security_headers))
        .layer(RequestBodyLimitLayer::new(body_limit))
        // Bounds how long a handler may take to answer; a stream's body is not affected (its
        // response head is sent at once).
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .merge(
            uploads()
                .router
                .layer(axum::extract::DefaultBodyLimit::max(upload_limit))
                .layer(axum::middleware::from_fn_with_state(state.clone(), auth::access_gate))
                .layer(axum::middleware::from_fn(middleware::cross_origin_protection))
                .layer(axum::middleware::from_fn_with_state(
                    content_security_policy.clone(),
                    middleware::security_headers,
                )),
        )
        // The OpenAI-compatible API (api/openai): bearer tokens only, OpenAI's error shape, its
        // own body limit; outside the page layers above (access gate, cross-origin check,
        // request timeout: a whole answer takes as long as the model needs).
        .merge(crate::api::openai::route_table(body_limit, upload_limit, content_security_policy).router)
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
