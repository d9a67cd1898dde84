//! Tools a model may call while it answers. A [`Tool`] is one capability (search the web, read
//! a page, search knowledge bases, a tool of an MCP server); a [`Toolbox`] is the set one
//! answer may use, with the limits of every call: unknown tools, arguments that are not JSON or
//! do not match the tool's schema, a call that takes too long and a result that is too long all
//! become a short text the model reads, never an error of the answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::domain::{McpLaunch, Source};
use crate::llm::{ChatMessage, ChatRequest, ChatRole, Thinking, ToolCall, ToolChoice, ToolSpec};

/// The most sources one call may add to an answer.
const MAX_SOURCES_PER_CALL: usize = 10;
/// The most calls of one response that run (at once); the others are refused, so a model
/// cannot fan out hundreds of fetches in one turn.
pub const MAX_CALLS_PER_TURN: usize = 16;
/// The most calls of one response kept at all (answered, or refused past the ones that run);
/// more are dropped from the turn, so a response cannot fill the store with steps.
pub const MAX_CALLS_KEPT: usize = 64;

/// Why a tool could not answer, in words for the model (and the person reading the step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolFailure(pub String);

impl<T: std::fmt::Display> From<T> for ToolFailure {
    fn from(error: T) -> Self {
        ToolFailure(error.to_string())
    }
}

/// What a tool gives back: text, and sources (search results, passages) the answer may cite.
/// Sources are numbered as the answer's next ones and shown to the model after the text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolOutput {
    pub text: String,
    pub sources: Vec<Source>,
}

impl From<String> for ToolOutput {
    fn from(text: String) -> Self {
        Self { text, sources: Vec::new() }
    }
}

#[async_trait]
pub trait Tool: Send + Sync {
    /// Its name (as the model calls it), description and JSON Schema of its arguments.
    fn spec(&self) -> &ToolSpec;
    /// Runs it with arguments already checked against the schema's shape.
    async fn call(&self, arguments: Value) -> Result<ToolOutput, ToolFailure>;
}

/// The limits of tool calls.
#[derive(Debug, Clone)]
pub struct ToolLimits {
    /// Rounds of tool calls before the model must answer.
    pub max_steps: usize,
    /// The longest one call may take.
    pub call_timeout: Duration,
    /// The longest result given back to the model, in characters (`LOQUAT_TOOLS__MAX_RESULT_CHARS`).
    pub max_result_chars: usize,
}

impl Default for ToolLimits {
    fn default() -> Self {
        Self { max_steps: 10, call_timeout: Duration::from_secs(60), max_result_chars: 6_000 }
    }
}

/// A set of tools chosen as one (an MCP server): its tools are known only once it is asked
/// (a server may have to start first), and may change.
#[async_trait]
pub trait ToolSource: Send + Sync {
    /// Its name as assistants choose it (`mcp:<server>`).
    fn name(&self) -> &str;
    /// What it is, for the assistant form.
    fn description(&self) -> &str;
    /// Its tools now.
    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, ToolFailure>;
    /// How it is doing, without starting it.
    async fn status(&self) -> SourceStatus;
}

/// A source's state, for the administrator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStatus {
    /// Connected (a local server's process runs).
    pub running: bool,
    /// Its tools' names, when it has listed them.
    pub tools: Option<Vec<String>>,
    /// Why it last failed, if it is failing.
    pub last_error: Option<String>,
}

/// Speaks to MCP servers added in the product (the tools crate implements it).
#[async_trait]
pub trait McpConnector: Send + Sync {
    /// A source for a server: `name` as assistants choose it, `prefix` before its tools'
    /// names, `description` for the assistant form. `trusted`: the administrator's (otherwise
    /// every address goes through the SSRF guard).
    fn source(
        &self,
        name: String,
        prefix: String,
        description: String,
        launch: McpLaunch,
        trusted: bool,
    ) -> Result<Arc<dyn ToolSource>, String>;
    /// Whether the SSRF guard lets a member's server be reached at `url`.
    async fn check_url(&self, url: &str) -> Result<(), String>;
    /// A LobeChat plugin's manifest from its address (fetched, through the SSRF guard unless
    /// `trusted`) or its JSON text, checked: its identifier and the manifest's JSON.
    async fn plugin_manifest(&self, address_or_json: &str, trusted: bool) -> Result<(String, String), String>;
    /// A JSON document (at most 1 MiB) from a member's address, through the SSRF guard.
    async fn fetch_document(&self, url: &str) -> Result<String, String>;
}

