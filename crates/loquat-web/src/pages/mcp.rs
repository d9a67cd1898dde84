//! MCP servers added in the product: a member's own (`/settings/mcp`, HTTP or legacy SSE) and
//! the administrator's for everyone (`/admin/tools`, also local commands). Headers and
//! environment values are write-only: the pages show their names, never their values.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use loquat_core::CoreError;
use loquat_core::domain::McpTransport;
use loquat_core::id::McpServerId;
use loquat_core::service::{McpServerDraft, McpServerView, parse_secret_lines};
use serde::Deserialize;

use super::chat::parse_id;
use super::{Chrome, render, see_other};
use crate::AppState;
use crate::context::{AdminViewer, Viewer};
use crate::error::{WebResult, user_message};
use crate::form::Form;
use crate::i18n::Tr;

/// The fields of a server's form (adding or changing one).
#[derive(Debug, Clone, Deserialize)]
pub struct McpForm {
    #[serde(default)]
    pub name: String,
    #[serde(default = "default_transport")]
    pub transport: String,
    #[serde(default)]
    pub target: String,
    /// A command's arguments, one a line.
    #[serde(default)]
    pub args: String,
    /// `Name: value` lines; empty keeps the stored ones when changing a server.
    #[serde(default)]
    pub secrets: String,
    #[serde(default)]
    pub clear_secrets: Option<String>,
    #[serde(default)]
    pub enabled: Option<String>,
}

fn default_transport() -> String {
    "http".to_owned()
}

impl McpForm {
    fn new_default() -> Self {
        Self {
            name: String::new(),
            transport: default_transport(),
            target: String::new(),
            args: String::new(),
            secrets: String::new(),
            clear_secrets: None,
            enabled: Some("on".to_owned()),
        }
    }

    fn from_view(view: &McpServerView) -> Self {
        let server = &view.server;
        Self {
            name: server.name.clone(),
            transport: server.transport.as_str().to_owned(),
            target: server.target.clone(),
            args: server.args.join("\n"),
            secrets: String::new(),
            clear_secrets: None,
            enabled: server.enabled.then(|| "on".to_owned()),
        }
    }

    fn draft(&self, editing: bool) -> Result<McpServerDraft, CoreError> {
        let secrets = if self.clear_secrets.is_some() {
            Some(Default::default())
        } else if editing && self.secrets.trim().is_empty() {
            None
        } else {
            Some(parse_secret_lines(&self.secrets)?)
        };
        Ok(McpServerDraft {
            name: self.name.clone(),
            transport: McpTransport::parse(&self.transport),
            target: self.target.clone(),
            args: self.args.lines().map(str::to_owned).collect(),
            secrets,
            enabled: self.enabled.is_some(),
        })
    }

    /// The form shown again after a refusal: never the values typed for secrets.
    fn without_secrets(mut self) -> Self {
        self.secrets.clear();
        self
    }

    pub fn is(&self, transport: &str) -> bool {
        self.transport == transport
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.is_some()
    }
}

/// One server in a list.
pub struct ServerRow {
    pub id: String,
    pub name: String,
    pub transport: &'static str,
    pub target: String,
    pub enabled: bool,
    /// `running`, `failing` or `stopped`.
    pub state: &'static str,
    pub state_class: &'static str,
    pub tools: String,
    pub last_error: Option<String>,
    pub secret_names: String,
}

impl ServerRow {
    pub fn new(view: McpServerView) -> Self {
        let (state, state_class) = state_of(view.status.running, view.status.last_error.is_some());
        Self {
            id: view.server.id.to_string(),
            name: view.server.name,
            transport: view.server.transport.as_str(),
            target: view.server.target,
            enabled: view.server.enabled,
            state,
            state_class,
            tools: view.status.tools.map(|tools| tools.join(", ")).unwrap_or_default(),
            last_error: view.status.last_error,
            secret_names: view.secret_names.join(", "),
        }
    }
}

/// A source's state and its badge's class.
pub fn state_of(running: bool, failing: bool) -> (&'static str, &'static str) {
    match (running, failing) {
        (true, _) => ("running", "ok"),
        (false, true) => ("failing", "failed"),
        (false, false) => ("stopped", "muted"),
    }
}

