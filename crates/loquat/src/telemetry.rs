//! The process's Prometheus recorder: installed once (tests build several apps in one process),
//! with histogram buckets for Loquat's metrics, help texts, and a background upkeep that keeps
//! histograms from growing between scrapes. Every crate records through the `metrics` facade.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::StartError;

/// Buckets of every `*_seconds` histogram: from a fast page (5 ms) to a slow provider (2 min).
const SECONDS_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];
/// Buckets of store round trips: from a cached SQLite read (250 µs) to a stuck pool (5 s).
const STORE_BUCKETS: &[f64] = &[0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];
/// Buckets of generation speed (`loquat_generation_tokens_per_second`, recorded by core).
const TOKENS_PER_SECOND_BUCKETS: &[f64] = &[1.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0];
/// How often histograms are drained when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The renderer of the process-wide recorder, installing it on first use. When another
/// recorder was installed first (an embedding program), Loquat's stays empty and says so.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will not show Loquat's metrics");
        }
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the metrics upkeep; histograms are drained on scrape only");
        }
        handle
    })
}

/// The renderer as the web layer takes it.
pub fn renderer() -> Arc<dyn Fn() -> String + Send + Sync> {
    let handle = prometheus();
    Arc::new(move || handle.render())
}

/// Binds `LOQUAT_METRICS_LISTEN` and serves `/metrics` there, without a token, until the
/// returned task is aborted.
pub async fn serve_metrics(address: SocketAddr) -> Result<JoinHandle<()>, StartError> {
    let listener = TcpListener::bind(address).await.map_err(|source| StartError::Listen { address, source })?;
    let bound = listener.local_addr().map_err(StartError::Serve)?;
    tracing::info!("metrics on http://{bound}/metrics");
    let router = loquat_web::metrics::metrics_router(renderer());
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the metrics listener failed");
        }
    }))
}

fn builder() -> PrometheusBuilder {
    let builder = PrometheusBuilder::new();
    // Both calls only fail on empty bucket lists, which these constants are not.
    let with_seconds = builder.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS);
    let with_speed = with_seconds.and_then(|builder| {
        builder.set_buckets_for_metric(
            Matcher::Full("loquat_generation_tokens_per_second".into()),
            TOKENS_PER_SECOND_BUCKETS,
        )
    });
    let with_store = with_speed.and_then(|builder| {
        builder.set_buckets_for_metric(Matcher::Full(loquat_core::store::QUERY_DURATION_SECONDS.into()), STORE_BUCKETS)
    });
    with_store.unwrap_or_else(|_| PrometheusBuilder::new())
}

fn describe() {
    loquat_web::metrics::describe();
    loquat_core::generation::metrics::describe();
    crate::bus::describe();
    metrics::describe_gauge!("loquat_build_info", "Always 1; the `version` label is the running release.");
    metrics::gauge!("loquat_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installing_twice_shares_one_recorder() {
        let first = prometheus() as *const PrometheusHandle;
        let second = prometheus() as *const PrometheusHandle;
        assert_eq!(first, second);
        metrics::counter!("loquat_telemetry_test_total").increment(1);
        metrics::histogram!("loquat_telemetry_test_seconds").record(0.02);
        let text = renderer()();
        assert!(text.contains("loquat_telemetry_test_total 1"), "{text}");
        assert!(text.contains("loquat_telemetry_test_seconds_bucket{le=\"0.025\"} 1"), "{text}");
        assert!(text.contains("loquat_build_info{version="), "{text}");
    }
}
