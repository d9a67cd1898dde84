//! The settings page's providers: the ones a user adds (any protocol, key encrypted with the
//! key vault and never returned), their own keys for the server's providers when allowed,
//! connection checks, model lists and model downloads (Ollama).

use super::Providers;
use crate::domain::{ModelCard, Protocol, ProviderDraft, ProviderOverride, ProviderSetting, Role};
use crate::error::{CoreError, CoreResult};
use crate::id::{ProviderSettingId, UserId};
use crate::llm::{Endpoint, PullStream};
use crate::model_list::parse_model_list;
use crate::secret::Secret;
use crate::time::Timestamp;

/// A stored provider as the settings page shows it: never the key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSettingView {
    pub setting: ProviderSetting,
    pub has_key: bool,
}

/// A provider of the server as the settings page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerProviderView {
    pub id: String,
    pub name: String,
    pub protocol: Protocol,
    /// The server's base URL, for administrators only: members must not learn internal
    /// addresses.
    pub base_url: Option<String>,
    pub server_has_key: bool,
    pub key_required: bool,
    /// The user set their own key / base URL for it.
    pub user_has_key: bool,
    pub user_base_url: String,
    /// Whether it appears in the model picker for this user now.
    pub offered: bool,
    pub models: Vec<ModelCard>,
}

impl Providers {
    /// The server's providers with this user's view of them.
    pub async fn server_provider_views(&self, user: UserId) -> CoreResult<Vec<ServerProviderView>> {
        let person = super::existing_user(self.store.as_ref(), user).await?;
        let admin = person.role == Role::Admin;
        let reach = self.reach(&person).await?;
        let options = self.options(&reach).await?;
        let overrides = reach.overrides();
        Ok(self
            .server_providers
            .providers
            .iter()
            .map(|server| {
                let user_override = overrides.iter().find(|o| o.provider_id == server.id);
                let offered = options.iter().find(|option| option.id == server.id);
                ServerProviderView {
                    id: server.id.clone(),
                    name: server.name.clone(),
                    protocol: server.protocol,
                    base_url: admin.then(|| server.base_url.clone()),
                    server_has_key: server.key_count() > 0,
                    key_required: server.key_required,
                    user_has_key: user_override.is_some_and(|o| o.api_key_encrypted.is_some()),
                    user_base_url: user_override.map(|o| o.base_url.clone()).unwrap_or_default(),
                    offered: offered.is_some(),
                    models: offered.map(|option| option.models.clone()).unwrap_or_else(|| server.models.clone()),
                }
            })
            .collect())
    }

    /// Sets the user's own key and/or base URL for a server provider. `api_key: None` keeps the
    /// stored key; an empty key removes it.
    pub async fn set_provider_override(
        &self,
        user: UserId,
        provider_id: &str,
        api_key: Option<Secret>,
        base_url: &str,
    ) -> CoreResult<()> {
        if !self.instance.user_keys_allowed().await? {
            return Err(CoreError::invalid("user_keys_forbidden"));
        }
        let base_url = normalize_base_url(base_url);
        let is_http = base_url.starts_with("http://") || base_url.starts_with("https://");
        if !base_url.is_empty() && !is_http {
            return Err(CoreError::invalid("base_url"));
        }
        let existing = self.store.get_provider_override(user, provider_id).await?;
        let api_key_encrypted = match api_key {
            None => existing.and_then(|o| o.api_key_encrypted),
            Some(key) if key.is_empty() => None,
            Some(key) if key.expose().len() > 4096 => return Err(CoreError::invalid("api_key_length")),
            Some(key) => Some(self.vault.encrypt(key.expose().trim())),
        };
        // The server's keys never go to another URL (see `server_endpoint`): a provider that
        // needs a key needs the user's own with the user's own URL.
        let server = self.server_providers.get(provider_id).ok_or(CoreError::NotFound("provider"))?;
        if !base_url.is_empty() && base_url != server.base_url && server.key_required && api_key_encrypted.is_none() {
            return Err(CoreError::invalid("own_url_needs_own_key"));
        }
        if api_key_encrypted.is_none() && base_url.is_empty() {
            self.store.delete_provider_override(user, provider_id).await?;
        } else {
            let row = ProviderOverride {
                user_id: user,
                provider_id: provider_id.to_owned(),
                api_key_encrypted,
                base_url,
                updated_at: Timestamp::now(),
            };
            self.store.upsert_provider_override(&row).await?;
        }
        self.own_cache.forget(user);
        self.model_cache.clear();
        let client = super::accounts::ClientInfo::default();
        self.audit
            .record(Some(user), "provider_key_changed", provider_id, "own key for a server provider", &client)
            .await;
        Ok(())
    }

    /// Downloads a model onto an Ollama provider, reporting progress: onto the server's only
    /// for administrators (it fills the server's disk and serves everyone), onto a user's own
    /// provider for its owner.
    pub async fn pull_model(&self, user: UserId, provider_id: &str, model: &str) -> CoreResult<PullStream> {
        let model = model.trim();
        if model.is_empty() || model.len() > 200 || model.chars().any(char::is_whitespace) {
            return Err(CoreError::invalid("model_name"));
        }
        let person = if self.server_providers.get(provider_id).is_some() {
            super::admin_user(self.store.as_ref(), user).await?
        } else {
            super::existing_user(self.store.as_ref(), user).await?
        };
        let endpoint = self.endpoint(&self.reach(&person).await?, provider_id)?;
        if endpoint.protocol != Protocol::Ollama {
            return Err(CoreError::invalid("pull_unsupported"));
        }
        let stream = self.chat_client.pull_model(&endpoint, model).await?;
        self.model_cache.clear();
        Ok(stream)
    }

