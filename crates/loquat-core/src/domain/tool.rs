//! Tool calls of an answer: each call the model made while answering, with its arguments, its
//! result (or why it failed) and how long it took, in the order the model made them. The
//! answer's text and its calls interleave: a step sits at a byte offset of the answer's text.
//! And the MCP servers people add, which give tools.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::id::{McpServerId, MessageId, UserId};
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Running,
    Done,
    /// The tool failed (the model was told why).
    Failed,
    /// Stopped with the answer.
    Cancelled,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Running => "running",
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
            StepStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "running" => StepStatus::Running,
            "done" => StepStatus::Done,
            "failed" => StepStatus::Failed,
            "cancelled" => StepStatus::Cancelled,
            _ => return None,
        })
    }
}

/// One tool call of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolStep {
    pub message_id: MessageId,
    /// Its place among the answer's calls, from 0.
    pub seq: u32,
    /// Where it sits in the answer's text (bytes of text before it).
    pub offset: u32,
    /// The model's id of the call (sent back with its result).
    pub call_id: String,
    /// The tool's name as the model knows it.
    pub tool: String,
    /// The arguments as the model wrote them (JSON text, possibly invalid).
    pub arguments: String,
    /// What the model was given back: the result, or the error.
    pub result: String,
    pub status: StepStatus,
    pub started_at: Timestamp,
    pub duration_ms: Option<i64>,
}

/// How an MCP server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpLaunch {
    /// A command Loquat runs, speaking MCP on its stdin and stdout.
    Stdio { command: String, args: Vec<String>, env: BTreeMap<String, String> },
    /// A Streamable HTTP endpoint.
    Http { url: String, headers: BTreeMap<String, String> },
    /// The legacy transport (MCP 2024-11-05): an event stream, and messages posted to the
    /// address it names.
    Sse { url: String, headers: BTreeMap<String, String> },
    /// Not MCP: a LobeChat plugin, its manifest (JSON) and its settings.
    Plugin { manifest: String, settings: BTreeMap<String, String> },
}

/// The kind of an [`McpLaunch`], as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpTransport {
    Http,
    Sse,
    Stdio,
    /// A LobeChat plugin manifest: its `api` list are the tools.
    Plugin,
}

impl McpTransport {
    pub const ALL: [McpTransport; 4] =
        [McpTransport::Http, McpTransport::Sse, McpTransport::Stdio, McpTransport::Plugin];

    pub fn as_str(self) -> &'static str {
        match self {
            McpTransport::Http => "http",
            McpTransport::Sse => "sse",
            McpTransport::Stdio => "stdio",
            McpTransport::Plugin => "plugin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|transport| transport.as_str() == text)
    }
}

/// An MCP server added in the product: a member's own (reached over HTTP, for them alone) or
/// an administrator's for everyone (`shared`; only these may be local commands). A LobeChat
/// plugin is stored the same way (`Plugin`: a manifest instead of a connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerRecord {
    pub id: McpServerId,
    /// Who added it.
    pub user_id: UserId,
    /// Its name, which prefixes its tools' names: `[A-Za-z0-9_-]`.
    pub name: String,
    pub transport: McpTransport,
    /// The address (HTTP, SSE), the command (stdio) or where the manifest came from (plugin;
    /// empty when it was pasted).
    pub target: String,
    /// A command's arguments.
    pub args: Vec<String>,
    /// A plugin's manifest (JSON), as read when it was added or last checked.
    pub manifest: Option<String>,
    /// The headers (HTTP, SSE), the environment (stdio) or the settings (plugin), a JSON
    /// object encrypted by the key vault: they often hold tokens.
    pub secrets_encrypted: Option<String>,
    pub shared: bool,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl McpServerRecord {
    /// The name assistants choose it by.
    pub fn source_name(&self) -> String {
        format!("mcp:{}", self.id)
    }
}
