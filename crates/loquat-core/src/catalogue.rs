//! Providers configured by the server's environment, LobeChat-style: the built-in catalogue
//! (`catalogue.json`, compiled in) plus `<P>_API_KEY`, `<P>_PROXY_URL`, `<P>_MODEL_LIST` and
//! `ENABLED_<P>` for each catalogue entry `P`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;

use crate::domain::{ModelCard, Protocol};
use crate::model_list::{ModelListError, apply_model_list, parse_model_list};
use crate::secret::Secret;

/// A provider Loquat knows out of the box.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogueEntry {
    pub id: String,
    pub name: String,
    pub protocol: Protocol,
    /// The prefix of its environment variables, e.g. `OPENAI`.
    pub env: String,
    /// The default base URL (empty when the user must name one, as for Azure).
    pub base_url: String,
    /// A variable naming the base URL besides `<ENV>_PROXY_URL` (`AZURE_ENDPOINT`).
    #[serde(default)]
    pub base_url_env: Option<String>,
    /// Whether the provider is useless without a key (a local vLLM is not).
    pub key_required: bool,
    /// Shown without any configuration (LobeChat enables OpenAI and Ollama by default).
    #[serde(default)]
    pub enabled_by_default: bool,
    /// Ask the provider for its models when none are listed (local servers: Ollama, vLLM…).
    #[serde(default)]
    pub fetch_models: bool,
    /// The documentation the base URL and protocol were checked against.
    #[serde(default)]
    pub docs: String,
    /// Anything uncertain about this entry.
    #[serde(default)]
    pub note: String,
    pub models: Vec<ModelCard>,
}

#[derive(Deserialize)]
struct CatalogueFile {
    providers: Vec<CatalogueEntry>,
}

/// The built-in catalogue.
pub fn catalogue() -> &'static [CatalogueEntry] {
    static CATALOGUE: OnceLock<Vec<CatalogueEntry>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        serde_json::from_str::<CatalogueFile>(include_str!("catalogue.json"))
            .expect("catalogue.json is checked by a unit test")
            .providers
    })
}

/// How a provider with several keys picks one per request (`API_KEY_SELECT_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeySelectMode {
    #[default]
    Random,
    /// Round robin.
    Turn,
}

/// A provider enabled by the server's environment.
#[derive(Debug)]
pub struct ServerProvider {
    pub id: String,
    pub name: String,
    pub protocol: Protocol,
    pub base_url: String,
    pub models: Vec<ModelCard>,
    /// Azure's `api-version`.
    pub api_version: Option<String>,
    /// Without a key (the server's or the user's own) the provider is not offered.
    pub key_required: bool,
    /// Models are asked from the provider when none are listed.
    pub fetch_models: bool,
    keys: Vec<Secret>,
    next_key: AtomicUsize,
}

impl ServerProvider {
    pub fn new(
        id: &str,
        name: &str,
        protocol: Protocol,
        base_url: &str,
        keys: Vec<Secret>,
        models: Vec<ModelCard>,
    ) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            protocol,
            base_url: base_url.trim_end_matches('/').to_owned(),
            models,
            api_version: None,
            key_required: true,
            fetch_models: false,
            keys,
            next_key: AtomicUsize::new(0),
        }
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The key for the next request.
    pub fn pick_key(&self, mode: KeySelectMode) -> Option<Secret> {
        self.keys_for_request(mode).into_iter().next()
    }

    /// Every key, starting with the one chosen for this request (random or round robin) and
    /// continuing in order: the rest are tried when the chosen one is refused or rate limited.
    pub fn keys_for_request(&self, mode: KeySelectMode) -> Vec<Secret> {
        if self.keys.is_empty() {
            return Vec::new();
        }
        let first = match mode {
            KeySelectMode::Turn => self.next_key.fetch_add(1, Ordering::Relaxed) % self.keys.len(),
            KeySelectMode::Random => rand::random_range(0..self.keys.len()),
        };
        self.keys.iter().cycle().skip(first).take(self.keys.len()).cloned().collect()
    }
}

/// All providers the environment enables, in catalogue order.
#[derive(Debug, Default)]
pub struct ServerProviders {
    pub providers: Vec<ServerProvider>,
    pub key_mode: KeySelectMode,
}

/// A provider environment variable that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum EnvProviderError {
    #[error("{variable}: {source}")]
    ModelList { variable: String, source: ModelListError },
    #[error("API_KEY_SELECT_MODE must be `random` or `turn`, not {0:?}")]
    KeyMode(String),
    #[error("{provider} is enabled but has no base URL: set {variable}")]
    MissingBaseUrl { provider: String, variable: String },
}

