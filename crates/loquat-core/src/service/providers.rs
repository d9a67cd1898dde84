//! Which providers and models a user can use, and how a choice becomes an endpoint: the
//! server's providers (with the user's own key when they set one and the instance allows it),
//! then the providers the user added. Local servers' model lists are fetched and cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::admin::model_allowed;
use super::{Audit, Instance};
use crate::catalogue::{ServerProvider, ServerProviders};
use crate::crypto::KeyVault;
use crate::domain::{ModelCard, ProviderOverride, ProviderSetting, User};
use crate::error::{CoreError, CoreResult};
use crate::id::UserId;
use crate::llm::{ChatClient, Endpoint};
use crate::model_list::{apply_model_list, parse_model_list};
use crate::store::Store;

/// A provider as offered in the model picker.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderOption {
    /// A catalogue id (`openai`) or a custom provider's id.
    pub id: String,
    pub name: String,
    pub models: Vec<ModelCard>,
    /// Added by the user on the settings page (as opposed to the server's environment).
    pub custom: bool,
}

impl ProviderOption {
    /// The model `id` as this provider offers it to the user: one of its listed models (the
    /// administrator's allow-list already applied), or on the user's own provider any name
    /// (custom servers often serve models nobody listed). The one check behind the chat pages
    /// and the API.
    pub fn offered_model(&self, id: &str) -> Option<ModelCard> {
        match self.models.iter().find(|card| card.id == id) {
            Some(card) => Some(card.clone()),
            None => self.custom.then(|| ModelCard::plain(id)),
        }
    }
}

/// A provider and model ready for a request.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub provider_id: String,
    pub model: ModelCard,
    pub endpoint: Endpoint,
}

/// How long a fetched model list is trusted, and how long a failed fetch is remembered.
const MODELS_FRESH: Duration = Duration::from_secs(60);
const FAILURE_REMEMBERED: Duration = Duration::from_secs(15);
/// A local server that does not answer this fast is treated as down for the page being built.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// When a list was fetched, how long it is trusted, and the list.
struct Fetched {
    at: Instant,
    keep: Duration,
    models: Arc<Vec<ModelCard>>,
}

/// Model lists fetched from providers that do not list theirs (Ollama, vLLM…), per base URL.
#[derive(Default)]
pub(crate) struct ModelCache {
    entries: Mutex<HashMap<String, Fetched>>,
}

impl ModelCache {
    async fn models(&self, client: &dyn ChatClient, endpoint: &Endpoint) -> Arc<Vec<ModelCard>> {
        let key = format!("{}|{}", endpoint.protocol.as_str(), endpoint.base_url);
        if let Some(models) = self.fresh(&key) {
            return models;
        }
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, fetch(client, endpoint)).await;
        let (models, keep) = match fetched {
            Ok(Ok(models)) => (models, MODELS_FRESH),
            Ok(Err(error)) => {
                tracing::info!(base_url = %endpoint.base_url, %error, "could not list the provider's models");
                (Vec::new(), FAILURE_REMEMBERED)
            }
            Err(_) => (Vec::new(), FAILURE_REMEMBERED),
        };
        let models = Arc::new(models);
        self.lock().insert(key, Fetched { at: Instant::now(), keep, models: models.clone() });
        models
    }

    fn fresh(&self, key: &str) -> Option<Arc<Vec<ModelCard>>> {
        let entries = self.lock();
        let fetched = entries.get(key)?;
        (fetched.at.elapsed() < fetched.keep).then(|| fetched.models.clone())
    }

    /// Forgets every fetched list (after a model was pulled, say).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Fetched>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Lists the provider's models and asks for each one's details (Ollama's context length).
async fn fetch(client: &dyn ChatClient, endpoint: &Endpoint) -> Result<Vec<ModelCard>, crate::llm::ProviderError> {
    let ids = client.list_models(endpoint).await?;
    let mut models = Vec::with_capacity(ids.len());
    for id in ids {
        let mut card = ModelCard::plain(id);
        if let Ok(details) = client.model_details(endpoint, &card.id).await {
            card.context_tokens = details.context_tokens;
        }
        models.push(card);
    }
    Ok(models)
}