/// The sources of servers added in the product that one person may use.
#[derive(Clone, Default)]
pub struct StoredSources {
    /// The administrator's, for everyone: a role's tool list applies.
    pub shared: Vec<Arc<dyn ToolSource>>,
    /// The person's own (when their role lets them have their own, [`OWN_MCP_SERVERS`]).
    pub own: Vec<Arc<dyn ToolSource>>,
}

/// A tool (or source of tools) a person may give an assistant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOffer {
    /// As assistants name it (`web_search`, `mcp:<name>`, `mcp:<id>`).
    pub name: String,
    /// As people see it.
    pub label: String,
    pub description: String,
}

/// The name in a role's tool list that lets its members add and use their own MCP servers.
pub const OWN_MCP_SERVERS: &str = "mcp:own";

/// Every tool of this server: built-in tools and sources of tools (MCP servers the
/// administrator configured), from which each answer's toolbox is taken. Cheap to clone.
#[derive(Clone, Default)]
pub struct ToolShelf {
    tools: Arc<Vec<Arc<dyn Tool>>>,
    sources: Arc<Vec<Arc<dyn ToolSource>>>,
    limits: ToolLimits,
    connector: Option<Arc<dyn McpConnector>>,
}

impl ToolShelf {
    pub fn new(tools: Vec<Arc<dyn Tool>>, sources: Vec<Arc<dyn ToolSource>>, limits: ToolLimits) -> Self {
        Self { tools: Arc::new(tools), sources: Arc::new(sources), limits, connector: None }
    }

    /// The shelf, able to connect to servers added in the product.
    pub fn with_connector(mut self, connector: Arc<dyn McpConnector>) -> Self {
        self.connector = Some(connector);
        self
    }

    pub fn connector(&self) -> Option<&Arc<dyn McpConnector>> {
        self.connector.as_ref()
    }

    /// Name and description of every tool and source, for the assistant form.
    pub fn catalogue(&self) -> Vec<(String, String)> {
        let tools = self.tools.iter().map(|tool| (tool.spec().name.clone(), tool.spec().description.clone()));
        let sources = self.sources.iter().map(|source| (source.name().to_owned(), source.description().to_owned()));
        tools.chain(sources).collect()
    }

    /// Every source with its state (none is started).
    pub async fn sources(&self) -> Vec<(String, String, SourceStatus)> {
        let mut all = Vec::new();
        for source in self.sources.iter() {
            all.push((source.name().to_owned(), source.description().to_owned(), source.status().await));
        }
        all
    }

    /// Starts a source if it is not running and lists its tools again (the administrator's
    /// "check now"); the result says why it failed.
    pub async fn check(&self, name: &str) -> Option<Result<usize, ToolFailure>> {
        let source = self.sources.iter().find(|source| source.name() == name)?;
        Some(source.tools().await.map(|tools| tools.len()))
    }

    /// The toolbox of the tools and sources named that `allowed` permits (`None`: all; unknown
    /// names are skipped), or `None` when none is left. A source that cannot list its tools
    /// now is left out (and logged).
    /// `extra` tools (made for this answer) are added as they are; `stored` are the servers
    /// added in the product this person may use. When two tools have one name, the first
    /// is kept.
    pub async fn toolbox(
        &self,
        names: &[String],
        allowed: Option<&[String]>,
        extra: Vec<Arc<dyn Tool>>,
        stored: StoredSources,
    ) -> Option<Toolbox> {
        let permitted = |name: &str| {
            names.iter().any(|n| n == name) && allowed.is_none_or(|allowed| allowed.iter().any(|a| a == name))
        };
        let mut chosen = extra;
        chosen.extend(self.tools.iter().filter(|tool| permitted(&tool.spec().name)).cloned());
        let chosen_sources = (self.sources.iter().chain(&stored.shared))
            .filter(|source| permitted(source.name()))
            .chain(stored.own.iter().filter(|source| names.iter().any(|n| n == source.name())));
        for source in chosen_sources {
            match source.tools().await {
                Ok(tools) => chosen.extend(tools),
                Err(ToolFailure(reason)) => tracing::warn!(source = source.name(), %reason, "tools unavailable"),
            }
        }
        let mut seen = std::collections::HashSet::new();
        chosen.retain(|tool| seen.insert(tool.spec().name.clone()));
        (!chosen.is_empty()).then(|| Toolbox::new(chosen, self.limits.clone()))
    }
}

