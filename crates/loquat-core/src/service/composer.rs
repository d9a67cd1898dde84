//! Small requests around the conversation: about how many tokens the next request will take
//! (system role, the history it sends, the message, its files) against the model's context
//! window from the model bank (estimates use Loquat's one estimator,
//! `loquat_docs::chunk::estimate_tokens`); a message translated into the reader's language; and
//! [`Chat::ask_once`], the one-shot request titles and translations are made with.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::{Chat, ResolvedModel, existing_user, materials};
use crate::domain::{MessageStatus, ModelParams, TokenUsage};
use crate::error::{CoreError, CoreResult};
use crate::id::{AssistantId, FileId, MessageId, TopicId, UserId};
use crate::llm::{ChatEvent, ChatMessage, ChatRequest, ChatRole, ProviderError, ProviderErrorKind};
use crate::prompt::{PromptContext, apply_input_template, expand_placeholders};
use crate::tree::MessageTree;

/// What an image costs a model, about (a 1024-pixel image at high detail).
const IMAGE_TOKENS: usize = 765;
/// The most files an estimate reads.
const MAX_FILES: usize = 20;

/// The parts of the next request, in tokens (estimates).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenEstimate {
    pub system: usize,
    pub history: usize,
    pub message: usize,
    pub files: usize,
    pub total: usize,
    /// The model's context window, when the model bank knows it.
    pub window: Option<u32>,
}

impl TokenEstimate {
    /// Whether the request is larger than the model can read.
    pub fn too_large(&self) -> bool {
        self.window.is_some_and(|window| self.total > window as usize)
    }
}

impl Chat {
    /// The next request of `topic` (or of a new topic) with `content` and `files`, estimated.
    pub async fn estimate_tokens(
        &self,
        user: UserId,
        assistant: AssistantId,
        topic: Option<TopicId>,
        content: &str,
        files: &[FileId],
    ) -> CoreResult<TokenEstimate> {
        let assistant = self.assistants.assistant(user, assistant).await?;
        let config = &assistant.config;
        let person = existing_user(self.store.as_ref(), user).await?;
        let choices = self.providers.choices(&person).await?;
        let resolved = self.providers.resolve_model(&choices, &config.provider, &config.model).await.ok();
        let estimate = loquat_docs::chunk::estimate_tokens;
        let context = PromptContext {
            now: jiff::Zoned::now(),
            model: resolved.as_ref().map(|resolved| resolved.model.id.clone()).unwrap_or_default(),
            username: person.name.clone(),
            language: String::new(),
        };
        let mut tally = TokenEstimate {
            system: estimate(&expand_placeholders(&config.system_role, &context)),
            message: estimate(&apply_input_template(&config.input_template, content)),
            window: resolved.as_ref().and_then(|resolved| resolved.model.context_tokens),
            ..TokenEstimate::default()
        };
        if let Some(topic) = topic {
            let topic = self.assistants.topic(user, topic).await?;
            if topic.assistant_id != assistant.id {
                return Err(CoreError::NotFound("topic"));
            }
            let messages = self.store.list_messages(user, topic.id).await?;
            let branch = MessageTree::new(&messages).branch(topic.active_leaf_id);
            let usable: Vec<_> = branch
                .iter()
                .map(|entry| &entry.message)
                .filter(|message| message.status != MessageStatus::Generating && !message.content.trim().is_empty())
                .collect();
            // The new message is the latest: the limit counts the ones before it.
            let keep = config.history_limit.map_or(usable.len(), |limit| (limit as usize).min(usable.len()));
            tally.history = usable[usable.len() - keep..].iter().map(|message| estimate(&message.content)).sum();
        }
        for id in files.iter().take(MAX_FILES) {
            let Some(file) = self.store.get_file(user, *id).await? else { continue };
            tally.files += if materials::is_image(&file) {
                IMAGE_TOKENS
            } else {
                let chunks = self.store.file_chunks(user, file.id).await?;
                match chunks.iter().map(|chunk| chunk.tokens as usize).sum::<usize>() {
                    // Not read yet: about a token in four bytes.
                    0 => usize::try_from(file.size / 4).unwrap_or(usize::MAX),
                    read => read,
                }
            };
        }
        // Files past half the window go as their best passages (see `materials`).
        if let Some(resolved) = &resolved {
            tally.files = tally.files.min(materials::files_budget(&resolved.model));
        }
        tally.total = tally.system + tally.history + tally.message + tally.files;
        Ok(tally)
    }
}

