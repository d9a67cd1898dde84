//! Loquat's built-in tools, read from LobeChat's environment variables: `web_search`
//! (`SEARCH_PROVIDERS` among `searxng`, `tavily`, `brave`, `exa`, tried in order) and
//! `read_page` (`CRAWLER_IMPLS`: `naive`, built in, and `jina`). Search APIs are the
//! administrator's and trusted; the pages a model asks to read go through the SSRF guard.

pub mod mcp;
mod mcp_sse;
mod openapi;
pub mod plugin;
mod reader;
mod search;

use std::sync::Arc;

use loquat_core::tools::Tool;
use loquat_providers::web::WebClient;

pub use reader::{ReadPage, Reader};
pub use search::{SearchProvider, WebSearch};

/// The tools the environment configures (none when nothing is configured).
pub fn from_env(env: &dyn Fn(&str) -> Option<String>, web: &WebClient) -> Vec<Arc<dyn Tool>> {
    let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
    let providers = search::providers_from_env(env);
    if !providers.is_empty() {
        tools.push(Arc::new(WebSearch::new(providers, web.clone())));
    }
    // Reading pages needs nothing configured (the built-in reader).
    tools.push(Arc::new(ReadPage::new(reader::readers_from_env(env), web.clone())));
    tools
}

/// `a, b，c` as `["a", "b", "c"]` (LobeChat's lists accept the Chinese comma too).
pub(crate) fn list(value: &str) -> Vec<String> {
    value.replace('，', ",").split(',').map(|item| item.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect()
}
