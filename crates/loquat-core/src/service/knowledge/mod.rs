//! Knowledge bases: a user's documents grouped for an assistant to answer from, each document
//! read in the background (`ingest.rs`), searched by keywords and, with an embedding model,
//! by meaning too (`index.rs`); the passages found become the numbered sources of an answer.

mod index;
mod ingest;
pub(crate) mod tool;

use std::collections::HashMap;
use std::sync::Arc;

use loquat_files::Blobs;
use tokio::sync::Notify;

use super::Providers;
use super::instance::{Instance, Snapshot};
use super::providers::Reach;
use crate::domain::{Ingestion, KnowledgeBase, Source, StoredFile};
use crate::error::{CoreError, CoreResult};
use crate::id::{AssistantId, FileId, KnowledgeBaseId, MessageId, UserId};
use crate::llm::ChatClient;
use crate::store::Store;
use crate::time::Timestamp;

pub use index::{BuiltIndex, Hit, IndexCache, Passage};

/// The model that embeds documents and questions (`DEFAULT_FILES_CONFIG`'s `embedding_model`,
/// `provider/model`); without one, search is by keywords only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingModel {
    pub provider: String,
    pub model: String,
}

impl EmbeddingModel {
    /// `provider/model`, as stored with the vectors.
    pub fn name(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }

    /// Reads LobeChat's `DEFAULT_FILES_CONFIG` (`embedding_model=openai/text-embedding-3-small,…`).
    pub fn from_files_config(config: &str) -> Option<Self> {
        config.split(',').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            if key.trim() != "embedding_model" { None } else { Self::parse(value) }
        })
    }

    /// `provider/model` (the model's own name may hold more slashes, as Ollama's and
    /// OpenRouter's do).
    pub fn parse(value: &str) -> Option<Self> {
        let (provider, model) = value.trim().split_once('/')?;
        let (provider, model) = (provider.trim(), model.trim());
        let plain = |s: &str| !s.is_empty() && s.len() <= 200 && !s.chars().any(char::is_control);
        (plain(provider) && plain(model)).then(|| Self { provider: provider.to_owned(), model: model.to_owned() })
    }
}

/// Which embedding model the administrator chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbeddingChoice {
    /// The configured one (`DEFAULT_FILES_CONFIG`), or none when nothing is configured.
    Configured,
    /// None: search by keywords only.
    KeywordsOnly,
    Model(EmbeddingModel),
}

impl EmbeddingChoice {
    /// The choice as the instance's settings hold it.
    fn setting(&self) -> String {
        match self {
            Self::Configured => String::new(),
            Self::KeywordsOnly => KEYWORDS_ONLY.to_owned(),
            Self::Model(model) => model.name(),
        }
    }

    fn from_setting(value: Option<&str>) -> Self {
        match value {
            None => Self::Configured,
            Some(KEYWORDS_ONLY) => Self::KeywordsOnly,
            Some(name) => EmbeddingModel::parse(name).map_or(Self::Configured, Self::Model),
        }
    }
}

/// The setting's value for "no embedding model".
const KEYWORDS_ONLY: &str = "none";

/// The longest name and description of a knowledge base.
const MAX_NAME_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 1_000;
/// The most knowledge bases one assistant answers from.
const MAX_ASSISTANT_BASES: usize = 50;
/// How many passages an answer is given at most.
const MAX_SOURCES: usize = 8;

#[derive(Clone)]
pub struct Knowledge {
    store: Arc<dyn Store>,
    blobs: Blobs,
    providers: Providers,
    chat_client: Arc<dyn ChatClient>,
    /// The embedding model of the configuration; the administrator's choice overrides it.
    configured: Option<EmbeddingModel>,
    instance: Instance,
    indexes: IndexCache,
    node: String,
    wake: Arc<Notify>,
}

