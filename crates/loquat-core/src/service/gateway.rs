//! The OpenAI-compatible API's side of the core ("two front doors, one core"): which model a
//! program names (`naming`), the request made for it — an assistant's system role, parameters,
//! input template, history limit and fallback model —, the same quota and usage rules as the
//! chat pages, and the answer's events passed straight through (`stream`), recorded and, when
//! asked, saved as a topic once the answer ends.

mod naming;
mod stream;
mod tool_loop;

use std::sync::Arc;
use std::time::Instant;

pub use naming::{ASSISTANT_PREFIX, assistant_slug};
pub use stream::ApiChatStream;

use self::naming::{Purpose, Target};
use self::stream::{Ledger, SavePlan};
use super::providers::Choices;
use super::{Assistants, Providers, Usage};
use crate::domain::{Assistant, AssistantConfig, MessageStatus, ModelParams, TokenUsage, User};
use crate::error::{CoreError, CoreResult};
use crate::generation::{Attempt, Generations};
use crate::id::{AssistantId, TopicId, UserId};
use crate::llm::{
    ChatClient, ChatMessage, ChatRequest, ChatRole, ChatStream, Embeddings, ProviderError, ProviderErrorKind,
    ReasoningConfig, ReasoningEffort, ToolChoice, ToolSpec,
};
use crate::prompt::{PromptContext, apply_input_template, expand_placeholders};
use crate::store::{FinishedAnswer, Store};
use crate::time::Timestamp;
use crate::tools::Toolbox;

/// A chat completion a program asked for, parsed by the web layer.
#[derive(Debug, Clone, Default)]
pub struct ApiChatRequest {
    /// `provider/model`, a model id offered by one provider only, or `assistant/<id or slug>`.
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// What the request set; an assistant's parameters fill the ones it left out.
    pub params: ModelParams,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: ToolChoice,
    /// Sent as asked; without it, an assistant's effort goes to reasoning models.
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Store the exchange as a topic of the caller (`X-Loquat-Save: topic`).
    pub save: bool,
    /// The caller's language (`en`, `zh-CN`), for an assistant's placeholders.
    pub language: String,
    /// Whether the calls of an assistant's server tools are shown as they run
    /// (`ChatEvent::Step`).
    pub tool_steps: bool,
}

/// An answer on its way: the provider and model asking, and the events as they arrive.
pub struct ApiChat {
    /// A fresh id for this completion (a UUID, without dashes).
    pub id: String,
    pub created: Timestamp,
    /// The provider and model that answered (a fallback's when the primary failed).
    pub provider_id: String,
    pub model_id: String,
    /// The topic the exchange is saved to, when saving was asked for. It is written when the
    /// answer ends.
    pub saved_topic: Option<TopicId>,
    pub events: ApiChatStream,
}

/// A chat completion ready to start (see [`Gateway::prepare_api_chat`]).
pub struct PreparedApiChat {
    user: UserId,
    assistant: Option<AssistantId>,
    attempts: Vec<Attempt>,
    plan: Option<SavePlan>,
    /// An assistant's server tools, run by Loquat between the model's responses.
    toolbox: Option<Toolbox>,
    tool_steps: bool,
    /// The question, when the administrator archives requests' content.
    archived_question: Option<String>,
}

/// A model or assistant as `GET /v1/models` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiModel {
    /// `provider/model` or `assistant/<id>` (or the name the caller used, for one model).
    pub id: String,
    /// The provider's id, or `loquat` for assistants.
    pub owned_by: String,
    /// A human name: the model's display name or the assistant's title.
    pub name: String,
    pub created: Option<Timestamp>,
}

/// The OpenAI-compatible API's side of the core. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    store: Arc<dyn Store>,
    chat_client: Arc<dyn ChatClient>,
    generations: Generations,
    providers: Providers,
    assistants: Assistants,
    usage: Usage,
    tools: super::Tools,
    instance: super::Instance,
}

