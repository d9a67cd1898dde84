//! What generation jobs record through the `metrics` facade (the binary exports it). The
//! provider label is the catalogue id, or `custom` for a user's own provider (whose model is
//! `custom` too), so the number of series stays bounded whatever users configure.

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use crate::domain::MessageStatus;
use crate::id::ProviderSettingId;
use crate::store::FinishedAnswer;

/// Answers generating on this node: the chat pages' jobs and `/v1` completions alike.
pub const RUNNING: &str = "loquat_generations_running";
/// Finished answers (jobs and `/v1` completions), by `provider`, `model` and `status` (`complete`, `stopped`, `error`,
/// `interrupted`).
pub const FINISHED_TOTAL: &str = "loquat_generations_total";
/// Failed jobs, by `provider` and error `kind` (`rate_limited`, `timeout`, `auth`, …).
pub const ERRORS_TOTAL: &str = "loquat_upstream_errors_total";
/// Time to the first token, by `provider`.
pub const TTFT_SECONDS: &str = "loquat_generation_ttft_seconds";
/// Whole answers' durations, by `provider`.
pub const DURATION_SECONDS: &str = "loquat_generation_duration_seconds";
/// Output speed after the first token, by `provider` (when the provider reports usage).
pub const TOKENS_PER_SECOND: &str = "loquat_generation_tokens_per_second";
/// Tokens the providers reported, by `provider` and `kind` (`prompt`, `completion`).
pub const TOKENS_TOTAL: &str = "loquat_generation_tokens_total";

/// Registers the help texts with the installed recorder.
pub fn describe() {
    describe_gauge!(RUNNING, "Answers generating on this node (chat jobs and /v1 completions).");
    describe_counter!(
        FINISHED_TOTAL,
        "Finished answers (chat jobs and /v1 completions), by provider, model and final status."
    );
    describe_counter!(ERRORS_TOTAL, "Failed answers, by provider and error kind.");
    describe_histogram!(TTFT_SECONDS, Unit::Seconds, "Time from the request to the first token, by provider.");
    describe_histogram!(DURATION_SECONDS, Unit::Seconds, "Duration of whole answers, by provider.");
    describe_histogram!(TOKENS_PER_SECOND, "Completion tokens per second after the first token, by provider.");
    describe_counter!(TOKENS_TOTAL, "Tokens reported by providers, by provider and kind.");
}

pub(crate) fn started() {
    gauge!(RUNNING).increment(1.0);
}

pub(crate) fn finished(answer: &FinishedAnswer) {
    gauge!(RUNNING).decrement(1.0);
    let provider = provider_label(answer.provider.as_deref().unwrap_or_default());
    let model = match provider.as_str() {
        "custom" => "custom".to_owned(),
        _ => answer.model.clone().unwrap_or_default(),
    };
    counter!(FINISHED_TOTAL, "provider" => provider.clone(), "model" => model, "status" => answer.status.as_str())
        .increment(1);
    if answer.status == MessageStatus::Error {
        let kind = answer.error_kind.clone().unwrap_or_else(|| "unknown".to_owned());
        counter!(ERRORS_TOTAL, "provider" => provider.clone(), "kind" => kind).increment(1);
    }
    let seconds = |ms: i64| ms.max(0) as f64 / 1000.0;
    if let Some(ttft) = answer.ttft_ms {
        histogram!(TTFT_SECONDS, "provider" => provider.clone()).record(seconds(ttft));
    }
    if let Some(duration) = answer.duration_ms {
        histogram!(DURATION_SECONDS, "provider" => provider.clone()).record(seconds(duration));
    }
    let Some(usage) = answer.usage else { return };
    counter!(TOKENS_TOTAL, "provider" => provider.clone(), "kind" => "prompt")
        .increment(u64::from(usage.prompt_tokens));
    counter!(TOKENS_TOTAL, "provider" => provider.clone(), "kind" => "completion")
        .increment(u64::from(usage.completion_tokens));
    if let (Some(ttft), Some(duration)) = (answer.ttft_ms, answer.duration_ms) {
        let streaming = seconds(duration - ttft);
        if streaming > 0.05 && usage.completion_tokens > 1 {
            histogram!(TOKENS_PER_SECOND, "provider" => provider)
                .record(f64::from(usage.completion_tokens) / streaming);
        }
    }
}

/// A user's own provider is `custom`; server providers keep their catalogue id.
fn provider_label(provider: &str) -> String {
    if provider.is_empty() {
        "none".to_owned()
    } else if provider.parse::<ProviderSettingId>().is_ok() {
        "custom".to_owned()
    } else {
        provider.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_providers_do_not_become_labels() {
        assert_eq!(provider_label("openai"), "openai");
        assert_eq!(provider_label(&ProviderSettingId::new().to_string()), "custom");
        assert_eq!(provider_label(""), "none");
    }
}