impl Knowledge {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        blobs: Blobs,
        providers: Providers,
        chat_client: Arc<dyn ChatClient>,
        configured: Option<EmbeddingModel>,
        instance: Instance,
        node: String,
    ) -> Self {
        let indexes = IndexCache::default();
        let wake = Arc::default();
        Self { store, blobs, providers, chat_client, configured, instance, indexes, node, wake }
    }

    /// The embedding model of the configuration (`DEFAULT_FILES_CONFIG`).
    pub fn configured_embedding_model(&self) -> Option<&EmbeddingModel> {
        self.configured.as_ref()
    }

    /// The administrator's choice of embedding model.
    pub async fn embedding_choice(&self) -> CoreResult<EmbeddingChoice> {
        Ok(EmbeddingChoice::from_setting(self.instance.snapshot().await?.embedding_model()))
    }

    /// The model that embeds documents and questions now, if any.
    pub async fn embedding_model(&self) -> CoreResult<Option<EmbeddingModel>> {
        Ok(self.model_in(&*self.instance.snapshot().await?))
    }

    fn model_in(&self, snapshot: &Snapshot) -> Option<EmbeddingModel> {
        match EmbeddingChoice::from_setting(snapshot.embedding_model()) {
            EmbeddingChoice::Configured => self.configured.clone(),
            EmbeddingChoice::KeywordsOnly => None,
            EmbeddingChoice::Model(model) => Some(model),
        }
    }

    /// Makes `choice` the embedding model (the administrator's panel checks who may), after
    /// checking that a chosen model answers with `person`'s keys; documents embedded with
    /// another model are read again in the background. Returns how many were queued.
    pub(crate) async fn set_embedding_model(
        &self,
        person: &crate::domain::User,
        choice: &EmbeddingChoice,
    ) -> CoreResult<u64> {
        if let EmbeddingChoice::Model(model) = choice {
            // Everybody's documents are embedded with it, each with their own reach: only a
            // provider of the server's configuration is there for everybody.
            if self.providers.server_providers.get(&model.provider).is_none() {
                return Err(CoreError::invalid_with("embedding_provider_unknown", model.provider.clone()));
            }
            let reach = self.providers.choices(person).await?.reach;
            self.embed(&reach, model, &["Loquat".to_owned()]).await?;
        }
        self.instance.set_embedding_model(&choice.setting()).await?;
        self.requeue_for_embedding_model().await
    }

    fn checked(name: &str, description: &str) -> CoreResult<(String, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(CoreError::invalid_with("knowledge_name", MAX_NAME_CHARS.to_string()));
        }
        let description = description.trim();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(CoreError::invalid_with("knowledge_description", MAX_DESCRIPTION_CHARS.to_string()));
        }
        Ok((name.to_owned(), description.to_owned()))
    }

    pub async fn create(&self, user: UserId, name: &str, description: &str) -> CoreResult<KnowledgeBase> {
        let (name, description) = Self::checked(name, description)?;
        let now = Timestamp::now();
        let base = KnowledgeBase {
            id: KnowledgeBaseId::new(),
            user_id: user,
            name,
            description,
            revision: 0,
            shared_with: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_knowledge_base(&base).await?;
        Ok(base)
    }

    /// The user's knowledge bases and those shared with them.
    pub async fn list(&self, user: UserId) -> CoreResult<Vec<KnowledgeBase>> {
        let person = crate::service::existing_user(self.store.as_ref(), user).await?;
        Ok(self.store.readable_knowledge_bases(user, person.role).await?)
    }

    /// One of the user's own knowledge bases (to change it).
    pub async fn get(&self, user: UserId, id: KnowledgeBaseId) -> CoreResult<KnowledgeBase> {
        self.store.get_knowledge_base(user, id).await?.ok_or(CoreError::NotFound("knowledge_base"))
    }

    /// A knowledge base the user owns or that is shared with them (to read it).
    pub async fn readable(&self, user: UserId, id: KnowledgeBaseId) -> CoreResult<KnowledgeBase> {
        let person = crate::service::existing_user(self.store.as_ref(), user).await?;
        let base = self.store.get_readable_knowledge_base(user, person.role, id).await?;
        base.ok_or(CoreError::NotFound("knowledge_base"))
    }

    /// Shares an administrator's own knowledge base with `everyone` or one role (`user`,
    /// `admin`), or makes it private again (`None`).
    pub async fn set_sharing(&self, user: UserId, id: KnowledgeBaseId, shared_with: Option<&str>) -> CoreResult<()> {
        let person = crate::service::existing_user(self.store.as_ref(), user).await?;
        if person.role != crate::domain::Role::Admin {
            return Err(CoreError::NotFound("knowledge_base"));
        }
        let known = |scope: &str| scope == "everyone" || crate::domain::Role::parse(scope).is_some();
        if shared_with.is_some_and(|scope| !known(scope)) {
            return Err(CoreError::invalid("knowledge_sharing"));
        }
        if self.store.set_knowledge_sharing(user, id, shared_with).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound("knowledge_base"))
        }
    }

    pub async fn update(&self, user: UserId, id: KnowledgeBaseId, name: &str, description: &str) -> CoreResult<()> {
        let (name, description) = Self::checked(name, description)?;
        let updated = self.store.update_knowledge_base(user, id, &name, &description, Timestamp::now()).await?;
        if updated { Ok(()) } else { Err(CoreError::NotFound("knowledge_base")) }
    }

    /// Deletes the knowledge base (its files stay in the user's files).
    pub async fn delete(&self, user: UserId, id: KnowledgeBaseId) -> CoreResult<()> {
        if self.store.delete_knowledge_base(user, id).await? {
            self.indexes.forget(user, id);
            Ok(())
        } else {
            Err(CoreError::NotFound("knowledge_base"))
        }
    }

    /// The knowledge base's files (one the user can read), newest first, with how far their
    /// reading is.
    pub async fn files(&self, user: UserId, id: KnowledgeBaseId) -> CoreResult<Vec<(StoredFile, Option<Ingestion>)>> {
        let base = self.readable(user, id).await?;
        Ok(self.store.knowledge_files(base.user_id, id).await?)
    }

    /// Adds one of the user's files; its reading starts if it has not.
    pub async fn add_file(&self, user: UserId, id: KnowledgeBaseId, file: FileId) -> CoreResult<()> {
        self.get(user, id).await?;
        self.store.get_file(user, file).await?.ok_or(CoreError::NotFound("file"))?;
        self.store.add_knowledge_file(user, id, file, Timestamp::now()).await?;
        self.wake.notify_one();
        Ok(())
    }

    pub async fn remove_file(&self, user: UserId, id: KnowledgeBaseId, file: FileId) -> CoreResult<()> {
        if self.store.remove_knowledge_file(user, id, file, Timestamp::now()).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound("file"))
        }
    }

    /// Reads a file again (after a failure).
    pub async fn retry(&self, user: UserId, file: FileId) -> CoreResult<()> {
        if self.store.requeue_ingestion(user, file, Timestamp::now()).await? {
            self.wake.notify_one();
            Ok(())
        } else {
            Err(CoreError::NotFound("file"))
        }
    }

    /// How far the reading of each of the user's documents is.
    pub async fn ingestions(&self, user: UserId) -> CoreResult<HashMap<FileId, Ingestion>> {
        let all = self.store.ingestions(user).await?;
        Ok(all.into_iter().map(|ingestion| (ingestion.file_id, ingestion)).collect())
    }

    /// What wakes the reading worker, for whoever queues documents.
    pub(crate) fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Queues again every document whose vectors are not the current model's (the model
    /// changed, or was added or removed); returns how many.
    pub(crate) async fn requeue_for_embedding_model(&self) -> CoreResult<u64> {
        let model = self.model_in(&*self.instance.reload().await?).as_ref().map(EmbeddingModel::name);
        let queued = self.store.requeue_other_embeddings(model.as_deref(), Timestamp::now()).await?;
        if queued > 0 {
            self.wake.notify_one();
        }
        Ok(queued)
    }

    pub async fn assistant_bases(&self, user: UserId, assistant: AssistantId) -> CoreResult<Vec<KnowledgeBaseId>> {
        Ok(self.store.assistant_knowledge(user, assistant).await?)
    }

    /// Sets the knowledge bases an assistant answers from (each the user's or shared with them).
    pub async fn set_assistant_bases(
        &self,
        user: UserId,
        assistant: AssistantId,
        bases: &[KnowledgeBaseId],
    ) -> CoreResult<()> {
        // Each is checked with a query: a form of thousands of ids is refused, not run.
        if bases.len() > MAX_ASSISTANT_BASES {
            return Err(CoreError::invalid_with("knowledge_too_many", MAX_ASSISTANT_BASES.to_string()));
        }
        for base in bases {
            self.readable(user, *base).await?;
        }
        let person = crate::service::existing_user(self.store.as_ref(), user).await?;
        Ok(self.store.set_assistant_knowledge(user, person.role, assistant, bases).await?)
    }

    /// The numbered sources of an answer.
    pub async fn answer_sources(&self, user: UserId, message: &crate::domain::Message) -> CoreResult<Vec<Source>> {
        let all = self.store.topic_sources(user, message.topic_id).await?;
        Ok(all.into_iter().filter(|(id, _)| *id == message.id).map(|(_, source)| source).collect())
    }

    /// One source of an answer (a citation opened).
    pub async fn source(&self, user: UserId, message: MessageId, number: u32) -> CoreResult<Source> {
        self.store.message_source(user, message, number).await?.ok_or(CoreError::NotFound("source"))
    }

    /// The passages of `bases` that best answer `question`, as sources numbered from `first`,
    /// within `budget` tokens (at most a few).
    pub(crate) async fn retrieve(
        &self,
        person: &crate::domain::User,
        reach: &Reach,
        bases: &[KnowledgeBaseId],
        question: &str,
        budget: &mut usize,
        first: u32,
    ) -> CoreResult<Vec<Source>> {
        let embedding = self.embedding_model().await?;
        let query_vector = match &embedding {
            Some(model) if !question.trim().is_empty() => {
                match self.embed(reach, model, &[question.to_owned()]).await {
                    Ok(mut vectors) => vectors.pop(),
                    Err(error) => {
                        // Keyword search still answers.
                        tracing::warn!(%error, "could not embed the question; searching by keywords only");
                        None
                    }
                }
            }
            _ => None,
        };
        let model_name = embedding.as_ref().map(EmbeddingModel::name);
        let mut found = Vec::new();
        for base in bases {
            // Read again each time: a base no longer shared with the user is skipped.
            let readable = self.store.get_readable_knowledge_base(person.id, person.role, *base).await?;
            let Some(current) = readable else { continue };
            let store = self.store.as_ref();
            let index = self.indexes.get_or_build(store, current.user_id, &current, model_name.as_deref()).await?;
            let vector = query_vector.as_deref();
            found.extend(index.search(question, vector, MAX_SOURCES).into_iter().map(|hit| (hit, index.clone())));
        }
        // Across bases, the best fused scores first.
        found.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
        let mut sources = Vec::new();
        for (hit, index) in found {
            let passage = index.passage(hit.position);
            let tokens = passage.tokens as usize;
            if sources.len() == MAX_SOURCES || tokens > *budget {
                continue;
            }
            *budget -= tokens;
            sources.push(Source {
                number: first + sources.len() as u32,
                file_id: Some(passage.file_id),
                file_name: passage.file_name.clone(),
                page: passage.page,
                page_end: passage.page_end,
                headings: passage.headings.clone(),
                text: passage.text.clone(),
                url: None,
            });
        }
        Ok(sources)
    }

    /// Vectors of `inputs` from the embedding model, with `reach`'s keys.
    async fn embed(&self, reach: &Reach, model: &EmbeddingModel, inputs: &[String]) -> CoreResult<Vec<Vec<f32>>> {
        let endpoint = self.providers.endpoint(reach, &model.provider)?;
        let embeddings = self.chat_client.embed(&endpoint, &model.model, inputs).await?;
        if embeddings.vectors.len() != inputs.len() {
            return Err(CoreError::Provider(crate::llm::ProviderError::new(
                crate::llm::ProviderErrorKind::Protocol,
                "the embedding model returned a different number of vectors",
            )));
        }
        Ok(embeddings.vectors)
    }
}

