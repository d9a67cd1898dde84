//! Voice and pictures, through any provider the person can reach that speaks OpenAI's media
//! endpoints (`provider::model` settings, `LOQUAT_MEDIA__*`): a message read aloud (the audio
//! kept as the owner's file, so the second play is instant; a failure keeps nothing), speech
//! written down for the composer (only audio is sent on), and pictures drawn into a topic (the
//! prompt as the question, the pictures as the answer's files). The role's model allow-list and
//! the person's quota apply as they do to chat.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::{Assistants, Files, Providers, Usage, existing_user};
use crate::domain::{Message, MessageRole, NewMessage, StoredFile, Topic, User};
use crate::error::{CoreError, CoreResult};
use crate::id::{AssistantId, MessageId, TopicId, UserId};
use crate::llm::{ChatClient, Endpoint, ImageRequest, SpeechRequest, TranscriptionRequest};
use crate::store::{Store, TreeWrite};
use crate::time::Timestamp;

/// The most text read aloud at once (OpenAI's limit), in characters.
const MAX_SPOKEN_CHARS: usize = 4_096;
/// The largest recording transcribed (OpenAI's limit).
pub const MAX_AUDIO_BYTES: usize = 25 * 1024 * 1024;
/// The longest prompt for a picture, in characters.
const MAX_PROMPT_CHARS: usize = 4_000;
/// The most pictures one request draws.
pub const MAX_IMAGES: u32 = 4;
/// The sizes a picture may be.
pub const IMAGE_SIZES: [&str; 3] = ["1024x1024", "1536x1024", "1024x1536"];

/// Which models read aloud, write speech down and draw: `provider::model` each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaModels {
    pub speech: String,
    /// The voice when the assistant names none.
    pub voice: String,
    pub transcription: String,
    pub image: String,
}

impl Default for MediaModels {
    fn default() -> Self {
        Self {
            speech: "openai::tts-1".to_owned(),
            voice: "alloy".to_owned(),
            transcription: "openai::whisper-1".to_owned(),
            image: "openai::gpt-image-1".to_owned(),
        }
    }
}

#[derive(Clone)]
pub struct Media {
    store: Arc<dyn Store>,
    chat_client: Arc<dyn ChatClient>,
    providers: Providers,
    assistants: Assistants,
    files: Files,
    usage: Usage,
    models: Arc<MediaModels>,
}

/// A drawing stored in its topic.
#[derive(Debug, Clone)]
pub struct Drawing {
    pub topic: Topic,
    pub created_topic: bool,
    pub question: Message,
    pub answer: Message,
    pub images: Vec<StoredFile>,
}

