//! Fresh PostgreSQL databases for tests: one throwaway database per test, created through an
//! admin URL and dropped afterwards (even when the test panics), plus the rule deciding whether
//! PostgreSQL tests run (`LOQUAT_TEST_DATABASE_URL`, `LOQUAT_TEST_REQUIRE_ALL`).

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

/// The admin URL of a PostgreSQL server tests may create databases on.
pub const DATABASE_URL_VAR: &str = "LOQUAT_TEST_DATABASE_URL";
/// Set to `1` to make a missing [`DATABASE_URL_VAR`] a failure instead of a skip (CI).
pub const REQUIRE_ALL_VAR: &str = "LOQUAT_TEST_REQUIRE_ALL";

/// The admin URL for PostgreSQL tests, or `None` to skip them.
///
/// # Panics
/// When the URL is missing and `LOQUAT_TEST_REQUIRE_ALL=1`: a CI run must not skip silently.
pub fn test_database_url() -> Option<String> {
    let url = std::env::var(DATABASE_URL_VAR).ok().map(|url| url.trim().to_owned()).filter(|url| !url.is_empty());
    if url.is_none() && std::env::var(REQUIRE_ALL_VAR).is_ok_and(|value| value.trim() == "1") {
        panic!(
            "{REQUIRE_ALL_VAR}=1 but {DATABASE_URL_VAR} is not set: PostgreSQL tests cannot be skipped \
             (e.g. {DATABASE_URL_VAR}=postgres://postgres@127.0.0.1:5432/postgres)"
        );
    }
    url
}

/// A database created for one test. Drop it with [`TestDatabase::drop`]; if it is dropped
/// without that (a panic), `Drop` removes it from a separate thread and runtime.
#[derive(Debug)]
pub struct TestDatabase {
    /// The URL of the fresh database (the admin URL with the database name replaced).
    pub url: String,
    /// The database name, `loquat_test_<uuid>`.
    pub name: String,
    admin_url: String,
    dropped: bool,
}

impl TestDatabase {
    /// Creates an empty database `loquat_test_<uuid>` on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> Result<Self, sqlx::Error> {
        let name = format!("loquat_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(admin_url).await?;
        // Identifiers cannot be bound; the name is `loquat_test_` and hex digits only.
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
        // From here on, dropping `database` (also on an error below) removes it again.
        let database =
            Self { url: with_database(admin_url, &name), name, admin_url: admin_url.to_owned(), dropped: false };
        // A throwaway database needs no durability: commits skip the fsync wait, tests run faster.
        sqlx::query(AssertSqlSafe(format!("ALTER DATABASE {} SET synchronous_commit = off", database.name)))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        Ok(database)
    }

    /// Creates a database on the server named by [`test_database_url`], or returns `None`
    /// when PostgreSQL tests are skipped.
    ///
    /// # Panics
    /// When the server cannot be reached or refuses, or as [`test_database_url`] does.
    pub async fn from_env() -> Option<Self> {
        let admin_url = test_database_url()?;
        match Self::create(&admin_url).await {
            Ok(database) => Some(database),
            Err(error) => panic!("cannot create a test database through {DATABASE_URL_VAR}: {error}"),
        }
    }

    /// Drops the database, disconnecting whoever is still connected to it.
    pub async fn drop(mut self) -> Result<(), sqlx::Error> {
        self.dropped = true;
        drop_database(&self.admin_url, &self.name).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Possibly inside a runtime that is unwinding: block on a fresh one in its own thread.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(drop_database(&admin_url, &name)).map_err(|error| error.to_string())
        });
        match dropper.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop the test database {}: {error}", self.name),
            Err(_) => eprintln!("could not drop the test database {}: the dropping thread panicked", self.name),
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut admin = PgConnection::connect(admin_url).await?;
    // `name` was made by `create`: `loquat_test_` and hex digits.
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut admin).await?;
    admin.close().await
}

/// `url` with its database (the path) replaced by `name`, keeping user, host and parameters.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |at| at + 3);
    let path = base[authority..].find('/').map_or(base.len(), |at| authority + at);
    let mut result = format!("{}/{name}", &base[..path]);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_in_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(with_database("postgres://u:p@h:5432", "t1"), "postgres://u:p@h:5432/t1");
        assert_eq!(with_database("postgresql://u@h/db?sslmode=disable", "t1"), "postgresql://u@h/t1?sslmode=disable");
        assert_eq!(with_database("postgres://u@h?sslmode=disable", "t1"), "postgres://u@h/t1?sslmode=disable");
    }
}