/// The sources as the model reads them, after the question.
pub fn sources_prompt(sources: &[Source]) -> String {
    if sources.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n\n<sources>\nAnswer from these numbered sources where they help, and cite each one you use with its \
         number in brackets, like [1]. If they do not hold the answer, say so.\n",
    );
    for source in sources {
        out.push('\n');
        out.push_str(&source.for_model());
        out.push('\n');
    }
    out.push_str("</sources>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_config_names_the_embedding_model() {
        let config = "embedding_model=openai/text-embedding-3-small,reranker_model=cohere/rerank-english-v3.0";
        let model = EmbeddingModel::from_files_config(config).expect("a model");
        assert_eq!((model.provider.as_str(), model.model.as_str()), ("openai", "text-embedding-3-small"));
        assert_eq!(model.name(), "openai/text-embedding-3-small");
        assert_eq!(EmbeddingModel::from_files_config("query_mode=full_text"), None);
        assert_eq!(EmbeddingModel::from_files_config("embedding_model=nomodel"), None);
        let ollama = EmbeddingModel::parse(" ollama / hf.co/BAAI/bge-m3 ").expect("a model");
        assert_eq!(ollama.name(), "ollama/hf.co/BAAI/bge-m3");
        assert_eq!(EmbeddingModel::parse("openai/"), None);
    }

    #[test]
    fn the_choice_round_trips_through_the_setting() {
        let model = EmbeddingModel::parse("openai/text-embedding-3-large").expect("a model");
        for choice in [EmbeddingChoice::Configured, EmbeddingChoice::KeywordsOnly, EmbeddingChoice::Model(model)] {
            let setting = choice.setting();
            let stored = Some(setting.as_str()).filter(|s| !s.is_empty());
            assert_eq!(EmbeddingChoice::from_setting(stored), choice);
        }
    }
}
