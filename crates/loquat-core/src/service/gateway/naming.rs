//! Which model an API request names: `provider/model` (a catalogue id such as `openai`, or a
//! custom provider's id), a model id offered by exactly one available provider, or
//! `assistant/<id>` — also `assistant/<title-slug>` when the slug is unique, and
//! `assistant/default` for the default assistant.

use super::super::ProviderOption;
use super::{Caller, Gateway};
use crate::domain::{Assistant, ModelCard};
use crate::error::{CoreError, CoreResult};

/// The prefix naming one of the caller's assistants.
pub const ASSISTANT_PREFIX: &str = "assistant/";

/// What a name resolves to.
pub(super) enum Target {
    Model { provider_id: String, card: ModelCard },
    Assistant(Box<Assistant>),
}

/// What the model is for: chat models must be offered to the user (the admin's allow-list),
/// except on the user's own providers; embedding models are not listed anywhere, so any model
/// of an available provider goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    Chat,
    Embeddings,
}

impl Gateway {
    pub(super) async fn api_target(&self, caller: &Caller<'_>, name: &str, purpose: Purpose) -> CoreResult<Target> {
        let name = name.trim();
        if name.is_empty() {
            return Err(CoreError::invalid("model_missing"));
        }
        if let Some(key) = name.strip_prefix(ASSISTANT_PREFIX) {
            let assistants = self.assistants.list_assistants(caller.user.id).await?;
            return find_assistant(assistants, key, name).map(|assistant| Target::Assistant(Box::new(assistant)));
        }
        find_model(&caller.choices.options, name, purpose)
    }
}

