//! The events of an API answer: the upstream's events passed through the moment they arrive
//! (nothing buffered, nothing written per event), under the idle timeout; and the `Ledger`,
//! closed once when the answer ends, fails or is dropped (the caller went away): its usage
//! recorded as the chat pages record it, and the exchange saved when the caller asked.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use tokio::time::Sleep;

use super::Gateway;
use crate::domain::{MessageRole, MessageStatus, NewMessage, TokenUsage, Topic};
use crate::id::{AssistantId, MessageId, TopicId, UserId};
use crate::llm::{ChatEvent, ChatStream, ProviderError, ProviderErrorKind, ToolCall};
use crate::store::FinishedAnswer;
use crate::store::TreeWrite;
use crate::time::Timestamp;

/// The answer's events as the provider sends them; the stream ends after an error. Dropping it
/// cancels the upstream request and records what arrived as a stopped answer.
pub struct ApiChatStream {
    inner: ChatStream,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    /// When the last event arrived; the idle timer is moved lazily, only when it fires.
    last_event: tokio::time::Instant,
    ended: bool,
    ledger: Option<Ledger>,
}

impl ApiChatStream {
    pub(super) fn new(inner: ChatStream, ledger: Ledger, idle_timeout: Duration) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            inner,
            idle: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
            idle_timeout,
            last_event: now,
            ended: false,
            ledger: Some(ledger),
        }
    }

    /// Records (and saves) the answer now, waiting for the writes: for callers that answer
    /// only after the whole answer (non-streamed completions), so a saved topic exists when
    /// they respond. Without it the same happens in the background when the stream is dropped.
    pub async fn finish(mut self) {
        if let Some(ledger) = self.ledger.take() {
            ledger.close().await;
        }
    }

    fn end(&mut self, status: MessageStatus, error: Option<ProviderError>) {
        self.ended = true;
        if let Some(ledger) = self.ledger.as_mut() {
            ledger.ending = Some((status, error));
        }
    }
}

impl Stream for ApiChatStream {
    type Item = Result<ChatEvent, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(event))) => {
                this.last_event = tokio::time::Instant::now();
                if let Some(ledger) = this.ledger.as_mut() {
                    ledger.note(&event);
                }
                Poll::Ready(Some(Ok(event)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.end(MessageStatus::Error, Some(error.clone()));
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                this.end(MessageStatus::Complete, None);
                Poll::Ready(None)
            }
            Poll::Pending => loop {
                if this.idle.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let deadline = this.last_event + this.idle_timeout;
                if deadline <= tokio::time::Instant::now() {
                    let error = ProviderError::new(ProviderErrorKind::Timeout, "the provider stopped responding");
                    this.end(MessageStatus::Error, Some(error.clone()));
                    return Poll::Ready(Some(Err(error)));
                }
                this.idle.as_mut().reset(deadline);
            },
        }
    }
}

impl Drop for ApiChatStream {
    fn drop(&mut self) {
        let Some(ledger) = self.ledger.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(ledger.close());
            }
            Err(_) => tracing::warn!("an API answer ended outside the runtime; its usage is not recorded"),
        }
    }
}

/// What is written once an answer ends: usage always, the exchange when saving.
pub(super) struct Ledger {
    gateway: Gateway,
    user: UserId,
    assistant: Option<AssistantId>,
    provider_id: String,
    model_id: String,
    started: Instant,
    ttft: Option<Duration>,
    usage: Option<TokenUsage>,
    /// How the stream ended; `None` while it runs (a drop then means the caller went away).
    ending: Option<(MessageStatus, Option<ProviderError>)>,
    save: Option<SavePlan>,
    /// The question and the answer's text so far, when the administrator archives content.
    archive: Option<(String, String)>,
}

/// Where and what to save; the answer's text is collected only when saving.
pub(super) struct SavePlan {
    topic_id: TopicId,
    assistant_id: AssistantId,
    question: String,
    content: String,
    reasoning: String,
    tool_calls: Vec<ToolCall>,
}

impl SavePlan {
    pub(super) fn new(assistant_id: AssistantId, question: String) -> Self {
        let (content, reasoning, tool_calls) = (String::new(), String::new(), Vec::new());
        Self { topic_id: TopicId::new(), assistant_id, question, content, reasoning, tool_calls }
    }

    pub(super) fn topic_id(&self) -> TopicId {
        self.topic_id
    }
}

impl Ledger {
    pub(super) fn new(
        gateway: Gateway,
        user: UserId,
        assistant: Option<AssistantId>,
        started: Instant,
        save: Option<SavePlan>,
    ) -> Self {
        let (provider_id, model_id) = (String::new(), String::new());
        // Counted as running until `close`, like a chat page's generation job.
        crate::generation::metrics::started();
        Self {
            gateway,
            user,
            assistant,
            provider_id,
            model_id,
            started,
            ttft: None,
            usage: None,
            ending: None,
            save,
            archive: None,
        }
    }

    /// Keeps the question and the answer's text for the request audit.
    pub(super) fn archiving(mut self, question: Option<String>) -> Self {
        self.archive = question.map(|question| (question, String::new()));
        self
    }

