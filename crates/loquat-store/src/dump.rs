//! Every table as plain rows, for backups: a [`Snapshot`] reads the whole store at one moment
//! (one read transaction: SQLite's WAL snapshot, PostgreSQL's repeatable read) table by table,
//! and a [`Restore`] writes such rows into an empty store of either backend in one transaction,
//! so a restore is whole or nothing.
//!
//! Rows travel as [`Cell`]s of four portable kinds (integer, text, boolean, bytes), read by the
//! columns' declared types, so SQLite's rows restore into PostgreSQL and back. What is derived or
//! short-lived stays out ([`LEFT_OUT`]): the search index (rebuilt from the messages), sessions
//! and sign-in states (a restored instance asks people to sign in again). [`TABLES`] lists the
//! rest in an order that inserts every referenced row before the rows referring to it
//! (messages themselves parents first); a test fails when a migration adds a table to neither.

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use loquat_core::store::{StoreError, StoreErrorKind, StoreResult};
use sqlx::{AssertSqlSafe, Postgres, Row, Sqlite, Transaction};

use crate::pool::{Pools, store_error};
use crate::{SqlStore, StoreOptions, migrate};

/// The tables a backup holds, in restore order.
pub const TABLES: &[&str] = &[
    "users",
    "settings",
    "quotas",
    "invites",
    "identities",
    "api_tokens",
    "provider_settings",
    "provider_overrides",
    "mcp_servers",
    "assistants",
    "topics",
    "messages",
    "files",
    "file_ingest",
    "chunks",
    "knowledge_bases",
    "knowledge_base_files",
    "assistant_knowledge",
    "message_files",
    "message_sources",
    "message_speech",
    "tool_steps",
    "topic_features_off",
    "topic_summaries",
    "shares",
    "usage_events",
    "audit_log",
];

/// Tables a backup leaves out: the search index (rebuilt after a restore), sessions and
/// sign-in states, and the migrations' own bookkeeping.
pub const LEFT_OUT: &[&str] = &["message_search", "sessions", "login_states", "_sqlx_migrations"];

/// The walk that gives the rows of `messages` parents before their children (a row's parent
/// must exist when it is inserted): each tree from its roots, level by level.
const MESSAGES_PARENTS_FIRST: &str = "WITH RECURSIVE tree (id, depth) AS ( \
        SELECT id, 0 FROM messages WHERE parent_id IS NULL \
        UNION ALL SELECT m.id, tree.depth + 1 FROM messages m JOIN tree ON m.parent_id = tree.id) ";

/// The portable kinds a column's values take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Bool,
    Bytes,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Int => "int",
            Kind::Text => "text",
            Kind::Bool => "bool",
            Kind::Bytes => "bytes",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        [Kind::Int, Kind::Text, Kind::Bool, Kind::Bytes].into_iter().find(|kind| kind.as_str() == text)
    }

    /// The kind of a declared type (SQLite's `PRAGMA table_info`, PostgreSQL's
    /// `information_schema.columns.data_type`), and whether it is a 32-bit integer.
    fn of_declared(declared: &str, postgres: bool) -> Option<(Kind, bool)> {
        Some(match declared.to_ascii_lowercase().as_str() {
            "bigint" => (Kind::Int, false),
            // SQLite's integers are 64 bits, PostgreSQL's `integer` 32.
            "integer" => (Kind::Int, postgres),
            "text" => (Kind::Text, false),
            "boolean" => (Kind::Bool, false),
            "blob" | "bytea" => (Kind::Bytes, false),
            _ => return None,
        })
    }
}

/// One column of a table: its name and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    /// A PostgreSQL `integer` (read and written as 32 bits).
    narrow: bool,
}

impl Column {
    pub fn new(name: impl Into<String>, kind: Kind) -> Self {
        Self { name: name.into(), kind, narrow: false }
    }
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
    Bytes(Vec<u8>),
}