/// The caller and what they can reach, read once per request.
pub(super) struct Caller<'u> {
    user: &'u User,
    choices: Choices,
}

impl Gateway {
    #[expect(clippy::too_many_arguments, reason = "the composition root hands each service its parts")]
    pub(crate) fn new(
        store: Arc<dyn Store>,
        chat_client: Arc<dyn ChatClient>,
        generations: Generations,
        providers: Providers,
        assistants: Assistants,
        usage: Usage,
        tools: super::Tools,
        instance: super::Instance,
    ) -> Self {
        Self { store, chat_client, generations, providers, assistants, usage, tools, instance }
    }

    /// What `user` can reach: the store is asked twice, side by side (the instance's settings
    /// are a cached snapshot).
    async fn caller<'u>(&self, user: &'u User) -> CoreResult<Caller<'u>> {
        Ok(Caller { user, choices: self.providers.choices(user).await? })
    }

    /// Every model the user can chat with, as `provider/model`, then their assistants.
    pub async fn api_models(&self, user: &User) -> CoreResult<Vec<ApiModel>> {
        let (caller, assistants) = tokio::join!(self.caller(user), self.assistants.list_assistants(user.id));
        let mut models = Vec::new();
        for option in caller?.choices.options {
            for card in &option.models {
                models.push(ApiModel {
                    id: format!("{}/{}", option.id, card.id),
                    owned_by: option.id.clone(),
                    name: card.label().to_owned(),
                    created: None,
                });
            }
        }
        for assistant in assistants? {
            models.push(assistant_model(format!("{ASSISTANT_PREFIX}{}", assistant.id), &assistant));
        }
        Ok(models)
    }

    /// One model by any name the API accepts (`NotFound` when it names nothing available).
    pub async fn api_model(&self, user: &User, name: &str) -> CoreResult<ApiModel> {
        let caller = self.caller(user).await?;
        Ok(match self.api_target(&caller, name, Purpose::Chat).await? {
            Target::Model { provider_id, card } => {
                ApiModel { id: name.to_owned(), owned_by: provider_id, name: card.label().to_owned(), created: None }
            }
            Target::Assistant(assistant) => assistant_model(name.to_owned(), &assistant),
        })
    }

    /// Starts a chat completion for a program: [`Gateway::prepare_api_chat`], then
    /// [`Gateway::start_api_chat`].
    pub async fn api_chat(&self, user: &User, request: ApiChatRequest) -> CoreResult<ApiChat> {
        let prepared = self.prepare_api_chat(user, request).await?;
        self.start_api_chat(prepared).await
    }

    /// Everything before the provider is asked, reading only: checks the quota, resolves the
    /// name and builds the requests (an assistant's configuration applied). A front door may
    /// run its own admission checks (rate limits) side by side with this. The caller (`user`)
    /// comes from the front door, already read with its token.
    pub async fn prepare_api_chat(&self, user: &User, request: ApiChatRequest) -> CoreResult<PreparedApiChat> {
        if request.messages.is_empty() {
            return Err(CoreError::invalid("messages_empty"));
        }
        let tool_steps = request.tool_steps;
        // Independent reads side by side: every store round trip is time to first token.
        let save_to_default = request.save && !request.model.trim().starts_with(ASSISTANT_PREFIX);
        let (quota, caller, default_assistant) = tokio::join!(
            self.usage.check_quota(user),
            self.caller(user),
            self.default_assistant_if(user.id, save_to_default),
        );
        quota?;
        let caller = caller?;
        let question = request.save.then(|| question_of(&request.messages));
        let archived_question = (self.instance.request_audit().await? == super::RequestAudit::Content)
            .then(|| question_of(&request.messages));
        let (assistant, attempts, saved_to, toolbox) =
            match self.api_target(&caller, &request.model, Purpose::Chat).await? {
                Target::Model { provider_id, card } => {
                    let endpoint = self.providers.endpoint(&caller.choices.reach, &provider_id)?;
                    (None, vec![plain_attempt(provider_id, card, endpoint, request)], default_assistant?, None)
                }
                Target::Assistant(assistant) => {
                    let saved_to = request.save.then_some(assistant.id);
                    // The caller's own tools go back to the caller; without them, the assistant's
                    // tools run here.
                    let toolbox = if request.tools.is_empty() && !assistant.config.tools.is_empty() {
                        let snapshot = self.instance.snapshot().await?;
                        let allowed = snapshot.tools_for(user);
                        let reach = &caller.choices.reach;
                        self.tools.toolbox(user, reach, allowed, &assistant.config.tools).await?
                    } else {
                        None
                    };
                    let specs = toolbox.as_ref().map(Toolbox::specs);
                    let attempts = self.assistant_attempts(&caller, &assistant, request, specs).await?;
                    (Some(assistant.id), attempts, saved_to, toolbox)
                }
            };
        let plan = saved_to.zip(question).map(|(assistant_id, question)| SavePlan::new(assistant_id, question));
        Ok(PreparedApiChat { user: user.id, assistant, attempts, plan, toolbox, tool_steps, archived_question })
    }

    /// Opens the upstream stream, falling back to an assistant's fallback model if the first
    /// fails before answering. A failure before the first event is returned as an error (and
    /// recorded as usage, and saved when asked).
    pub async fn start_api_chat(&self, prepared: PreparedApiChat) -> CoreResult<ApiChat> {
        let PreparedApiChat { user, assistant, attempts, plan, toolbox, tool_steps, archived_question } = prepared;
        let saved_topic = plan.as_ref().map(SavePlan::topic_id);
        let started = Instant::now();
        let created = Timestamp::now();
        let mut ledger = Ledger::new(self.clone(), user, assistant, started, plan).archiving(archived_question);
        match self.open_first(&attempts).await {
            Ok((index, stream)) => {
                let attempt = &attempts[index];
                ledger.answered_by(&attempt.provider_id, &attempt.model_id);
                let stream = match toolbox.filter(|_| !attempt.request.tools.is_empty()) {
                    Some(toolbox) => tool_loop::with_tools(
                        self.chat_client.clone(),
                        attempt.endpoint.clone(),
                        attempt.request.clone(),
                        stream,
                        toolbox,
                        self.generations.settings().first_event_timeout,
                        tool_steps,
                    ),
                    None => stream,
                };
                Ok(ApiChat {
                    id: uuid::Uuid::now_v7().simple().to_string(),
                    created,
                    provider_id: attempt.provider_id.clone(),
                    model_id: attempt.model_id.clone(),
                    saved_topic,
                    events: ApiChatStream::new(stream, ledger, self.generations.settings().idle_timeout),
                })
            }
            Err(error) => {
                if let Some(last) = attempts.last() {
                    ledger.answered_by(&last.provider_id, &last.model_id);
                }
                ledger.close_with_error(error.clone()).await;
                Err(error.into())
            }
        }
    }

    /// Embeds `inputs` with the named model (`provider/model`; any model of an available
    /// provider), under the same quota; the tokens are recorded as usage.
    pub async fn api_embeddings(&self, user: &User, model: &str, inputs: &[String]) -> CoreResult<Embeddings> {
        if inputs.is_empty() || inputs.iter().any(|input| input.is_empty()) {
            return Err(CoreError::invalid("embedding_input"));
        }
        let (quota, caller) = tokio::join!(self.usage.check_quota(user), self.caller(user));
        quota?;
        let caller = caller?;
        let (provider_id, card) = match self.api_target(&caller, model, Purpose::Embeddings).await? {
            Target::Model { provider_id, card } => (provider_id, card),
            Target::Assistant(_) => return Err(CoreError::invalid_with("embedding_model", model)),
        };
        let endpoint = self.providers.endpoint(&caller.choices.reach, &provider_id)?;
        let started = Instant::now();
        let embedded = self.chat_client.embed(&endpoint, card.upstream_name(), inputs).await;
        let (status, usage, error) = match &embedded {
            Ok(embeddings) => {
                let usage = TokenUsage { prompt_tokens: embeddings.prompt_tokens, ..TokenUsage::default() };
                (MessageStatus::Complete, Some(usage), None)
            }
            Err(error) => (MessageStatus::Error, None, Some(error)),
        };
        let record = FinishedAnswer {
            status,
            content: String::new(),
            reasoning: String::new(),
            error_kind: error.map(|e| e.kind.code().to_owned()),
            error_message: None,
            provider: Some(provider_id),
            model: Some(card.id),
            usage,
            ttft_ms: None,
            duration_ms: Some(started.elapsed().as_millis() as i64),
            updated_at: Timestamp::now(),
        };
        self.usage.record(user.id, None, &record).await;
        Ok(embedded?)
    }

    /// The default assistant's id when the exchange is to be saved.
    async fn default_assistant_if(&self, user: UserId, save: bool) -> CoreResult<Option<AssistantId>> {
        if !save {
            return Ok(None);
        }
        Ok(Some(self.assistants.default_assistant(user).await?.id))
    }

    /// The assistant's model, then its fallback, each with the conversation shaped by the
    /// assistant: system role, history limit, input template, parameters.
    async fn assistant_attempts(
        &self,
        caller: &Caller<'_>,
        assistant: &Assistant,
        request: ApiChatRequest,
        server_tools: Option<Vec<crate::llm::ToolSpec>>,
    ) -> CoreResult<Vec<Attempt>> {
        let config = &assistant.config;
        let providers = &self.providers;
        let choices = &caller.choices;
        let resolved = providers.resolve_model(choices, &config.provider, &config.model).await?;
        let fallback = providers.resolve_exact(choices, &config.fallback_provider, &config.fallback_model).await;
        let context = PromptContext {
            now: jiff::Zoned::now(),
            model: resolved.model.id.clone(),
            username: caller.user.name.clone(),
            language: request.language.clone(),
        };
        let messages = shape_conversation(config, &context, request.messages);
        let params = merged_params(&request.params, &config.params);
        let explicit_effort = request.reasoning_effort;
        let attempt = |resolved: super::ResolvedModel, messages: Vec<ChatMessage>| {
            let effort = explicit_effort.or(config.reasoning_effort.filter(|_| resolved.model.reasoning));
            Attempt {
                provider_id: resolved.provider_id,
                model_id: resolved.model.id.clone(),
                request: ChatRequest {
                    model: resolved.model.upstream_name().to_owned(),
                    messages,
                    params: resolved.model.accepted_params(&params),
                    // The assistant's tools go to a model that calls tools; the caller's as given.
                    tools: match &server_tools {
                        Some(specs) if resolved.model.function_calling => specs.clone(),
                        Some(_) => Vec::new(),
                        None => request.tools.clone(),
                    },
                    tool_choice: request.tool_choice.clone(),
                    reasoning: effort.map(|effort| ReasoningConfig { effort: Some(effort), budget_tokens: None }),
                },
                endpoint: resolved.endpoint,
            }
        };
        let fallback = fallback.filter(|f| f.provider_id != resolved.provider_id || f.model.id != resolved.model.id);
        let mut attempts = vec![attempt(resolved, messages.clone())];
        if let Some(fallback) = fallback {
            attempts.push(attempt(fallback, messages));
        }
        Ok(attempts)
    }

    /// Opens the first attempt that answers; a failure before any output moves on to the next.
    async fn open_first(&self, attempts: &[Attempt]) -> Result<(usize, ChatStream), ProviderError> {
        let first_event_timeout = self.generations.settings().first_event_timeout;
        let mut last_error = ProviderError::new(ProviderErrorKind::BadRequest, "no model to ask");
        for (index, attempt) in attempts.iter().enumerate() {
            let opened = self.chat_client.stream_chat(&attempt.endpoint, &attempt.request);
            let error = match tokio::time::timeout(first_event_timeout, opened).await {
                Ok(Ok(stream)) => return Ok((index, stream)),
                Ok(Err(error)) => error,
                Err(_) => ProviderError::new(ProviderErrorKind::Timeout, "the provider did not answer in time"),
            };
            if index + 1 < attempts.len() {
                tracing::warn!(provider = %attempt.provider_id, model = %attempt.model_id, %error,
                    "API request falling back to the next model");
            }
            last_error = error;
        }
        Err(last_error)
    }
}

