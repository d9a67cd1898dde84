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
    /// A variable holding the key besides `<ENV>_API_KEY` (LobeChat's `GITHUB_TOKEN`).
    #[serde(default)]
    pub key_env: Option<String>,
    /// A variable switching the provider besides `ENABLED_<ENV>` (`ENABLED_AZURE_OPENAI`).
    #[serde(default)]
    pub enabled_env: Option<String>,
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
                .or_else(|| entry.key_env.as_deref().and_then(&read))
                .map(|keys| keys.split(',').map(str::trim).filter(|k| !k.is_empty()).map(Secret::new).collect())
                .unwrap_or_default();
            let proxy_variable = format!("{}_PROXY_URL", entry.env);
            let proxy_url = read(&proxy_variable).or_else(|| entry.base_url_env.as_deref().and_then(&read));
            let explicitly = read(&format!("ENABLED_{}", entry.env))
                .or_else(|| entry.enabled_env.as_deref().and_then(&read))
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

    const LOCAL_PROVIDERS: [&str; 4] = ["ollama", "vllm", "lmstudio", "xinference"];

    #[test]
    fn every_required_provider_is_in_the_catalogue() {
        const REQUIRED: &str = "openai anthropic google azure ollama deepseek qwen moonshot zhipu baichuan minimax \
            zeroone stepfun siliconcloud volcengine hunyuan wenxin spark groq openrouter mistral xai perplexity \
            togetherai fireworksai github novita vllm lmstudio xinference";
        let missing: Vec<_> =
            REQUIRED.split_whitespace().filter(|id| !catalogue().iter().any(|entry| entry.id == *id)).collect();
        assert!(missing.is_empty(), "missing providers: {missing:?}");
        let protocol = |id: &str| catalogue().iter().find(|entry| entry.id == id).map(|entry| entry.protocol);
        assert_eq!(protocol("openai"), Some(Protocol::OpenAi));
        assert_eq!(protocol("anthropic"), Some(Protocol::Anthropic));
        assert_eq!(protocol("google"), Some(Protocol::Gemini));
        assert_eq!(protocol("azure"), Some(Protocol::Azure));
        assert_eq!(protocol("ollama"), Some(Protocol::Ollama));
    }

    #[test]
    fn catalogue_entries_are_well_formed() {
        let mut ids = std::collections::HashSet::new();
        let mut envs = std::collections::HashSet::new();
        for entry in catalogue() {
            let id = entry.id.as_str();
            assert!(!id.is_empty() && ids.insert(id), "{id}: empty or duplicate id");
            assert!(!entry.name.trim().is_empty(), "{id}: no name");
            assert_eq!(Protocol::parse(entry.protocol.as_str()), Some(entry.protocol), "{id}");
            assert!(
                !entry.env.is_empty()
                    && entry.env.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{id}: env prefix {:?} is not an upper-case variable name",
                entry.env
            );
            assert!(envs.insert(entry.env.as_str()), "{id}: env prefix {} is shared", entry.env);
            assert!(entry.docs.starts_with("https://"), "{id}: docs should name the page relied on");
            assert!(!entry.base_url.ends_with('/'), "{id}: base URL ends with a slash");
            if LOCAL_PROVIDERS.contains(&id) {
                assert!(!entry.key_required, "{id}: a local server needs no key");
                assert!(entry.fetch_models, "{id}: a local server lists its own models");
                assert!(entry.base_url.starts_with("http://127.0.0.1:"), "{id}: {}", entry.base_url);
                assert!(entry.models.is_empty(), "{id}: a local server has no built-in models");
            } else if id == "azure" {
                assert!(entry.base_url.is_empty(), "azure: the endpoint is the user's");
                assert_eq!(entry.base_url_env.as_deref(), Some("AZURE_ENDPOINT"));
                assert!(entry.key_required);
            } else {
                assert!(entry.base_url.starts_with("https://") && entry.base_url.len() > 8, "{id}: {}", entry.base_url);
                assert!(entry.key_required, "{id}: a hosted provider needs a key");
                assert!(!entry.models.is_empty(), "{id}: a hosted provider should have built-in models");
            }
        }
    }

    #[test]
    fn catalogue_json_uses_known_protocols_and_field_names() {
        // serde ignores unknown keys, so a misspelt field would silently vanish: check the raw JSON.
        const PROVIDER_KEYS: &str = "id name protocol env base_url base_url_env key_env enabled_env key_required enabled_by_default fetch_models \
             docs note models";
        const MODEL_KEYS: &str = "id deployment display_name context_tokens function_calling vision reasoning search \
            files max_output_tokens unsupported_params price_input price_output";
        let known = |keys: &str, key: &str| keys.split_whitespace().any(|known| known == key);
        let raw: serde_json::Value = serde_json::from_str(include_str!("catalogue.json")).expect("valid JSON");
        let providers = raw["providers"].as_array().expect("a providers array");
        assert_eq!(providers.len(), catalogue().len());
        for provider in providers {
            let object = provider.as_object().expect("a provider object");
            let id = provider["id"].as_str().unwrap_or("?");
            for key in object.keys() {
                assert!(known(PROVIDER_KEYS, key), "{id}: unknown provider field {key:?}");
            }
            let protocol = provider["protocol"].as_str().expect("protocol is a string");
            assert!(Protocol::parse(protocol).is_some(), "{id}: unknown protocol {protocol:?}");
            for model in provider["models"].as_array().expect("a models array") {
                let model_id = model["id"].as_str().expect("model id is a string");
                for key in model.as_object().expect("a model object").keys() {
                    assert!(known(MODEL_KEYS, key), "{id}/{model_id}: unknown model field {key:?}");
                }
            }
        }
    }

    #[test]
    fn model_bank_entries_are_consistent() {
        const PARAMS: [&str; 5] = ["temperature", "top_p", "presence_penalty", "frequency_penalty", "max_tokens"];
        for entry in catalogue() {
            let mut ids = std::collections::HashSet::new();
            for model in &entry.models {
                let name = format!("{}/{}", entry.id, model.id);
                assert!(!model.id.trim().is_empty() && model.id.trim() == model.id, "{name}: bad model id");
                assert!(ids.insert(model.id.as_str()), "{name}: duplicate model id");
                assert!(model.display_name.as_deref().is_some_and(|n| !n.trim().is_empty()), "{name}: no display name");
                assert!(model.context_tokens.is_none_or(|t| t > 0), "{name}: context_tokens is zero");
                assert!(model.max_output_tokens.is_none_or(|t| t > 0), "{name}: max_output_tokens is zero");
                if let (Some(context), Some(output)) = (model.context_tokens, model.max_output_tokens) {
                    assert!(output <= context, "{name}: max output {output} exceeds context {context}");
                }
                for price in [model.price_input, model.price_output].into_iter().flatten() {
                    assert!(price.is_finite() && price >= 0.0, "{name}: bad price {price}");
                }
                assert_eq!(model.price_input.is_some(), model.price_output.is_some(), "{name}: half a price");
                let mut seen = std::collections::HashSet::new();
                for param in &model.unsupported_params {
                    assert!(PARAMS.contains(&param.as_str()), "{name}: unknown parameter {param:?}");
                    assert!(seen.insert(param.as_str()), "{name}: {param} listed twice");
                }
            }
        }
    }

    #[test]
    fn only_openai_and_ollama_are_on_by_default() {
        let defaults: Vec<_> =
            catalogue().iter().filter(|entry| entry.enabled_by_default).map(|entry| entry.id.as_str()).collect();
        assert_eq!(defaults, ["openai", "ollama"]);
    }

    #[test]
    fn sampling_restrictions_follow_the_providers() {
        let provider = |id: &str| catalogue().iter().find(|entry| entry.id == id).expect("in the catalogue");
        for model in &provider("anthropic").models {
            for param in ["presence_penalty", "frequency_penalty"] {
                assert!(!model.supports_param(param), "anthropic/{} should reject {param}", model.id);
            }
        }
        for model in provider("openai").models.iter().filter(|model| model.reasoning) {
            for param in ["temperature", "top_p", "presence_penalty", "frequency_penalty"] {
                assert!(!model.supports_param(param), "openai/{} should reject {param}", model.id);
            }
        }
        for entry in catalogue() {
            for model in &entry.models {
                let name = format!("{}/{}", entry.id, model.id);
                assert!(model.supports_param("max_tokens"), "{name}: the adapters translate max_tokens");
            }
        }
        for model in provider("deepseek").models.iter().filter(|model| model.reasoning) {
            assert!(!model.supports_param("temperature"), "deepseek/{} ignores temperature", model.id);
        }
    }
}