fn dump_error(message: impl Into<String>) -> StoreError {
    StoreError::new(StoreErrorKind::Other, message.into())
}

fn known_table(table: &str) -> StoreResult<()> {
    if TABLES.contains(&table) { Ok(()) } else { Err(dump_error(format!("{table} is not a table of a backup"))) }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

enum ReadTx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// The whole store as it was when the snapshot began, whatever is written meanwhile.
pub struct Snapshot {
    tx: ReadTx,
}

impl SqlStore {
    /// Starts reading a consistent snapshot (one read-only transaction, held until dropped).
    pub async fn snapshot(&self) -> StoreResult<Snapshot> {
        let tx = match &self.pools {
            Pools::Sqlite { reader, .. } => {
                let mut tx = reader.begin().await.map_err(store_error)?;
                // A deferred transaction's snapshot starts with its first read: take it now.
                sqlx::query("SELECT COUNT(*) FROM users").execute(&mut *tx).await.map_err(store_error)?;
                ReadTx::Sqlite(tx)
            }
            Pools::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(store_error)?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                ReadTx::Postgres(tx)
            }
        };
        Ok(Snapshot { tx })
    }

    /// The newest migration applied to this store.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        let version: Option<i64> = crate::pool::on_pool!(&self.pools, read, "schema_version", |pool| {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(pool).await
        })
        .map_err(store_error)?;
        Ok(version.unwrap_or(0))
    }
}

/// Reads a table's columns from the catalogue of the connection `$conn` speaks to.
macro_rules! columns_of {
    ($conn:expr, $table:expr, postgres: $postgres:expr) => {{
        let (sql, postgres) = if $postgres { (POSTGRES_COLUMNS, true) } else { (SQLITE_COLUMNS, false) };
        let rows: Vec<(String, String)> =
            sqlx::query_as(sql).bind($table).fetch_all($conn).await.map_err(store_error)?;
        if rows.is_empty() {
            return Err(dump_error(format!("the table {} is missing", $table)));
        }
        rows.into_iter()
            .map(|(name, declared)| match Kind::of_declared(&declared, postgres) {
                Some((kind, narrow)) => Ok(Column { name, kind, narrow }),
                None => Err(dump_error(format!("{}.{name} has a type backups do not know: {declared}", $table))),
            })
            .collect::<StoreResult<Vec<_>>>()
    }};
}

const SQLITE_COLUMNS: &str = "SELECT name, type FROM pragma_table_info($1) ORDER BY cid";
const POSTGRES_COLUMNS: &str = "SELECT column_name::text, data_type::text FROM information_schema.columns \
    WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position";

/// One row's cells, decoded by the columns' kinds.
macro_rules! decode_row {
    ($row:expr, $columns:expr) => {{
        let row = $row;
        $columns
            .iter()
            .enumerate()
            .map(|(at, column)| {
                Ok(match (column.kind, column.narrow) {
                    (Kind::Int, false) => row.try_get::<Option<i64>, _>(at)?.map_or(Cell::Null, Cell::Int),
                    (Kind::Int, true) => row.try_get::<Option<i32>, _>(at)?.map_or(Cell::Null, |v| Cell::Int(v.into())),
                    (Kind::Text, _) => row.try_get::<Option<String>, _>(at)?.map_or(Cell::Null, Cell::Text),
                    (Kind::Bool, _) => row.try_get::<Option<bool>, _>(at)?.map_or(Cell::Null, Cell::Bool),
                    (Kind::Bytes, _) => row.try_get::<Option<Vec<u8>>, _>(at)?.map_or(Cell::Null, Cell::Bytes),
                })
            })
            .collect::<Result<Vec<Cell>, sqlx::Error>>()
    }};
}

