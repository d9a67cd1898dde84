//! `web_search`: a query sent to the configured search APIs in order (the first that answers
//! wins), the results given to the model as a numbered list of title, address and snippet.

use async_trait::async_trait;
use loquat_core::domain::Source;
use loquat_core::llm::ToolSpec;
use loquat_core::tools::{Tool, ToolFailure, ToolOutput};
use loquat_providers::web::{Origin, WebClient};
use serde_json::{Value, json};

/// The most results given to the model.
const MAX_RESULTS: usize = 10;
/// The largest search API answer read.
const MAX_BYTES: usize = 2 << 20;

/// One search API with its address and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchProvider {
    Searxng { url: String },
    Tavily { key: String },
    Brave { key: String },
    Exa { key: String },
}

impl SearchProvider {
    fn name(&self) -> &'static str {
        match self {
            SearchProvider::Searxng { .. } => "searxng",
            SearchProvider::Tavily { .. } => "tavily",
            SearchProvider::Brave { .. } => "brave",
            SearchProvider::Exa { .. } => "exa",
        }
    }
}

/// The providers `SEARCH_PROVIDERS` names that have what they need (`SEARXNG_URL`, a key);
/// without `SEARCH_PROVIDERS`, SearXNG when `SEARXNG_URL` is set.
pub(crate) fn providers_from_env(env: &dyn Fn(&str) -> Option<String>) -> Vec<SearchProvider> {
    let value = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let names = match value("SEARCH_PROVIDERS") {
        Some(names) => crate::list(&names),
        None if value("SEARXNG_URL").is_some() => vec!["searxng".to_owned()],
        None => Vec::new(),
    };
    names
        .iter()
        .filter_map(|name| match name.as_str() {
            "searxng" => value("SEARXNG_URL").map(|url| SearchProvider::Searxng { url }),
            "tavily" => value("TAVILY_API_KEY").map(|key| SearchProvider::Tavily { key }),
            "brave" => value("BRAVE_API_KEY").map(|key| SearchProvider::Brave { key }),
            "exa" => value("EXA_API_KEY").map(|key| SearchProvider::Exa { key }),
            _ => None,
        })
        .collect()
}

/// One result as the model reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    title: String,
    url: String,
    snippet: String,
}

pub struct WebSearch {
    spec: ToolSpec,
    providers: Vec<SearchProvider>,
    web: WebClient,
}

impl WebSearch {
    pub fn new(providers: Vec<SearchProvider>, web: WebClient) -> Self {
        let spec = ToolSpec {
            name: "web_search".to_owned(),
            description: "Search the web. Returns a numbered list of results (title, address, snippet). Use it for \
                          recent events or facts you are not sure of; read a result in full with read_page."
                .to_owned(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "query": { "type": "string", "description": "What to search for, as keywords or a question." }
                },
                "required": ["query"]
            }),
        };
        Self { spec, providers, web }
    }

    async fn search(&self, provider: &SearchProvider, query: &str) -> Result<Vec<Found>, String> {
        let response = match provider {
            SearchProvider::Searxng { url } => {
                let mut address = url::Url::parse(url).map_err(|error| format!("SEARXNG_URL is not an address: {error}"))?;
                address.path_segments_mut().map_err(|()| "SEARXNG_URL cannot take a path")?.pop_if_empty().push("search");
                address.query_pairs_mut().append_pair("q", query).append_pair("format", "json");
                self.web.get(Origin::Administrator, address.as_str(), &[("accept", "application/json")], MAX_BYTES).await
            }
            SearchProvider::Tavily { key } => {
                let body = json!({ "query": query, "max_results": MAX_RESULTS });
                let auth = format!("Bearer {key}");
                let url = "https://api.tavily.com/search";
                self.web.post_json(Origin::Administrator, url, &[("authorization", &auth)], &body, MAX_BYTES).await
            }
            SearchProvider::Brave { key } => {
                let mut address = url::Url::parse("https://api.search.brave.com/res/v1/web/search").expect("valid");
                address.query_pairs_mut().append_pair("q", query).append_pair("count", &MAX_RESULTS.to_string());
                let headers = [("accept", "application/json"), ("x-subscription-token", key.as_str())];
                self.web.get(Origin::Administrator, address.as_str(), &headers, MAX_BYTES).await
            }
            SearchProvider::Exa { key } => {
                let body = json!({ "query": query, "numResults": MAX_RESULTS, "contents": { "text": { "maxCharacters": 500 } } });
                let url = "https://api.exa.ai/search";
                self.web.post_json(Origin::Administrator, url, &[("x-api-key", key)], &body, MAX_BYTES).await
            }
        }
        .map_err(|error| error.0)?;
        if !(200..300).contains(&response.status) {
            return Err(format!("it answered with HTTP {}", response.status));
        }
        let body: Value = serde_json::from_slice(&response.body).map_err(|_| "its answer is not JSON".to_owned())?;
        Ok(parse(provider, &body))
    }
}

