//! Schema migrations: the two SQL trees (`migrations/sqlite`, `migrations/postgres`) embedded
//! in the binary and applied through sqlx's `Migrator`, which takes PostgreSQL's advisory lock
//! so that replicas starting together migrate once.

use std::borrow::Cow;

use loquat_core::store::{StoreError, StoreErrorKind};
use sqlx::SqlSafeStr;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};

use crate::pool::{Pools, error_kind};

/// One embedded migration: version, description, SQL.
type Embedded = (i64, &'static str, &'static str);

/// Migration versions are shared by both trees: version N does the same thing on both.
const SQLITE: &[Embedded] = &[
    (1, "init", include_str!("../migrations/sqlite/0001_init.sql")),
    (2, "provider overrides", include_str!("../migrations/sqlite/0002_provider_overrides.sql")),
    (3, "accounts", include_str!("../migrations/sqlite/0003_accounts.sql")),
    (4, "generating by", include_str!("../migrations/sqlite/0004_generating_by.sql")),
    (5, "first account", include_str!("../migrations/sqlite/0005_first_account.sql")),
    (6, "files", include_str!("../migrations/sqlite/0006_files.sql")),
    (7, "storage quota", include_str!("../migrations/sqlite/0007_storage_quota.sql")),
    (8, "message files", include_str!("../migrations/sqlite/0008_message_files.sql")),
    (9, "knowledge", include_str!("../migrations/sqlite/0009_knowledge.sql")),
    (10, "topic knowledge", include_str!("../migrations/sqlite/0010_topic_knowledge.sql")),
    (11, "shared knowledge", include_str!("../migrations/sqlite/0011_shared_knowledge.sql")),
    (12, "source pages", include_str!("../migrations/sqlite/0012_source_pages.sql")),
    (13, "tool steps", include_str!("../migrations/sqlite/0013_tool_steps.sql")),
    (14, "topic switches", include_str!("../migrations/sqlite/0014_topic_switches.sql")),
    (15, "web sources", include_str!("../migrations/sqlite/0015_web_sources.sql")),
    (16, "mcp servers", include_str!("../migrations/sqlite/0016_mcp_servers.sql")),
    (17, "plugins", include_str!("../migrations/sqlite/0017_plugins.sql")),
    (18, "pinned topics", include_str!("../migrations/sqlite/0018_pinned_topics.sql")),
    (19, "message search", include_str!("../migrations/sqlite/0019_message_search.sql")),
    (20, "shares", include_str!("../migrations/sqlite/0020_shares.sql")),
    (21, "message speech", include_str!("../migrations/sqlite/0021_message_speech.sql")),
    (22, "topic summaries", include_str!("../migrations/sqlite/0022_topic_summaries.sql")),
    (23, "named roles", include_str!("../migrations/sqlite/0023_named_roles.sql")),
];
const POSTGRES: &[Embedded] = &[
    (1, "init", include_str!("../migrations/postgres/0001_init.sql")),
    (2, "provider overrides", include_str!("../migrations/postgres/0002_provider_overrides.sql")),
    (3, "accounts", include_str!("../migrations/postgres/0003_accounts.sql")),
    (4, "generating by", include_str!("../migrations/postgres/0004_generating_by.sql")),
    (5, "first account", include_str!("../migrations/postgres/0005_first_account.sql")),
    (6, "files", include_str!("../migrations/postgres/0006_files.sql")),
    (7, "storage quota", include_str!("../migrations/postgres/0007_storage_quota.sql")),
    (8, "message files", include_str!("../migrations/postgres/0008_message_files.sql")),
    (9, "knowledge", include_str!("../migrations/postgres/0009_knowledge.sql")),
    (10, "topic knowledge", include_str!("../migrations/postgres/0010_topic_knowledge.sql")),
    (11, "shared knowledge", include_str!("../migrations/postgres/0011_shared_knowledge.sql")),
    (12, "source pages", include_str!("../migrations/postgres/0012_source_pages.sql")),
    (13, "tool steps", include_str!("../migrations/postgres/0013_tool_steps.sql")),
    (14, "topic switches", include_str!("../migrations/postgres/0014_topic_switches.sql")),
    (15, "web sources", include_str!("../migrations/postgres/0015_web_sources.sql")),
    (16, "mcp servers", include_str!("../migrations/postgres/0016_mcp_servers.sql")),
    (17, "plugins", include_str!("../migrations/postgres/0017_plugins.sql")),
    (18, "pinned topics", include_str!("../migrations/postgres/0018_pinned_topics.sql")),
    (19, "message search", include_str!("../migrations/postgres/0019_message_search.sql")),
    (20, "shares", include_str!("../migrations/postgres/0020_shares.sql")),
    (21, "message speech", include_str!("../migrations/postgres/0021_message_speech.sql")),
    (22, "topic summaries", include_str!("../migrations/postgres/0022_topic_summaries.sql")),
    (23, "named roles", include_str!("../migrations/postgres/0023_named_roles.sql")),
];

fn migrator(embedded: &[Embedded]) -> Migrator {
    Migrator::with_migrations(
        embedded
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, sql.into_sql_str(), false)
            })
            .collect(),
    )
}

/// Applies every pending migration. SQLite migrates through the single writer connection.
pub(crate) async fn run(pools: &Pools) -> Result<(), StoreError> {
    let result = match pools {
        Pools::Sqlite { writer, .. } => migrator(SQLITE).run(writer).await,
        Pools::Postgres(pool) => migrator(POSTGRES).run(pool).await,
    };
    result.map_err(migrate_error)
}

/// Applies the migrations up to `version` only (a restore writes a backup's rows into the
/// schema they were read from; the newer migrations run after them).
pub(crate) async fn run_to(pools: &Pools, version: i64) -> Result<(), StoreError> {
    let upto = |embedded: &'static [Embedded]| &embedded[..embedded.partition_point(|m| m.0 <= version)];
    let result = match pools {
        Pools::Sqlite { writer, .. } => migrator(upto(SQLITE)).run(writer).await,
        Pools::Postgres(pool) => migrator(upto(POSTGRES)).run(pool).await,
    };
    result.map_err(migrate_error)
}

/// The newest migration this build knows.
pub fn latest() -> i64 {
    SQLITE.last().map_or(0, |m| m.0)
}

fn migrate_error(error: MigrateError) -> StoreError {
    let kind = match &error {
        MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) => error_kind(inner),
        // A database migrated by a newer Loquat, or an edited migration: nothing safe to do.
        MigrateError::VersionMissing(_)
        | MigrateError::VersionMismatch(_)
        | MigrateError::VersionNotPresent(_)
        | MigrateError::VersionTooOld(_, _)
        | MigrateError::VersionTooNew(_, _)
        | MigrateError::Dirty(_) => StoreErrorKind::Corrupt,
        _ => StoreErrorKind::Other,
    };
    StoreError::new(kind, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_trees_have_the_same_versions() {
        let versions = |embedded: &[Embedded]| embedded.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
        assert!(SQLITE.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }
}
