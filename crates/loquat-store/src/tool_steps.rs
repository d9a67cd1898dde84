//! The `tool_steps` table for `SqlStore`'s `MessageStore`: an answer's tool calls, each written
//! when it starts and again when it ends (an upsert by answer and place), only for an answer of
//! the same user.

use loquat_core::domain::{StepStatus, ToolStep};
use loquat_core::id::{MessageId, TopicId, UserId};
use loquat_core::store::StoreResult;
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{execute, on_pool, store_error};
use crate::rows::{convert_all, corrupt, count, id};

#[derive(sqlx::FromRow)]
struct StepRow {
    message_id: String,
    seq: i64,
    text_offset: i64,
    call_id: String,
    tool: String,
    arguments: String,
    result: String,
    status: String,
    started_at: i64,
    duration_ms: Option<i64>,
}

impl StepRow {
    fn into_domain(self) -> StoreResult<ToolStep> {
        Ok(ToolStep {
            message_id: id("tool_steps", "message_id", self.message_id)?,
            seq: count("tool_steps", "seq", self.seq)?,
            offset: count("tool_steps", "text_offset", self.text_offset)?,
            call_id: self.call_id,
            tool: self.tool,
            arguments: self.arguments,
            result: self.result,
            status: StepStatus::parse(&self.status).ok_or_else(|| corrupt("tool_steps", "status", &self.status))?,
            started_at: Timestamp(self.started_at),
            duration_ms: self.duration_ms,
        })
    }
}

macro_rules! step_columns {
    () => {
        "s.message_id, s.seq, s.text_offset, s.call_id, s.tool, s.arguments, s.result, s.status, s.started_at, \
         s.duration_ms"
    };
}

pub(crate) async fn save(store: &SqlStore, user: UserId, step: &ToolStep) -> StoreResult<bool> {
    let changed = execute!(
        &store.pools,
        "save_tool_step",
        "INSERT INTO tool_steps (message_id, seq, user_id, text_offset, call_id, tool, arguments, result, status, \
         started_at, duration_ms) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
         WHERE EXISTS (SELECT 1 FROM messages WHERE id = $1 AND user_id = $3) \
         ON CONFLICT (message_id, seq) DO UPDATE SET text_offset = excluded.text_offset, call_id = excluded.call_id, \
         tool = excluded.tool, arguments = excluded.arguments, result = excluded.result, status = excluded.status, \
         duration_ms = excluded.duration_ms",
        step.message_id.to_string(),
        i64::from(step.seq),
        user.to_string(),
        i64::from(step.offset),
        &step.call_id,
        &step.tool,
        &step.arguments,
        &step.result,
        step.status.as_str(),
        step.started_at.as_millis(),
        step.duration_ms,
    )?;
    Ok(changed > 0)
}

pub(crate) async fn of_message(store: &SqlStore, user: UserId, message: MessageId) -> StoreResult<Vec<ToolStep>> {
    let rows = on_pool!(&store.pools, read, "message_tool_steps", |pool| {
        sqlx::query_as::<_, StepRow>(concat!(
            "SELECT ",
            step_columns!(),
            " FROM tool_steps AS s WHERE s.message_id = $1 AND s.user_id = $2 ORDER BY s.seq"
        ))
        .bind(message.to_string())
        .bind(user.to_string())
        .fetch_all(pool)
        .await
    })
    .map_err(store_error)?;
    convert_all(rows, StepRow::into_domain)
}

pub(crate) async fn of_topic(store: &SqlStore, user: UserId, topic: TopicId) -> StoreResult<Vec<ToolStep>> {
    let rows = on_pool!(&store.pools, read, "topic_tool_steps", |pool| {
        sqlx::query_as::<_, StepRow>(concat!(
            "SELECT ",
            step_columns!(),
            " FROM tool_steps AS s JOIN messages AS m ON m.id = s.message_id \
             WHERE m.topic_id = $1 AND m.user_id = $2 AND s.user_id = $2 ORDER BY s.message_id, s.seq"
        ))
        .bind(topic.to_string())
        .bind(user.to_string())
        .fetch_all(pool)
        .await
    })
    .map_err(store_error)?;
    convert_all(rows, StepRow::into_domain)
}
