//! `MemoryStore`: the `MessageStore` contract in memory, as the SQL store keeps it (only a
//! `generating` message changes, every call filters by user, a tree write is all or none), plus
//! a log of the job's writes on tokio's clock and injected failures.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tokio::time::Instant;

use crate::domain::{Message, MessageRole, MessageStatus, NewMessage, TokenUsage, Topic};
use crate::id::{AssistantId, MessageId, TopicId, UserId};
use crate::store::{FinishedAnswer, MessageStore, StoreError, StoreErrorKind, StoreResult, TreeWrite};
use crate::time::Timestamp;

/// One `save_progress` or `finish_message` call, as the store saw it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Write {
    /// When it happened, on tokio's (maybe paused) clock.
    pub at: Instant,
    /// `None` for a progress save, the final status for a finish.
    pub finished: Option<MessageStatus>,
    pub content: String,
    /// Whether it changed the message (false once the message had finished).
    pub applied: bool,
}

#[derive(Default)]
pub(crate) struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default, Clone)]
struct State {
    topics: HashMap<TopicId, Topic>,
    /// In insertion order, which is creation order in the tests.
    messages: Vec<Row>,
    writes: Vec<Write>,
    steps: Vec<crate::domain::ToolStep>,
    failures: u32,
}

#[derive(Clone)]
struct Row {
    message: Message,
    generating_by: Option<String>,
}

impl MemoryStore {
    /// A topic with a question and its answer, `generating` by `node`: what the chat service
    /// stores before it starts a job. Returns the answer.
    pub(crate) async fn seed_answer(&self, user: UserId, node: &str) -> Message {
        let now = Timestamp::now();
        let topic = Topic {
            id: TopicId::new(),
            user_id: user,
            assistant_id: AssistantId::new(),
            title: String::new(),
            active_leaf_id: None,
            pinned: false,
            created_at: now,
            updated_at: now,
        };
        let message = |parent_id, role, status, generating_by: Option<&str>| NewMessage {
            id: MessageId::new(),
            user_id: user,
            topic_id: topic.id,
            parent_id,
            role,
            content: if role == MessageRole::User { "Hello?".to_owned() } else { String::new() },
            status,
            provider: None,
            model: None,
            created_at: now,
            generating_by: generating_by.map(str::to_owned),
        };
        let question = message(None, MessageRole::User, MessageStatus::Complete, None);
        let answer = message(Some(question.id), MessageRole::Assistant, MessageStatus::Generating, Some(node));
        let writes = [
            TreeWrite::InsertTopic(&topic),
            TreeWrite::InsertMessage(&question),
            TreeWrite::InsertMessage(&answer),
            TreeWrite::SetActiveLeaf { topic: topic.id, leaf: Some(answer.id), at: now },
        ];
        self.write_tree(user, &writes).await.expect("a fresh tree is stored");
        answer.stored()
    }

    /// The `save_progress` and `finish_message` calls so far, in order.
    pub(crate) fn writes(&self) -> Vec<Write> {
        self.state().writes.clone()
    }

    /// Makes the next `count` calls fail as if the database were unreachable.
    pub(crate) fn fail_next(&self, count: u32) {
        self.state().failures = count;
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state for one call, or the injected failure.
    fn call(&self) -> StoreResult<MutexGuard<'_, State>> {
        let mut state = self.state();
        if state.failures > 0 {
            state.failures -= 1;
            return Err(StoreError::new(StoreErrorKind::Unavailable, "injected failure"));
        }
        Ok(state)
    }
}

impl State {
    fn generating(&mut self, user: UserId, id: MessageId) -> Option<&mut Message> {
        let row = self.messages.iter_mut().find(|row| row.message.id == id && row.message.user_id == user)?;
        (row.message.status == MessageStatus::Generating).then_some(&mut row.message)
    }

    fn log(&mut self, finished: Option<MessageStatus>, content: &str, applied: bool) {
        self.writes.push(Write { at: Instant::now(), finished, content: content.to_owned(), applied });
    }