/// The longest text a translation takes, in characters.
const MAX_TRANSLATED_CHARS: usize = 40_000;

/// The language a locale code names, as a model reads it.
fn language_name(code: &str) -> &'static str {
    match code {
        "zh-CN" | "zh" => "Simplified Chinese (简体中文)",
        "zh-TW" => "Traditional Chinese (繁體中文)",
        "ja" | "ja-JP" => "Japanese",
        "ko" | "ko-KR" => "Korean",
        "fr" | "fr-FR" => "French",
        "de" | "de-DE" => "German",
        "es" | "es-ES" => "Spanish",
        _ => "English",
    }
}

impl Chat {
    /// `messages` sent to the resolved model once, its whole text collected (within `limit`).
    pub(super) async fn ask_once(
        &self,
        resolved: &ResolvedModel,
        messages: Vec<ChatMessage>,
        params: ModelParams,
        limit: Duration,
    ) -> Result<(String, Option<TokenUsage>), ProviderError> {
        let request = ChatRequest {
            model: resolved.model.upstream_name().to_owned(),
            messages,
            params: resolved.model.accepted_params(&params),
            ..ChatRequest::default()
        };
        let collect = async {
            let mut stream = self.chat_client.stream_chat(&resolved.endpoint, &request).await?;
            let (mut text, mut usage) = (String::new(), None);
            while let Some(event) = stream.next().await {
                match event? {
                    ChatEvent::Text(piece) => text.push_str(&piece),
                    ChatEvent::Usage(reported) => usage = Some(reported),
                    _ => {}
                }
            }
            Ok((text, usage))
        };
        match tokio::time::timeout(limit, collect).await {
            Ok(done) => done,
            Err(_) => {
                Err(ProviderError::new(ProviderErrorKind::Timeout, format!("no answer in {} s", limit.as_secs())))
            }
        }
    }

    /// A message of the user's translated into `language` (a locale code) by its topic's
    /// assistant's model, Markdown kept; the request counts towards their quota.
    pub async fn translate(&self, user: UserId, id: MessageId, language: &str) -> CoreResult<String> {
        let message = self.assistants.message(user, id).await?;
        if message.content.trim().is_empty() {
            return Err(CoreError::invalid("translate_empty"));
        }
        let topic = self.assistants.topic(user, message.topic_id).await?;
        let assistant = self.assistants.assistant(user, topic.assistant_id).await?;
        let asker = self.asker(user).await?;
        let resolved = self.resolve(&asker, &assistant).await?;
        let text: String = message.content.chars().take(MAX_TRANSLATED_CHARS).collect();
        let instruction = format!(
            "You translate text into {}. Keep the Markdown, code blocks, formulas, names and numbers as they \
             are. Reply with the translation only, with no notes.",
            language_name(language)
        );
        let messages = vec![ChatMessage::new(ChatRole::System, instruction), ChatMessage::new(ChatRole::User, text)];
        let params = ModelParams { temperature: Some(0.2), ..ModelParams::default() };
        let started = Instant::now();
        let (translated, usage) = self.ask_once(&resolved, messages, params, Duration::from_secs(120)).await?;
        let model = (resolved.provider_id.as_str(), resolved.model.id.as_str());
        self.usage.record_request(user, Some(assistant.id), model, usage, started).await;
        Ok(translated.trim().to_owned())
    }
}
