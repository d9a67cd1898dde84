//! Chatting: send, regenerate, edit, delete and stop. Every answer is a generation job; these
//! methods only prepare the message tree and start it.

use super::knowledge::tool as knowledge_tool;
use crate::domain::TopicFeature;
use crate::tools::{ToolOffer, Toolbox};
use std::sync::Arc;

use std::collections::HashMap;

use super::materials::{self, Reader};
use super::providers::Choices;
use super::{Assistants, Knowledge, Providers, ResolvedModel, Usage};
use crate::domain::{Assistant, Message, MessageRole, MessageStatus, NewMessage, Source, StoredFile, Topic, User};
use crate::error::{CoreError, CoreResult};
use crate::generation::{Attempt, Generations, JobSpec, Subscription};
use crate::id::{AssistantId, FileId, MessageId, TopicId, UserId};
use crate::llm::{ChatClient, ChatMessage, ChatRequest, ChatRole};
use crate::prompt::{Materials, PromptContext, build_chat_messages, clean_title, sent_history, title_request};
use crate::store::{FinishedAnswer, Store, TreeWrite};
use crate::time::Timestamp;
use crate::tree::MessageTree;

/// A message typed by the user.
#[derive(Debug, Clone)]
pub struct SendMessage {
    pub assistant_id: AssistantId,
    /// `None` starts a new topic.
    pub topic_id: Option<TopicId>,
    pub content: String,
    /// The user's files attached to the message, in order (images, documents).
    pub file_ids: Vec<FileId>,
    /// The user's interface language, for placeholders and the topic title.
    pub language: String,
}

/// The most files one message may carry.
pub const MAX_FILES_PER_MESSAGE: usize = 20;

/// What a send (or edit) created.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub topic: Topic,
    pub created_topic: bool,
    pub user_message: Option<Message>,
    /// The files attached to `user_message`.
    pub files: Vec<StoredFile>,
    pub answer: Message,
}

/// How to follow an answer: live, or already finished.
#[derive(Debug)]
pub enum Attachment {
    Live(Subscription),
    Finished(Message),
}

/// Sending, regenerating, editing, deleting and stopping: every answer is a generation job.
/// Cheap to clone.
#[derive(Clone)]
pub struct Chat {
    pub(super) store: Arc<dyn Store>,
    pub(super) chat_client: Arc<dyn ChatClient>,
    pub(super) generations: Generations,
    pub(super) providers: Providers,
    pub(super) assistants: Assistants,
    pub(super) usage: Usage,
    pub(super) reader: Reader,
    pub(super) knowledge: Knowledge,
    pub(super) tools: super::Tools,
    pub(super) instance: super::Instance,
    max_message_chars: usize,
}

/// Who is asking and what they can reach, read once per action.
pub(super) struct Asker {
    pub(super) person: User,
    pub(super) choices: Choices,
}

impl Chat {
    #[expect(clippy::too_many_arguments, reason = "the composition root hands each service its parts")]
    pub(crate) fn new(
        store: Arc<dyn Store>,
        chat_client: Arc<dyn ChatClient>,
        generations: Generations,
        providers: Providers,
        assistants: Assistants,
        usage: Usage,
        reader: Reader,
        knowledge: Knowledge,
        tools: super::Tools,
        instance: super::Instance,
        max_message_chars: usize,
    ) -> Self {
        Self {
            instance,
            store,
            chat_client,
            generations,
            providers,
            assistants,
            usage,
            reader,
            knowledge,
            tools,
            max_message_chars,
        }
    }

    /// Name and description of every tool of the server (not the servers people add).
    pub fn tool_catalogue(&self) -> Vec<(String, String)> {
        let mut tools = self.tools.shelf_catalogue();
        let knowledge = knowledge_tool::spec();
        tools.push((knowledge.name, knowledge.description));
        tools
    }