/// A title as it appears in `assistant/<slug>`: lower case, letters and digits (any script)
/// kept, every other run of characters one `-`.
pub fn assistant_slug(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    for character in title.chars() {
        if character.is_alphanumeric() {
            slug.extend(character.to_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

fn find_assistant(assistants: Vec<Assistant>, key: &str, name: &str) -> CoreResult<Assistant> {
    let key = key.trim();
    let by_id = |assistant: &Assistant| assistant.id.to_string() == key;
    let by_alias = |assistant: &Assistant| {
        (key == "default" && assistant.is_default)
            || (!assistant.config.title.is_empty() && assistant_slug(&assistant.config.title) == key)
    };
    if let Some(assistant) = assistants.iter().find(|assistant| by_id(assistant)) {
        return Ok(assistant.clone());
    }
    let mut matches = assistants.into_iter().filter(by_alias);
    match (matches.next(), matches.next()) {
        (Some(assistant), None) => Ok(assistant),
        (Some(_), Some(_)) => Err(CoreError::invalid_with("model_ambiguous", name)),
        (None, _) => Err(CoreError::NotFound("model")),
    }
}

fn find_model(options: &[ProviderOption], name: &str, purpose: Purpose) -> CoreResult<Target> {
    if let Some((provider, model)) = name.split_once('/')
        && !model.is_empty()
        && let Some(option) = options.iter().find(|option| option.id == provider)
    {
        if let Some(card) = option.offered_model(model) {
            return Ok(Target::Model { provider_id: option.id.clone(), card });
        }
        if purpose == Purpose::Embeddings {
            return Ok(Target::Model { provider_id: option.id.clone(), card: ModelCard::plain(model) });
        }
        // Not this provider's: maybe a model id with a slash (`meta-llama/…`) offered elsewhere.
    }
    let mut matches = options
        .iter()
        .flat_map(|option| option.models.iter().filter(|card| card.id == name).map(move |card| (option, card)));
    match (matches.next(), matches.next()) {
        (Some((option, card)), None) => Ok(Target::Model { provider_id: option.id.clone(), card: card.clone() }),
        (Some(_), Some(_)) => Err(CoreError::invalid_with("model_ambiguous", name)),
        (None, _) => Err(CoreError::NotFound("model")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AssistantConfig;
    use crate::id::{AssistantId, UserId};
    use crate::time::Timestamp;

    fn option(id: &str, models: &[&str], custom: bool) -> ProviderOption {
        let models = models.iter().map(|model| ModelCard::plain(*model)).collect();
        ProviderOption { id: id.to_owned(), name: id.to_owned(), models, custom }
    }

    fn options() -> Vec<ProviderOption> {
        vec![
            option("openai", &["gpt-4o", "shared"], false),
            option("deepseek", &["deepseek-chat", "shared"], false),
            option("openrouter", &["meta-llama/llama-3"], false),
            option("0190-custom", &["agent"], true),
        ]
    }

    fn resolved(name: &str, purpose: Purpose) -> Result<(String, String), &'static str> {
        match find_model(&options(), name, purpose) {
            Ok(Target::Model { provider_id, card }) => Ok((provider_id, card.id)),
            Ok(Target::Assistant(_)) => Err("assistant"),
            Err(CoreError::NotFound(_)) => Err("not found"),
            Err(CoreError::Invalid { code, .. }) => Err(code),
            Err(_) => Err("other"),
        }
    }

    fn pair(provider: &str, model: &str) -> Result<(String, String), &'static str> {
        Ok((provider.to_owned(), model.to_owned()))
    }

    #[test]
    fn models_by_provider_or_unique_id() {
        assert_eq!(resolved("deepseek/deepseek-chat", Purpose::Chat), pair("deepseek", "deepseek-chat"));
        assert_eq!(resolved("gpt-4o", Purpose::Chat), pair("openai", "gpt-4o"));
        assert_eq!(resolved("shared", Purpose::Chat), Err("model_ambiguous"));
        assert_eq!(resolved("deepseek/shared", Purpose::Chat), pair("deepseek", "shared"));
        assert_eq!(resolved("meta-llama/llama-3", Purpose::Chat), pair("openrouter", "meta-llama/llama-3"));
        assert_eq!(resolved("openai/gpt-5", Purpose::Chat), Err("not found"), "the allow-list holds");
        assert_eq!(resolved("nope", Purpose::Chat), Err("not found"));
        assert_eq!(resolved("0190-custom/unlisted", Purpose::Chat), pair("0190-custom", "unlisted"));
        assert_eq!(
            resolved("openai/text-embedding-3-small", Purpose::Embeddings),
            pair("openai", "text-embedding-3-small")
        );
    }

    fn assistant(title: &str, is_default: bool) -> Assistant {
        let config = AssistantConfig { title: title.to_owned(), ..AssistantConfig::default() };
        let (id, user_id, now) = (AssistantId::new(), UserId::new(), Timestamp(0));
        Assistant { id, user_id, is_default, config, created_at: now, updated_at: now }
    }

    #[test]
    fn assistants_by_id_slug_or_default() {
        let list = vec![assistant("", true), assistant("Translator Bot", false), assistant("Twin", false)];
        let mut with_twin = list.clone();
        with_twin.push(assistant("twin!", false));
        let id = list[1].id.to_string();
        let found = |key: &str, assistants: &[Assistant]| {
            find_assistant(assistants.to_vec(), key, key).map(|assistant| assistant.config.title)
        };
        assert_eq!(found(&id, &list).ok().as_deref(), Some("Translator Bot"));
        assert_eq!(found("translator-bot", &list).ok().as_deref(), Some("Translator Bot"));
        assert_eq!(found("default", &list).ok().as_deref(), Some(""));
        assert!(matches!(found("twin", &with_twin), Err(CoreError::Invalid { code: "model_ambiguous", .. })));
        assert!(matches!(found("nobody", &list), Err(CoreError::NotFound(_))));
    }

    #[test]
    fn slugs() {
        assert_eq!(assistant_slug("  Translator Bot! "), "translator-bot");
        assert_eq!(assistant_slug("翻译 助手"), "翻译-助手");
        assert_eq!(assistant_slug("C++ / Rust"), "c-rust");
    }
}