#[derive(Template)]
#[template(path = "mcp_servers.html")]
struct ServersPage {
    tr: Tr,
    chrome: Chrome,
    servers: Vec<ServerRow>,
    may_add: bool,
    form: McpForm,
    notice: Option<String>,
    error: Option<String>,
    /// Where the form posts.
    action: String,
    /// Whether a local command may be chosen (administrators' shared servers only).
    commands: bool,
    stored_secrets: String,
}

#[derive(Template)]
#[template(path = "mcp_server.html")]
struct ServerPage {
    tr: Tr,
    chrome: Chrome,
    back: &'static str,
    form: McpForm,
    error: Option<String>,
    action: String,
    commands: bool,
    stored_secrets: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CheckedQuery {
    checked: Option<String>,
    count: Option<usize>,
}

/// "Checked X: N tools" after a check, in the viewer's language.
pub fn checked_notice(tr: Tr, name: Option<String>, count: Option<usize>) -> Option<String> {
    name.map(|name| {
        let count = count.unwrap_or_default().to_string();
        tr.t_args("admin.tools_checked", &[("name", &name), ("count", &count)])
    })
}

async fn servers_page(
    viewer: &Viewer,
    state: &AppState,
    form: McpForm,
    notice: Option<String>,
    error: Option<String>,
) -> WebResult<Response> {
    let (servers, may_add) = state.services.tools.mcp_servers(viewer.user.id).await.map_err(viewer.fail())?;
    let page = ServersPage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        servers: servers.into_iter().map(ServerRow::new).collect(),
        may_add,
        form,
        notice,
        error,
        action: "/settings/mcp".to_owned(),
        commands: false,
        stored_secrets: String::new(),
    };
    render(&page, viewer.tr)
}

/// `GET /settings/mcp`: the person's own MCP servers.
pub async fn show_servers(
    viewer: Viewer,
    State(state): State<AppState>,
    Query(query): Query<CheckedQuery>,
) -> WebResult<Response> {
    let notice = checked_notice(viewer.tr, query.checked, query.count);
    servers_page(&viewer, &state, McpForm::new_default(), notice, None).await
}