/// The results of a provider's answer.
fn parse(provider: &SearchProvider, body: &Value) -> Vec<Found> {
    let (list, snippet) = match provider {
        SearchProvider::Searxng { .. } => (&body["results"], "content"),
        SearchProvider::Tavily { .. } => (&body["results"], "content"),
        SearchProvider::Brave { .. } => (&body["web"]["results"], "description"),
        SearchProvider::Exa { .. } => (&body["results"], "text"),
    };
    let text = |item: &Value, key: &str| item[key].as_str().unwrap_or_default().trim().to_owned();
    list.as_array()
        .into_iter()
        .flatten()
        .map(|item| Found { title: text(item, "title"), url: text(item, "url"), snippet: text(item, snippet) })
        .filter(|found| found.url.starts_with("http://") || found.url.starts_with("https://"))
        .take(MAX_RESULTS)
        .collect()
}

/// The results as sources of the answer (numbered when the answer takes them).
fn as_sources(results: Vec<Found>) -> Vec<Source> {
    results
        .into_iter()
        .map(|found| Source {
            number: 0,
            file_id: None,
            file_name: if found.title.is_empty() { found.url.clone() } else { found.title.chars().take(300).collect() },
            page: None,
            page_end: None,
            headings: String::new(),
            text: found.snippet.chars().take(500).collect(),
            url: Some(found.url),
        })
        .collect()
}

#[async_trait]
impl Tool for WebSearch {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value) -> Result<ToolOutput, ToolFailure> {
        let query = arguments["query"].as_str().unwrap_or_default().trim();
        if query.is_empty() {
            return Err(ToolFailure("the query is empty".to_owned()));
        }
        let query: String = query.chars().take(400).collect();
        let mut failures = Vec::new();
        for provider in &self.providers {
            match self.search(provider, &query).await {
                Ok(results) if results.is_empty() => return Ok(format!("No results for \"{query}\".").into()),
                Ok(results) => {
                    let text = format!("Results for \"{query}\".");
                    return Ok(ToolOutput { text, sources: as_sources(results) });
                }
                Err(reason) => failures.push(format!("{}: {reason}", provider.name())),
            }
        }
        Err(ToolFailure(format!("the search failed ({})", failures.join("; "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_come_from_lobechats_variables() {
        let env = |name: &str| match name {
            "SEARCH_PROVIDERS" => Some("brave， searxng,tavily,unknown".to_owned()),
            "SEARXNG_URL" => Some("http://searx.internal:8080".to_owned()),
            "BRAVE_API_KEY" => Some("b".to_owned()),
            _ => None,
        };
        let expected = [
            SearchProvider::Brave { key: "b".into() },
            SearchProvider::Searxng { url: "http://searx.internal:8080".into() },
        ];
        assert_eq!(providers_from_env(&env), expected, "tavily has no key, unknown is dropped");
        let only_url = |name: &str| (name == "SEARXNG_URL").then(|| "http://s".to_owned());
        assert_eq!(providers_from_env(&only_url), [SearchProvider::Searxng { url: "http://s".into() }]);
        assert!(providers_from_env(&|_| None).is_empty());
    }

    #[test]
    fn each_provider_answer_becomes_numbered_results() {
        let searxng = json!({"results": [
            {"title": "Loquat", "url": "https://loquat.example/", "content": "A fruit."},
            {"title": "Bad", "url": "javascript:alert(1)", "content": "dropped"}
        ]});
        let brave = json!({"web": {"results": [{"title": "B", "url": "https://b.example/", "description": "Brave."}]}});
        let found = as_sources(parse(&SearchProvider::Searxng { url: String::new() }, &searxng));
        assert_eq!(found.len(), 1, "only web addresses");
        assert_eq!(
            (found[0].file_name.as_str(), found[0].url.as_deref(), found[0].text.as_str()),
            ("Loquat", Some("https://loquat.example/"), "A fruit.")
        );
        let found = parse(&SearchProvider::Brave { key: String::new() }, &brave);
        assert_eq!(found[0].snippet, "Brave.");
        assert!(parse(&SearchProvider::Exa { key: String::new() }, &json!({"oops": 1})).is_empty());
    }
}