impl Media {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        chat_client: Arc<dyn ChatClient>,
        providers: Providers,
        assistants: Assistants,
        files: Files,
        usage: Usage,
        models: MediaModels,
    ) -> Self {
        Self { store, chat_client, providers, assistants, files, usage, models: Arc::new(models) }
    }

    /// The endpoint and model of a `provider::model` setting, as `person` may use it.
    async fn reach(&self, person: &User, choice: &str) -> CoreResult<(String, String, Endpoint)> {
        let (provider, model) = choice.split_once("::").ok_or(CoreError::invalid("media_unavailable"))?;
        let reach = self.providers.reach(person).await?;
        if !reach.allows(provider, model) {
            return Err(CoreError::invalid_with("model_not_allowed", choice.to_owned()));
        }
        let endpoint =
            self.providers.endpoint(&reach, provider).map_err(|_| CoreError::invalid("media_unavailable"))?;
        Ok((provider.to_owned(), model.to_owned(), endpoint))
    }

    /// The message read aloud (`audio/mpeg`): the kept audio when there is one for its voice,
    /// else made now and kept.
    pub async fn speak(&self, user: UserId, id: MessageId) -> CoreResult<super::FileContent> {
        let message = self.assistants.message(user, id).await?;
        let topic = self.assistants.topic(user, message.topic_id).await?;
        let assistant = self.assistants.assistant(user, topic.assistant_id).await?;
        let voice = match assistant.config.voice.trim() {
            "" => self.models.voice.clone(),
            voice => voice.to_owned(),
        };
        if let Some(file) = self.store.message_speech(user, id, &voice).await?
            && let Ok(content) = self.files.content(user, file).await
        {
            return Ok(content);
        }
        let input = spoken_text(&message.content);
        if input.is_empty() {
            return Err(CoreError::invalid("speak_empty"));
        }
        let person = existing_user(self.store.as_ref(), user).await?;
        self.usage.check_quota(&person).await?;
        let (provider, model, endpoint) = self.reach(&person, &self.models.speech).await?;
        let started = Instant::now();
        let request = SpeechRequest { model: model.clone(), input, voice: voice.clone() };
        let audio = self.chat_client.speech(&endpoint, &request).await?;
        self.usage.record_request(user, Some(assistant.id), (&provider, &model), None, started).await;
        let body = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(audio.bytes) });
        let name = format!("speech-{}.mp3", &id.to_string()[..8]);
        let (file, _) = self.files.upload(&person, &name, body).await?;
        self.store.keep_message_speech(user, id, &voice, file.id, Timestamp::now()).await?;
        self.files.content(user, file.id).await
    }

    /// What a recording says. Only audio is sent on (its first bytes are checked).
    pub async fn transcribe(&self, user: UserId, audio: Bytes, language: Option<&str>) -> CoreResult<String> {
        if audio.len() > MAX_AUDIO_BYTES {
            return Err(CoreError::invalid("audio_too_large"));
        }
        let extension = audio_format(&audio).ok_or(CoreError::invalid("not_audio"))?;
        let person = existing_user(self.store.as_ref(), user).await?;
        self.usage.check_quota(&person).await?;
        let (provider, model, endpoint) = self.reach(&person, &self.models.transcription).await?;
        let started = Instant::now();
        let language = language.and_then(|code| code.split('-').next()).filter(|code| code.len() == 2);
        let request = TranscriptionRequest {
            model: model.clone(),
            audio,
            file_name: format!("speech.{extension}"),
            language: language.map(str::to_owned),
        };
        let text = self.chat_client.transcribe(&endpoint, &request).await?;
        self.usage.record_request(user, None, (&provider, &model), None, started).await;
        Ok(text.trim().to_owned())
    }

    /// Pictures of `prompt` drawn into a topic of the assistant (a new one when `topic` is
    /// `None`): the prompt is the question, the answer holds the pictures as its files.
    pub async fn draw(
        &self,
        user: UserId,
        assistant: AssistantId,
        topic: Option<TopicId>,
        prompt: &str,
        size: &str,
        count: u32,
    ) -> CoreResult<Drawing> {
        // Whose it is, first: another person's assistant is not found, whatever the options.
        let assistant = self.assistants.assistant(user, assistant).await?;
        let prompt = prompt.trim();
        if prompt.is_empty() || prompt.chars().count() > MAX_PROMPT_CHARS {
            return Err(CoreError::invalid("draw_prompt"));
        }
        if !IMAGE_SIZES.contains(&size) || !(1..=MAX_IMAGES).contains(&count) {
            return Err(CoreError::invalid("draw_options"));
        }
        let now = Timestamp::now();
        let (topic, created_topic, parent) = match topic {
            Some(id) => {
                let topic = self.assistants.topic(user, id).await?;
                if topic.assistant_id != assistant.id {
                    return Err(CoreError::NotFound("topic"));
                }
                let messages = self.store.list_messages(user, id).await?;
                let leaf =
                    crate::tree::MessageTree::new(&messages).branch(topic.active_leaf_id).last().map(|e| e.message.id);
                (topic, false, leaf)
            }
            None => {
                let topic = Topic {
                    id: TopicId::new(),
                    user_id: user,
                    assistant_id: assistant.id,
                    title: prompt.chars().take(60).collect(),
                    active_leaf_id: None,
                    pinned: false,
                    created_at: now,
                    updated_at: now,
                };
                (topic, true, None)
            }
        };
        let person = existing_user(self.store.as_ref(), user).await?;
        self.usage.check_quota(&person).await?;
        let (provider, model, endpoint) = self.reach(&person, &self.models.image).await?;
        let started = Instant::now();
        let request = ImageRequest { model: model.clone(), prompt: prompt.to_owned(), size: size.to_owned(), count };
        // Drawn first: a failure stores nothing.
        let drawn = self.chat_client.generate_images(&endpoint, &request).await?;
        self.usage.record_request(user, Some(assistant.id), (&provider, &model), None, started).await;
        let mut images = Vec::with_capacity(drawn.len());
        for (place, image) in drawn.iter().enumerate() {
            let bytes = image.bytes.clone();
            let body = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
            let (file, _) = self.files.upload(&person, &format!("image-{}.png", place + 1), body).await?;
            if !super::materials::is_image(&file) {
                return Err(CoreError::Provider(crate::llm::ProviderError::new(
                    crate::llm::ProviderErrorKind::Protocol,
                    "the provider sent something that is not a picture",
                )));
            }
            // The same picture twice is one file.
            if !images.iter().any(|known: &StoredFile| known.id == file.id) {
                images.push(file);
            }
        }
        let question = NewMessage {
            created_at: now,
            ..super::chat::new_message(user, topic.id, parent, MessageRole::User, prompt.to_owned(), None)
        };
        let revised = drawn.iter().find_map(|image| image.revised_prompt.clone()).unwrap_or_default();
        let answer_at = Timestamp(now.as_millis() + 1);
        let answer = NewMessage {
            provider: Some(provider),
            created_at: answer_at,
            ..super::chat::new_message(user, topic.id, Some(question.id), MessageRole::Assistant, revised, Some(model))
        };
        let mut writes = Vec::with_capacity(4 + images.len());
        if created_topic {
            writes.push(TreeWrite::InsertTopic(&topic));
        }
        writes.push(TreeWrite::InsertMessage(&question));
        writes.push(TreeWrite::InsertMessage(&answer));
        for (position, file) in images.iter().enumerate() {
            writes.push(TreeWrite::AttachFile { message: answer.id, file: file.id, position: position as u32 });
        }
        writes.push(TreeWrite::SetActiveLeaf { topic: topic.id, leaf: Some(answer.id), at: answer_at });
        self.store.write_tree(user, &writes).await?;
        let topic = Topic { active_leaf_id: Some(answer.id), ..topic };
        Ok(Drawing { topic, created_topic, question: question.stored(), answer: answer.stored(), images })
    }
}

