//! The integration suite: one test binary (fast to link) with a module per area.
//! Storage tests run on SQLite always and on PostgreSQL when `EHR_MCP_TEST_POSTGRES_URL` is set
//! (`.ci/run` sets it).

// Tests may panic on unexpected results: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod audit;
mod auth_support;
mod authz_data;
mod authz_stdio;
mod oauth;
mod policy;
mod signin_api_keys;
mod signin_browser;
mod signin_cimd;
mod signin_cli;
mod signin_flow;
mod signin_support;
mod signin_users;
mod tokens;

mod cli_data;
mod cli_doctor;
mod cli_help;
mod compat_earlier_system;
mod compat_shapes;
mod dataset;
mod docs_snippets;
mod docs_values;
mod fault_disk_full;
mod fault_kill;
mod fault_postgres_outage;
mod fault_support;
mod fault_two_instances;
mod fhir_api;
mod fhir_validation;
mod fuzz_inputs;
mod harden_audit;
mod harden_connections;
mod harden_deadlines;
mod harden_hygiene;
mod harden_keys;
mod harden_memory;
mod harden_postgres;
mod harden_timing;
mod harden_tokens;
mod health;
mod mcp_client;
mod mcp_completion;
mod mcp_http;
mod mcp_protocol_versions;
mod mcp_resources;
mod mcp_resume;
mod mcp_sdk_clients;
mod mcp_sdk_generations;
mod mcp_seed_export;
mod mcp_support;
mod mcp_tools;
mod mcp_websocket;
mod ops_binary;
mod ops_limits;
mod ops_metrics;
mod ops_metrics_docs;
mod ops_phi_logs;
mod ops_shutdown;
mod ops_shutdown_writes;
mod ops_startup;
mod ops_tls;
mod ops_websocket;
mod schema;
mod store_appointments;
mod store_fixtures;
mod store_overlap;
mod store_patients;
mod store_records;
mod tidy;
mod tidy_fresh_clone;