    pub(super) fn answered_by(&mut self, provider_id: &str, model_id: &str) {
        provider_id.clone_into(&mut self.provider_id);
        model_id.clone_into(&mut self.model_id);
    }

    fn note(&mut self, event: &ChatEvent) {
        if self.ttft.is_none() && matches!(event, ChatEvent::Text(_) | ChatEvent::Reasoning(_) | ChatEvent::ToolCall(_))
        {
            self.ttft = Some(self.started.elapsed());
        }
        if let ChatEvent::Usage(usage) = event {
            self.usage = Some(*usage);
        }
        if let (Some((_, answer)), ChatEvent::Text(text)) = (self.archive.as_mut(), event) {
            answer.push_str(text);
        }
        let Some(save) = self.save.as_mut() else { return };
        match event {
            ChatEvent::Text(text) => save.content.push_str(text),
            ChatEvent::Reasoning(text) => save.reasoning.push_str(text),
            ChatEvent::ToolCall(call) => save.tool_calls.push(call.clone()),
            // The server's own tool calls are not the answer's.
            ChatEvent::Usage(_) | ChatEvent::Finish(_) | ChatEvent::ReasoningSignature(_) | ChatEvent::Step(_) => {}
        }
    }

    /// The upstream refused before answering: record (and save) the failure now.
    pub(super) async fn close_with_error(mut self, error: ProviderError) {
        self.ending = Some((MessageStatus::Error, Some(error)));
        self.close().await;
    }

    pub(super) async fn close(self) {
        let (status, error) = self.ending.unwrap_or((MessageStatus::Stopped, None));
        let mut answer = FinishedAnswer {
            status,
            content: String::new(),
            reasoning: String::new(),
            error_kind: error.as_ref().map(|e| e.kind.code().to_owned()),
            error_message: error.as_ref().map(|e| e.detail.chars().take(500).collect()),
            provider: Some(self.provider_id).filter(|id| !id.is_empty()),
            model: Some(self.model_id).filter(|id| !id.is_empty()),
            usage: self.usage,
            ttft_ms: self.ttft.map(|t| t.as_millis() as i64),
            duration_ms: Some(self.started.elapsed().as_millis() as i64),
            updated_at: Timestamp::now(),
        };
        if let Some(error) = &error {
            tracing::info!(user = %self.user, %error, "an API answer failed");
        }
        crate::generation::metrics::finished(&answer);
        match &self.archive {
            Some((question, text)) => {
                let archived = FinishedAnswer { content: text.clone(), ..answer.clone() };
                self.gateway.usage.record_exchange(self.user, self.assistant, &archived, Some(question)).await;
            }
            None => self.gateway.usage.record(self.user, self.assistant, &answer).await,
        }
        if let Some(save) = self.save {
            answer.content = answer_text(&save.content, &save.tool_calls);
            answer.reasoning = save.reasoning.clone();
            if let Err(error) = self.gateway.save_api_exchange(self.user, &save, &answer).await {
                tracing::warn!(topic = %save.topic_id, %error, "could not save an API exchange");
            }
        }
    }
}

/// The answer as a saved message shows it: its text, then its tool calls.
fn answer_text(content: &str, tool_calls: &[ToolCall]) -> String {
    let calls = tool_calls.iter().map(|call| format!("`{}({})`", call.name, call.arguments));
    let parts: Vec<String> = std::iter::once(content.to_owned()).chain(calls).filter(|p| !p.is_empty()).collect();
    parts.join("\n\n")
}

impl Gateway {
    /// Stores an API exchange as a new topic of `user`: the question, then the finished answer
    /// (the topic and both messages in one transaction, then the answer's final state).
    async fn save_api_exchange(
        &self,
        user: UserId,
        save: &SavePlan,
        answer: &FinishedAnswer,
    ) -> crate::error::CoreResult<()> {
        let now = Timestamp::now();
        let topic = Topic {
            id: save.topic_id,
            user_id: user,
            assistant_id: save.assistant_id,
            title: String::new(),
            active_leaf_id: None,
            pinned: false,
            created_at: now,
            updated_at: now,
        };
        let question = NewMessage {
            id: MessageId::new(),
            user_id: user,
            topic_id: topic.id,
            parent_id: None,
            role: MessageRole::User,
            content: save.question.clone(),
            status: MessageStatus::Complete,
            provider: None,
            model: None,
            created_at: now,
            generating_by: None,
        };
        // An answer is only ever finished from `generating`: insert it so, finish it at once.
        let reply = NewMessage {
            id: MessageId::new(),
            parent_id: Some(question.id),
            role: MessageRole::Assistant,
            content: String::new(),
            status: MessageStatus::Generating,
            provider: answer.provider.clone(),
            model: answer.model.clone(),
            generating_by: Some(self.generations.settings().node_id.clone()),
            ..question
        };
        let writes = [
            TreeWrite::InsertTopic(&topic),
            TreeWrite::InsertMessage(&question),
            TreeWrite::InsertMessage(&reply),
            TreeWrite::SetActiveLeaf { topic: topic.id, leaf: Some(reply.id), at: now },
        ];
        self.store.write_tree(user, &writes).await?;
        self.store.finish_message(user, reply.id, answer).await?;
        Ok(())
    }
}
