//! History compression: with an assistant's history limit and compression on, the messages of
//! a topic's branch that the next request no longer sends are summarised by a model (the
//! assistant's, or the one it names) into the topic's summary, sent instead of them. The summary
//! grows with the topic (the previous one and the newly dropped messages make the next), is
//! written after an answer ends (never delaying one), shows above the topic and can be written
//! again from scratch.

use std::time::{Duration, Instant};

use super::{Chat, ResolvedModel};
use crate::domain::{Assistant, Message, MessageRole, MessageStatus, ModelParams, Topic, TopicSummary};
use crate::error::{CoreError, CoreResult};
use crate::id::{TopicId, UserId};
use crate::llm::{ChatMessage, ChatRole};
use crate::time::Timestamp;
use crate::tree::MessageTree;

/// The longest piece of one message a summary reads, in characters.
const MAX_MESSAGE_CHARS: usize = 4_000;
/// The most text one summary request reads, in characters.
const MAX_INPUT_CHARS: usize = 60_000;

const INSTRUCTION: &str = "You keep the memory of a long conversation. Summarise the conversation below for \
    the assistant that will continue it: the facts, names, numbers, decisions, the user's preferences and the \
    open questions, in the conversation's own language, in at most 300 words. Reply with the summary only.";

/// The messages of the branch the next request will not send (the limit counts the messages
/// before the new question).
pub(crate) fn past_the_limit<'a>(assistant: &Assistant, branch: &'a [Message]) -> &'a [Message] {
    let Some(limit) = assistant.config.history_limit.filter(|_| assistant.config.compress_history) else {
        return &[];
    };
    let usable = branch.iter().take_while(|m| m.status != MessageStatus::Generating).count();
    &branch[..usable.saturating_sub(limit as usize)]
}

impl Chat {
    /// The summary to send with the next request of `topic`'s branch, when the assistant
    /// compresses its history and the summary covers messages the request leaves out.
    pub(super) async fn summary_for(
        &self,
        user: UserId,
        assistant: &Assistant,
        topic: TopicId,
        branch: &[Message],
    ) -> CoreResult<Option<String>> {
        if !assistant.config.compress_history || assistant.config.history_limit.is_none() {
            return Ok(None);
        }
        let Some(summary) = self.store.topic_summary(user, topic).await? else { return Ok(None) };
        // Only a summary of this branch's earlier messages stands in for them.
        let position = branch.iter().position(|message| message.id == summary.upto);
        let sent_from = branch.len().saturating_sub(assistant.config.history_limit.unwrap_or(0) as usize + 1);
        Ok(position.filter(|at| *at < sent_from).map(|_| summary.content))
    }