    /// Name and description of every tool this person may give an assistant: the server's
    /// that their role allows, the shared MCP servers it allows and their own.
    pub async fn tools_for(&self, person: &User) -> CoreResult<Vec<ToolOffer>> {
        let snapshot = self.instance.snapshot().await?;
        let allowed = snapshot.tools_for(person);
        let mut tools: Vec<ToolOffer> = self
            .tool_catalogue()
            .into_iter()
            .filter(|(name, _)| allowed.is_none_or(|allowed| allowed.contains(name)))
            .map(|(name, description)| ToolOffer { label: name.clone(), name, description })
            .collect();
        tools.extend(self.tools.stored_choices(person, allowed).await?);
        Ok(tools)
    }

    /// The user, their quota checked, and the providers they can reach.
    pub(super) async fn asker(&self, user: UserId) -> CoreResult<Asker> {
        let person = super::existing_user(self.store.as_ref(), user).await?;
        let (quota, choices) = tokio::join!(self.usage.check_quota(&person), self.providers.choices(&person));
        quota?;
        Ok(Asker { person, choices: choices? })
    }

    /// The model an assistant asks for, as `asker` may use it.
    pub(super) async fn resolve(&self, asker: &Asker, assistant: &Assistant) -> CoreResult<ResolvedModel> {
        let config = &assistant.config;
        self.providers.resolve_model(&asker.choices, &config.provider, &config.model).await
    }

    /// Stores the user's message, creates the answer placeholder and starts generating.
    pub async fn send_message(&self, user: UserId, send: SendMessage) -> CoreResult<Exchange> {
        let content = self.checked_content(&send.content, !send.file_ids.is_empty())?;
        let (assistant, asker, files) = tokio::join!(
            self.assistants.assistant(user, send.assistant_id),
            self.asker(user),
            self.attached_files(user, &send.file_ids)
        );
        let (assistant, asker, files) = (assistant?, asker?, files?);
        let (topic, created_topic, parent) = match send.topic_id {
            Some(id) => {
                let topic = self.assistants.topic(user, id).await?;
                if topic.assistant_id != assistant.id {
                    return Err(CoreError::NotFound("topic"));
                }
                let leaf = self.visible_leaf(user, &topic).await?;
                (topic, false, leaf)
            }
            None => {
                let now = Timestamp::now();
                let topic = Topic {
                    id: TopicId::new(),
                    user_id: user,
                    assistant_id: assistant.id,
                    title: String::new(),
                    active_leaf_id: None,
                    pinned: false,
                    created_at: now,
                    updated_at: now,
                };
                (topic, true, None)
            }
        };
        if !created_topic && self.topic_busy(user, topic.id).await? {
            return Err(CoreError::Conflict("generation_running"));
        }
        // The quota and the model are checked before anything is written.
        let resolved = self.resolve(&asker, &assistant).await?;
        if !resolved.model.vision && files.iter().any(materials::is_image) {
            return Err(CoreError::invalid_with("model_no_vision", resolved.model.label().to_owned()));
        }
        let question = new_message(user, topic.id, parent, MessageRole::User, content, None);
        let mut writes = Vec::with_capacity(4 + files.len());
        if created_topic {
            writes.push(TreeWrite::InsertTopic(&topic));
        }
        writes.push(TreeWrite::InsertMessage(&question));
        writes.extend(attach_writes(question.id, &files));
        let question = question.stored();
        let question_and_writes = Question::New(&question, writes, files.clone());
        let answer =
            self.start_answer(&asker, &assistant, &topic, question_and_writes, &send.language, resolved).await?;
        let topic = with_leaf(topic, &answer);
        Ok(Exchange { topic, created_topic, user_message: Some(question), files, answer })
    }

    /// Generates a new answer beside an existing one (a sibling under the same question).
    pub async fn regenerate(&self, user: UserId, answer_id: MessageId, language: &str) -> CoreResult<Exchange> {
        let answer = self.assistants.message(user, answer_id).await?;
        let question_id = match (answer.role, answer.parent_id) {
            (MessageRole::Assistant, Some(parent)) => parent,
            _ => return Err(CoreError::invalid("regenerate_question")),
        };
        let question = self.assistants.message(user, question_id).await?;
        self.answer_question(user, Question::Stored(&question), language).await
    }