fn assistant_model(id: String, assistant: &Assistant) -> ApiModel {
    let name = if assistant.config.title.is_empty() { "default".to_owned() } else { assistant.config.title.clone() };
    ApiModel { id, owned_by: "loquat".to_owned(), name, created: Some(assistant.created_at) }
}

/// A named model gets the conversation and parameters as sent (minus what the model rejects).
fn plain_attempt(
    provider_id: String,
    card: crate::domain::ModelCard,
    endpoint: crate::llm::Endpoint,
    request: ApiChatRequest,
) -> Attempt {
    let reasoning =
        request.reasoning_effort.map(|effort| ReasoningConfig { effort: Some(effort), budget_tokens: None });
    Attempt {
        provider_id,
        model_id: card.id.clone(),
        endpoint,
        request: ChatRequest {
            model: card.upstream_name().to_owned(),
            messages: request.messages,
            params: card.accepted_params(&request.params),
            tools: request.tools,
            tool_choice: request.tool_choice,
            reasoning,
        },
    }
}

/// The request's parameters, each one it left out taken from the assistant.
fn merged_params(request: &ModelParams, assistant: &ModelParams) -> ModelParams {
    ModelParams {
        temperature: request.temperature.or(assistant.temperature),
        top_p: request.top_p.or(assistant.top_p),
        presence_penalty: request.presence_penalty.or(assistant.presence_penalty),
        frequency_penalty: request.frequency_penalty.or(assistant.frequency_penalty),
        max_tokens: request.max_tokens.or(assistant.max_tokens),
    }
}

