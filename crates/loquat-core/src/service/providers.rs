//! Which providers and models a user can use, and the providers they add from the settings
//! page (keys encrypted with the key vault, never returned).

use super::Services;
use crate::domain::{ModelCard, ProviderDraft, ProviderSetting};
use crate::error::{CoreError, CoreResult};
use crate::id::{ProviderSettingId, UserId};
use crate::llm::Endpoint;
use crate::model_list::{apply_model_list, parse_model_list};
use crate::time::Timestamp;

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

/// A stored provider as the settings page shows it: never the key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSettingView {
    pub setting: ProviderSetting,
    pub has_key: bool,
}

/// A provider and model ready for a request.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub provider_id: String,
    pub model: ModelCard,
    pub endpoint: Endpoint,
}

impl Services {
    /// Providers usable by `user`: the server's, then the user's own enabled ones.
    pub async fn provider_options(&self, user: UserId) -> CoreResult<Vec<ProviderOption>> {
        let mut options: Vec<ProviderOption> = self
            .server_providers
            .providers
            .iter()
            .map(|p| ProviderOption { id: p.id.clone(), name: p.name.clone(), models: p.models.clone(), custom: false })
            .collect();
        for setting in self.store.list_providers(user).await? {
            if !setting.enabled {
                continue;
            }
            options.push(ProviderOption {
                id: setting.id.to_string(),
                name: setting.name.clone(),
                models: models_of(&setting),
                custom: true,
            });
        }
        Ok(options)
    }

    /// Picks the provider and model for a request. An empty or unavailable choice falls back
    /// to the first available provider and its first model; a model not in the list is still
    /// allowed (custom servers often serve models nobody listed).
    pub async fn resolve_model(&self, user: UserId, provider: &str, model: &str) -> CoreResult<ResolvedModel> {
        let options = self.provider_options(user).await?;
        let option = options
            .iter()
            .find(|option| option.id == provider)
            .or_else(|| options.first())
            .ok_or_else(|| CoreError::invalid("no_provider"))?;
        let card = if option.id == provider && !model.is_empty() {
            option.models.iter().find(|card| card.id == model).cloned().unwrap_or_else(|| ModelCard::plain(model))
        } else {
            option
                .models
                .first()
                .cloned()
                .ok_or_else(|| CoreError::invalid_with("provider_without_models", option.name.clone()))?
        };
        let endpoint = self.endpoint_for(user, &option.id).await?;
        Ok(ResolvedModel { provider_id: option.id.clone(), model: card, endpoint })
    }

    async fn endpoint_for(&self, user: UserId, provider_id: &str) -> CoreResult<Endpoint> {
        if let Some(server) = self.server_providers.get(provider_id) {
            let mut keys = server.keys_for_request(self.server_providers.key_mode).into_iter();
            let mut endpoint = Endpoint::new(server.protocol, server.base_url.clone(), keys.next());
            endpoint.other_keys = keys.collect();
            endpoint.api_version = server.api_version.clone();
            return Ok(endpoint);
        }
        let id: ProviderSettingId = provider_id.parse().map_err(|_| CoreError::NotFound("provider"))?;
        let setting = self.store.get_provider(user, id).await?.ok_or(CoreError::NotFound("provider"))?;
        self.setting_endpoint(&setting)
    }

    fn setting_endpoint(&self, setting: &ProviderSetting) -> CoreResult<Endpoint> {
        let api_key = match &setting.api_key_encrypted {
            Some(stored) => Some(self.vault.decrypt(stored)?),
            None => None,
        };
        Ok(Endpoint::new(setting.protocol, setting.base_url.clone(), api_key))
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
            enabled: draft.enabled,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_provider(&setting).await?;
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
        setting.enabled = draft.enabled;
        setting.updated_at = Timestamp::now();
        if !self.store.update_provider(&setting).await? {
            return Err(CoreError::NotFound("provider"));
        }
        Ok(view(setting))
    }

    pub async fn delete_provider(&self, user: UserId, id: ProviderSettingId) -> CoreResult<()> {
        if self.store.delete_provider(user, id).await? { Ok(()) } else { Err(CoreError::NotFound("provider")) }
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
            api_key = self.setting_endpoint(&setting)?.api_key;
        }
        let endpoint = Endpoint::new(draft.protocol, normalize_base_url(&draft.base_url), api_key);
        let mut models = self.chat_client.list_models(&endpoint).await?;
        models.sort();
        models.dedup();
        Ok(models)
    }
}

/// The models of a custom provider: its model list applied to nothing built in.
fn models_of(setting: &ProviderSetting) -> Vec<ModelCard> {
    // The list was validated when saved; a list that no longer parses offers no models.
    parse_model_list(&setting.model_list).map(|items| apply_model_list(&[], &items)).unwrap_or_default()
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
    use crate::domain::Protocol;
    use crate::secret::Secret;

    fn draft(url: &str, list: &str) -> ProviderDraft {
        ProviderDraft {
            name: "Mine".into(),
            protocol: Protocol::OpenAi,
            base_url: url.into(),
            api_key: Some(Secret::new("sk")),
            model_list: list.into(),
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
