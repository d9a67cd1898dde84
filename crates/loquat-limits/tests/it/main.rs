//! Integration tests of loquat-limits, one binary: the in-process backend, the Redis backend
//! (against `LOQUAT_TEST_REDIS_URL`, skipped without it unless `LOQUAT_TEST_REQUIRE_ALL=1`),
//! including limits shared by two connections and by two OS processes.

mod config;
mod memory;
mod shared_redis;
mod support;
