//! `UserStore` for `SqlStore`: the `users` table (identity, account, role and interface
//! preferences). Emails are stored lower-cased and are unique; the local user of an instance
//! without accounts has none.

use async_trait::async_trait;
use loquat_core::domain::{Locale, Role, Theme, User};
use loquat_core::id::UserId;
use loquat_core::store::{AccountGrant, AccountRefusal, NewAccount, StoreErrorKind, StoreResult, UserStore};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{error_kind, execute, on_pool, store_error};
use crate::rows::{UserRow, config_json, convert_all, count, locale_code};

/// The email as stored: lower-cased, so that lookups and uniqueness ignore case.
fn stored_email(email: Option<&str>) -> Option<String> {
    email.map(str::to_lowercase)
}

/// A `LIKE` pattern matching text that contains `search` literally (`\` escapes `%`, `_`, `\`).
fn contains_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl SqlStore {
    async fn insert_user_row(&self, user: &User, password_hash: Option<&str>, if_absent: bool) -> StoreResult<()> {
        // Two fixed texts, never a built one: a plain insert, or one that leaves an existing id.
        let sql = if if_absent {
            "INSERT INTO users (id, name, email, password_hash, role, disabled, locale, theme, created_at, \
             last_active_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING"
        } else {
            "INSERT INTO users (id, name, email, password_hash, role, disabled, locale, theme, created_at, \
             last_active_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        };
        execute!(
            &self.pools,
            "insert_user_row",
            sql,
            user.id.to_string(),
            &user.name,
            stored_email(user.email.as_deref()),
            password_hash,
            user.role.as_str(),
            user.disabled,
            locale_code(user.locale),
            user.theme.code(),
            user.created_at.as_millis(),
            user.last_active_at.map(Timestamp::as_millis)
        )
        .map(|_| ())
    }
}

/// The statements of [`UserStore::create_account`], in the order they run.
mod account_sql {
    /// Is the email taken? (Checked first so the answer is clear; the unique index still
    /// decides a race.)
    pub const EMAIL_TAKEN: &str = "SELECT COUNT(*) FROM users WHERE email = $1";
    /// The first account: only while no account exists. Of two racing, the later one finds the
    /// other's row (SQLite has one writer) or hits `users_first_account` (PostgreSQL).
    pub const FIRST_EXISTS: &str = "SELECT COUNT(*) FROM users WHERE email IS NOT NULL OR first_account";
    /// Uses the invite if it is still unused and unexpired; PostgreSQL re-checks the condition
    /// after waiting for a racing transaction's row lock, so only one can use it.
    pub const USE_INVITE: &str = "UPDATE invites SET used_by = $1, used_at = $2 \
        WHERE code_hash = $3 AND used_by IS NULL AND expires_at > $2 RETURNING role";
    pub const INSERT_USER: &str = "INSERT INTO users (id, name, email, password_hash, role, disabled, locale, \
        theme, created_at, last_active_at, first_account) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    /// The local user of an instance from before accounts (no email): its rows move to the first
    /// account, then it goes.
    pub const ADOPT: [&str; 6] = [
        "UPDATE assistants SET user_id = $1 WHERE user_id IN (SELECT id FROM users WHERE email IS NULL)",
        "UPDATE topics SET user_id = $1 WHERE user_id IN (SELECT id FROM users WHERE email IS NULL)",
        "UPDATE messages SET user_id = $1 WHERE user_id IN (SELECT id FROM users WHERE email IS NULL)",
        "UPDATE provider_settings SET user_id = $1 WHERE user_id IN (SELECT id FROM users WHERE email IS NULL)",
        "UPDATE provider_overrides SET user_id = $1 WHERE user_id IN (SELECT id FROM users WHERE email IS NULL)",
        "UPDATE usage_events SET user_id = $1 WHERE user_id IN (SELECT id FROM users WHERE email IS NULL)",
    ];
    pub const DROP_LOCAL: &str = "DELETE FROM users WHERE email IS NULL";
    pub const INSERT_DEFAULT_ASSISTANT: &str = "INSERT INTO assistants (id, user_id, is_default, config, \
        created_at, updated_at) SELECT $1, $2, TRUE, $3, $4, $4 \
        WHERE NOT EXISTS (SELECT 1 FROM assistants WHERE user_id = $2 AND is_default)";
    pub const INSERT_IDENTITY: &str =
        "INSERT INTO identities (provider, subject, user_id, email, created_at) VALUES ($1, $2, $3, $4, $5)";
}

impl SqlStore {
    /// The body of [`UserStore::create_account`]; `Ok(Err(_))` leaves without committing.
    async fn create_account_in_transaction(
        &self,
        account: &NewAccount<'_>,
        config: &str,
    ) -> Result<Result<User, AccountRefusal>, sqlx::Error> {
        use account_sql::*;
        let mut user = account.user.clone();
        user.email = stored_email(user.email.as_deref());
        let first = account.grant == AccountGrant::First;
        on_pool!(&self.pools, write, "create_account", |pool| async {
            let mut tx = pool.begin().await?;
            let taken: i64 = sqlx::query_scalar(EMAIL_TAKEN).bind(user.email.as_deref()).fetch_one(&mut *tx).await?;
            if taken > 0 {
                return Ok(Err(AccountRefusal::EmailTaken));
            }
            match account.grant {
                AccountGrant::First => {
                    let accounts: i64 = sqlx::query_scalar(FIRST_EXISTS).fetch_one(&mut *tx).await?;
                    if accounts > 0 {
                        return Ok(Err(AccountRefusal::FirstAccountTaken));
                    }
                    user.role = Role::Admin;
                }
                AccountGrant::Invite { code_hash, now } => {
                    let role: Option<String> = sqlx::query_scalar(USE_INVITE)
                        .bind(user.id.to_string())
                        .bind(now.as_millis())
                        .bind(code_hash)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some(role) = role.as_deref().and_then(Role::parse) else {
                        return Ok(Err(AccountRefusal::InviteInvalid));
                    };
                    user.role = role;
                }
                AccountGrant::Granted => {}
            }
            sqlx::query(INSERT_USER)
                .bind(user.id.to_string())
                .bind(&user.name)
                .bind(user.email.as_deref())
                .bind(account.password_hash)
                .bind(user.role.as_str())
                .bind(user.disabled)
                .bind(locale_code(user.locale))
                .bind(user.theme.code())
                .bind(user.created_at.as_millis())
                .bind(user.last_active_at.map(Timestamp::as_millis))
                .bind(first)
                .execute(&mut *tx)
                .await?;
            if first {
                for statement in ADOPT {
                    sqlx::query(statement).bind(user.id.to_string()).execute(&mut *tx).await?;
                }
                sqlx::query(DROP_LOCAL).execute(&mut *tx).await?;
            }
            let assistant = account.default_assistant;
            sqlx::query(INSERT_DEFAULT_ASSISTANT)
                .bind(assistant.id.to_string())
                .bind(user.id.to_string())
                .bind(config)
                .bind(assistant.created_at.as_millis())
                .execute(&mut *tx)
                .await?;
            if let Some(identity) = account.identity {
                sqlx::query(INSERT_IDENTITY)
                    .bind(&identity.provider)
                    .bind(&identity.subject)
                    .bind(user.id.to_string())
                    .bind(identity.email.as_deref())
                    .bind(identity.created_at.as_millis())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(Ok(user))
        }
        .await)
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_account(&self, account: &NewAccount<'_>) -> StoreResult<Result<User, AccountRefusal>> {
        let config = config_json(&account.default_assistant.config)?;
        match self.create_account_in_transaction(account, &config).await {
            Ok(outcome) => Ok(outcome),
            // A unique index decided a race the checks above could not see (PostgreSQL: two
            // transactions that both found no first account, or the same email at once).
            Err(error) if error_kind(&error) == StoreErrorKind::Conflict => Ok(Err(match account.grant {
                AccountGrant::First => AccountRefusal::FirstAccountTaken,
                _ => AccountRefusal::EmailTaken,
            })),
            Err(error) => Err(store_error(error)),
        }
    }

    async fn ensure_user(&self, user: &User) -> StoreResult<()> {
        self.insert_user_row(user, None, true).await
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = on_pool!(&self.pools, read, "get_user", |pool| {
            sqlx::query_as::<_, UserRow>(
                "SELECT id, name, email, role, disabled, locale, theme, created_at, last_active_at, named_role FROM users \
                 WHERE id = $1",
            )
            .bind(id.to_string())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(UserRow::into_domain).transpose()
    }

    async fn update_user_preferences(&self, id: UserId, locale: Option<Locale>, theme: Theme) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "update_user_preferences",
            "UPDATE users SET locale = $1, theme = $2 WHERE id = $3",
            locale_code(locale),
            theme.code(),
            id.to_string()
        )?;
        Ok(changed > 0)
    }

    async fn insert_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
        self.insert_user_row(user, password_hash, false).await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let row = on_pool!(&self.pools, read, "find_user_by_email", |pool| {
            sqlx::query_as::<_, UserRow>(
                "SELECT id, name, email, role, disabled, locale, theme, created_at, last_active_at, named_role FROM users \
                 WHERE email = $1",
            )
            .bind(email.to_lowercase())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(UserRow::into_domain).transpose()
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        let hash: Option<Option<String>> = on_pool!(&self.pools, read, "password_hash", |pool| {
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        Ok(hash.flatten())
    }

    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "set_password_hash",
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            hash,
            id.to_string()
        )?;
        Ok(changed > 0)
    }

    async fn list_users(&self, search: &str, limit: u32, offset: u32) -> StoreResult<Vec<User>> {
        // `LOWER` on both sides: the backends fold the same (ASCII on SQLite, more on PostgreSQL)
        // on the column and the pattern, so a search always finds its own spelling.
        let rows = on_pool!(&self.pools, read, "list_users", |pool| {
            sqlx::query_as::<_, UserRow>(
                "SELECT id, name, email, role, disabled, locale, theme, created_at, last_active_at, named_role FROM users \
                 WHERE LOWER(name) LIKE LOWER($1) ESCAPE '\\' OR LOWER(email) LIKE LOWER($1) ESCAPE '\\' \
                 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
            )
            .bind(contains_pattern(search))
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, UserRow::into_domain)
    }

    async fn count_accounts(&self) -> StoreResult<u64> {
        let accounts: i64 = on_pool!(&self.pools, read, "count_accounts", |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email IS NOT NULL").fetch_one(pool).await
        })
        .map_err(store_error)?;
        count("users", "count(*)", accounts)
    }

    async fn set_user_named_role(&self, id: UserId, named_role: Option<&str>) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "set_user_named_role",
            "UPDATE users SET named_role = $1 WHERE id = $2",
            named_role,
            id.to_string()
        )?;
        Ok(changed > 0)
    }

    async fn set_user_role(&self, id: UserId, role: Role) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "set_user_role",
            "UPDATE users SET role = $1 WHERE id = $2",
            role.as_str(),
            id.to_string()
        )?;
        Ok(changed > 0)
    }

    async fn set_user_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "set_user_disabled",
            "UPDATE users SET disabled = $1 WHERE id = $2",
            disabled,
            id.to_string()
        )?;
        Ok(changed > 0)
    }

    async fn set_user_name(&self, id: UserId, name: &str) -> StoreResult<bool> {
        let changed =
            execute!(&self.pools, "set_user_name", "UPDATE users SET name = $1 WHERE id = $2", name, id.to_string())?;
        Ok(changed > 0)
    }

    async fn touch_user(&self, id: UserId, at: Timestamp) -> StoreResult<()> {
        execute!(
            &self.pools,
            "touch_user",
            "UPDATE users SET last_active_at = $1 WHERE id = $2",
            at.as_millis(),
            id.to_string()
        )
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_the_search_literally() {
        assert_eq!(contains_pattern(""), "%%");
        assert_eq!(contains_pattern("Ann"), "%Ann%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(stored_email(Some("Alice@Example.COM")).as_deref(), Some("alice@example.com"));
    }
}
