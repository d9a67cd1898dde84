//! MCP servers as sources of tools (`LOQUAT_MCP_CONFIG`, the `mcpServers` JSON of Claude
//! Desktop, Cursor and LobeChat) and the servers added in the product (`Connector`): a local
//! command spoken to over stdio, a Streamable HTTP address or a legacy SSE one. A member's
//! server is reached only through the SSRF guard. A server starts when an answer first needs its tools; its tool list is cached until
//! it says the list changed; a server that crashed or cannot be reached is tried again after a
//! pause that doubles up to a minute; one left idle is stopped. Tools are named
//! `<server>__<tool>` for the model; results come back as text.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use loquat_core::domain::McpLaunch;
use loquat_core::llm::ToolSpec;
use loquat_core::tools::{McpConnector, SourceStatus, Tool, ToolFailure, ToolOutput, ToolSource};
use loquat_providers::web::{Origin, WebClient};
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, PaginatedRequestParams};
use rmcp::service::{NotificationContext, RoleClient, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ServiceExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::mcp_sse::SseTransport;
use crate::plugin;

/// A server unused this long is stopped (started again when needed).
const IDLE_STOP: Duration = Duration::from_secs(600);
/// The longest pause before trying a failed server again.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The longest start (connect and handshake, list of tools).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest message read from a server over HTTP (Streamable HTTP or SSE).
pub(crate) const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// The most tools of one server offered to a model, and the most pages of its list read.
const MAX_TOOLS: usize = 128;
const MAX_PAGES: usize = 16;
/// The environment a local server gets from Loquat's own (never its secrets).
const PASSED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT"];

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: Option<String>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The servers of an `mcpServers` document (or of a bare `{ "<name>": { … } }`), by name.
pub fn parse_servers(json: &str) -> Result<Vec<(String, McpLaunch)>, String> {
    let document: Value = serde_json::from_str(json).map_err(|error| format!("not JSON: {error}"))?;
    let servers = document.get("mcpServers").unwrap_or(&document);
    let servers = servers.as_object().ok_or("expected {\"mcpServers\": {\"<name>\": {…}}}")?;
    let mut parsed = Vec::new();
    for (name, entry) in servers {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("server name \"{name}\": use letters, digits, - and _"));
        }
        let entry: Entry = serde_json::from_value(entry.clone()).map_err(|error| format!("server {name}: {error}"))?;
        let launch = match (entry.command, entry.url) {
            (Some(command), None) => McpLaunch::Stdio { command, args: entry.args, env: entry.env },
            (None, Some(url)) if entry.kind.as_deref() == Some("sse") => McpLaunch::Sse { url, headers: entry.headers },
            (None, Some(url)) => McpLaunch::Http { url, headers: entry.headers },
            _ => return Err(format!("server {name}: give either \"command\" or \"url\"")),
        };
        parsed.push((name.clone(), launch));
    }
    Ok(parsed)
}

/// The servers of the administrator's file, as sources of tools.
pub fn servers_from_file(path: &Path, web: &WebClient) -> Result<Vec<Arc<dyn ToolSource>>, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let servers = parse_servers(&text)?;
    Ok(servers
        .into_iter()
        .map(|(name, launch)| {
            let description = match &launch {
                McpLaunch::Stdio { command, .. } => format!("MCP server (local command {command})"),
                McpLaunch::Http { url, .. } | McpLaunch::Sse { url, .. } => format!("MCP server at {url}"),
                McpLaunch::Plugin { .. } => "LobeChat plugin".to_owned(),
            };
            McpServer::new(format!("mcp:{name}"), name, description, launch, web, Origin::Administrator)
                as Arc<dyn ToolSource>
        })
        .collect())
}

impl Connector {
    /// A JSON document (a plugin's manifest or OpenAPI document) of at most 1 MiB, through
    /// the SSRF guard unless `trusted`.
    async fn fetch_json(&self, address: &str, trusted: bool) -> Result<String, String> {
        let origin = if trusted { Origin::Administrator } else { Origin::Untrusted };
        if !trusted {
            self.web.check_url(address).await.map_err(|error| error.0)?;
        }
        let accept = [("Accept", "application/json")];
        let response = self.web.get(origin, address, &accept, plugin::MAX_MANIFEST_BYTES).await.map_err(|e| e.0)?;
        if !(200..300).contains(&response.status) {
            return Err(format!("{address} answered {}", response.status));
        }
        if response.truncated {
            return Err(format!("{address} is larger than 1 MiB"));
        }
        String::from_utf8(response.body.to_vec()).map_err(|_| format!("{address} is not UTF-8 text"))
    }
}