/// What a call gave back: the text the model reads, and the answer's new sources in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    pub text: String,
    pub ok: bool,
    pub sources: Vec<Source>,
}

/// The tools of one answer. Cheap to clone.
#[derive(Clone, Default)]
pub struct Toolbox {
    tools: Vec<Arc<dyn Tool>>,
    pub limits: ToolLimits,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tools.iter().map(|tool| tool.spec().name.as_str()).collect();
        f.debug_struct("Toolbox").field("tools", &names).field("limits", &self.limits).finish()
    }
}

impl Toolbox {
    pub fn new(tools: Vec<Arc<dyn Tool>>, limits: ToolLimits) -> Self {
        Self { tools, limits }
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// What the model is told about the tools.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|tool| tool.spec().clone()).collect()
    }

    /// Runs the `index`th call of a response under the limits; a failure is a result too (the
    /// model reads why). Sources it found take the answer's next numbers from `numbers`.
    pub async fn run(&self, index: usize, call: &ToolCall, numbers: &AtomicU32) -> CallResult {
        let failed = |text: String| CallResult { text, ok: false, sources: Vec::new() };
        if index >= MAX_CALLS_PER_TURN {
            return failed(format!(
                "Error: at most {MAX_CALLS_PER_TURN} tool calls run at once; this one did not run."
            ));
        }
        let Some(tool) = self.tools.iter().find(|tool| tool.spec().name == call.name) else {
            let known: Vec<&str> = self.tools.iter().map(|tool| tool.spec().name.as_str()).collect();
            return failed(format!(
                "Error: there is no tool named \"{}\". The tools are: {}.",
                call.name,
                known.join(", ")
            ));
        };
        let arguments = if call.arguments.trim().is_empty() { "{}" } else { call.arguments.as_str() };
        let arguments: Value = match serde_json::from_str(arguments) {
            Ok(arguments) => arguments,
            Err(error) => return failed(format!("Error: the arguments are not valid JSON ({error}).")),
        };
        if let Err(problem) = check_arguments(&tool.spec().parameters, &arguments) {
            return failed(format!("Error: the arguments do not match the tool's schema: {problem}."));
        }
        match tokio::time::timeout(self.limits.call_timeout, tool.call(arguments)).await {
            Ok(Ok(ToolOutput { mut text, mut sources })) => {
                sources.truncate(MAX_SOURCES_PER_CALL);
                if !sources.is_empty() {
                    let first = numbers.fetch_add(sources.len() as u32, Ordering::AcqRel);
                    let cite = "Cite each one you use with its number in brackets, like";
                    text.push_str(&format!("\n\n{cite} [{first}]:\n"));
                    for (offset, source) in sources.iter_mut().enumerate() {
                        source.number = first + offset as u32;
                        text.push('\n');
                        text.push_str(&source.for_model());
                        text.push('\n');
                    }
                }
                CallResult { text: truncate(text.trim().to_owned(), self.limits.max_result_chars), ok: true, sources }
            }
            Ok(Err(ToolFailure(reason))) => failed(truncate(format!("Error: {reason}"), self.limits.max_result_chars)),
            Err(_) => failed(format!(
                "Error: the tool did not answer within {} seconds and was stopped.",
                self.limits.call_timeout.as_secs()
            )),
        }
    }
}

/// One response of the model that called tools: what it wrote, thought and called.
#[derive(Debug, Default)]
pub(crate) struct CallingTurn {
    pub text: String,
    pub reasoning: String,
    pub signature: Option<String>,
    pub calls: Vec<ToolCall>,
}

impl Toolbox {
    /// Continues `request` after round `round` (from 1): the model's turn with its calls, then
    /// each call's result; at the step limit, the model is told to answer without tools.
    pub(crate) fn continue_request(
        &self,
        request: &mut ChatRequest,
        turn: CallingTurn,
        results: &[CallResult],
        round: usize,
    ) {
        let mut message = ChatMessage::new(ChatRole::Assistant, turn.text);
        if !turn.reasoning.is_empty() || turn.signature.is_some() {
            message.thinking = Some(Thinking { text: turn.reasoning, signature: turn.signature });
        }
        let answered: Vec<ChatMessage> = (turn.calls.iter().zip(results))
            .map(|(call, result)| ChatMessage::tool_result(&call.id, &call.name, result.text.clone()))
            .collect();
        message.tool_calls = turn.calls;
        request.messages.push(message);
        request.messages.extend(answered);
        if round >= self.limits.max_steps {
            request.tool_choice = ToolChoice::None;
            request.messages.push(ChatMessage::new(
                ChatRole::User,
                "(You have used all the tool calls this answer may make. Answer now from what you have.)",
            ));
        }
    }
}