    /// Continues an answer that was cut off (stopped, failed, interrupted): a new version of it
    /// starts with its text, and the model goes on from where it ended. The cut-off version
    /// stays reachable as a sibling.
    pub async fn continue_answer(&self, user: UserId, answer_id: MessageId, language: &str) -> CoreResult<Exchange> {
        let partial = self.assistants.message(user, answer_id).await?;
        let question_id = match (partial.role, partial.parent_id) {
            (MessageRole::Assistant, Some(parent)) => parent,
            _ => return Err(CoreError::invalid("continue_answer")),
        };
        if partial.status == MessageStatus::Generating || partial.content.trim().is_empty() {
            return Err(CoreError::invalid("continue_answer"));
        }
        let question = self.assistants.message(user, question_id).await?;
        self.answer_question(user, Question::Continued(&question, &partial), language).await
    }

    /// Edits a message as a new sibling, so the original stays reachable. Editing a question
    /// generates a new answer; editing an answer just stores the corrected text.
    pub async fn edit_message(
        &self,
        user: UserId,
        id: MessageId,
        content: &str,
        language: &str,
    ) -> CoreResult<Exchange> {
        let original = self.assistants.message(user, id).await?;
        let files = self.store.message_files(user, original.id).await?;
        let content = self.checked_content(content, !files.is_empty())?;
        let topic = self.assistants.topic(user, original.topic_id).await?;
        if self.topic_busy(user, topic.id).await? {
            return Err(CoreError::Conflict("generation_running"));
        }
        let edited = new_message(user, topic.id, original.parent_id, original.role, content, original.model.clone());
        match original.role {
            MessageRole::User => {
                let stored = edited.stored();
                let mut writes = vec![TreeWrite::InsertMessage(&edited)];
                writes.extend(attach_writes(edited.id, &files));
                self.answer_question(user, Question::New(&stored, writes, files), language).await
            }
            MessageRole::Assistant => {
                let at = Timestamp::now();
                let writes = [
                    TreeWrite::InsertMessage(&edited),
                    TreeWrite::SetActiveLeaf { topic: topic.id, leaf: Some(edited.id), at },
                ];
                self.store.write_tree(user, &writes).await?;
                let answer = edited.stored();
                let topic = with_leaf(topic, &answer);
                Ok(Exchange { topic, created_topic: false, user_message: None, files: Vec::new(), answer })
            }
        }
    }

    /// Deletes a message and everything below it; a running answer is stopped first. The
    /// deletion and the topic's new visible leaf are written together.
    pub async fn delete_message(&self, user: UserId, id: MessageId) -> CoreResult<Topic> {
        let message = self.assistants.message(user, id).await?;
        let topic = self.assistants.topic(user, message.topic_id).await?;
        self.assistants.stop_topic_generations(user, topic.id).await?;
        let messages = self.store.list_messages(user, topic.id).await?;
        // Messages come parents first: one pass finds the whole subtree.
        let mut doomed = std::collections::HashSet::from([id]);
        for candidate in &messages {
            if candidate.parent_id.is_some_and(|parent| doomed.contains(&parent)) {
                doomed.insert(candidate.id);
            }
        }
        let remaining: Vec<Message> = messages.into_iter().filter(|m| !doomed.contains(&m.id)).collect();
        let tree = MessageTree::new(&remaining);
        let delete = TreeWrite::DeleteSubtree(id);
        let active_leaf_survives = topic.active_leaf_id.is_some_and(|leaf| tree.get(leaf).is_some());
        if active_leaf_survives {
            self.store.write_tree(user, &[delete]).await?;
        } else {
            let leaf = match message.parent_id {
                Some(parent) if tree.get(parent).is_some() => Some(tree.latest_leaf_under(parent)),
                _ => tree.branch(None).last().map(|entry| entry.message.id),
            };
            let set_leaf = TreeWrite::SetActiveLeaf { topic: topic.id, leaf, at: Timestamp::now() };
            self.store.write_tree(user, &[delete, set_leaf]).await?;
        }
        self.assistants.topic(user, topic.id).await
    }