    pub async fn provider_settings(&self, user: UserId) -> CoreResult<Vec<ProviderSettingView>> {
        let settings = self.store.list_providers(user).await?;
        Ok(settings.into_iter().map(view).collect())
    }

    pub async fn provider_setting(&self, user: UserId, id: ProviderSettingId) -> CoreResult<ProviderSettingView> {
        let setting = self.store.get_provider(user, id).await?.ok_or(CoreError::NotFound("provider"))?;
        Ok(view(setting))
    }

    pub async fn create_provider(&self, user: UserId, draft: ProviderDraft) -> CoreResult<ProviderSettingView> {
        validate_draft(&draft)?;
        let now = Timestamp::now();
        let setting = ProviderSetting {
            id: ProviderSettingId::new(),
            user_id: user,
            name: draft.name.trim().to_owned(),
            protocol: draft.protocol,
            base_url: normalize_base_url(&draft.base_url),
            api_key_encrypted: draft.api_key.as_ref().filter(|k| !k.is_empty()).map(|k| self.vault.encrypt(k.expose())),
            model_list: draft.model_list.trim().to_owned(),
            api_version: draft.api_version.trim().to_owned(),
            enabled: draft.enabled,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_provider(&setting).await?;
        self.own_cache.forget(user);
        if setting.api_key_encrypted.is_some() {
            let client = super::accounts::ClientInfo::default();
            self.audit
                .record(Some(user), "provider_key_changed", &setting.id.to_string(), &setting.name, &client)
                .await;
        }
        Ok(view(setting))
    }

    pub async fn update_provider(
        &self,
        user: UserId,
        id: ProviderSettingId,
        draft: ProviderDraft,
    ) -> CoreResult<ProviderSettingView> {
        validate_draft(&draft)?;
        let mut setting = self.store.get_provider(user, id).await?.ok_or(CoreError::NotFound("provider"))?;
        setting.name = draft.name.trim().to_owned();
        setting.protocol = draft.protocol;
        setting.base_url = normalize_base_url(&draft.base_url);
        match &draft.api_key {
            None => {}
            Some(key) if key.is_empty() => setting.api_key_encrypted = None,
            Some(key) => setting.api_key_encrypted = Some(self.vault.encrypt(key.expose())),
        }
        setting.model_list = draft.model_list.trim().to_owned();
        setting.api_version = draft.api_version.trim().to_owned();
        setting.enabled = draft.enabled;
        setting.updated_at = Timestamp::now();
        let updated = self.store.update_provider(&setting).await?;
        self.own_cache.forget(user);
        if !updated {
            return Err(CoreError::NotFound("provider"));
        }
        if draft.api_key.is_some() {
            let client = super::accounts::ClientInfo::default();
            self.audit
                .record(Some(user), "provider_key_changed", &setting.id.to_string(), &setting.name, &client)
                .await;
        }
        Ok(view(setting))
    }

    pub async fn delete_provider(&self, user: UserId, id: ProviderSettingId) -> CoreResult<()> {
        let deleted = self.store.delete_provider(user, id).await?;
        self.own_cache.forget(user);
        if deleted { Ok(()) } else { Err(CoreError::NotFound("provider")) }
    }

    /// Asks the provider for its models with the values of a form that may not be saved yet;
    /// an empty key falls back to the stored provider's key. Used by "check connection" and
    /// "fetch model list".
    pub async fn probe_provider(
        &self,
        user: UserId,
        stored: Option<ProviderSettingId>,
        draft: &ProviderDraft,
    ) -> CoreResult<Vec<String>> {
        validate_draft(draft)?;
        let mut api_key = draft.api_key.clone().filter(|k| !k.is_empty());
        if api_key.is_none()
            && let Some(id) = stored
        {
            let setting = self.store.get_provider(user, id).await?.ok_or(CoreError::NotFound("provider"))?;
            api_key = self.setting_endpoint(&setting, false)?.api_key;
        }
        let mut endpoint = Endpoint::new(draft.protocol, normalize_base_url(&draft.base_url), api_key);
        endpoint.trusted = super::existing_user(self.store.as_ref(), user).await?.role == Role::Admin;
        endpoint.api_version = Some(draft.api_version.trim().to_owned()).filter(|version| !version.is_empty());
        let mut models = self.chat_client.list_models(&endpoint).await?;
        models.sort();
        models.dedup();
        Ok(models)
    }
}

fn view(setting: ProviderSetting) -> ProviderSettingView {
    ProviderSettingView { has_key: setting.api_key_encrypted.is_some(), setting }
}

fn normalize_base_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}

fn validate_draft(draft: &ProviderDraft) -> CoreResult<()> {
    if draft.name.trim().is_empty() {
        return Err(CoreError::invalid("provider_name"));
    }
    let url = draft.base_url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < "http://x".len() {
        return Err(CoreError::invalid("base_url"));
    }
    parse_model_list(&draft.model_list).map_err(|error| CoreError::invalid_with("model_list", error.item))?;
    if let Some(key) = &draft.api_key
        && key.expose().len() > 4096
    {
        return Err(CoreError::invalid("api_key_length"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(url: &str, list: &str) -> ProviderDraft {
        ProviderDraft {
            name: "Mine".into(),
            protocol: Protocol::OpenAi,
            base_url: url.into(),
            api_key: Some(Secret::new("sk")),
            model_list: list.into(),
            api_version: String::new(),
            enabled: true,
        }
    }

    #[test]
    fn drafts_are_validated() {
        assert!(validate_draft(&draft("https://api.example.com/v1", "a,b")).is_ok());
        assert!(validate_draft(&draft("ftp://x", "")).is_err());
        assert!(validate_draft(&draft("https://api.example.com/v1", "a<bad>")).is_err());
        assert_eq!(normalize_base_url(" https://x.y/v1/ "), "https://x.y/v1");
    }
}