/// Connects to the servers (and LobeChat plugins) added in the product.
pub struct Connector {
    web: WebClient,
    /// The administrator's `PLUGIN_SETTINGS`, by plugin identifier.
    plugin_settings: HashMap<String, BTreeMap<String, String>>,
}

impl Connector {
    pub fn new(web: WebClient, plugin_settings: HashMap<String, BTreeMap<String, String>>) -> Self {
        Self { web, plugin_settings }
    }
}

#[async_trait]
impl McpConnector for Connector {
    fn source(
        &self,
        name: String,
        prefix: String,
        description: String,
        launch: McpLaunch,
        trusted: bool,
    ) -> Result<Arc<dyn ToolSource>, String> {
        let origin = if trusted { Origin::Administrator } else { Origin::Untrusted };
        if let McpLaunch::Plugin { manifest, settings } = launch {
            let naming = (name, prefix, description);
            let plugin = plugin::Plugin::new(naming, &manifest, settings, &self.plugin_settings, &self.web, origin)?;
            return Ok(plugin);
        }
        Ok(McpServer::new(name, prefix, description, launch, &self.web, origin))
    }

    async fn check_url(&self, url: &str) -> Result<(), String> {
        self.web.check_url(url).await.map_err(|error| error.0)
    }

    async fn fetch_document(&self, url: &str) -> Result<String, String> {
        self.fetch_json(url, false).await
    }

    async fn plugin_manifest(&self, address_or_json: &str, trusted: bool) -> Result<(String, String), String> {
        let json = if address_or_json.starts_with('{') {
            address_or_json.to_owned()
        } else {
            self.fetch_json(address_or_json, trusted).await?
        };
        if json.len() > plugin::MAX_MANIFEST_BYTES {
            return Err("the manifest is larger than 1 MiB".to_owned());
        }
        let manifest = plugin::parse_manifest(&json)?;
        // An OpenAPI plugin: its document is read now and kept with the manifest.
        let json = match (&manifest.openapi, &manifest.openapi_document) {
            (Some(address), None) => {
                let document = self.fetch_json(address, trusted).await?;
                plugin::with_openapi(&json, address, document)?
            }
            _ => json,
        };
        Ok((manifest.identifier, json))
    }
}

/// Notices the server's "the tools changed".
#[derive(Clone)]
struct Listener {
    changed: Arc<AtomicBool>,
}

impl ClientHandler for Listener {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed.store(true, Ordering::Release);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("loquat", env!("CARGO_PKG_VERSION")))
    }
}

type Session = Arc<RunningService<RoleClient, Listener>>;

#[derive(Default)]
struct State {
    session: Option<Session>,
    tools: Option<Vec<Arc<dyn Tool>>>,
    /// After a failure: not tried again before then.
    retry_at: Option<Instant>,
    backoff: Duration,
    last_error: Option<String>,
    last_used: Option<Instant>,
}

/// One configured MCP server.
pub struct McpServer {
    /// The prefix of its tools' names (and its name in logs).
    id: String,
    name: String,
    description: String,
    launch: McpLaunch,
    http: reqwest::Client,
    web: WebClient,
    origin: Origin,
    changed: Arc<AtomicBool>,
    state: Mutex<State>,
    me: Weak<McpServer>,
}