fn select_all(table: &str, columns: &[Column]) -> String {
    if table == "messages" {
        let names = columns.iter().map(|column| format!("m.{}", quoted(&column.name))).collect::<Vec<_>>();
        let names = names.join(", ");
        return format!(
            "{MESSAGES_PARENTS_FIRST}SELECT {names} FROM messages m JOIN tree ON tree.id = m.id ORDER BY tree.depth"
        );
    }
    let names = columns.iter().map(|column| quoted(&column.name)).collect::<Vec<_>>().join(", ");
    format!("SELECT {names} FROM {}", quoted(table))
}

impl Snapshot {
    /// The columns of `table`, in their order.
    pub async fn columns(&mut self, table: &str) -> StoreResult<Vec<Column>> {
        known_table(table)?;
        match &mut self.tx {
            ReadTx::Sqlite(tx) => columns_of!(&mut **tx, table, postgres: false),
            ReadTx::Postgres(tx) => columns_of!(&mut **tx, table, postgres: true),
        }
    }

    /// Every row of `table` (read with [`Snapshot::columns`]'s columns), streamed.
    pub fn rows<'a>(&'a mut self, table: &str, columns: &'a [Column]) -> BoxStream<'a, StoreResult<Vec<Cell>>> {
        if let Err(error) = known_table(table) {
            return futures_util::stream::once(async { Err(error) }).boxed();
        }
        let sql = select_all(table, columns);
        match &mut self.tx {
            ReadTx::Sqlite(tx) => sqlx::query(AssertSqlSafe(sql))
                .fetch(&mut **tx)
                .map_err(store_error)
                .and_then(move |row| async move { decode_row!(row, columns).map_err(store_error) })
                .boxed(),
            ReadTx::Postgres(tx) => sqlx::query(AssertSqlSafe(sql))
                .fetch(&mut **tx)
                .map_err(store_error)
                .and_then(move |row| async move { decode_row!(row, columns).map_err(store_error) })
                .boxed(),
        }
    }

    /// The newest migration of the snapshot's schema.
    pub async fn schema_version(&mut self) -> StoreResult<i64> {
        const SQL: &str = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";
        let version: Option<i64> = match &mut self.tx {
            ReadTx::Sqlite(tx) => sqlx::query_scalar(SQL).fetch_one(&mut **tx).await,
            ReadTx::Postgres(tx) => sqlx::query_scalar(SQL).fetch_one(&mut **tx).await,
        }
        .map_err(store_error)?;
        Ok(version.unwrap_or(0))
    }
}

enum WriteTx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// A restore under way: rows written into an empty store in one transaction, kept only when
/// [`Restore::finish`] commits it.
pub struct Restore {
    store: SqlStore,
    tx: WriteTx,
    /// Whether the schema has the search index (written with the messages).
    indexes_search: bool,
    /// PostgreSQL's GIN indexes of the search terms, dropped while the rows go in and built
    /// again before the commit (one build costs a fraction of 100,000 incremental inserts).
    rebuild: Vec<String>,
}

