//! The integration suite: one test binary (fast to link) with a module per area.
//! Storage tests run on SQLite always and on PostgreSQL when `EHR_MCP_TEST_POSTGRES_URL` is set
//! (`.ci/run` sets it).

mod support;

mod health;
mod ops_binary;
mod ops_limits;
mod ops_metrics;
mod ops_shutdown;
mod ops_tls;
mod schema;