impl McpServer {
    /// A server known to assistants as `name`, its tools named `<prefix>__<tool>`.
    /// `Untrusted`: every address goes through the SSRF guard (a member's server).
    pub fn new(
        name: String,
        prefix: String,
        description: String,
        launch: McpLaunch,
        web: &WebClient,
        origin: Origin,
    ) -> Arc<Self> {
        let server = Arc::new_cyclic(|me| McpServer {
            name,
            id: prefix,
            description,
            launch,
            http: web.client(origin),
            web: web.clone(),
            origin,
            changed: Arc::default(),
            state: Mutex::default(),
            me: me.clone(),
        });
        let idle = Arc::downgrade(&server);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(server) = idle.upgrade() else { return };
                server.stop_if_idle().await;
            }
        });
        server
    }

    async fn stop_if_idle(&self) {
        let mut state = self.state.lock().await;
        if state.session.is_some() && state.last_used.is_some_and(|used| used.elapsed() > IDLE_STOP) {
            tracing::info!(server = %self.id, "stopping an idle MCP server");
            state.session = None;
            state.tools = None;
        }
    }

    async fn connect(&self) -> Result<Session, String> {
        let listener = Listener { changed: self.changed.clone() };
        let started = match &self.launch {
            McpLaunch::Stdio { command, args, env } => {
                let mut process = tokio::process::Command::new(command);
                process.args(args).env_clear();
                for name in PASSED_ENV {
                    if let Ok(value) = std::env::var(name) {
                        process.env(name, value);
                    }
                }
                process.envs(env).kill_on_drop(true);
                let (transport, stderr) = TokioChildProcess::builder(process)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|error| format!("could not start {command}: {error}"))?;
                if let Some(stderr) = stderr {
                    forward_stderr(self.id.clone(), stderr);
                }
                tokio::time::timeout(START_TIMEOUT, listener.serve(transport)).await
            }
            McpLaunch::Http { url, headers } => {
                self.check_address(url).await?;
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                // One message of a server is at most what our SSE transport takes, too.
                config.max_sse_event_size = MAX_MESSAGE_BYTES;
                config.max_json_response_size = MAX_MESSAGE_BYTES;
                config.custom_headers =
                    header_map(headers)?.into_iter().filter_map(|(name, value)| Some((name?, value))).collect();
                let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
                tokio::time::timeout(START_TIMEOUT, listener.serve(transport)).await
            }
            McpLaunch::Sse { url, headers } => {
                self.check_address(url).await?;
                let started = async {
                    let transport = SseTransport::connect(self.http.clone(), url, header_map(headers)?)
                        .await
                        .map_err(|error| error.0)?;
                    listener.serve(transport).await.map_err(|error| error.to_string())
                };
                return match tokio::time::timeout(START_TIMEOUT, started).await {
                    Err(_) => Err("the server did not answer its start in time".to_owned()),
                    Ok(Err(error)) => Err(format!("the server could not be started: {}", plain(&error))),
                    Ok(Ok(session)) => Ok(Arc::new(session)),
                };
            }
            // The connector makes plugins sources of their own.
            McpLaunch::Plugin { .. } => return Err("a LobeChat plugin is not an MCP server".to_owned()),
        };
        match started {
            Err(_) => Err("the server did not answer its start in time".to_owned()),
            Ok(Err(error)) => Err(format!("the server could not be started: {}", plain(&error.to_string()))),
            Ok(Ok(session)) => Ok(Arc::new(session)),
        }
    }

    /// Refuses a member's address the SSRF guard refuses (a literal private address; names
    /// are checked again as the client resolves them).
    async fn check_address(&self, url: &str) -> Result<(), String> {
        match self.origin {
            Origin::Administrator => Ok(()),
            Origin::Untrusted => self.web.check_url(url).await.map_err(|error| error.0),
        }
    }

    /// The running session, started when there is none (unless a failure is recent).
    async fn session(&self, state: &mut State) -> Result<Session, String> {
        state.last_used = Some(Instant::now());
        if let Some(session) = &state.session
            && !session.is_closed()
        {
            return Ok(session.clone());
        }
        state.session = None;
        state.tools = None;
        if let Some(at) = state.retry_at
            && Instant::now() < at
        {
            let error = state.last_error.clone().unwrap_or_default();
            return Err(format!("the server is failing ({error}); it is tried again shortly"));
        }
        match self.connect().await {
            Ok(session) => {
                state.session = Some(session.clone());
                state.retry_at = None;
                state.backoff = Duration::ZERO;
                state.last_error = None;
                Ok(session)
            }
            Err(error) => Err(self.failed(state, error)),
        }
    }

    /// Records a failure: the next start waits a pause that doubles, up to a minute.
    fn failed(&self, state: &mut State, error: String) -> String {
        // No type names, and no address's query (it may hold a key) in the log or the page.
        let error = plain(&error);
        tracing::warn!(server = %self.id, %error, "MCP server failed");
        state.session = None;
        state.tools = None;
        state.backoff = (state.backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
        state.retry_at = Some(Instant::now() + state.backoff);
        state.last_error = Some(error.clone());
        error
    }

    async fn call(&self, tool: &str, arguments: Value) -> Result<String, ToolFailure> {
        let session = {
            let mut state = self.state.lock().await;
            self.session(&mut state).await.map_err(ToolFailure)?
        };
        let arguments = match arguments {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        match session.call_tool(params).await {
            Ok(result) => {
                let blocks = serde_json::to_value(&result.content).unwrap_or(Value::Null);
                let mut text = content_text(&blocks);
                if text.is_empty()
                    && let Some(structured) = &result.structured_content
                {
                    text = structured.to_string();
                }
                if result.is_error == Some(true) { Err(ToolFailure(text)) } else { Ok(text) }
            }
            // The server's own error: the session goes on.
            Err(ServiceError::McpError(error)) => {
                Err(ToolFailure(format!("the server answered with an error: {}", error.message)))
            }
            Err(error) => {
                // A dead process or a lost connection: start again next time (after a pause).
                let mut state = self.state.lock().await;
                if state.session.as_ref().is_some_and(|current| Arc::ptr_eq(current, &session)) {
                    return Err(ToolFailure(self.failed(&mut state, format!("the server stopped: {error}"))));
                }
                Err(ToolFailure(plain(&format!("the server stopped: {error}"))))
            }
        }
    }
}

/// Every page of a server's tools, up to [`MAX_TOOLS`]: a server that pages forever, or lists
/// thousands, stops there.
async fn list_tools(session: &Session) -> Result<Vec<rmcp::model::Tool>, ServiceError> {
    let mut tools = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let page = session.list_tools(Some(PaginatedRequestParams::default().with_cursor(cursor))).await?;
        tools.extend(page.tools);
        if tools.len() >= MAX_TOOLS {
            tools.truncate(MAX_TOOLS);
            break;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(tools)
}

/// An error's text without the Rust type names `rmcp` puts in it (`[rmcp::transport::…]`).
fn plain(error: &str) -> String {
    let mut out = String::with_capacity(error.len());
    let mut rest = error;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|close| open + close) else { break };
        out.push_str(&rest[..open]);
        let inner = &rest[open + 1..close];
        if !inner.contains("::") {
            out.push_str(&rest[open..=close]);
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out.split_whitespace().map(without_query).collect::<Vec<_>>().join(" ")
}

/// A word of an error without the query of an address in it (it may hold a key).
fn without_query(word: &str) -> String {
    match (word.find("://"), word.find('?')) {
        (Some(scheme), Some(query)) if query > scheme => {
            let end = word[query..].find(')').map_or(word.len(), |close| query + close);
            format!("{}?…{}", &word[..query], &word[end..])
        }
        _ => word.to_owned(),
    }
}

/// Headers as `reqwest` wants them; a bad name or value is an error.
fn header_map(headers: &BTreeMap<String, String>) -> Result<reqwest::header::HeaderMap, String> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let name =
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name}: {e}"))?;
        let value = reqwest::header::HeaderValue::from_str(value).map_err(|e| format!("header {name}: {e}"))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// The text of MCP content blocks: text as is, other kinds named.
fn content_text(blocks: &Value) -> String {
    let mut out = Vec::new();
    for block in blocks.as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => out.push(block["text"].as_str().unwrap_or_default().to_owned()),
            Some("resource") => {
                let resource = &block["resource"];
                out.push(resource["text"].as_str().map_or_else(|| resource["uri"].to_string(), str::to_owned));
            }
            Some(kind) => out.push(format!("[{kind} content]")),
            None => {}
        }
    }
    out.join("\n")
}

