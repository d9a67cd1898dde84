//! The tools people reach: the server's shelf (built-in tools, MCP servers of the
//! administrator's file) and the MCP servers added in the product — a member's own (HTTP or
//! legacy SSE, for them alone, always through the SSRF guard) and the administrator's for
//! everyone (also local commands). Headers and environment values are encrypted with the key
//! vault and never shown again. A stored server is connected once per node and kept while its
//! record is unchanged.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::accounts::ClientInfo;
use super::knowledge::tool as knowledge_tool;
use super::providers::Reach;
use super::{Audit, Instance, Knowledge};
use crate::crypto::KeyVault;
use crate::domain::{McpLaunch, McpServerRecord, McpTransport, User};
use crate::error::{CoreError, CoreResult};
use crate::id::{McpServerId, UserId};
use crate::store::Store;
use crate::time::Timestamp;
use crate::tools::{OWN_MCP_SERVERS, SourceStatus, StoredSources, Tool, ToolOffer, ToolShelf, ToolSource, Toolbox};

/// The most servers a member may add.
const MAX_OWN_SERVERS: u32 = 20;
/// The most headers (or environment variables) of a server.
const MAX_SECRETS: usize = 30;

/// A server as a form gives it.
#[derive(Debug, Clone, Default)]
pub struct McpServerDraft {
    pub name: String,
    pub transport: Option<McpTransport>,
    /// The address (HTTP, SSE) or the command (stdio).
    pub target: String,
    pub args: Vec<String>,
    /// Headers (HTTP, SSE) or environment (stdio); `None` keeps the stored ones.
    pub secrets: Option<BTreeMap<String, String>>,
    pub enabled: bool,
}

/// A server as its pages show it: never its headers' or variables' values.
#[derive(Debug, Clone)]
pub struct McpServerView {
    pub server: McpServerRecord,
    /// The names of its headers or environment variables.
    pub secret_names: Vec<String>,
    pub status: SourceStatus,
}

/// A stored server's connection and the record version it was made from.
type Connected = HashMap<McpServerId, (Timestamp, Arc<dyn ToolSource>)>;

/// Cheap to clone.
#[derive(Clone)]
pub struct Tools {
    store: Arc<dyn Store>,
    vault: Arc<KeyVault>,
    instance: Instance,
    audit: Audit,
    shelf: ToolShelf,
    knowledge: Knowledge,
    connected: Arc<Mutex<Connected>>,
}

