//! The OpenAI-compatible API under `/v1`: chat completions (streamed or whole), models,
//! embeddings and files, for programs using OpenAI's SDKs with a personal API token. Each handler parses
//! the wire shape (`request`), calls one `Services::api_*` method — the same quota, rate
//! limits, assistants and usage as the pages — and renders OpenAI's shapes (`chunks`,
//! `error`). These routes have their own body limit and no request timeout (a whole answer
//! takes as long as the model needs).

mod caller;
mod chat;
mod chunks;
mod embeddings;
mod error;
mod files;
mod models;
mod request;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::routing::{any, delete, post};
use loquat_core::domain::Locale;

use self::error::ApiError;
use crate::i18n::Tr;
use crate::middleware;
use crate::routes::RouteTable;

/// The API's routes; merged into the route table outside the page layers (access gate,
/// cross-origin check, request timeout).
pub(crate) fn route_table(body_limit: usize, upload_limit: usize, content_security_policy: HeaderValue) -> RouteTable {
    let table = RouteTable::default()
        .post("/v1/chat/completions", chat::create_chat_completion)
        .get("/v1/models", models::list_models)
        .get("/v1/models/{*id}", models::get_model)
        .post("/v1/embeddings", embeddings::create_embeddings)
        // Uploads are bounded by the file size limit as they stream, not by the body limit.
        .route("/v1/files", &[Method::POST], post(files::upload_file).layer(DefaultBodyLimit::max(upload_limit)))
        .get("/v1/files", files::list_files)
        .get("/v1/files/{id}", files::get_file)
        .route("/v1/files/{id}", &[Method::DELETE], delete(files::delete_file))
        .get("/v1/files/{id}/content", files::file_content)
        .route("/v1/{*rest}", &[Method::GET, Method::POST], any(unknown_url));
    RouteTable {
        router: table
            .router
            .layer(DefaultBodyLimit::max(body_limit))
            .layer(axum::middleware::from_fn_with_state(content_security_policy, middleware::security_headers)),
        list: table.list,
    }
}

async fn unknown_url(uri: Uri, headers: HeaderMap) -> ApiError {
    let accept_language = headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok());
    ApiError::unknown_url(uri.path(), Tr::new(Locale::from_accept_language(accept_language.unwrap_or(""))))
}