/// The conversation as an assistant sends it: its system role (placeholders expanded) first,
/// then the caller's system messages, then the latest `history_limit + 1` other messages — a
/// cut never separates tool results from the call they answer — with the input template
/// applied to user messages.
fn shape_conversation(
    config: &AssistantConfig,
    context: &PromptContext,
    messages: Vec<ChatMessage>,
) -> Vec<ChatMessage> {
    let (system, conversation): (Vec<ChatMessage>, Vec<ChatMessage>) =
        messages.into_iter().partition(|message| message.role == ChatRole::System);
    let keep = match config.history_limit {
        Some(limit) => (limit as usize).saturating_add(1).min(conversation.len()),
        None => conversation.len(),
    };
    let mut start = conversation.len() - keep;
    while start > 0 && conversation[start].role == ChatRole::Tool {
        start -= 1;
    }
    let mut shaped = Vec::with_capacity(system.len() + conversation.len() - start + 1);
    let system_role = expand_placeholders(&config.system_role, context);
    if !system_role.trim().is_empty() {
        shaped.push(ChatMessage::new(ChatRole::System, system_role));
    }
    shaped.extend(system);
    for mut message in conversation.into_iter().skip(start) {
        if message.role == ChatRole::User {
            message.content = apply_input_template(&config.input_template, &message.content);
        }
        shaped.push(message);
    }
    shaped
}

/// What a saved topic shows as the question: the last user message (with a note of its images).
fn question_of(messages: &[ChatMessage]) -> String {
    let Some(last) = messages.iter().rev().find(|message| message.role == ChatRole::User) else {
        return messages.last().map(|message| message.content.clone()).unwrap_or_default();
    };
    match last.images.len() {
        0 => last.content.clone(),
        images => format!("{}\n\n[{images} image(s)]", last.content).trim_start().to_owned(),
    }
}

#[cfg(test)]
mod tests;