impl Tools {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        vault: Arc<KeyVault>,
        instance: Instance,
        audit: Audit,
        shelf: ToolShelf,
        knowledge: Knowledge,
    ) -> Self {
        Self { store, vault, instance, audit, shelf, knowledge, connected: Arc::default() }
    }

    /// Name and description of the shelf's tools and sources.
    pub fn shelf_catalogue(&self) -> Vec<(String, String)> {
        self.shelf.catalogue()
    }

    /// The shared servers and, when `allowed` lets the person have them, their own, connected.
    pub(crate) async fn stored_sources(&self, person: &User, allowed: Option<&[String]>) -> CoreResult<StoredSources> {
        let own_allowed = allowed.is_none_or(|names| names.iter().any(|name| name == OWN_MCP_SERVERS));
        let (shared, own) = if own_allowed {
            let (shared, own) =
                tokio::join!(self.store.list_shared_mcp_servers(), self.store.list_mcp_servers(person.id));
            (shared?, own?)
        } else {
            (self.store.list_shared_mcp_servers().await?, Vec::new())
        };
        let connect = |records: Vec<McpServerRecord>| -> Vec<Arc<dyn ToolSource>> {
            records.iter().filter(|record| record.enabled).filter_map(|record| self.source(record)).collect()
        };
        Ok(StoredSources { shared: connect(shared), own: connect(own) })
    }

    /// The toolbox of an answer: the tools in `names` that `allowed` permits, from the shelf,
    /// the servers this person may use and the search of their knowledge bases.
    pub(crate) async fn toolbox(
        &self,
        person: &User,
        reach: &Reach,
        allowed: Option<&[String]>,
        names: &[String],
    ) -> CoreResult<Option<Toolbox>> {
        let mut extra: Vec<Arc<dyn Tool>> = Vec::new();
        let wants = |name: &str| {
            names.iter().any(|n| n == name) && allowed.is_none_or(|allowed| allowed.iter().any(|n| n == name))
        };
        if wants(knowledge_tool::NAME) {
            extra.push(Arc::new(knowledge_tool::KnowledgeSearch {
                knowledge: self.knowledge.clone(),
                person: person.clone(),
                reach: reach.clone(),
                spec: knowledge_tool::spec(),
            }));
        }
        let wants_stored = names.iter().any(|name| name.starts_with("mcp:"));
        let stored = if wants_stored { self.stored_sources(person, allowed).await? } else { StoredSources::default() };
        Ok(self.shelf.toolbox(names, allowed, extra, stored).await)
    }

    /// The servers this person may give an assistant beyond the shelf: the shared ones their
    /// role allows, and their own when it lets them have their own.
    pub(crate) async fn stored_choices(&self, person: &User, allowed: Option<&[String]>) -> CoreResult<Vec<ToolOffer>> {
        let permitted = |name: &str| allowed.is_none_or(|names| names.iter().any(|n| n == name));
        let mut servers = self.store.list_shared_mcp_servers().await?;
        servers.retain(|server| permitted(&server.source_name()));
        if permitted(OWN_MCP_SERVERS) {
            servers.extend(self.store.list_mcp_servers(person.id).await?);
        }
        Ok(servers
            .into_iter()
            .filter(|server| server.enabled)
            .map(|server| ToolOffer { name: server.source_name(), description: describe(&server), label: server.name })
            .collect())
    }

    /// The connection of a stored server: the one made before while the record is unchanged,
    /// else a new one (the old one stops when its last answer is done with it).
    fn source(&self, record: &McpServerRecord) -> Option<Arc<dyn ToolSource>> {
        let connector = self.shelf.connector()?;
        let mut connected = self.connected.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((version, source)) = connected.get(&record.id)
            && *version == record.updated_at
        {
            return Some(source.clone());
        }
        let launch = match self.launch(record) {
            Ok(launch) => launch,
            Err(error) => {
                tracing::error!(server = %record.id, %error, "an MCP server's settings cannot be read");
                return None;
            }
        };
        let made = connector.source(record.source_name(), record.name.clone(), describe(record), launch, record.shared);
        let source = match made {
            Ok(source) => source,
            Err(error) => {
                tracing::error!(server = %record.id, %error, "a tool server's settings cannot be used");
                return None;
            }
        };
        connected.insert(record.id, (record.updated_at, source.clone()));
        Some(source)
    }

    fn forget(&self, id: McpServerId) {
        self.connected.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    fn secrets(&self, record: &McpServerRecord) -> CoreResult<BTreeMap<String, String>> {
        match &record.secrets_encrypted {
            None => Ok(BTreeMap::new()),
            Some(stored) => {
                let json = self.vault.decrypt(stored)?;
                serde_json::from_str(json.expose()).map_err(|_| CoreError::invalid("mcp_secrets"))
            }
        }
    }

    fn launch(&self, record: &McpServerRecord) -> CoreResult<McpLaunch> {
        let secrets = self.secrets(record)?;
        let url = record.target.clone();
        Ok(match record.transport {
            McpTransport::Http => McpLaunch::Http { url, headers: secrets },
            McpTransport::Sse => McpLaunch::Sse { url, headers: secrets },
            McpTransport::Stdio => McpLaunch::Stdio { command: url, args: record.args.clone(), env: secrets },
            McpTransport::Plugin => {
                let manifest = record.manifest.clone().ok_or(CoreError::invalid("plugin_manifest"))?;
                McpLaunch::Plugin { manifest, settings: secrets }
            }
        })
    }

    async fn view(&self, server: McpServerRecord) -> McpServerView {
        let secret_names = self.secrets(&server).map(|secrets| secrets.into_keys().collect()).unwrap_or_default();
        let status = match self.connected_source(server.id) {
            Some(source) => source.status().await,
            None => SourceStatus::default(),
        };
        McpServerView { server, secret_names, status }
    }

    fn connected_source(&self, id: McpServerId) -> Option<Arc<dyn ToolSource>> {
        self.connected.lock().unwrap_or_else(|p| p.into_inner()).get(&id).map(|(_, source)| source.clone())
    }

    /// Checks a draft and makes it a record (secrets encrypted; `None` keeps `previous`'s).
    async fn record(
        &self,
        draft: McpServerDraft,
        owner: UserId,
        shared: bool,
        previous: Option<&McpServerRecord>,
    ) -> CoreResult<McpServerRecord> {
        let transport = draft.transport.ok_or(CoreError::invalid("mcp_transport"))?;
        let mut target = draft.target.trim().to_owned();
        let mut name = draft.name.trim().to_owned();
        let mut manifest = None;
        match transport {
            McpTransport::Plugin => {
                if !target.starts_with('{') {
                    check_address(&target)?;
                }
                let connector = self.shelf.connector().ok_or(CoreError::invalid("mcp_unavailable"))?;
                let (identifier, json) = connector
                    .plugin_manifest(&target, shared)
                    .await
                    .map_err(|reason| CoreError::invalid_with("plugin_manifest", reason))?;
                if name.is_empty() {
                    name = identifier;
                }
                if target.starts_with('{') {
                    target.clear();
                }
                manifest = Some(json);
            }
            McpTransport::Stdio if !shared => return Err(CoreError::invalid("mcp_command_admin_only")),
            McpTransport::Stdio => {
                if target.is_empty() || target.len() > 500 || target.contains(['\n', '\r', '\0']) {
                    return Err(CoreError::invalid("mcp_command"));
                }
            }
            McpTransport::Http | McpTransport::Sse => {
                check_address(&target)?;
                // A member's address is checked now (and again at every connection).
                if !shared {
                    let connector = self.shelf.connector().ok_or(CoreError::invalid("mcp_unavailable"))?;
                    connector
                        .check_url(&target)
                        .await
                        .map_err(|reason| CoreError::invalid_with("mcp_refused", reason))?;
                }
            }
        }
        let name_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if name.is_empty() || name.len() > 32 || !name.chars().all(name_ok) {
            return Err(CoreError::invalid("mcp_name"));
        }
        let args: Vec<String> = if transport == McpTransport::Stdio {
            draft.args.into_iter().map(|arg| arg.trim().to_owned()).filter(|arg| !arg.is_empty()).collect()
        } else {
            Vec::new()
        };
        if args.len() > 50 || args.iter().any(|arg| arg.len() > 1_000 || arg.contains('\0')) {
            return Err(CoreError::invalid("mcp_args"));
        }
        let secrets_encrypted = match draft.secrets {
            None => previous.and_then(|previous| previous.secrets_encrypted.clone()),
            Some(secrets) if secrets.is_empty() => None,
            Some(secrets) => {
                check_secrets(&secrets, transport)?;
                let json = serde_json::to_string(&secrets).map_err(|_| CoreError::invalid("mcp_secrets"))?;
                Some(self.vault.encrypt(&json))
            }
        };
        let now = Timestamp::now();
        Ok(McpServerRecord {
            id: previous.map_or_else(McpServerId::new, |previous| previous.id),
            user_id: previous.map_or(owner, |previous| previous.user_id),
            name,
            transport,
            target,
            args,
            manifest,
            secrets_encrypted,
            shared,
            enabled: draft.enabled,
            created_at: previous.map_or(now, |previous| previous.created_at),
            // Always later than the previous version: the connection is made again.
            updated_at: previous.map_or(now, |previous| Timestamp(now.0.max(previous.updated_at.0 + 1))),
        })
    }

    /// Stores a new server (a member's own only while they have fewer than `own_at_most`), in
    /// the audit log too.
    async fn add(
        &self,
        record: McpServerRecord,
        actor: UserId,
        own_at_most: Option<u32>,
        client: &ClientInfo,
    ) -> CoreResult<McpServerView> {
        if !self.store.insert_mcp_server(&record, own_at_most).await? {
            let limit = own_at_most.unwrap_or_default().to_string();
            return Err(CoreError::invalid_with("mcp_too_many", limit));
        }
        self.audit.record(Some(actor), "mcp_server_added", &record.id.to_string(), &audited(&record), client).await;
        Ok(self.view(record).await)
    }

    /// Writes a changed server; its connection is made again on next use.
    async fn replace(&self, record: &McpServerRecord) -> CoreResult<()> {
        if !self.store.update_mcp_server(record).await? {
            return Err(CoreError::NotFound("mcp_server"));
        }
        self.forget(record.id);
        Ok(())
    }

    // A member's own servers.

    /// Whether the person's role lets them have their own servers.
    async fn may_have_own(&self, person: &User) -> CoreResult<bool> {
        let snapshot = self.instance.snapshot().await?;
        Ok(snapshot.tools_for(person).is_none_or(|names| names.iter().any(|name| name == OWN_MCP_SERVERS)))
    }

    /// The person's own servers, and whether they may add more.
    /// A JSON document a member names by its address (an agent to import), fetched through
    /// the SSRF guard, at most 1 MiB.
    pub async fn fetch_document(&self, url: &str) -> CoreResult<String> {
        check_address(url.trim()).map_err(|_| CoreError::invalid("import_url"))?;
        let connector = self.shelf.connector().ok_or(CoreError::invalid("mcp_unavailable"))?;
        connector.fetch_document(url.trim()).await.map_err(|reason| CoreError::invalid_with("import_fetch", reason))
    }

    pub async fn mcp_servers(&self, user: UserId) -> CoreResult<(Vec<McpServerView>, bool)> {
        let person = super::existing_user(self.store.as_ref(), user).await?;
        let mut views = Vec::new();
        for server in self.store.list_mcp_servers(user).await? {
            views.push(self.view(server).await);
        }
        Ok((views, self.may_have_own(&person).await?))
    }

    pub async fn mcp_server(&self, user: UserId, id: McpServerId) -> CoreResult<McpServerView> {
        let server = self.store.get_mcp_server(user, id).await?.ok_or(CoreError::NotFound("mcp_server"))?;
        Ok(self.view(server).await)
    }

    pub async fn add_mcp_server(
        &self,
        user: UserId,
        draft: McpServerDraft,
        client: &ClientInfo,
    ) -> CoreResult<McpServerView> {
        let person = super::existing_user(self.store.as_ref(), user).await?;
        if !self.may_have_own(&person).await? {
            return Err(CoreError::invalid("mcp_not_allowed"));
        }
        let record = self.record(draft, user, false, None).await?;
        self.add(record, user, Some(MAX_OWN_SERVERS), client).await
    }

    pub async fn update_mcp_server(
        &self,
        user: UserId,
        id: McpServerId,
        draft: McpServerDraft,
    ) -> CoreResult<McpServerView> {
        let previous = self.store.get_mcp_server(user, id).await?.ok_or(CoreError::NotFound("mcp_server"))?;
        let record = self.record(draft, user, false, Some(&previous)).await?;
        self.replace(&record).await?;
        Ok(self.view(record).await)
    }

    pub async fn delete_mcp_server(&self, user: UserId, id: McpServerId) -> CoreResult<()> {
        if !self.store.delete_mcp_server(Some(user), id).await? {
            return Err(CoreError::NotFound("mcp_server"));
        }
        self.forget(id);
        Ok(())
    }

    /// Connects to one of the person's servers and lists its tools: how many, or why not.
    pub async fn check_mcp_server(&self, user: UserId, id: McpServerId) -> CoreResult<Result<usize, String>> {
        let server = self.store.get_mcp_server(user, id).await?.ok_or(CoreError::NotFound("mcp_server"))?;
        Ok(self.check(&server).await)
    }

    async fn check(&self, server: &McpServerRecord) -> Result<usize, String> {
        let source = self.source(server).ok_or_else(|| "MCP is not available on this server".to_owned())?;
        source.tools().await.map(|tools| tools.len()).map_err(|failure| failure.0)
    }

    // The administrator's servers for everyone.

    /// Every source of tools with its state: the file's servers, then the shared ones.
    pub async fn admin_sources(
        &self,
        actor: UserId,
    ) -> CoreResult<(Vec<(String, String, SourceStatus)>, Vec<McpServerView>)> {
        super::admin_user(self.store.as_ref(), actor).await?;
        let mut shared = Vec::new();
        for server in self.store.list_shared_mcp_servers().await? {
            shared.push(self.view(server).await);
        }
        Ok((self.shelf.sources().await, shared))
    }

    /// Starts a source (the file's by name, `mcp:<name>`, or a shared one, `mcp:<id>`) and
    /// lists its tools again: how many, or why it failed.
    pub async fn admin_check_source(&self, actor: UserId, name: &str) -> CoreResult<Result<usize, String>> {
        super::admin_user(self.store.as_ref(), actor).await?;
        if let Some(result) = self.shelf.check(name).await {
            return Ok(result.map_err(|failure| failure.0));
        }
        let id = name.strip_prefix("mcp:").and_then(|id| id.parse().ok()).ok_or(CoreError::NotFound("tool_source"))?;
        let server = self.store.get_shared_mcp_server(id).await?.ok_or(CoreError::NotFound("tool_source"))?;
        Ok(self.check(&server).await)
    }

    pub async fn admin_shared_server(&self, actor: UserId, id: McpServerId) -> CoreResult<McpServerView> {
        super::admin_user(self.store.as_ref(), actor).await?;
        let server = self.store.get_shared_mcp_server(id).await?.ok_or(CoreError::NotFound("mcp_server"))?;
        Ok(self.view(server).await)
    }

    pub async fn admin_add_shared_server(
        &self,
        actor: UserId,
        draft: McpServerDraft,
        client: &ClientInfo,
    ) -> CoreResult<McpServerView> {
        super::admin_user(self.store.as_ref(), actor).await?;
        let record = self.record(draft, actor, true, None).await?;
        self.add(record, actor, None, client).await
    }

    pub async fn admin_update_shared_server(
        &self,
        actor: UserId,
        id: McpServerId,
        draft: McpServerDraft,
        client: &ClientInfo,
    ) -> CoreResult<McpServerView> {
        super::admin_user(self.store.as_ref(), actor).await?;
        let previous = self.store.get_shared_mcp_server(id).await?.ok_or(CoreError::NotFound("mcp_server"))?;
        let record = self.record(draft, actor, true, Some(&previous)).await?;
        self.replace(&record).await?;
        self.audit.record(Some(actor), "mcp_server_changed", &id.to_string(), &audited(&record), client).await;
        Ok(self.view(record).await)
    }

    pub async fn admin_delete_shared_server(
        &self,
        actor: UserId,
        id: McpServerId,
        client: &ClientInfo,
    ) -> CoreResult<()> {
        super::admin_user(self.store.as_ref(), actor).await?;
        if !self.store.delete_mcp_server(None, id).await? {
            return Err(CoreError::NotFound("mcp_server"));
        }
        self.forget(id);
        self.audit.record(Some(actor), "mcp_server_removed", &id.to_string(), "", client).await;
        Ok(())
    }
}