/// A message's text as it should be heard: code blocks left out, Markdown's marks removed, cut
/// to what one request reads.
fn spoken_text(markdown: &str) -> String {
    let mut spoken = String::with_capacity(markdown.len().min(MAX_SPOKEN_CHARS * 4));
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let line = line.trim_start_matches(['#', '>', ' ']).trim_start_matches("- ");
        spoken.extend(line.chars().filter(|ch| !matches!(ch, '*' | '_' | '`' | '|')));
        spoken.push('\n');
    }
    spoken.trim().chars().take(MAX_SPOKEN_CHARS).collect()
}

/// The extension of the audio format `bytes` start with, or `None` when they are not audio.
pub fn audio_format(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x1A, 0x45, 0xDF, 0xA3, ..] => Some("webm"),
        [b'O', b'g', b'g', b'S', ..] => Some("ogg"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'A', b'V', b'E', ..] => Some("wav"),
        [b'f', b'L', b'a', b'C', ..] => Some("flac"),
        [b'I', b'D', b'3', ..] => Some("mp3"),
        [0xFF, second, ..] if second & 0xE0 == 0xE0 => Some("mp3"),
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => Some("m4a"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_audio_is_taken_for_audio() {
        assert_eq!(audio_format(&[0x1A, 0x45, 0xDF, 0xA3, 1, 2]), Some("webm"));
        assert_eq!(audio_format(b"RIFF\x24\x00\x00\x00WAVEfmt "), Some("wav"));
        assert_eq!(audio_format(b"OggS\x00\x02"), Some("ogg"));
        assert_eq!(audio_format(b"\x00\x00\x00\x20ftypM4A "), Some("m4a"));
        assert_eq!(audio_format(b"ID3\x04"), Some("mp3"));
        assert_eq!(audio_format(b"%PDF-1.7"), None);
        assert_eq!(audio_format(b"\x89PNG\r\n"), None);
        assert_eq!(audio_format(b""), None);
    }

    #[test]
    fn code_and_marks_are_not_read_aloud() {
        let text = "# Title\n\n**Bold** and `code`.\n\n```rust\nfn main() {}\n```\n- item";
        assert_eq!(spoken_text(text), "Title\n\nBold and code.\n\nitem");
        assert_eq!(spoken_text(&"a".repeat(10_000)).len(), MAX_SPOKEN_CHARS);
    }
}