/// Why a store cannot take a restore.
#[derive(Debug, thiserror::Error)]
pub enum RestoreRefused {
    #[error(
        "the database already holds data (the table {0} has rows): restore into a new, empty database and data folder"
    )]
    NotEmpty(&'static str),
    #[error(
        "the database was migrated to schema {found}, the backup has schema {wanted}: restore into a new, empty database"
    )]
    OtherSchema { found: i64, wanted: i64 },
    #[error("the backup has schema {wanted}, newer than this Loquat's {latest}: restore it with a newer Loquat")]
    Newer { wanted: i64, latest: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens the store of `options` to restore a backup of schema `version` into it: a new
/// database is migrated to that schema (the newer migrations run after the rows are in); it
/// must hold no rows.
pub async fn open_for_restore(options: &StoreOptions, version: i64) -> Result<Restore, RestoreRefused> {
    let latest = migrate::latest();
    if version > latest {
        return Err(RestoreRefused::Newer { wanted: version, latest });
    }
    let store = SqlStore { pools: crate::connect(options).await? };
    let found = store.applied_version().await?;
    if found == 0 {
        migrate::run_to(&store.pools, version).await?;
    } else if found != version {
        return Err(RestoreRefused::OtherSchema { found, wanted: version });
    }
    for &table in TABLES {
        let sql = AssertSqlSafe(format!("SELECT EXISTS (SELECT 1 FROM {})", quoted(table)));
        let any: bool = crate::pool::on_pool!(&store.pools, read, "restore_empty", |pool| {
            sqlx::query_scalar(sql).fetch_one(pool).await
        })
        .map_err(store_error)?;
        if any {
            return Err(RestoreRefused::NotEmpty(table));
        }
    }
    let indexes_search = store.tables().await?.iter().any(|table| table == "message_search");
    let mut rebuild = Vec::new();
    let tx = match &store.pools {
        Pools::Sqlite { writer, .. } => WriteTx::Sqlite(writer.begin().await.map_err(store_error)?),
        Pools::Postgres(pool) => {
            let mut tx = pool.begin().await.map_err(store_error)?;
            let gin: Vec<(String, String)> = sqlx::query_as(
                "SELECT indexname::text, indexdef FROM pg_indexes \
                 WHERE schemaname = current_schema() AND tablename = 'message_search' AND indexdef LIKE '%USING gin%'",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
            for (name, definition) in gin {
                let drop = AssertSqlSafe(format!("DROP INDEX {}", quoted(&name)));
                sqlx::query(drop).execute(&mut *tx).await.map_err(store_error)?;
                rebuild.push(definition);
            }
            WriteTx::Postgres(tx)
        }
    };
    Ok(Restore { store, tx, indexes_search, rebuild })
}

/// Binds one cell as its column's kind (a null keeps its column's type for PostgreSQL).
macro_rules! bind_cell {
    ($query:expr, $cell:expr, $column:expr) => {
        match ($cell, $column.kind) {
            (Cell::Null, Kind::Int) if $column.narrow => $query.bind(None::<i32>),
            (Cell::Null, Kind::Int) => $query.bind(None::<i64>),
            (Cell::Null, Kind::Text) => $query.bind(None::<String>),
            (Cell::Null, Kind::Bool) => $query.bind(None::<bool>),
            (Cell::Null, Kind::Bytes) => $query.bind(None::<Vec<u8>>),
            (Cell::Int(value), _) if $column.narrow => {
                $query.bind(i32::try_from(*value).map_err(|_| dump_error("a number too large for its column"))?)
            }
            (Cell::Int(value), _) => $query.bind(*value),
            (Cell::Text(value), _) => $query.bind(value.as_str()),
            (Cell::Bool(value), _) => $query.bind(*value),
            (Cell::Bytes(value), _) => $query.bind(value.as_slice()),
        }
    };
}

/// A message of a batch whose text is final: what search indexes.
struct Searchable<'r> {
    owner: loquat_core::id::UserId,
    id: &'r str,
    text: &'r str,
    created_at: i64,
}

/// The messages of a batch whose text is final.
fn searchable_messages<'r>(columns: &[Column], rows: &'r [Vec<Cell>]) -> StoreResult<Vec<Searchable<'r>>> {
    let at = |name: &str| {
        columns
            .iter()
            .position(|column| column.name == name)
            .ok_or_else(|| dump_error(format!("messages.{name} is missing")))
    };
    let (id, user, content, status) = (at("id")?, at("user_id")?, at("content")?, at("status")?);
    let created = at("created_at")?;
    let mut found = Vec::new();
    for row in rows {
        let text = |at: usize| match &row[at] {
            Cell::Text(text) => Some(text.as_str()),
            _ => None,
        };
        let (Some(message), Some(owner), Some(body), Some(state)) = (text(id), text(user), text(content), text(status))
        else {
            continue;
        };
        if state == "generating" || body.is_empty() {
            continue;
        }
        let owner = owner.parse().map_err(|_| dump_error(format!("messages.user_id {owner:?} is not an id")))?;
        let created_at = match row[created] {
            Cell::Int(at) => at,
            _ => 0,
        };
        found.push(Searchable { owner, id: message, text: body, created_at });
    }
    Ok(found)
}