/// What the audit log says of a server: its name and address, without the address's query
/// (it may hold a key).
fn audited(server: &McpServerRecord) -> String {
    let target = server.target.split(['?', '#']).next().unwrap_or_default();
    format!("{} {} {target}", server.name, server.transport.as_str())
}

/// What a stored server is, for the assistant form.
fn describe(server: &McpServerRecord) -> String {
    match server.transport {
        McpTransport::Stdio => format!("MCP server (local command {})", server.target),
        McpTransport::Http | McpTransport::Sse => "MCP server".to_owned(),
        McpTransport::Plugin => "LobeChat plugin".to_owned(),
    }
}

/// An address of `http` or `https`, of reasonable length.
fn check_address(target: &str) -> CoreResult<()> {
    let url = url::Url::parse(target).map_err(|_| CoreError::invalid("mcp_url"))?;
    if !matches!(url.scheme(), "http" | "https") || target.len() > 2_000 {
        return Err(CoreError::invalid("mcp_url"));
    }
    Ok(())
}

/// Header names (HTTP, SSE) or variable names (stdio), and values on one line.
fn check_secrets(secrets: &BTreeMap<String, String>, transport: McpTransport) -> CoreResult<()> {
    if secrets.len() > MAX_SECRETS {
        return Err(CoreError::invalid("mcp_secrets"));
    }
    for (name, value) in secrets {
        let name_ok = match transport {
            McpTransport::Stdio => {
                name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            }
            McpTransport::Http | McpTransport::Sse | McpTransport::Plugin => {
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            }
        };
        let value_ok = value.len() <= 8_000 && !value.contains(['\n', '\r', '\0']);
        if !name_ok || name.len() > 200 || !value_ok {
            return Err(CoreError::invalid_with("mcp_secret", name.chars().take(200).collect::<String>()));
        }
    }
    Ok(())
}