/// Which providers and models users can reach, and the endpoints and keys to reach them with;
/// also the settings page's providers (`provider_settings.rs`). Cheap to clone.
#[derive(Clone)]
pub struct Providers {
    pub(super) store: Arc<dyn Store>,
    pub(super) chat_client: Arc<dyn ChatClient>,
    pub(super) vault: Arc<KeyVault>,
    pub(super) server_providers: Arc<ServerProviders>,
    pub(super) model_cache: Arc<ModelCache>,
    pub(super) own_cache: Arc<OwnCache>,
    pub(super) instance: Instance,
    pub(super) audit: Audit,
}

/// What one user can reach, read once per request: their role, the role's model allow-list,
/// their own keys for the server's providers and their own providers. Everything after it
/// (the model picker, a model's endpoint and keys) is computed without asking the store again.
#[derive(Clone)]
pub(crate) struct Reach {
    admin: bool,
    allowed: Vec<String>,
    /// Whether the instance allows users' own keys (else their overrides do not count).
    keys_allowed: bool,
    own: Arc<Own>,
}

impl Reach {
    /// Whether the role's model allow-list lets the user use `provider::model`.
    pub(crate) fn allows(&self, provider: &str, model: &str) -> bool {
        super::admin::model_allowed(&self.allowed, provider, model)
    }
}

/// A user's own keys and URLs for the server's providers, and their own providers.
#[derive(Debug, Default)]
pub(crate) struct Own {
    overrides: Vec<ProviderOverride>,
    settings: Vec<ProviderSetting>,
}

/// Users' [`Own`] settings, each kept for [`FRESH_FOR`](super::instance::FRESH_FOR) like the
/// instance's snapshot (every API request needs them; they change rarely). A change made
/// through this process is seen at once; another replica's within that time.
#[derive(Default)]
pub(crate) struct OwnCache {
    entries: Mutex<HashMap<UserId, (Instant, Arc<Own>)>>,
}

/// Entries kept at most; past it the cache starts again (every entry is two small reads).
const OWN_CACHE_USERS: usize = 10_000;

impl OwnCache {
    fn fresh(&self, user: UserId) -> Option<Arc<Own>> {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (at, own) = entries.get(&user)?;
        (at.elapsed() < super::instance::FRESH_FOR).then(|| Arc::clone(own))
    }

    fn keep(&self, user: UserId, own: Arc<Own>) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= OWN_CACHE_USERS {
            entries.clear();
        }
        entries.insert(user, (Instant::now(), own));
    }

    /// After a change of the user's own settings.
    pub(crate) fn forget(&self, user: UserId) {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&user);
    }
}

/// What a user can reach and the providers and models offered from it: read once per action,
/// then every model and endpoint of that action is resolved from it.
pub(crate) struct Choices {
    pub(crate) reach: Reach,
    pub(crate) options: Vec<ProviderOption>,
}

impl Reach {
    /// The user's own keys and URLs for the server's providers (none while the instance does
    /// not allow them).
    pub(crate) fn overrides(&self) -> &[ProviderOverride] {
        if self.keys_allowed { &self.own.overrides } else { &[] }
    }
}

