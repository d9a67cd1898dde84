//! Throwaway S3 buckets for tests, on an S3-compatible server (`moto_server` in CI) named by
//! `LOQUAT_TEST_S3_URL`, with the same skip rule as PostgreSQL's.

use futures_util::TryStreamExt;
use loquat_files::S3Settings;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

use crate::postgres::REQUIRE_ALL_VAR;

/// The URL of an S3-compatible server tests may create buckets on.
pub const S3_URL_VAR: &str = "LOQUAT_TEST_S3_URL";

/// The server's URL, or `None` to skip S3 tests.
///
/// # Panics
/// When the URL is missing and `LOQUAT_TEST_REQUIRE_ALL=1`: a CI run must not skip silently.
pub fn test_s3_url() -> Option<String> {
    let url = std::env::var(S3_URL_VAR).ok().map(|url| url.trim().trim_end_matches('/').to_owned());
    let url = url.filter(|url| !url.is_empty());
    if url.is_none() && std::env::var(REQUIRE_ALL_VAR).is_ok_and(|value| value.trim() == "1") {
        panic!(
            "{REQUIRE_ALL_VAR}=1 but {S3_URL_VAR} is not set: S3 tests cannot be skipped \
             (start `moto_server -p 5055` and set {S3_URL_VAR}=http://127.0.0.1:5055)"
        );
    }
    url
}

/// A bucket made for one test; [`TestBucket::remove`] empties and deletes it.
#[derive(Debug)]
pub struct TestBucket {
    pub endpoint: String,
    pub name: String,
}

impl TestBucket {
    /// Creates `loquat-test-<random>` on the server at `endpoint`.
    pub async fn create(endpoint: &str) -> Self {
        let name = format!("loquat-test-{}", uuid::Uuid::new_v4().simple());
        let response = reqwest::Client::new()
            .put(format!("{endpoint}/{name}"))
            .send()
            .await
            .unwrap_or_else(|error| panic!("the S3 server at {endpoint} is unreachable: {error}"));
        assert!(response.status().is_success(), "creating bucket {name}: {}", response.status());
        Self { endpoint: endpoint.to_owned(), name }
    }

    /// Settings reaching this bucket (the test server takes any credentials).
    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint.clone()),
            bucket: self.name.clone(),
            region: Some("us-east-1".to_owned()),
            access_key_id: Some("test".to_owned()),
            secret_access_key: Some("test".to_owned()),
            path_style: true,
        }
    }

    /// The keys in the bucket, sorted.
    pub async fn keys(&self) -> Vec<String> {
        let store = self.store();
        let mut keys: Vec<String> = store
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .expect("listing the test bucket");
        keys.sort();
        keys
    }

    /// Deletes every object, then the bucket.
    pub async fn remove(self) {
        let store = self.store();
        for key in self.keys().await {
            let _ = object_store::ObjectStoreExt::delete(&store, &key.as_str().into()).await;
        }
        let _ = reqwest::Client::new().delete(format!("{}/{}", self.endpoint, self.name)).send().await;
    }

    fn store(&self) -> impl ObjectStore {
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(&self.name)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .expect("a client for the test bucket")
    }
}
