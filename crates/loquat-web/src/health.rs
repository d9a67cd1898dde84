//! Readiness for load balancers and orchestrators (`GET /readyz`): the store answers and Redis
//! answers when rate limits are shared through it. The schema needs no check of its own: the
//! process applies every migration before it listens, so a serving process has its schema.
//! With scheduled backups, the last one's outcome is told too, without failing readiness (a
//! failed backup is the operator's alert, not a reason to stop serving).
//! Liveness (`GET /healthz`) is a plain "ok" in the route table.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
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
    let backup = state.backup.as_ref().map(|status| {
        let last = status.get();
        let label = match &last {
            None => "none yet",
            Some(last) if last.ok => "ok",
            Some(_) => "failed",
        };
        checks.insert("backup".into(), label.into());
        last.map_or(Value::Null, |last| {
            let time = |millis: i64| jiff::Timestamp::from_millisecond(millis).map(|t| t.to_string()).ok();
            json!({ "ok": last.ok, "at": time(last.at), "last_success_at": last.last_success_at.and_then(time), "bytes": last.bytes })
        })
    });
    let failed: Vec<&str> = [("store", store), ("redis", redis)]
        .into_iter()
        .filter(|(_, outcome)| outcome.failed())
        .map(|(n, _)| n)
        .collect();
    let (status, mut body) = if failed.is_empty() {
        (StatusCode::OK, json!({ "status": "ready", "checks": checks }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "not ready", "failed": failed, "checks": checks }))
    };
    if let Some(backup) = backup {
        body["backup"] = backup;
    }
    (status, Json(body)).into_response()
}

/// The outcome of the instance's last scheduled backup.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastBackup {
    /// When it ended (unix milliseconds).
    pub at: i64,
    pub ok: bool,
    /// When a backup last ended well.
    pub last_success_at: Option<i64>,
    /// The archive's size.
    pub bytes: u64,
}

/// The last backup as this node knows it: written by the schedule, read by `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct BackupStatus(Arc<RwLock<Option<LastBackup>>>);

impl BackupStatus {
    pub fn get(&self) -> Option<LastBackup> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, last: LastBackup) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(last);
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