/// Placeholders per statement. Far below the backends' limits (SQLite 32,766, PostgreSQL
/// 65,535): binding costs sqlx's SQLite driver time quadratic in a statement's placeholders
/// (30,000 of them made a restore of 100,000 messages take 44 s; 2,000 take a few seconds).
const MAX_PARAMETERS: usize = 2_000;
/// Rows per statement at most.
const MAX_BATCH_ROWS: usize = 200;

impl Restore {
    /// The columns of `table` in the store being restored into.
    pub async fn columns(&mut self, table: &str) -> StoreResult<Vec<Column>> {
        known_table(table)?;
        match &mut self.tx {
            WriteTx::Sqlite(tx) => columns_of!(&mut **tx, table, postgres: false),
            WriteTx::Postgres(tx) => columns_of!(&mut **tx, table, postgres: true),
        }
    }

    /// How many rows [`Restore::insert`] takes at once for a table of `columns` columns.
    pub fn batch_rows(columns: usize) -> usize {
        (MAX_PARAMETERS / columns.max(1)).clamp(1, MAX_BATCH_ROWS)
    }

    /// Inserts `rows` (at most [`Restore::batch_rows`]) into `table`; `columns` are the
    /// target's, in the rows' order.
    pub async fn insert(&mut self, table: &str, columns: &[Column], rows: &[Vec<Cell>]) -> StoreResult<()> {
        known_table(table)?;
        if rows.is_empty() {
            return Ok(());
        }
        if rows.len() > Self::batch_rows(columns.len()) || rows.iter().any(|row| row.len() != columns.len()) {
            return Err(dump_error(format!("a batch of rows for {table} does not fit its columns")));
        }
        let names = columns.iter().map(|column| quoted(&column.name)).collect::<Vec<_>>().join(", ");
        let mut sql = format!("INSERT INTO {} ({names}) VALUES ", quoted(table));
        let mut parameter = 0;
        for (at, _) in rows.iter().enumerate() {
            sql.push_str(if at == 0 { "(" } else { ", (" });
            for column in 0..columns.len() {
                parameter += 1;
                if column > 0 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&parameter.to_string());
            }
            sql.push(')');
        }
        // A restored message is searchable when the restore commits: its terms are written in
        // the same transaction (one autocommitted write per message afterwards would take
        // minutes for a large instance).
        let searchable =
            if table == "messages" && self.indexes_search { searchable_messages(columns, rows)? } else { Vec::new() };
        // One statement for the batch's terms. SQLite's rows are keyed by their message's rowid
        // (found by its id, through the primary key); PostgreSQL's take their columns from the
        // batch (a join there would be planned on a table without statistics yet: a scan of
        // every message per batch).
        let postgres = matches!(self.tx, WriteTx::Postgres(_));
        let mut index_sql = String::new();
        if !searchable.is_empty() {
            let tuples: Vec<String> = (0..searchable.len())
                .map(|at| match postgres {
                    false => format!("(${}, ${})", 2 * at + 1, 2 * at + 2),
                    true => {
                        let first = 4 * at + 1;
                        format!("(${first}, ${}, ${}, to_tsvector('simple', ${}))", first + 1, first + 2, first + 3)
                    }
                })
                .collect();
            index_sql = match postgres {
                false => format!(
                    "INSERT INTO message_search (rowid, terms) SELECT m.rowid, v.column2 FROM (VALUES {}) AS v \
                     JOIN messages m ON m.id = v.column1",
                    tuples.join(", ")
                ),
                true => format!(
                    "INSERT INTO message_search (message_id, user_id, created_at, terms) VALUES {}",
                    tuples.join(", ")
                ),
            };
        }
        macro_rules! run {
            ($tx:expr) => {{
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for row in rows {
                    for (cell, column) in row.iter().zip(columns) {
                        query = bind_cell!(query, cell, column);
                    }
                }
                query.execute(&mut **$tx).await.map_err(store_error)?;
                if !searchable.is_empty() {
                    let mut index = sqlx::query(AssertSqlSafe(index_sql));
                    for message in &searchable {
                        let terms = crate::search::terms_of(message.owner, message.text);
                        index = match postgres {
                            false => index.bind(message.id).bind(terms),
                            true => index
                                .bind(message.id)
                                .bind(message.owner.to_string())
                                .bind(message.created_at)
                                .bind(terms),
                        };
                    }
                    index.execute(&mut **$tx).await.map_err(store_error)?;
                }
            }};
        }
        match &mut self.tx {
            WriteTx::Sqlite(tx) => run!(tx),
            WriteTx::Postgres(tx) => run!(tx),
        }
        Ok(())
    }

    /// Commits every row; [`SqlStore::complete_restore`] then brings the store up to date.
    pub async fn commit(self) -> StoreResult<SqlStore> {
        match self.tx {
            WriteTx::Sqlite(tx) => tx.commit().await.map_err(store_error)?,
            WriteTx::Postgres(mut tx) => {
                sqlx::query("SET LOCAL maintenance_work_mem = '256MB'").execute(&mut *tx).await.map_err(store_error)?;
                for definition in self.rebuild {
                    sqlx::query(AssertSqlSafe(definition)).execute(&mut *tx).await.map_err(store_error)?;
                }
                tx.commit().await.map_err(store_error)?;
            }
        }
        Ok(self.store)
    }
}

