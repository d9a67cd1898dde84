//! `McpServerStore` for `SqlStore`: the `mcp_servers` table. A member's servers are found only
//! with their user id; shared ones only as shared. Headers and environment arrive encrypted by
//! the service; the store never sees them in clear.

use async_trait::async_trait;
use loquat_core::domain::{McpServerRecord, McpTransport};
use loquat_core::id::{McpServerId, UserId};
use loquat_core::store::{McpServerStore, StoreResult};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{execute, on_pool, store_error};
use crate::rows::{convert_all, corrupt, id};

#[derive(sqlx::FromRow)]
struct ServerRow {
    id: String,
    user_id: String,
    name: String,
    transport: String,
    target: String,
    args: String,
    manifest: Option<String>,
    secrets_encrypted: Option<String>,
    shared: bool,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl ServerRow {
    fn into_domain(self) -> StoreResult<McpServerRecord> {
        Ok(McpServerRecord {
            id: id("mcp_servers", "id", self.id)?,
            user_id: id("mcp_servers", "user_id", self.user_id)?,
            transport: McpTransport::parse(&self.transport)
                .ok_or_else(|| corrupt("mcp_servers", "transport", &self.transport))?,
            args: serde_json::from_str(&self.args).map_err(|_| corrupt("mcp_servers", "args", &self.args))?,
            name: self.name,
            target: self.target,
            manifest: self.manifest,
            secrets_encrypted: self.secrets_encrypted,
            shared: self.shared,
            enabled: self.enabled,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

macro_rules! columns {
    () => {
        "id, user_id, name, transport, target, args, secrets_encrypted, shared, enabled, created_at, updated_at, \
         manifest"
    };
}

fn args_json(server: &McpServerRecord) -> String {
    serde_json::to_string(&server.args).unwrap_or_else(|_| "[]".to_owned())
}

#[async_trait]
impl McpServerStore for SqlStore {
    async fn insert_mcp_server(&self, server: &McpServerRecord, own_at_most: Option<u32>) -> StoreResult<bool> {
        let user = server.user_id.to_string();
        on_pool!(&self.pools, write, "insert_mcp_server", |pool| async {
            let mut tx = pool.begin().await?;
            if let Some(at_most) = own_at_most {
                // Holds the owner's row until the end: two additions at once are counted one after
                // the other (on PostgreSQL; SQLite has one writer anyway).
                sqlx::query("UPDATE users SET id = id WHERE id = $1").bind(&user).execute(&mut *tx).await?;
                let own: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mcp_servers WHERE user_id = $1 AND NOT shared")
                    .bind(&user)
                    .fetch_one(&mut *tx)
                    .await?;
                if own >= i64::from(at_most) {
                    return Ok(false);
                }
            }
            sqlx::query(concat!(
                "INSERT INTO mcp_servers (",
                columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ))
            .bind(server.id.to_string())
            .bind(&user)
            .bind(&server.name)
            .bind(server.transport.as_str())
            .bind(&server.target)
            .bind(args_json(server))
            .bind(server.secrets_encrypted.as_deref())
            .bind(server.shared)
            .bind(server.enabled)
            .bind(server.created_at.as_millis())
            .bind(server.updated_at.as_millis())
            .bind(server.manifest.as_deref())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(true)
        }
        .await)
        .map_err(store_error)
    }

    async fn get_mcp_server(&self, user: UserId, server: McpServerId) -> StoreResult<Option<McpServerRecord>> {
        let row = on_pool!(&self.pools, read, "get_mcp_server", |pool| {
            sqlx::query_as::<_, ServerRow>(concat!(
                "SELECT ",
                columns!(),
                " FROM mcp_servers WHERE id = $1 AND user_id = $2 AND NOT shared"
            ))
            .bind(server.to_string())
            .bind(user.to_string())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(ServerRow::into_domain).transpose()
    }

    async fn list_mcp_servers(&self, user: UserId) -> StoreResult<Vec<McpServerRecord>> {
        let rows = on_pool!(&self.pools, read, "list_mcp_servers", |pool| {
            sqlx::query_as::<_, ServerRow>(concat!(
                "SELECT ",
                columns!(),
                " FROM mcp_servers WHERE user_id = $1 AND NOT shared ORDER BY created_at, id"
            ))
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, ServerRow::into_domain)
    }

    async fn get_shared_mcp_server(&self, server: McpServerId) -> StoreResult<Option<McpServerRecord>> {
        let row = on_pool!(&self.pools, read, "get_shared_mcp_server", |pool| {
            sqlx::query_as::<_, ServerRow>(concat!("SELECT ", columns!(), " FROM mcp_servers WHERE id = $1 AND shared"))
                .bind(server.to_string())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(ServerRow::into_domain).transpose()
    }

    async fn list_shared_mcp_servers(&self) -> StoreResult<Vec<McpServerRecord>> {
        let rows = on_pool!(&self.pools, read, "list_shared_mcp_servers", |pool| {
            sqlx::query_as::<_, ServerRow>(concat!(
                "SELECT ",
                columns!(),
                " FROM mcp_servers WHERE shared ORDER BY created_at, id"
            ))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, ServerRow::into_domain)
    }

    async fn update_mcp_server(&self, server: &McpServerRecord) -> StoreResult<bool> {
        // A shared server by its id alone (the service checked the administrator); a member's
        // own only with their id.
        let changed = execute!(
            &self.pools,
            "update_mcp_server",
            "UPDATE mcp_servers SET name = $1, transport = $2, target = $3, args = $4, secrets_encrypted = $5, \
             enabled = $6, updated_at = $7, manifest = $8 \
             WHERE id = $9 AND shared = $10 AND (shared OR user_id = $11)",
            &server.name,
            server.transport.as_str(),
            &server.target,
            args_json(server),
            server.secrets_encrypted.as_deref(),
            server.enabled,
            server.updated_at.as_millis(),
            server.manifest.as_deref(),
            server.id.to_string(),
            server.shared,
            server.user_id.to_string(),
        )?;
        Ok(changed > 0)
    }

    async fn delete_mcp_server(&self, user: Option<UserId>, server: McpServerId) -> StoreResult<bool> {
        let deleted = match user {
            Some(user) => execute!(
                &self.pools,
                "delete_mcp_server",
                "DELETE FROM mcp_servers WHERE id = $1 AND user_id = $2 AND NOT shared",
                server.to_string(),
                user.to_string(),
            )?,
            None => execute!(
                &self.pools,
                "delete_mcp_server",
                "DELETE FROM mcp_servers WHERE id = $1 AND shared",
                server.to_string(),
            )?,
        };
        Ok(deleted > 0)
    }
}