    /// Brings the topic's summary up to what its branch's next request leaves out (after an
    /// answer ended); `again` writes it from scratch. `None` when nothing is left out.
    pub(super) async fn refresh_summary(
        &self,
        user: UserId,
        topic: &Topic,
        assistant: &Assistant,
        resolved: &ResolvedModel,
        again: bool,
    ) -> CoreResult<Option<TopicSummary>> {
        let messages = self.store.list_messages(user, topic.id).await?;
        let branch: Vec<Message> =
            MessageTree::new(&messages).branch(topic.active_leaf_id).into_iter().map(|entry| entry.message).collect();
        let dropped = past_the_limit(assistant, &branch);
        let Some(last) = dropped.last() else { return Ok(None) };
        let existing = self.store.topic_summary(user, topic.id).await?;
        if !again && let Some(existing) = existing.as_ref().filter(|summary| summary.upto == last.id) {
            return Ok(Some(existing.clone()));
        }
        // The previous summary and what was dropped since, or everything dropped.
        let (previous, fresh) = match existing.as_ref().filter(|_| !again) {
            Some(summary) => match dropped.iter().position(|message| message.id == summary.upto) {
                Some(at) => (Some(summary.content.as_str()), &dropped[at + 1..]),
                None => (None, dropped),
            },
            None => (None, dropped),
        };
        let resolved = match self.summary_model(user, assistant).await? {
            Some(chosen) => chosen,
            None => resolved.clone(),
        };
        let started = Instant::now();
        let request = vec![
            ChatMessage::new(ChatRole::System, INSTRUCTION),
            ChatMessage::new(ChatRole::User, transcript(previous, fresh)),
        ];
        let params = ModelParams { temperature: Some(0.2), max_tokens: Some(800), ..ModelParams::default() };
        let (content, usage) = self.ask_once(&resolved, request, params, Duration::from_secs(120)).await?;
        let content = content.trim().to_owned();
        if content.is_empty() {
            return Err(CoreError::Provider(crate::llm::ProviderError::new(
                crate::llm::ProviderErrorKind::Protocol,
                "the model wrote an empty summary",
            )));
        }
        let model = format!("{}::{}", resolved.provider_id, resolved.model.id);
        let summary = TopicSummary { topic_id: topic.id, content, upto: last.id, model, updated_at: Timestamp::now() };
        self.store.keep_topic_summary(user, &summary).await?;
        let used = (resolved.provider_id.as_str(), resolved.model.id.as_str());
        self.usage.record_request(user, Some(assistant.id), used, usage, started).await;
        Ok(Some(summary))
    }

    /// The assistant's summary model, when it names one the person may use.
    async fn summary_model(&self, user: UserId, assistant: &Assistant) -> CoreResult<Option<ResolvedModel>> {
        let Some((provider, model)) = assistant.config.summary_model.split_once("::") else { return Ok(None) };
        let asker = self.asker(user).await?;
        Ok(self.providers.resolve_exact(&asker.choices, provider, model).await)
    }

    /// Writes the topic's summary again from scratch (the person asked).
    pub async fn regenerate_summary(&self, user: UserId, topic: TopicId) -> CoreResult<Option<TopicSummary>> {
        let topic = self.assistants.topic(user, topic).await?;
        let assistant = self.assistants.assistant(user, topic.assistant_id).await?;
        if !assistant.config.compress_history || assistant.config.history_limit.is_none() {
            return Err(CoreError::invalid("summary_off"));
        }
        let asker = self.asker(user).await?;
        let resolved = self.resolve(&asker, &assistant).await?;
        self.refresh_summary(user, &topic, &assistant, &resolved, true).await
    }
}

/// The text a summary is written from: the previous summary, then the messages, each cut.
fn transcript(previous: Option<&str>, messages: &[Message]) -> String {
    let mut text = String::new();
    if let Some(previous) = previous {
        text.push_str("Summary so far:\n");
        text.push_str(previous);
        text.push_str("\n\nThen:\n");
    }
    for message in messages {
        let who = match message.role {
            MessageRole::User => "User",
            MessageRole::Assistant => "Assistant",
        };
        let piece: String = message.content.chars().take(MAX_MESSAGE_CHARS).collect();
        text.push_str(&format!("{who}: {piece}\n\n"));
        if text.len() > MAX_INPUT_CHARS * 4 {
            break;
        }
    }
    text.chars().rev().take(MAX_INPUT_CHARS).collect::<Vec<_>>().into_iter().rev().collect()
}

impl Chat {
    /// After an answer: the summary brought up to date, a failure only logged (the next answer
    /// tries again).
    pub(super) async fn summarise_after_answer(
        &self,
        user: UserId,
        topic: TopicId,
        assistant: crate::id::AssistantId,
        resolved: &ResolvedModel,
    ) {
        let (topic, assistant) =
            match tokio::join!(self.assistants.topic(user, topic), self.assistants.assistant(user, assistant)) {
                (Ok(topic), Ok(assistant)) => (topic, assistant),
                _ => return,
            };
        if let Err(error) = self.refresh_summary(user, &topic, &assistant, resolved, false).await {
            tracing::info!(topic = %topic.id, %error, "could not summarise the topic's history");
        }
    }
}
