//! `ehr-mcp`: an EHR Model Context Protocol server. Layers, from the bottom: `domain` (types and rules),
//! `store` (SQL), `auth` and `audit` (who may do what, and the record of it), `tools` (MCP tools and their
//! wire shapes), `transport` (HTTP, WebSocket, stdio), `app` (startup and shutdown) and `cli`.
//! See `docs/ARCHITECTURE.md`.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod domain;
pub mod fhir;
pub mod store;
pub mod telemetry;
pub mod tools;
pub mod transport;