impl ServerProviders {
    /// Reads the provider variables through `lookup` (the process environment in production).
    ///
    /// A provider is enabled when `ENABLED_<P>` says so, or, when that is unset, when it has a
    /// key or a base URL, or is on by default (OpenAI and Ollama, as in LobeChat). Enabled is
    /// not yet offered: a provider that needs a key is offered only to users who have one (the
    /// server's or their own), and a provider without models only once it lists some.
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvProviderError> {
        let read = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let key_mode = match read("API_KEY_SELECT_MODE").as_deref() {
            None | Some("random") => KeySelectMode::Random,
            Some("turn") => KeySelectMode::Turn,
            Some(other) => return Err(EnvProviderError::KeyMode(other.to_owned())),
        };
        let mut providers = Vec::new();
        for entry in catalogue() {
            let keys: Vec<Secret> = read(&format!("{}_API_KEY", entry.env))
                .map(|keys| keys.split(',').map(str::trim).filter(|k| !k.is_empty()).map(Secret::new).collect())
                .unwrap_or_default();
            let proxy_variable = format!("{}_PROXY_URL", entry.env);
            let proxy_url = read(&proxy_variable).or_else(|| entry.base_url_env.as_deref().and_then(&read));
            let explicitly = read(&format!("ENABLED_{}", entry.env))
                .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "on" | "yes"));
            let enabled = explicitly.unwrap_or(!keys.is_empty() || proxy_url.is_some() || entry.enabled_by_default);
            if !enabled {
                continue;
            }
            let base_url = proxy_url.unwrap_or_else(|| entry.base_url.clone());
            if base_url.is_empty() {
                let variable = entry.base_url_env.clone().unwrap_or(proxy_variable);
                return Err(EnvProviderError::MissingBaseUrl { provider: entry.name.clone(), variable });
            }
            let list_variable = format!("{}_MODEL_LIST", entry.env);
            let models = match read(&list_variable) {
                Some(list) => {
                    let items = parse_model_list(&list)
                        .map_err(|source| EnvProviderError::ModelList { variable: list_variable, source })?;
                    apply_model_list(&entry.models, &items)
                }
                None => entry.models.clone(),
            };
            let mut provider = ServerProvider::new(&entry.id, &entry.name, entry.protocol, &base_url, keys, models);
            provider.api_version = read(&format!("{}_API_VERSION", entry.env));
            provider.key_required = entry.key_required;
            provider.fetch_models = entry.fetch_models;
            providers.push(provider);
        }
        Ok(Self { providers, key_mode })
    }

    pub fn get(&self, id: &str) -> Option<&ServerProvider> {
        self.providers.iter().find(|provider| provider.id == id)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> ServerProviders {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ServerProviders::from_env(&|name| map.get(name).cloned()).expect("valid environment")
    }

    #[test]
    fn catalogue_parses_and_ids_are_unique() {
        let entries = catalogue();
        assert!(entries.iter().any(|e| e.id == "openai"));
        let mut ids: Vec<_> = entries.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), entries.len());
    }

    #[test]
    fn only_default_providers_are_enabled_without_configuration() {
        let providers = from(&[]);
        let ids: Vec<_> = providers.providers.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["openai", "ollama"]);
        assert_eq!(providers.get("openai").expect("enabled").key_count(), 0);
        let none = from(&[("ENABLED_OPENAI", "0"), ("ENABLED_OLLAMA", "false")]);
        assert!(none.providers.is_empty());
    }

    #[test]
    fn azure_needs_an_endpoint_and_reads_its_api_version() {
        let error = ServerProviders::from_env(&|name| (name == "AZURE_API_KEY").then(|| "k".to_owned()))
            .expect_err("no endpoint");
        assert!(error.to_string().contains("AZURE_ENDPOINT"));
        let providers = from(&[
            ("AZURE_API_KEY", "k"),
            ("AZURE_ENDPOINT", "https://me.openai.azure.com/"),
            ("AZURE_API_VERSION", "2024-10-21"),
            ("AZURE_MODEL_LIST", "gpt-4o->prod-4o"),
        ]);
        let azure = providers.get("azure").expect("enabled");
        assert_eq!(azure.base_url, "https://me.openai.azure.com");
        assert_eq!(azure.api_version.as_deref(), Some("2024-10-21"));
        let model = azure.models.iter().find(|m| m.id == "gpt-4o").expect("listed");
        assert_eq!(model.upstream_name(), "prod-4o");
    }

    #[test]
    fn keys_proxy_and_model_list_configure_a_provider() {
        let providers = from(&[
            ("OPENAI_API_KEY", "sk-a, sk-b"),
            ("OPENAI_PROXY_URL", "http://127.0.0.1:9/v1/"),
            ("OPENAI_MODEL_LIST", "-all,my-agent=My Agent"),
            ("API_KEY_SELECT_MODE", "turn"),
            ("VLLM_PROXY_URL", "http://gpu:8000/v1"),
            ("VLLM_MODEL_LIST", "qwen2.5"),
            ("ENABLED_DEEPSEEK", "0"),
            ("DEEPSEEK_API_KEY", "sk-d"),
        ]);
        let ids: Vec<_> = providers.providers.iter().map(|p| p.id.as_str()).collect();
        assert!(ids.contains(&"openai") && ids.contains(&"vllm") && !ids.contains(&"deepseek"), "{ids:?}");
        let openai = providers.get("openai").expect("enabled");
        assert_eq!(openai.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(openai.models.len(), 1);
        assert_eq!(openai.models[0].label(), "My Agent");
        let first = openai.pick_key(KeySelectMode::Turn).expect("has keys");
        let second = openai.pick_key(KeySelectMode::Turn).expect("has keys");
        assert_ne!(first.expose(), second.expose());
        assert_eq!(providers.get("vllm").expect("enabled").pick_key(KeySelectMode::Turn), None);
    }

    #[test]
    fn a_bad_model_list_names_its_variable() {
        let error = ServerProviders::from_env(&|name| match name {
            "OPENAI_API_KEY" => Some("sk".into()),
            "OPENAI_MODEL_LIST" => Some("gpt<oops>".into()),
            _ => None,
        })
        .expect_err("invalid list");
        assert!(error.to_string().starts_with("OPENAI_MODEL_LIST"));
    }
}
