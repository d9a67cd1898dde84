//! Tool calls of an answer: each call the model made while answering, with its arguments, its
//! result (or why it failed) and how long it took, in the order the model made them. The
//! answer's text and its calls interleave: a step sits at a byte offset of the answer's text.

use serde::{Deserialize, Serialize};

use crate::id::MessageId;
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
