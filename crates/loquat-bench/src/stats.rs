//! Small statistics over measured durations.

use std::time::Duration;

/// Percentiles of a sample, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

pub fn summarize(samples: &mut [Duration]) -> Summary {
    assert!(!samples.is_empty(), "no samples");
    samples.sort_unstable();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1000.0
    };
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64 * 1000.0;
    Summary { p50_ms: at(0.5), p99_ms: at(0.99), mean_ms: mean }
}

pub fn json(summary: Summary) -> serde_json::Value {
    serde_json::json!({ "p50_ms": round(summary.p50_ms), "p99_ms": round(summary.p99_ms), "mean_ms": round(summary.mean_ms) })
}

pub fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