    fn apply(&mut self, user: UserId, write: &TreeWrite<'_>) -> StoreResult<u64> {
        let conflict = |what: &str| Err(StoreError::new(StoreErrorKind::Conflict, what.to_owned()));
        match *write {
            TreeWrite::InsertTopic(topic) => {
                if self.topics.contains_key(&topic.id) {
                    return conflict("duplicate topic id");
                }
                self.topics.insert(topic.id, Topic { user_id: user, ..topic.clone() });
            }
            TreeWrite::InsertMessage(new) => {
                if self.messages.iter().any(|row| row.message.id == new.id) {
                    return conflict("duplicate message id");
                }
                // The foreign keys: the topic and the parent must exist (whoever owns them).
                let parent_missing =
                    new.parent_id.is_some_and(|parent| !self.messages.iter().any(|row| row.message.id == parent));
                if !self.topics.contains_key(&new.topic_id) || parent_missing {
                    return conflict("foreign key");
                }
                let message = Message { user_id: user, ..new.stored() };
                self.messages.push(Row { message, generating_by: new.generating_by.clone() });
            }
            // This double keeps no files or sources (the jobs it serves never read them), and
            // no imports (the SQL store's tests cover them).
            TreeWrite::AttachFile { .. } | TreeWrite::InsertSource { .. } | TreeWrite::ImportMessage(_) => {
                return Ok(0);
            }
            TreeWrite::SetActiveLeaf { topic, leaf, at } => {
                let Some(topic) = self.topics.get_mut(&topic).filter(|found| found.user_id == user) else {
                    return Ok(0);
                };
                topic.active_leaf_id = leaf;
                topic.updated_at = at;
            }
            TreeWrite::DeleteSubtree(id) => {
                let owned = |row: &&Row| row.message.user_id == user;
                let mut doomed = Vec::new();
                let mut frontier: Vec<MessageId> = self
                    .messages
                    .iter()
                    .filter(owned)
                    .filter(|row| row.message.id == id)
                    .map(|row| row.message.id)
                    .collect();
                while let Some(parent) = frontier.pop() {
                    doomed.push(parent);
                    let children =
                        self.messages.iter().filter(owned).filter(|row| row.message.parent_id == Some(parent));
                    frontier.extend(children.map(|row| row.message.id));
                }
                self.messages.retain(|row| !doomed.contains(&row.message.id));
                return Ok(doomed.len() as u64);
            }
        }
        Ok(1)
    }
}

