//! Readiness for load balancers and orchestrators (`GET /readyz`): the store answers and Redis
//! answers when rate limits are shared through it. The schema needs no check of its own: the
//! process applies every migration before it listens, so a serving process has its schema.
//! Liveness (`GET /healthz`) is a plain "ok" in the route table.

use std::future::Future;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::AppState;

/// How long one check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// `200 {"status":"ready","checks":{…}}`, or `503` naming the checks that failed. Details of a
/// failure go to the log only (they may name hosts).
pub async fn readiness(State(state): State<AppState>) -> Response {
    let store = check("store", state.services.store().ping()).await;
    let redis = if state.limiter.backend() == "redis" {
        check("redis", state.limiter.ping()).await
    } else {
        Outcome::NotConfigured
    };
    let mut checks = Map::new();
    checks.insert("store".into(), store.label().into());
    checks.insert("redis".into(), redis.label().into());
    let failed: Vec<&str> = [("store", store), ("redis", redis)]
        .into_iter()
        .filter(|(_, outcome)| outcome.failed())
        .map(|(n, _)| n)
        .collect();
    if failed.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready", "checks": checks }))).into_response()
    } else {
        let body = json!({ "status": "not ready", "failed": failed, "checks": Value::Object(checks) });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Failed,
    TimedOut,
    NotConfigured,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timeout",
            Outcome::NotConfigured => "not configured",
        }
    }

    fn failed(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::TimedOut)
    }
}

async fn check<E: std::fmt::Display>(name: &'static str, probe: impl Future<Output = Result<(), E>>) -> Outcome {
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(error)) => {
            tracing::warn!(check = name, %error, "readiness check failed");
            Outcome::Failed
        }
        Err(_) => {
            tracing::warn!(check = name, timeout = ?CHECK_TIMEOUT, "readiness check timed out");
            Outcome::TimedOut
        }
    }
}
