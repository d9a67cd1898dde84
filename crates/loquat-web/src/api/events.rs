//! The live view of an answer as server-sent events. `render` carries the answer so far,
//! rendered and sanitized on the server (off the async workers) at most every 100 ms, less
//! often while renders are slow; `done` carries the final body; `error` (a translated message)
//! ends a stream that cannot go on. A subscriber that disconnects only unsubscribes: the
//! generation goes on.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use loquat_core::ErrorKind;
use loquat_core::generation::{GenerationEvent, Subscription};
use loquat_core::id::{MessageId, UserId};
use loquat_core::service::Attachment;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use super::chat::lone_entry;
use crate::AppState;
use crate::context::Viewer;
use crate::error::WebResult;
use crate::i18n::Tr;
use crate::pages::chat::{MessageBodyFragment, parse_id};
use crate::views::{MessageView, interleaved};
use loquat_core::domain::ToolStep;

/// The shortest interval between two `render` events for one subscriber. A render that takes
/// longer (a long answer, or a queue of renders) stretches the interval to twice its time, so
/// one subscriber never keeps a render slot busy.
const RENDER_INTERVAL: Duration = Duration::from_millis(100);

pub async fn message_events(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let id: MessageId = parse_id(&id, &viewer)?;
    let attachment = state.services.chat.attach(viewer.user.id, id).await.map_err(viewer.fail())?;
    let (sender, receiver) = mpsc::channel(16);
    let follower = Follower { state, user: viewer.user.id, id, tr: viewer.tr, sender };
    tokio::spawn(async move {
        match attachment {
            Attachment::Finished(_) => follower.send_done().await,
            Attachment::Live(subscription) => follower.follow(subscription).await,
        }
    });
    Ok(Sse::new(ReceiverStream::new(receiver)).keep_alive(KeepAlive::default()))
}

struct Follower {
    state: AppState,
    user: UserId,
    id: MessageId,
    tr: Tr,
    sender: mpsc::Sender<Result<Event, Infallible>>,
}

impl Follower {
    async fn follow(&self, subscription: Subscription) {
        let Subscription { snapshot, mut events } = subscription;
        if snapshot.finished.is_some() {
            return self.send_done().await;
        }
        let mut content = snapshot.content;
        let mut reasoning = snapshot.reasoning;
        let mut steps = snapshot.steps;
        let mut pending = !content.is_empty() || !reasoning.is_empty() || !steps.is_empty();
        let mut due = Instant::now();
        loop {
            if pending && Instant::now() >= due {
                let started = Instant::now();
                if !self.send_render(&content, &reasoning, &steps).await {
                    return;
                }
                pending = false;
                due = Instant::now() + RENDER_INTERVAL.max(started.elapsed() * 2);
            }
            tokio::select! {
                received = events.recv() => match received {
                    Ok(GenerationEvent::Delta { content: more, reasoning: more_reasoning }) => {
                        content.push_str(&more);
                        reasoning.push_str(&more_reasoning);
                        pending = true;
                    }
                    Ok(GenerationEvent::Replace { content: all, reasoning: all_reasoning }) => {
                        content = all;
                        reasoning = all_reasoning;
                        pending = true;
                    }
                    Ok(GenerationEvent::Steps(all)) => {
                        steps = all;
                        pending = true;
                    }
                    Ok(GenerationEvent::Finished(_)) | Err(broadcast::error::RecvError::Closed) => {
                        return self.send_done().await;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // This subscriber fell behind: start again from a fresh snapshot.
                        // (On this node or, through the bus, on another.)
                        match self.state.services.chat.attach(self.user, self.id).await {
                            Ok(Attachment::Live(fresh)) if fresh.snapshot.finished.is_none() => {
                                content = fresh.snapshot.content;
                                reasoning = fresh.snapshot.reasoning;
                                steps = fresh.snapshot.steps;
                                events = fresh.events;
                                pending = true;
                            }
                            _ => return self.send_done().await,
                        }
                    }
                },
                () = tokio::time::sleep_until(due), if pending => {}
                () = self.sender.closed() => return,
            }
        }
    }

    /// Sends the answer so far; false when the stream has ended (the subscriber left, or the
    /// render failed and an `error` event was sent instead).
    async fn send_render(&self, content: &str, reasoning: &str, steps: &[ToolStep]) -> bool {
        // With tool calls, the text is rendered in pieces around them.
        let whole = if steps.is_empty() { content.to_owned() } else { String::new() };
        let rendered = self.state.renderer.streaming(self.id, whole, reasoning.to_owned()).await;
        let Ok(rendered) = rendered else {
            // Already logged by the renderer.
            self.send_error("error.render").await;
            return false;
        };
        let html = match interleaved(&self.state.renderer, content, steps, self.tr).await {
            Some(html) => html,
            None => rendered.html.to_string(),
        };
        let data = serde_json::json!({ "html": html, "reasoning_html": &*rendered.reasoning_html });
        self.sender.send(Ok(Event::default().event("render").data(data.to_string()))).await.is_ok()
    }

    /// Sends the stored final state of the message and ends the stream.
    async fn send_done(&self) {
        let message = match self.state.services.assistants.message(self.user, self.id).await {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(message_id = %self.id, %error, "could not load the finished message");
                let key = if error.kind() == ErrorKind::NotFound { "error.not_found" } else { "error.internal" };
                return self.send_error(key).await;
            }
        };
        let rendered = self.state.renderer.messages([&message]).await.into_iter().next();
        let sources = self.state.services.knowledge.answer_sources(self.user, &message).await.unwrap_or_default();
        let steps = self.state.services.assistants.message_steps(self.user, self.id).await.unwrap_or_default();
        let in_place = interleaved(&self.state.renderer, &message.content, &steps, self.tr).await;
        let view = MessageView::from_entry(&lone_entry(&message), self.tr, rendered.unwrap_or_default())
            .with_steps_in_place(in_place)
            .with_sources(&sources, self.tr);
        let body = match (MessageBodyFragment { tr: self.tr, m: &view }).render() {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(message_id = %self.id, %error, "could not render the finished message");
                return self.send_error("error.render").await;
            }
        };
        let data = serde_json::json!({ "status": view.status, "html": body });
        let _ = self.sender.send(Ok(Event::default().event("done").data(data.to_string()))).await;
    }

    /// Ends the stream with an `error` event: a translated message the page shows with a retry.
    async fn send_error(&self, key: &str) {
        let data = serde_json::json!({ "message": self.tr.t(key) });
        let _ = self.sender.send(Ok(Event::default().event("error").data(data.to_string()))).await;
    }
}