/// `Name: value` lines (headers) or `NAME=value` lines (environment) as a map; blank lines
/// and lines starting with `#` are skipped.
pub fn parse_secret_lines(text: &str) -> CoreResult<BTreeMap<String, String>> {
    let mut secrets = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')) {
        let cut = match (line.find(':'), line.find('=')) {
            (Some(colon), Some(equals)) => colon.min(equals),
            (Some(at), None) | (None, Some(at)) => at,
            (None, None) => {
                return Err(CoreError::invalid_with("mcp_secret", line.chars().take(60).collect::<String>()));
            }
        };
        secrets.insert(line[..cut].trim().to_owned(), line[cut + 1..].trim().to_owned());
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_lines_are_headers_or_variables() {
        let parsed = parse_secret_lines("Authorization: Bearer a:b\n# note\n\nAPI_KEY=x=y\n").expect("parses");
        assert_eq!(parsed["Authorization"], "Bearer a:b");
        assert_eq!(parsed["API_KEY"], "x=y");
        assert!(parse_secret_lines("no separator").is_err());
        let header = |name: &str, value: &str| BTreeMap::from([(name.to_owned(), value.to_owned())]);
        assert!(check_secrets(&header("X-Key", "v"), McpTransport::Http).is_ok());
        assert!(check_secrets(&header("X Key", "v"), McpTransport::Http).is_err());
        assert!(check_secrets(&header("X-Key", "v"), McpTransport::Stdio).is_err());
        assert!(check_secrets(&header("KEY", "a\r\nInjected: yes"), McpTransport::Http).is_err());
    }
}
