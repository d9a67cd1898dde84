//! Admin → Audit: the audit log filtered by person (email), action and dates, paged, and the
//! same selection exported as CSV or JSON (at most `MAX_AUDIT_EXPORT` events; the export is
//! itself recorded). CSV cells that a spreadsheet would read as a formula are quoted as text.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use loquat_core::domain::AuditEvent;
use loquat_core::store::AuditFilter;
use loquat_core::time::Timestamp;
use serde::Deserialize;

use super::{Chrome, render};
use crate::AppState;
use crate::context::{AdminViewer, Viewer};
use crate::error::WebResult;
use crate::i18n::Tr;
use crate::views::format_time;

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub ip: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    tr: Tr,
    chrome: Chrome,
    tab: &'static str,
    query: AuditQuery,
    /// The filter as a query string (for the pager and the export links).
    filter_query: String,
    page: u32,
    rows: Vec<AuditRow>,
    has_more: bool,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct AuditQuery {
    action: String,
    /// The person who acted, by email.
    person: String,
    /// `YYYY-MM-DD`, inclusive.
    since: String,
    /// `YYYY-MM-DD`, inclusive.
    until: String,
    page: u32,
    /// `csv` or `json` (export only).
    format: String,
}

impl AuditQuery {
    fn encoded(&self) -> String {
        let pairs =
            [("action", &self.action), ("person", &self.person), ("since", &self.since), ("until", &self.until)];
        pairs
            .iter()
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(name, value)| format!("{name}={}", crate::error::percent_encode(value.trim())))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// A day as the start of it (UTC), or an error naming the field.
fn day(text: &str, field: &str, viewer: &Viewer) -> WebResult<Option<Timestamp>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let date: jiff::civil::Date = text.parse().map_err(|_| viewer.invalid_field(field))?;
    let at = date.to_zoned(jiff::tz::TimeZone::UTC).map_err(|_| viewer.invalid_field(field))?;
    Ok(Some(Timestamp(at.timestamp().as_millisecond())))
}

/// The store's filter for the query; the person is looked up by email.
async fn filter_of(state: &AppState, viewer: &Viewer, query: &AuditQuery) -> WebResult<AuditFilter> {
    let actor = match query.person.trim() {
        "" => None,
        email => Some(state.services.admin.admin_find_user(viewer.user.id, email).await.map_err(viewer.fail())?.id),
    };
    const DAY_MS: i64 = 86_400_000;
    Ok(AuditFilter {
        action: Some(query.action.trim().to_owned()).filter(|action| !action.is_empty()),
        actor,
        since: day(&query.since, "since", viewer)?,
        until: day(&query.until, "until", viewer)?.map(|start| Timestamp(start.as_millis() + DAY_MS)),
    })
}

/// `GET /admin/audit`.
pub async fn show_audit(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> WebResult<Response> {
    let filter = filter_of(&state, &viewer, &query).await?;
    let events = state.services.admin.admin_audit(viewer.user.id, &filter, query.page).await.map_err(viewer.fail())?;
    let page = AuditPage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        tab: "audit",
        has_more: events.len() == 100,
        rows: events
            .into_iter()
            .map(|event| AuditRow {
                at: format_time(event.created_at),
                actor: event.actor.map(|id| id.to_string()).unwrap_or_else(|| "—".to_owned()),
                action: event.action,
                target: event.target,
                detail: event.detail,
                ip: event.ip,
            })
            .collect(),
        filter_query: query.encoded(),
        page: query.page,
        query,
    };
    render(&page, viewer.tr)
}

/// `GET /admin/audit/export?format=csv|json&…`: the filtered events as a download.
pub async fn export_audit(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> WebResult<Response> {
    let filter = filter_of(&state, &viewer, &query).await?;
    let events = state
        .services
        .admin
        .admin_audit_export(viewer.user.id, &filter, &viewer.client)
        .await
        .map_err(viewer.fail())?;
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let (body, mime, extension) = if query.format == "json" {
        let rows: Vec<serde_json::Value> = events.iter().map(json_row).collect();
        (serde_json::to_string_pretty(&rows).unwrap_or_default(), "application/json", "json")
    } else {
        (csv(&events), "text/csv; charset=utf-8", "csv")
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    let disposition = crate::download::content_disposition(&format!("loquat-audit-{today}.{extension}"));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

fn json_row(event: &AuditEvent) -> serde_json::Value {
    serde_json::json!({
        "at": event.created_at.to_jiff().to_string(),
        "actor": event.actor.map(|id| id.to_string()),
        "action": event.action,
        "target": event.target,
        "detail": event.detail,
        "ip": event.ip,
    })
}

/// RFC 4180 CSV with a header row; a cell a spreadsheet would run as a formula starts with `'`.
fn csv(events: &[AuditEvent]) -> String {
    let mut out = String::from("at,actor,action,target,detail,ip\r\n");
    for event in events {
        let actor = event.actor.map(|id| id.to_string()).unwrap_or_default();
        let at = event.created_at.to_jiff().to_string();
        let cells = [&at, &actor, &event.action, &event.target, &event.detail, &event.ip];
        let line: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn cells_are_quoted_and_formulas_stay_text() {
        assert_eq!(csv_cell("login"), "login");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
    }
}