    /// Stops a running answer, keeping what arrived. Stopping a finished answer does nothing.
    pub async fn stop_generation(&self, user: UserId, id: MessageId) -> CoreResult<()> {
        self.assistants.message(user, id).await?;
        self.generations.stop_anywhere(self.store.clone(), user, id).await?;
        Ok(())
    }

    /// Follows an answer: a live subscription while it generates, else the stored message.
    pub async fn attach(&self, user: UserId, id: MessageId) -> CoreResult<Attachment> {
        if let Some(subscription) = self.generations.subscribe(user, id) {
            return Ok(Attachment::Live(subscription));
        }
        let message = self.assistants.message(user, id).await?;
        if message.status == MessageStatus::Generating
            && let Some(subscription) = self.generations.subscribe_remote(self.store.clone(), message.clone()).await
        {
            // Generating on another node: follow it through the event bus.
            return Ok(Attachment::Live(subscription));
        }
        Ok(Attachment::Finished(message))
    }

    async fn answer_question(&self, user: UserId, question: Question<'_>, language: &str) -> CoreResult<Exchange> {
        let (topic, asker) = tokio::join!(self.assistants.topic(user, question.message().topic_id), self.asker(user));
        let (topic, asker) = (topic?, asker?);
        if self.topic_busy(user, topic.id).await? {
            return Err(CoreError::Conflict("generation_running"));
        }
        let assistant = self.assistants.assistant(user, topic.assistant_id).await?;
        let resolved = self.resolve(&asker, &assistant).await?;
        let answer = self.start_answer(&asker, &assistant, &topic, question, language, resolved).await?;
        let topic = with_leaf(topic, &answer);
        Ok(Exchange { topic, created_topic: false, user_message: None, files: Vec::new(), answer })
    }