impl Providers {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        chat_client: Arc<dyn ChatClient>,
        vault: Arc<KeyVault>,
        server_providers: Arc<ServerProviders>,
        instance: Instance,
        audit: Audit,
    ) -> Self {
        let (model_cache, own_cache) = (Arc::default(), Arc::default());
        Self { store, chat_client, vault, server_providers, model_cache, own_cache, instance, audit }
    }

    /// What `user` can reach: two store reads side by side (the rest is the cached instance
    /// snapshot).
    pub(crate) async fn reach(&self, user: &User) -> CoreResult<Reach> {
        let (snapshot, own) = tokio::join!(self.instance.snapshot(), self.own(user.id));
        let snapshot = snapshot?;
        Ok(Reach {
            admin: user.role == crate::domain::Role::Admin,
            allowed: snapshot.models_for(user).to_vec(),
            keys_allowed: self.instance.user_keys_allowed_in(&snapshot),
            own: own?,
        })
    }

    /// The user's own settings: kept briefly, else two reads side by side.
    async fn own(&self, user: UserId) -> CoreResult<Arc<Own>> {
        if let Some(own) = self.own_cache.fresh(user) {
            return Ok(own);
        }
        let (overrides, settings) =
            tokio::join!(self.store.list_provider_overrides(user), self.store.list_providers(user));
        let own = Arc::new(Own { overrides: overrides?, settings: settings? });
        self.own_cache.keep(user, Arc::clone(&own));
        Ok(own)
    }

    /// What `user` can reach and the picker built from it, for one action.
    pub(crate) async fn choices(&self, user: &User) -> CoreResult<Choices> {
        let reach = self.reach(user).await?;
        let options = self.options(&reach).await?;
        Ok(Choices { reach, options })
    }

    /// Providers `user` can chat with now (see [`Providers::options`]).
    pub async fn provider_options(&self, user: UserId) -> CoreResult<Vec<ProviderOption>> {
        let person = super::existing_user(self.store.as_ref(), user).await?;
        let reach = self.reach(&person).await?;
        self.options(&reach).await
    }

    /// The server's providers that have a key for this user (or need none) and some models,
    /// then the user's own enabled providers.
    pub(crate) async fn options(&self, reach: &Reach) -> CoreResult<Vec<ProviderOption>> {
        let mut options = Vec::new();
        for server in &self.server_providers.providers {
            let user_override = reach.overrides().iter().find(|o| o.provider_id == server.id);
            let has_key = server.key_count() > 0 || user_override.is_some_and(|o| o.api_key_encrypted.is_some());
            if server.key_required && !has_key {
                continue;
            }
            let mut models = self.server_models(server, user_override, reach.admin).await?;
            models.retain(|model| model_allowed(&reach.allowed, &server.id, &model.id));
            if models.is_empty() {
                continue;
            }
            options.push(ProviderOption { id: server.id.clone(), name: server.name.clone(), models, custom: false });
        }
        // A user's own providers are theirs to use: the admin's model allow-list is about the
        // instance's providers (and its bill).
        for setting in &reach.own.settings {
            if setting.enabled {
                let models = self.setting_models(setting, reach.admin).await?;
                let (id, name) = (setting.id.to_string(), setting.name.clone());
                options.push(ProviderOption { id, name, models, custom: true });
            }
        }
        Ok(options)
    }

    /// Picks the provider and model for a request. An empty or unavailable provider falls back
    /// to the first available provider and its first model; a model the chosen provider does
    /// not offer this user is refused (see [`ProviderOption::offered_model`]).
    pub(crate) async fn resolve_model(
        &self,
        choices: &Choices,
        provider: &str,
        model: &str,
    ) -> CoreResult<ResolvedModel> {
        let option = choices
            .options
            .iter()
            .find(|option| option.id == provider)
            .or_else(|| choices.options.first())
            .ok_or_else(|| CoreError::invalid("no_provider"))?;
        let card = if option.id == provider && !model.is_empty() {
            option.offered_model(model).ok_or_else(|| CoreError::invalid_with("model_not_allowed", model))?
        } else {
            option
                .models
                .first()
                .cloned()
                .ok_or_else(|| CoreError::invalid_with("provider_without_models", option.name.clone()))?
        };
        let endpoint = self.endpoint(&choices.reach, &option.id)?;
        Ok(ResolvedModel { provider_id: option.id.clone(), model: card, endpoint })
    }

    /// Resolves a choice only if that exact provider is available (fallback models: a fallback
    /// that is itself unavailable is no fallback).
    pub(crate) async fn resolve_exact(&self, choices: &Choices, provider: &str, model: &str) -> Option<ResolvedModel> {
        if provider.is_empty() || model.is_empty() {
            return None;
        }
        let resolved = self.resolve_model(choices, provider, model).await.ok()?;
        (resolved.provider_id == provider).then_some(resolved)
    }

    /// The endpoint (URL, key, trust) of a provider the user can reach.
    pub(crate) fn endpoint(&self, reach: &Reach, provider_id: &str) -> CoreResult<Endpoint> {
        if let Some(server) = self.server_providers.get(provider_id) {
            let user_override = reach.overrides().iter().find(|o| o.provider_id == server.id);
            return self.server_endpoint(server, user_override, reach.admin);
        }
        let setting = reach
            .own
            .settings
            .iter()
            .find(|setting| setting.id.to_string() == provider_id)
            .ok_or(CoreError::NotFound("provider"))?;
        self.setting_endpoint(setting, reach.admin)
    }

    /// The server's endpoint for the provider; the user's own key (and base URL) replace the
    /// server's when they set them. The server's keys only ever go to the server's base URL: a
    /// user who points the provider elsewhere brings their own key or sends none. A base URL
    /// typed by a non-admin is not trusted (SSRF guard).
    fn server_endpoint(
        &self,
        server: &ServerProvider,
        user_override: Option<&ProviderOverride>,
        admin: bool,
    ) -> CoreResult<Endpoint> {
        let user_base_url = user_override
            .map(|o| o.base_url.as_str())
            .filter(|url| !url.is_empty() && *url != server.base_url.as_str());
        let base_url = user_base_url.unwrap_or(&server.base_url).to_owned();
        let mut endpoint = match user_override.and_then(|o| o.api_key_encrypted.as_deref()) {
            Some(stored) => Endpoint::new(server.protocol, base_url, Some(self.vault.decrypt(stored)?)),
            None if user_base_url.is_some() => Endpoint::new(server.protocol, base_url, None),
            None => {
                // Rotation on 401/429 stays among the server's keys, for the server's URL.
                let mut keys = server.keys_for_request(self.server_providers.key_mode).into_iter();
                let mut endpoint = Endpoint::new(server.protocol, base_url, keys.next());
                endpoint.other_keys = keys.collect();
                endpoint
            }
        };
        endpoint.api_version = server.api_version.clone();
        endpoint.trusted = admin || user_base_url.is_none();
        Ok(endpoint)
    }

    /// A user's own provider; its base URL is trusted only when an admin set it up.
    pub(crate) fn setting_endpoint(&self, setting: &ProviderSetting, admin: bool) -> CoreResult<Endpoint> {
        let api_key = match &setting.api_key_encrypted {
            Some(stored) => Some(self.vault.decrypt(stored)?),
            None => None,
        };
        let mut endpoint = Endpoint::new(setting.protocol, setting.base_url.clone(), api_key);
        endpoint.trusted = admin;
        endpoint.api_version = Some(setting.api_version.clone()).filter(|version| !version.is_empty());
        Ok(endpoint)
    }

    async fn server_models(
        &self,
        server: &ServerProvider,
        user_override: Option<&ProviderOverride>,
        admin: bool,
    ) -> CoreResult<Vec<ModelCard>> {
        if !server.models.is_empty() || !server.fetch_models {
            return Ok(server.models.clone());
        }
        let endpoint = self.server_endpoint(server, user_override, admin)?;
        Ok(self.model_cache.models(self.chat_client.as_ref(), &endpoint).await.as_ref().clone())
    }

    /// A custom provider's models: its model list, or (when empty) what the provider lists.
    async fn setting_models(&self, setting: &ProviderSetting, admin: bool) -> CoreResult<Vec<ModelCard>> {
        let listed = models_of(setting);
        if !listed.is_empty() {
            return Ok(listed);
        }
        let endpoint = self.setting_endpoint(setting, admin)?;
        Ok(self.model_cache.models(self.chat_client.as_ref(), &endpoint).await.as_ref().clone())
    }
}

/// The models of a custom provider: its model list applied to nothing built in.
pub(crate) fn models_of(setting: &ProviderSetting) -> Vec<ModelCard> {
    // The list was validated when saved; a list that no longer parses offers no models.
    parse_model_list(&setting.model_list).map(|items| apply_model_list(&[], &items)).unwrap_or_default()
}
