//! Runs one conformance test on every backend: a fresh SQLite store in a fresh temp directory,
//! then a fresh PostgreSQL database (created and dropped around the test, even when it fails).

use std::future::Future;
use std::path::PathBuf;

use loquat_store::{SqlStore, StoreOptions, open};
use loquat_test_support::postgres::{TestDatabase, test_database_url};

/// Declares, inside a `backends` module, one `#[tokio::test]` per named conformance test of
/// the enclosing module, each running it on every backend.
macro_rules! on_every_backend {
    ($($test:ident),+ $(,)?) => {
        mod backends {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    $crate::harness::run(concat!(module_path!(), "::", stringify!($test)), super::$test).await;
                }
            )+
        }
    };
}
pub(crate) use on_every_backend;

/// A directory under the system temp dir, removed on drop. Not created: `open` must do that.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> Self {
        let label: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let unique = uuid::Uuid::new_v4().simple();
        Self { path: std::env::temp_dir().join(format!("loquat-store-{label}-{unique}")) }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Opens a fresh SQLite store in `dir`.
pub async fn sqlite_store(dir: &TempDir) -> SqlStore {
    open(&StoreOptions { database_url: None, data_dir: dir.path.clone() }).await.expect("the SQLite store opens")
}

/// Opens a store on a fresh PostgreSQL database.
pub async fn postgres_store(database: &TestDatabase) -> SqlStore {
    let options = StoreOptions { database_url: Some(database.url.clone()), data_dir: std::env::temp_dir() };
    open(&options).await.expect("the PostgreSQL store opens")
}

/// Runs `test` on SQLite, then on PostgreSQL (or says the PostgreSQL half was skipped).
pub async fn run<F, Fut>(name: &str, test: F)
where
    F: Fn(SqlStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = TempDir::new(name);
    let store = sqlite_store(&dir).await;
    let outcome = tokio::spawn(test(store.clone())).await;
    store.close().await;
    drop(dir);
    if let Err(error) = outcome {
        eprintln!("{name} failed on sqlite");
        std::panic::resume_unwind(error.into_panic());
    }

    let Some(admin_url) = test_database_url() else {
        println!("{name}: the PostgreSQL half was skipped (LOQUAT_TEST_DATABASE_URL is not set)");
        return;
    };
    let database = TestDatabase::create(&admin_url).await.expect("a fresh PostgreSQL test database is created");
    let store = postgres_store(&database).await;
    let outcome = tokio::spawn(test(store.clone())).await;
    store.close().await;
    database.drop().await.expect("the PostgreSQL test database is dropped");
    if let Err(error) = outcome {
        eprintln!("{name} failed on postgres");
        std::panic::resume_unwind(error.into_panic());
    }
}