    /// Stores the answer placeholder under the question (with the question itself, when it is
    /// new, in the same transaction), makes it the visible leaf and starts the generation job.
    async fn start_answer(
        &self,
        asker: &Asker,
        assistant: &Assistant,
        topic: &Topic,
        question: Question<'_>,
        language: &str,
        resolved: ResolvedModel,
    ) -> CoreResult<Message> {
        let user = asker.person.id;
        let (question, mut writes, stored, new_files, continued) = match question {
            Question::Stored(message) => (message, Vec::with_capacity(2), true, Vec::new(), None),
            Question::Continued(message, partial) => (message, Vec::with_capacity(2), true, Vec::new(), Some(partial)),
            Question::New(message, writes, files) => (message, writes, false, files, None),
        };
        // The branch up to the question: a new question at the root (a new topic, say) is all
        // of it; otherwise the stored messages, plus the question when it is new.
        let mut messages = if !stored && question.parent_id.is_none() {
            Vec::new()
        } else {
            self.store.list_messages(user, topic.id).await?
        };
        if !stored {
            messages.push(question.clone());
        }
        let branch: Vec<Message> =
            MessageTree::new(&messages).branch(Some(question.id)).into_iter().map(|entry| entry.message).collect();
        let context = PromptContext {
            now: jiff::Zoned::now(),
            model: resolved.model.id.clone(),
            username: asker.person.name.clone(),
            language: language.to_owned(),
        };
        let mut files = if stored || messages.len() > 1 {
            materials::by_message(self.store.topic_message_files(user, topic.id).await?)
        } else {
            HashMap::new()
        };
        if !new_files.is_empty() {
            files.insert(question.id, new_files);
        }
        let (mut materials, mut sources) = self.materials(assistant, &branch, &files, question, &resolved).await?;
        // The assistant's knowledge: the passages that best answer the question, as sources.
        let bases = self.knowledge.assistant_bases(user, assistant.id).await?;
        // A topic uses its assistant's knowledge and tools unless it turned them off there.
        let off = self.store.topic_features_off(user, topic.id).await?;
        if !bases.is_empty() && !off.contains(&TopicFeature::Knowledge) {
            let mut budget = materials::files_budget(&resolved.model) / 2;
            let first = sources.len() as u32 + 1;
            let reach = &asker.choices.reach;
            let person = &asker.person;
            let found = self.knowledge.retrieve(person, reach, &bases, &question.content, &mut budget, first).await?;
            materials.entry(question.id).or_default().text.push_str(&super::knowledge::sources_prompt(&found));
            sources.extend(found);
        }
        let has_images = materials.values().any(|added| !added.images.is_empty());
        let mut prompt = build_chat_messages(&assistant.config, &branch, &context, &materials);
        // A compressing assistant's messages past the limit go as their summary.
        if let Some(summary) = self.summary_for(user, assistant, topic.id, &branch).await? {
            crate::prompt::insert_summary(&mut prompt, &summary);
        }
        // The assistant's tools, for a model that calls tools.
        let answer_id = MessageId::new();
        let toolbox = if resolved.model.function_calling && !off.contains(&TopicFeature::Tools) {
            let snapshot = self.instance.snapshot().await?;
            let allowed = snapshot.tools_for(&asker.person);
            let reach = &asker.choices.reach;
            self.tools.toolbox(&asker.person, reach, allowed, &assistant.config.tools).await?
        } else {
            None
        };
        let tools = toolbox.as_ref().map(Toolbox::specs).unwrap_or_default();
        let mut attempts = vec![attempt_for(&resolved, &assistant.config, prompt.clone(), &tools)];
        let config = &assistant.config;
        let fallback = self.providers.resolve_exact(&asker.choices, &config.fallback_provider, &config.fallback_model);
        if let Some(fallback) = fallback.await
            && (fallback.provider_id != resolved.provider_id || fallback.model.id != resolved.model.id)
            // A fallback that cannot see the question's images cannot answer it.
            && (fallback.model.vision || !has_images)
        {
            let tools = if fallback.model.function_calling { tools.as_slice() } else { &[] };
            attempts.push(attempt_for(&fallback, config, prompt, tools));
        }
        // A continued answer: the model reads what it wrote and goes on from there.
        let prefix = continued.map(|partial| partial.content.clone()).unwrap_or_default();
        if !prefix.is_empty() {
            for attempt in &mut attempts {
                attempt.request.messages.push(ChatMessage::new(ChatRole::Assistant, prefix.clone()));
                attempt.request.messages.push(ChatMessage::new(ChatRole::User, CONTINUE_PROMPT));
            }
        }
        let answer = NewMessage {
            id: answer_id,
            user_id: user,
            topic_id: topic.id,
            parent_id: Some(question.id),
            role: MessageRole::Assistant,
            content: prefix.clone(),
            status: MessageStatus::Generating,
            provider: Some(resolved.provider_id.clone()),
            model: Some(resolved.model.id.clone()),
            created_at: Timestamp::now(),
            generating_by: Some(self.generations.settings().node_id.clone()),
        };
        writes.push(TreeWrite::InsertMessage(&answer));
        writes.extend(sources.iter().map(|source| TreeWrite::InsertSource { message: answer.id, source }));
        writes.push(TreeWrite::SetActiveLeaf { topic: topic.id, leaf: Some(answer.id), at: answer.created_at });
        self.store.write_tree(user, &writes).await?;

        let needs_title = topic.title.is_empty() && question.parent_id.is_none();
        let next_source = sources.len() as u32 + 1;
        let spec = JobSpec {
            user_id: user,
            topic_id: topic.id,
            message_id: answer.id,
            attempts,
            toolbox,
            next_source,
            prefix,
        };
        let chat = self.clone();
        let question_text = question.content.clone();
        let language = language.to_owned();
        let topic_id = topic.id;
        let assistant_id = assistant.id;
        let compress = assistant.config.compress_history && assistant.config.history_limit.is_some();
        self.generations.start(
            spec,
            self.store.clone(),
            self.chat_client.clone(),
            move |finished: FinishedAnswer| async move {
                chat.usage.record_exchange(user, Some(assistant_id), &finished, Some(&question_text)).await;
                if needs_title && finished.status == MessageStatus::Complete {
                    chat.title_topic(user, topic_id, &question_text, &finished.content, &language, &resolved).await;
                }
                if compress && finished.status == MessageStatus::Complete {
                    chat.summarise_after_answer(user, topic_id, assistant_id, &resolved).await;
                }
            },
        );
        Ok(answer.stored())
    }