/// A server's standard error, line by line, into the log (bounded lines).
fn forward_stderr(server: String, stderr: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt;
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line: String = line.chars().take(500).collect();
            tracing::debug!(server = %server, %line, "MCP server says");
        }
    });
}

/// A name the model APIs accept: `[A-Za-z0-9_-]`, at most 64 characters.
pub(crate) fn tool_name(server: &str, tool: &str) -> String {
    let name: String = format!("{server}__{tool}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    name.chars().take(64).collect()
}

#[async_trait]
impl ToolSource for McpServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, ToolFailure> {
        let mut state = self.state.lock().await;
        let session = self.session(&mut state).await.map_err(ToolFailure)?;
        let changed = self.changed.swap(false, Ordering::AcqRel);
        if let Some(tools) = &state.tools
            && !changed
        {
            return Ok(tools.clone());
        }
        let listed = match tokio::time::timeout(START_TIMEOUT, list_tools(&session)).await {
            Ok(Ok(listed)) => listed,
            Ok(Err(error)) => {
                return Err(ToolFailure(self.failed(&mut state, format!("could not list tools: {error}"))));
            }
            Err(_) => return Err(ToolFailure(self.failed(&mut state, "listing its tools took too long".to_owned()))),
        };
        let Some(me) = self.me.upgrade() else { return Err(ToolFailure("the server was removed".into())) };
        let tools: Vec<Arc<dyn Tool>> = listed
            .into_iter()
            .map(|tool| {
                let spec = ToolSpec {
                    name: tool_name(&self.id, &tool.name),
                    description: tool.description.as_deref().unwrap_or_default().chars().take(1_000).collect(),
                    parameters: Value::Object((*tool.input_schema).clone()),
                };
                Arc::new(McpTool { spec, remote: tool.name.to_string(), server: me.clone() }) as Arc<dyn Tool>
            })
            .collect();
        state.tools = Some(tools.clone());
        Ok(tools)
    }

    async fn status(&self) -> SourceStatus {
        let state = self.state.lock().await;
        SourceStatus {
            running: state.session.as_ref().is_some_and(|session| !session.is_closed()),
            tools: state.tools.as_ref().map(|tools| tools.iter().map(|tool| tool.spec().name.clone()).collect()),
            last_error: state.last_error.clone(),
        }
    }
}