/// `text` cut to `max` characters, with a note saying so.
fn truncate(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text,
        Some((cut, _)) => {
            let total = text.chars().count();
            format!("{}\n\n[Truncated: the first {max} of {total} characters.]", &text[..cut])
        }
    }
}

/// Checks the shape JSON Schema describes at the top level: an object, its required
/// properties present, and each given property of the declared primitive type.
fn check_arguments(schema: &Value, arguments: &Value) -> Result<(), String> {
    let Some(object) = arguments.as_object() else { return Err("they must be a JSON object".to_owned()) };
    let required = schema.get("required").and_then(Value::as_array).into_iter().flatten();
    for name in required.filter_map(Value::as_str) {
        if !object.contains_key(name) {
            return Err(format!("\"{name}\" is required"));
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, value) in object {
        let Some(declared) = properties.and_then(|p| p.get(name)).and_then(|p| p.get("type")) else { continue };
        let types: Vec<&str> = match declared {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        let fits = |kind: &str| match kind {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            "null" => value.is_null(),
            _ => true,
        };
        if !types.iter().any(|kind| fits(kind)) {
            return Err(format!("\"{name}\" must be of type {}", types.join(" or ")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Echo(ToolSpec, Duration);

    #[async_trait]
    impl Tool for Echo {
        fn spec(&self) -> &ToolSpec {
            &self.0
        }

        async fn call(&self, arguments: Value) -> Result<ToolOutput, ToolFailure> {
            tokio::time::sleep(self.1).await;
            let text = arguments["text"].as_str().unwrap_or_default();
            if text == "fail" { Err(ToolFailure("it failed".into())) } else { Ok(text.to_owned().into()) }
        }
    }

    fn toolbox(delay: Duration, max_result_chars: usize) -> Toolbox {
        let spec = ToolSpec {
            name: "echo".into(),
            description: "Says it back.".into(),
            parameters: json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
        };
        let limits = ToolLimits { max_steps: 3, call_timeout: Duration::from_millis(200), max_result_chars };
        Toolbox::new(vec![Arc::new(Echo(spec, delay))], limits)
    }

    fn call(name: &str, arguments: &str) -> ToolCall {
        ToolCall { id: "c1".into(), name: name.into(), arguments: arguments.into() }
    }

    #[tokio::test]
    async fn bad_calls_become_results_the_model_reads() {
        let tools = toolbox(Duration::ZERO, 100);
        let numbers = AtomicU32::new(1);
        let said = tools.run(0, &call("echo", r#"{"text":"hi"}"#), &numbers).await;
        assert_eq!(said, CallResult { text: "hi".into(), ok: true, sources: Vec::new() });
        let cases = [
            (call("nope", "{}"), "no tool named \"nope\". The tools are: echo."),
            (call("echo", "{not json"), "not valid JSON"),
            (call("echo", "[1]"), "must be a JSON object"),
            (call("echo", "{}"), "\"text\" is required"),
            (call("echo", r#"{"text": 5}"#), "\"text\" must be of type string"),
            (call("echo", r#"{"text": "fail"}"#), "Error: it failed"),
        ];
        for (call, expected) in cases {
            let result = tools.run(0, &call, &numbers).await;
            assert!(!result.ok && result.text.contains(expected), "{call:?}: {}", result.text);
        }
        let short = toolbox(Duration::ZERO, 10);
        let long = short.run(0, &call("echo", r#"{"text":"研发投入持续增长了十五个百分点"}"#), &numbers).await;
        let one_too_many = tools.run(MAX_CALLS_PER_TURN, &call("echo", r#"{"text":"hi"}"#), &numbers).await;
        assert!(!one_too_many.ok && one_too_many.text.contains("did not run"), "{}", one_too_many.text);
        assert_eq!(long.text, "研发投入持续增长了十\n\n[Truncated: the first 10 of 15 characters.]");
    }

    #[tokio::test]
    async fn a_call_that_hangs_is_stopped() {
        let numbers = AtomicU32::new(1);
        let result = toolbox(Duration::from_secs(5), 100).run(0, &call("echo", r#"{"text":"hi"}"#), &numbers).await;
        assert!(!result.ok && result.text.contains("did not answer within"), "{}", result.text);
    }
}