impl SqlStore {
    /// After a restore's commit: applies the migrations newer than the backup's and indexes
    /// every message for search.
    pub async fn complete_restore(&self) -> StoreResult<()> {
        self.migrate().await?;
        while loquat_core::store::SearchStore::index_unindexed(self, 1000).await? > 0 {}
        Ok(())
    }
}

impl SqlStore {
    /// The names of every table of the schema (the search index's own tables included).
    pub async fn tables(&self) -> StoreResult<Vec<String>> {
        crate::pool::on_pool!(&self.pools, read, "list_tables", |pool| {
            let sql = match self.pools {
                Pools::Sqlite { .. } => "SELECT name FROM sqlite_master WHERE type = 'table'",
                Pools::Postgres(_) => "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
            };
            sqlx::query_scalar(sql).fetch_all(pool).await
        })
        .map_err(store_error)
    }

    /// The newest migration applied, 0 for a database never migrated.
    async fn applied_version(&self) -> StoreResult<i64> {
        let migrated: bool = match &self.pools {
            Pools::Sqlite { writer, .. } => {
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = '_sqlx_migrations')")
                    .fetch_one(writer)
                    .await
            }
            Pools::Postgres(pool) => {
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(pool).await
            }
        }
        .map_err(store_error)?;
        if migrated { self.schema_version().await } else { Ok(0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in [Kind::Int, Kind::Text, Kind::Bool, Kind::Bytes] {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::of_declared("TSVECTOR", true), None);
        assert_eq!(Kind::of_declared("BLOB", false), Some((Kind::Bytes, false)));
        assert_eq!(Kind::of_declared("INTEGER", false), Some((Kind::Int, false)));
        assert_eq!(Kind::of_declared("integer", true), Some((Kind::Int, true)));
    }

    #[test]
    fn batches_stay_under_the_parameter_limit() {
        assert_eq!(Restore::batch_rows(5), 200);
        assert_eq!(Restore::batch_rows(100), 20);
        assert!(Restore::batch_rows(100_000) >= 1);
    }
}