/// One tool of an MCP server.
struct McpTool {
    spec: ToolSpec,
    /// Its name on the server.
    remote: String,
    server: Arc<McpServer>,
}

#[async_trait]
impl Tool for McpTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value) -> Result<ToolOutput, ToolFailure> {
        self.server.call(&self.remote, arguments).await.map(ToolOutput::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_read_from_mcp_servers_json() {
        let json = r#"{"mcpServers":{
            "files":{"command":"npx","args":["-y","@modelcontextprotocol/server-filesystem","/srv"],"env":{"LOG":"1"}},
            "remote":{"type":"http","url":"https://mcp.example.com/mcp","headers":{"Authorization":"Bearer t"}}}}"#;
        let servers = parse_servers(json).expect("parses");
        assert_eq!(servers.len(), 2);
        assert!(matches!(&servers[0], (name, McpLaunch::Stdio { command, .. }) if name == "files" && command == "npx"));
        assert!(matches!(&servers[1], (name, McpLaunch::Http { url, headers }) if name == "remote"
            && url == "https://mcp.example.com/mcp" && headers["Authorization"] == "Bearer t"));
        // LobeChat's bare form.
        assert_eq!(parse_servers(r#"{"x":{"url":"http://h/mcp"}}"#).expect("parses").len(), 1);
        let sse = parse_servers(r#"{"x":{"type":"sse","url":"http://h/sse"}}"#).expect("parses");
        assert!(matches!(&sse[0].1, McpLaunch::Sse { url, .. } if url == "http://h/sse"));
        for (bad, why) in [
            ("[]", "expected"),
            (r#"{"mcpServers":{"a b":{"command":"x"}}}"#, "letters"),
            (r#"{"mcpServers":{"a":{}}}"#, "either"),
        ] {
            assert!(parse_servers(bad).expect_err(bad).contains(why), "{bad}");
        }
    }

    #[test]
    fn type_names_leave_errors() {
        let error =
            "Send message error Transport [rmcp::transport::worker::WorkerTransport<a::B<c::D>>] error: refused [x]";
        assert_eq!(plain(error), "Send message error Transport error: refused [x]");
        let leaky = "error sending request for url (https://h.example/mcp?key=secret), when send";
        assert_eq!(plain(leaky), "error sending request for url (https://h.example/mcp?…), when send");
    }

    #[test]
    fn tool_names_are_what_model_apis_accept() {
        assert_eq!(tool_name("files", "read_file"), "files__read_file");
        assert_eq!(tool_name("x", "a.b/c d"), "x__a_b_c_d");
        assert_eq!(tool_name("x", &"y".repeat(100)).len(), 64);
    }

    #[test]
    fn content_blocks_become_text() {
        let blocks = serde_json::json!([
            {"type": "text", "text": "one"},
            {"type": "image", "data": "…", "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "file:///a", "text": "two"}}
        ]);
        assert_eq!(content_text(&blocks), "one\n[image content]\ntwo");
    }
}