    /// Names a new topic from its first exchange, with the model that answered. Failures are
    /// logged: a topic without a title is shown by its first words instead.
    async fn title_topic(
        &self,
        user: UserId,
        topic: TopicId,
        question: &str,
        answer: &str,
        language: &str,
        resolved: &ResolvedModel,
    ) {
        let params = crate::domain::ModelParams { temperature: Some(0.3), max_tokens: Some(60), ..Default::default() };
        let messages = title_request(question, answer, language);
        let title = match self.ask_once(resolved, messages, params, std::time::Duration::from_secs(30)).await {
            Ok((text, _)) => clean_title(&text),
            Err(error) => {
                tracing::info!(%topic, %error, "could not title the topic");
                return;
            }
        };
        if title.is_empty() {
            return;
        }
        if let Err(error) = self.store.set_title_if_empty(user, topic, &title).await {
            tracing::warn!(%topic, %error, "could not store the topic title");
        }
    }

    /// Whether an answer of the topic is generating, on this node or another.
    async fn topic_busy(&self, user: UserId, topic: TopicId) -> CoreResult<bool> {
        Ok(self.generations.topic_busy(user, topic) || self.store.topic_generating(user, topic).await?)
    }

    async fn visible_leaf(&self, user: UserId, topic: &Topic) -> CoreResult<Option<MessageId>> {
        if let Some(leaf) = topic.active_leaf_id
            && self.store.get_message(user, leaf).await?.is_some()
        {
            return Ok(Some(leaf));
        }
        let messages = self.store.list_messages(user, topic.id).await?;
        Ok(MessageTree::new(&messages).branch(None).last().map(|entry| entry.message.id))
    }

    /// The user's files to attach to a message: each must be theirs (another user's id is not
    /// found), each once, at most [`MAX_FILES_PER_MESSAGE`].
    async fn attached_files(&self, user: UserId, ids: &[FileId]) -> CoreResult<Vec<StoredFile>> {
        let mut unique: Vec<FileId> = Vec::with_capacity(ids.len());
        for id in ids {
            if !unique.contains(id) {
                unique.push(*id);
            }
        }
        if unique.len() > MAX_FILES_PER_MESSAGE {
            return Err(CoreError::invalid_with("message_files", MAX_FILES_PER_MESSAGE.to_string()));
        }
        let mut files = Vec::with_capacity(unique.len());
        for id in unique {
            files.push(self.store.get_file(user, id).await?.ok_or(CoreError::NotFound("file"))?);
        }
        Ok(files)
    }

    /// What the files of the messages a request sends add to them, the question's first (it
    /// has the first claim on the context window). A file of the question that cannot be
    /// read fails the request with its reason; one of an earlier message is only named.
    async fn materials(
        &self,
        assistant: &Assistant,
        branch: &[Message],
        files: &HashMap<MessageId, Vec<StoredFile>>,
        question: &Message,
        resolved: &ResolvedModel,
    ) -> CoreResult<(HashMap<MessageId, Materials>, Vec<Source>)> {
        let mut added = HashMap::new();
        let mut sources = Vec::new();
        if files.is_empty() {
            return Ok((added, sources));
        }
        let mut budget = materials::files_budget(&resolved.model);
        let history = sent_history(&assistant.config, branch, |id| files.contains_key(&id));
        let protocol = resolved.endpoint.protocol;
        for message in history.iter().rev() {
            let Some(attached) = files.get(&message.id) else { continue };
            // Only the question's excerpts are its answer's sources.
            let mut excerpts = Vec::new();
            let question_text = &question.content;
            let read = self
                .reader
                .materials(attached, &resolved.model, protocol, question_text, &mut budget, &mut excerpts)
                .await;
            if message.id == question.id {
                sources = excerpts;
            }
            let materials = match read {
                Ok(materials) => materials,
                Err(error) if message.id == question.id => return Err(error),
                Err(error) => {
                    tracing::info!(message = %message.id, %error, "an earlier message's file could not be read");
                    let names: Vec<&str> = attached.iter().map(|file| file.name.as_str()).collect();
                    Materials {
                        text: format!("\n\n[files no longer readable: {}]", names.join(", ")),
                        ..Materials::default()
                    }
                }
            };
            added.insert(message.id, materials);
        }
        Ok((added, sources))
    }

