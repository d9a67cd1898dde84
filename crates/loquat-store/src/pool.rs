//! The connection pools behind a `SqlStore`: one enum over the two native sqlx drivers, the
//! `on_pool!` macro that expands one query body for each of them, and the mapping of sqlx
//! errors onto `StoreErrorKind`.

use std::time::Instant;

use loquat_core::store::{QUERY_DURATION_SECONDS, StoreError, StoreErrorKind};
use sqlx::error::{DatabaseError, ErrorKind as DbErrorKind};
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;
use sqlx::{PgPool, SqlitePool};

/// The pools of one store. SQLite gets a single writer connection (every write goes through
/// it, so writers never contend) and a read-only pool for reads; WAL lets the readers see each
/// committed write at once. PostgreSQL uses one pool for both.
#[derive(Clone, Debug)]
pub(crate) enum Pools {
    Sqlite { writer: SqlitePool, reader: SqlitePool },
    Postgres(PgPool),
}

impl Pools {
    pub(crate) fn backend_name(&self) -> &'static str {
        match self {
            Pools::Sqlite { .. } => "sqlite",
            Pools::Postgres(_) => "postgres",
        }
    }
}

/// Runs one query body against the right pool, timing it as `query`:
/// `on_pool!(pools, read, "get_topic", |pool| body)` or `on_pool!(pools, write, …)`. The body is
/// expanded twice, once with `pool` bound to a `&SqlitePool` and once to a `&PgPool`, so the same
/// SQL text (with `$n` placeholders) and the same row structs serve both backends. Both
/// expansions must produce the same type.
macro_rules! on_pool {
    ($pools:expr, read, $query:expr, |$pool:ident| $body:expr) => {
        $crate::pool::on_pool!(@timed $query, match $pools {
            $crate::pool::Pools::Sqlite { reader: $pool, .. } => $body,
            $crate::pool::Pools::Postgres($pool) => $body,
        })
    };
    ($pools:expr, write, $query:expr, |$pool:ident| $body:expr) => {
        $crate::pool::on_pool!(@timed $query, match $pools {
            $crate::pool::Pools::Sqlite { writer: $pool, .. } => $body,
            $crate::pool::Pools::Postgres($pool) => $body,
        })
    };
    (@timed $query:expr, $run:expr) => {{
        let started = ::std::time::Instant::now();
        let result = $run;
        $crate::pool::record_query($query, started);
        result
    }};
}
pub(crate) use on_pool;

/// Runs one statement — the same SQL text on both backends — with its parameters, timed as
/// `$query`: `execute!(&self.pools, "set_user_name", "UPDATE … WHERE id = $2", name, id)`.
/// Evaluates to `StoreResult<u64>`, the rows it changed.
macro_rules! execute {
    ($pools:expr, $query:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::pool::on_pool!($pools, write, $query, |pool| {
            sqlx::query($sql)$(.bind($bind))*.execute(pool).await.map(|done| done.rows_affected())
        })
        .map_err($crate::pool::store_error)
    };
}
pub(crate) use execute;

/// Records one store round trip (waiting for a connection included) in
/// [`QUERY_DURATION_SECONDS`](loquat_core::store::QUERY_DURATION_SECONDS).
pub(crate) fn record_query(query: &'static str, started: Instant) {
    metrics::histogram!(QUERY_DURATION_SECONDS, "query" => query).record(started.elapsed().as_secs_f64());
}

/// Wraps a sqlx error as a store error of the matching kind.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    StoreError::new(error_kind(&error), error)
}

/// Maps a sqlx error onto the store's error kinds.
pub(crate) fn error_kind(error: &sqlx::Error) -> StoreErrorKind {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreErrorKind::Unavailable,
        sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => StoreErrorKind::Corrupt,
        sqlx::Error::Database(database) => match database.kind() {
            DbErrorKind::UniqueViolation | DbErrorKind::ForeignKeyViolation => StoreErrorKind::Conflict,
            _ if is_unavailable(database.as_ref()) => StoreErrorKind::Unavailable,
            _ => StoreErrorKind::Other,
        },
        _ => StoreErrorKind::Other,
    }
}

/// Database errors that mean "try again later" rather than "this query is wrong".
fn is_unavailable(database: &dyn DatabaseError) -> bool {
    if let Some(postgres) = database.try_downcast_ref::<PgDatabaseError>() {
        return is_unavailable_sqlstate(postgres.code());
    }
    if database.try_downcast_ref::<SqliteError>().is_some() {
        return database.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(is_unavailable_sqlite_code);
    }
    false
}

/// PostgreSQL SQLSTATE classes 08 (connection exception) and 53 (insufficient resources, e.g.
/// too many connections), and 57P01–57P05 (shutdown, cannot connect now, idle timeouts).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
}

/// SQLite extended result codes, whose low byte is the primary code: BUSY (5), LOCKED (6),
/// IOERR (10), FULL (13), CANTOPEN (14).
fn is_unavailable_sqlite_code(extended: i32) -> bool {
    matches!(extended & 0xff, 5 | 6 | 10 | 13 | 14)
}

/// An error for a value that cannot be written (e.g. a config that does not serialize).
pub(crate) fn other_error(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::new(StoreErrorKind::Other, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_codes() {
        assert!(is_unavailable_sqlstate("08006"));
        assert!(is_unavailable_sqlstate("53300"));
        assert!(is_unavailable_sqlstate("57P01"));
        assert!(!is_unavailable_sqlstate("23505"));
        assert!(!is_unavailable_sqlstate("42P01"));
        assert!(is_unavailable_sqlite_code(5));
        assert!(is_unavailable_sqlite_code(517));
        assert!(!is_unavailable_sqlite_code(1));
        assert!(!is_unavailable_sqlite_code(787));
    }
}