/// The usage as the store keeps it (cache counts are not stored).
fn stored_usage(usage: Option<TokenUsage>) -> Option<TokenUsage> {
    usage.map(|usage| TokenUsage {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        reasoning_tokens: usage.reasoning_tokens,
        ..TokenUsage::default()
    })
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn write_tree(&self, user: UserId, writes: &[TreeWrite<'_>]) -> StoreResult<Vec<u64>> {
        let mut state = self.call()?;
        // All or none: the writes go to a copy that replaces the state only if all succeed.
        let mut changed_state = state.clone();
        let changed = writes.iter().map(|write| changed_state.apply(user, write)).collect::<StoreResult<Vec<_>>>()?;
        *state = changed_state;
        Ok(changed)
    }

    async fn insert_message(&self, message: &NewMessage) -> StoreResult<()> {
        self.write_tree(message.user_id, &[TreeWrite::InsertMessage(message)]).await.map(|_| ())
    }

    async fn get_message(&self, user: UserId, id: MessageId) -> StoreResult<Option<Message>> {
        let state = self.call()?;
        let found = state.messages.iter().find(|row| row.message.id == id && row.message.user_id == user);
        Ok(found.map(|row| row.message.clone()))
    }

    async fn list_messages(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<Message>> {
        let state = self.call()?;
        let mut messages: Vec<Message> = state
            .messages
            .iter()
            .filter(|row| row.message.topic_id == topic && row.message.user_id == user)
            .map(|row| row.message.clone())
            .collect();
        messages.sort_by_key(|message| (message.created_at, message.id));
        Ok(messages)
    }

    async fn save_progress(
        &self,
        user: UserId,
        id: MessageId,
        content: &str,
        reasoning: &str,
        updated_at: Timestamp,
    ) -> StoreResult<bool> {
        let mut state = self.call()?;
        let applied = match state.generating(user, id) {
            Some(message) => {
                message.content = content.to_owned();
                message.reasoning = reasoning.to_owned();
                message.updated_at = updated_at;
                true
            }
            None => false,
        };
        state.log(None, content, applied);
        Ok(applied)
    }

    async fn finish_message(&self, user: UserId, id: MessageId, answer: &FinishedAnswer) -> StoreResult<bool> {
        let mut state = self.call()?;
        let applied = match state.generating(user, id) {
            Some(message) => {
                message.status = answer.status;
                message.content = answer.content.clone();
                message.reasoning = answer.reasoning.clone();
                message.error_kind = answer.error_kind.clone();
                message.error_message = answer.error_message.clone();
                // A missing provider or model keeps the one recorded when the answer was created.
                message.provider = answer.provider.clone().or(message.provider.take());
                message.model = answer.model.clone().or(message.model.take());
                message.usage = stored_usage(answer.usage);
                message.ttft_ms = answer.ttft_ms;
                message.duration_ms = answer.duration_ms;
                message.updated_at = answer.updated_at;
                true
            }
            None => false,
        };
        state.log(Some(answer.status), &answer.content, applied);
        Ok(applied)
    }

    async fn delete_message_subtree(&self, user: UserId, id: MessageId) -> StoreResult<u64> {
        let changed = self.write_tree(user, &[TreeWrite::DeleteSubtree(id)]).await?;
        Ok(changed.into_iter().sum())
    }

    async fn interrupt_generating(
        &self,
        node: Option<&str>,
        stale_before: Timestamp,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut state = self.call()?;
        let node = node.unwrap_or("");
        let mut count = 0;
        for row in &mut state.messages {
            let nobody = row.generating_by.as_deref().is_none_or(|by| by == node);
            if row.message.status == MessageStatus::Generating && (nobody || row.message.updated_at < stale_before) {
                row.message.status = MessageStatus::Interrupted;
                row.message.updated_at = now;
                count += 1;
            }
        }
        Ok(count)
    }

    async fn mark_stopped(&self, user: UserId, id: MessageId, now: Timestamp) -> StoreResult<bool> {
        let mut state = self.call()?;
        let Some(message) = state.generating(user, id) else { return Ok(false) };
        message.status = MessageStatus::Stopped;
        message.updated_at = now;
        Ok(true)
    }

    async fn topic_generating(&self, user: UserId, topic: TopicId) -> StoreResult<bool> {
        let state = self.call()?;
        Ok(state.messages.iter().any(|row| {
            row.message.topic_id == topic
                && row.message.user_id == user
                && row.message.status == MessageStatus::Generating
        }))
    }

    async fn save_tool_step(&self, user: UserId, step: &crate::domain::ToolStep) -> StoreResult<bool> {
        let mut state = self.call()?;
        if !state.messages.iter().any(|row| row.message.id == step.message_id && row.message.user_id == user) {
            return Ok(false);
        }
        state.steps.retain(|s| (s.message_id, s.seq) != (step.message_id, step.seq));
        state.steps.push(step.clone());
        state.steps.sort_by_key(|s| (s.message_id, s.seq));
        Ok(true)
    }

    async fn message_tool_steps(&self, user: UserId, message: MessageId) -> StoreResult<Vec<crate::domain::ToolStep>> {
        let state = self.call()?;
        let owned = state.messages.iter().any(|row| row.message.id == message && row.message.user_id == user);
        Ok(state.steps.iter().filter(|s| owned && s.message_id == message).cloned().collect())
    }

    async fn topic_tool_steps(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<crate::domain::ToolStep>> {
        let state = self.call()?;
        let answers: Vec<MessageId> = state
            .messages
            .iter()
            .filter(|row| row.message.topic_id == topic && row.message.user_id == user)
            .map(|row| row.message.id)
            .collect();
        Ok(state.steps.iter().filter(|s| answers.contains(&s.message_id)).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::finished_answer;

    #[tokio::test]
    async fn only_a_generating_message_of_its_user_changes() {
        let store = MemoryStore::default();
        let user = UserId::new();
        let answer = store.seed_answer(user, "node-a").await;
        let stranger = UserId::new();
        assert!(!store.save_progress(stranger, answer.id, "x", "", Timestamp::now()).await.expect("saves"));
        assert!(store.save_progress(user, answer.id, "Hel", "", Timestamp::now()).await.expect("saves"));
        assert!(
            store
                .finish_message(user, answer.id, &finished_answer(MessageStatus::Complete, "Hello"))
                .await
                .expect("ok")
        );
        // Once finished, nothing changes it any more.
        assert!(!store.save_progress(user, answer.id, "late", "", Timestamp::now()).await.expect("saves"));
        assert!(!store.finish_message(user, answer.id, &finished_answer(MessageStatus::Error, "")).await.expect("ok"));
        assert!(!store.mark_stopped(user, answer.id, Timestamp::now()).await.expect("ok"));
        let stored = store.get_message(user, answer.id).await.expect("reads").expect("exists");
        assert_eq!((stored.status, stored.content.as_str()), (MessageStatus::Complete, "Hello"));
        assert_eq!(store.get_message(stranger, answer.id).await.expect("reads"), None);
        let applied: Vec<bool> = store.writes().iter().map(|write| write.applied).collect();
        assert_eq!(applied, [false, true, true, false, false]);
    }

    #[tokio::test]
    async fn tree_writes_are_all_or_none_and_subtrees_go_together() {
        let store = MemoryStore::default();
        let user = UserId::new();
        let answer = store.seed_answer(user, "node-a").await;
        let reply = |parent_id| NewMessage {
            id: MessageId::new(),
            user_id: user,
            topic_id: answer.topic_id,
            parent_id,
            role: MessageRole::User,
            content: "And then?".to_owned(),
            status: MessageStatus::Complete,
            provider: None,
            model: None,
            created_at: Timestamp::now(),
            generating_by: None,
        };
        let (fine, orphan) = (reply(Some(answer.id)), reply(Some(MessageId::new())));
        let refused =
            store.write_tree(user, &[TreeWrite::InsertMessage(&fine), TreeWrite::InsertMessage(&orphan)]).await;
        assert_eq!(refused.err().map(|error| error.kind), Some(StoreErrorKind::Conflict));
        assert_eq!(store.list_messages(user, answer.topic_id).await.expect("reads").len(), 2, "nothing was written");
        store.insert_message(&fine).await.expect("stored");
        let question = answer.parent_id.expect("a question");
        assert_eq!(store.delete_message_subtree(UserId::new(), question).await.expect("deletes"), 0);
        assert_eq!(store.delete_message_subtree(user, question).await.expect("deletes"), 3);
        assert!(!store.topic_generating(user, answer.topic_id).await.expect("reads"));
    }

    #[tokio::test]
    async fn interrupting_spares_live_nodes_and_injected_failures_pass() {
        let store = MemoryStore::default();
        let user = UserId::new();
        let mine = store.seed_answer(user, "node-a").await;
        let theirs = store.seed_answer(user, "node-b").await;
        store.fail_next(1);
        assert!(store.interrupt_generating(Some("node-a"), Timestamp(0), Timestamp::now()).await.is_err());
        assert_eq!(store.interrupt_generating(Some("node-a"), Timestamp(0), Timestamp::now()).await.expect("ok"), 1);
        let status = |id| {
            let store = &store;
            async move { store.get_message(user, id).await.expect("reads").expect("exists").status }
        };
        assert_eq!(status(mine.id).await, MessageStatus::Interrupted);
        assert_eq!(status(theirs.id).await, MessageStatus::Generating);
        // A node whose heartbeat is older than the cut-off is presumed dead.
        let later = Timestamp(Timestamp::now().0 + 60_000);
        assert_eq!(store.interrupt_generating(Some("node-a"), later, Timestamp::now()).await.expect("ok"), 1);
        assert_eq!(status(theirs.id).await, MessageStatus::Interrupted);
    }
}