    fn checked_content(&self, content: &str, has_files: bool) -> CoreResult<String> {
        let trimmed = content.trim();
        if trimmed.is_empty() && !has_files {
            return Err(CoreError::invalid("message_empty"));
        }
        if trimmed.chars().count() > self.max_message_chars {
            return Err(CoreError::invalid_with("message_length", self.max_message_chars.to_string()));
        }
        Ok(trimmed.to_owned())
    }
}

/// What a model is told to continue a cut-off answer with (the answer's text before it).
const CONTINUE_PROMPT: &str = "Continue your previous answer exactly where it stopped. Do not repeat any of it and \
                               do not add a preamble: your next words follow its last ones.";

/// The question an answer is for: already stored (regenerate), or new and still to be written
/// together with the answer (send, edit), with the writes that go before it.
enum Question<'a> {
    Stored(&'a Message),
    /// A stored question whose answer (the second message) was cut off: the new answer
    /// starts with that answer's text and the model continues it.
    Continued(&'a Message, &'a Message),
    /// A new question, the writes that store it, and its files.
    New(&'a Message, Vec<TreeWrite<'a>>, Vec<StoredFile>),
}

impl Question<'_> {
    fn message(&self) -> &Message {
        match self {
            Question::Stored(message) | Question::Continued(message, _) | Question::New(message, _, _) => message,
        }
    }
}

/// The writes attaching `files` to a new message, in order.
fn attach_writes<'w>(message: MessageId, files: &[StoredFile]) -> Vec<TreeWrite<'w>> {
    let attach = |(position, file): (usize, &StoredFile)| TreeWrite::AttachFile {
        message,
        file: file.id,
        position: position as u32,
    };
    files.iter().enumerate().map(attach).collect()
}

/// A new message of the user's or a corrected answer: complete, stored as written.
pub(super) fn new_message(
    user: UserId,
    topic: TopicId,
    parent: Option<MessageId>,
    role: MessageRole,
    content: String,
    model: Option<String>,
) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        user_id: user,
        topic_id: topic,
        parent_id: parent,
        role,
        content,
        status: MessageStatus::Complete,
        provider: None,
        model,
        created_at: Timestamp::now(),
        generating_by: None,
    }
}

/// The topic as it is once `message` became its visible leaf.
fn with_leaf(mut topic: Topic, message: &Message) -> Topic {
    topic.active_leaf_id = Some(message.id);
    topic.updated_at = message.created_at;
    topic
}

/// The request for one provider and model: the same conversation, only the parameters the
/// model accepts, and reasoning effort only for reasoning models.
fn attempt_for(
    resolved: &ResolvedModel,
    config: &crate::domain::AssistantConfig,
    messages: Vec<crate::llm::ChatMessage>,
    tools: &[crate::llm::ToolSpec],
) -> Attempt {
    let request = ChatRequest {
        model: resolved.model.upstream_name().to_owned(),
        messages,
        tools: tools.to_vec(),
        params: resolved.model.accepted_params(&config.params),
        reasoning: config
            .reasoning_effort
            .filter(|_| resolved.model.reasoning)
            .map(|effort| crate::llm::ReasoningConfig { effort: Some(effort), budget_tokens: None }),
        ..ChatRequest::default()
    };
    Attempt {
        provider_id: resolved.provider_id.clone(),
        model_id: resolved.model.id.clone(),
        endpoint: resolved.endpoint.clone(),
        request,
    }
}