/// `POST /settings/mcp`: adds one.
pub async fn add_server(
    viewer: Viewer,
    State(state): State<AppState>,
    Form(form): Form<McpForm>,
) -> WebResult<Response> {
    let added = match form.draft(false) {
        Ok(draft) => state.services.tools.add_mcp_server(viewer.user.id, draft, &viewer.client).await,
        Err(error) => Err(error),
    };
    match added {
        Ok(_) => Ok(see_other("/settings/mcp")),
        Err(error @ CoreError::Invalid { .. }) => {
            let message = user_message(&error, viewer.tr);
            servers_page(&viewer, &state, form.without_secrets(), None, Some(message)).await
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

/// `GET /settings/mcp/{id}`: one of the person's servers, to change.
pub async fn edit_server(viewer: Viewer, State(state): State<AppState>, Path(id): Path<String>) -> WebResult<Response> {
    let id: McpServerId = parse_id(&id, &viewer)?;
    let view = state.services.tools.mcp_server(viewer.user.id, id).await.map_err(viewer.fail())?;
    server_page(&viewer, &view, McpForm::from_view(&view), None, false)
}

fn server_page(
    viewer: &Viewer,
    view: &McpServerView,
    form: McpForm,
    error: Option<String>,
    admin: bool,
) -> WebResult<Response> {
    let page = ServerPage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        back: if admin { "/admin/tools" } else { "/settings/mcp" },
        form,
        error,
        action: if admin {
            format!("/admin/tools/servers/{}", view.server.id)
        } else {
            format!("/settings/mcp/{}", view.server.id)
        },
        commands: admin,
        stored_secrets: view.secret_names.join(", "),
    };
    render(&page, viewer.tr)
}

/// `POST /settings/mcp/{id}`: changes one.
pub async fn update_server(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<McpForm>,
) -> WebResult<Response> {
    let id: McpServerId = parse_id(&id, &viewer)?;
    let tools = &state.services.tools;
    let updated = match form.draft(true) {
        Ok(draft) => tools.update_mcp_server(viewer.user.id, id, draft).await,
        Err(error) => Err(error),
    };
    match updated {
        Ok(_) => Ok(see_other("/settings/mcp")),
        Err(error @ CoreError::Invalid { .. }) => {
            let message = user_message(&error, viewer.tr);
            let view = tools.mcp_server(viewer.user.id, id).await.map_err(viewer.fail())?;
            server_page(&viewer, &view, form.without_secrets(), Some(message), false)
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

/// `POST /settings/mcp/{id}/delete`.
pub async fn delete_server(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: McpServerId = parse_id(&id, &viewer)?;
    state.services.tools.delete_mcp_server(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(see_other("/settings/mcp"))
}

/// `POST /settings/mcp/{id}/check`: connects and lists the server's tools.
pub async fn check_server(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: McpServerId = parse_id(&id, &viewer)?;
    let tools = &state.services.tools;
    let checked = tools.check_mcp_server(viewer.user.id, id).await.map_err(viewer.fail())?;
    let name = tools.mcp_server(viewer.user.id, id).await.map_err(viewer.fail())?.server.name;
    match checked {
        // A server's name is `[A-Za-z0-9_-]`: safe in a query.
        Ok(count) => Ok(see_other(&format!("/settings/mcp?checked={name}&count={count}"))),
        Err(reason) => {
            let message = viewer.tr.t_args("admin.tools_check_failed", &[("name", &name), ("reason", &reason)]);
            servers_page(&viewer, &state, McpForm::new_default(), None, Some(message)).await
        }
    }
}

// ---- The administrator's servers for everyone -----------------------------------------------

/// The add form of the admin's Tools tab, with what it needs.
pub struct AdminAddForm {
    pub form: McpForm,
    pub action: String,
    pub commands: bool,
    pub stored_secrets: String,
}

impl AdminAddForm {
    pub fn new(form: McpForm) -> Self {
        Self { form, action: "/admin/tools/servers".to_owned(), commands: true, stored_secrets: String::new() }
    }

    pub fn blank() -> Self {
        Self::new(McpForm::new_default())
    }
}

/// `POST /admin/tools/servers`: adds a server for everyone.
pub async fn admin_add_server(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Form(form): Form<McpForm>,
) -> WebResult<Response> {
    let added = match form.draft(false) {
        Ok(draft) => state.services.tools.admin_add_shared_server(viewer.user.id, draft, &viewer.client).await,
        Err(error) => Err(error),
    };
    match added {
        Ok(_) => Ok(see_other("/admin/tools")),
        Err(error @ CoreError::Invalid { .. }) => {
            let message = user_message(&error, viewer.tr);
            let add = AdminAddForm::new(form.without_secrets());
            super::admin_features::tools_page(&state, &viewer, add, None, Some(message)).await
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

/// `GET /admin/tools/servers/{id}`.
pub async fn admin_edit_server(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: McpServerId = parse_id(&id, &viewer)?;
    let view = state.services.tools.admin_shared_server(viewer.user.id, id).await.map_err(viewer.fail())?;
    server_page(&viewer, &view, McpForm::from_view(&view), None, true)
}

/// `POST /admin/tools/servers/{id}`.
pub async fn admin_update_server(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<McpForm>,
) -> WebResult<Response> {
    let id: McpServerId = parse_id(&id, &viewer)?;
    let tools = &state.services.tools;
    let updated = match form.draft(true) {
        Ok(draft) => tools.admin_update_shared_server(viewer.user.id, id, draft, &viewer.client).await,
        Err(error) => Err(error),
    };
    match updated {
        Ok(_) => Ok(see_other("/admin/tools")),
        Err(error @ CoreError::Invalid { .. }) => {
            let message = user_message(&error, viewer.tr);
            let view = tools.admin_shared_server(viewer.user.id, id).await.map_err(viewer.fail())?;
            server_page(&viewer, &view, form.without_secrets(), Some(message), true)
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

/// `POST /admin/tools/servers/{id}/delete`.
pub async fn admin_delete_server(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: McpServerId = parse_id(&id, &viewer)?;
    let tools = &state.services.tools;
    tools.admin_delete_shared_server(viewer.user.id, id, &viewer.client).await.map_err(viewer.fail())?;
    Ok(see_other("/admin/tools"))
}
