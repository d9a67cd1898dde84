//! The id of the HTTP request being served, carried (as a task-local) to the work it starts:
//! the web layer sets it around each request, a generation job keeps the id of the request that
//! started it, and the provider client sends it upstream (`x-request-id`), so one id links a
//! user's click, Loquat's log lines and the provider's records.

use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// Runs `work` with `id` as the current request id (no id: runs it as it is).
pub async fn scope<F: Future>(id: Option<Arc<str>>, work: F) -> F::Output {
    match id {
        Some(id) => REQUEST_ID.scope(id, work).await,
        None => work.await,
    }
}

/// The current request id, if the caller runs inside [`scope`].
pub fn current() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_id_is_seen_inside_the_scope_only() {
        assert_eq!(current(), None);
        let inside = scope(Some(Arc::from("req-1")), async { current() }).await;
        assert_eq!(inside.as_deref(), Some("req-1"));
        assert_eq!(scope(None, async { current() }).await, None);
        assert_eq!(current(), None);
    }
}
