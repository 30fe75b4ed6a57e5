//! MCP tools: the one server type ([`EhrServer`], rmcp's tool router) served unchanged over stdio,
//! Streamable HTTP and WebSocket, its tool families (one file per noun), their wire shapes and the one
//! mapping of failures to tool errors.
//!
//! Invariants: every tool call passes [`EhrServer::begin`] (identity, rate limit, validation, policy) and
//! [`EhrServer::finish`] (one audit row, then the result); tools ask `auth::policy` and never restate it;
//! only this module knows the wire shapes.

use std::sync::{Arc, LazyLock};

use rmcp::handler::server::router::tool::ToolRouter;
#[allow(deprecated)]
use rmcp::model::SetLevelRequestParams;
use rmcp::model::{
    CompleteRequestParams, CompleteResult, GetPromptRequestParams, GetPromptResponse,
    Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};

pub mod args;
mod call;
pub mod error;
pub mod session;
pub mod wire;

mod allergies;
mod appointments;
mod audit_tools;
mod auth_tools;
mod completion;
mod demographics;
pub mod fhir;
mod labs;
mod listing;
mod markdown;
mod medications;
mod patients;
mod prompts;
mod providers;
mod record_change;
mod request;
mod resources;
mod summary;
mod token_calls;
pub mod views;
mod vitals;

pub use call::ToolCall;
pub use error::ToolError;
pub use session::{
    BearerPrincipal, ClientAddress, ClientCredentials, RequestFacts, RequestFactsReader, Session,
};

use crate::audit::AuditLog;
use crate::auth::AuthService;
use crate::store::Store;

/// What the tools work with, shared by every connection.
#[derive(Clone)]
pub struct ToolServices {
    pub store: Store,
    pub auth: AuthService,
    pub audit: AuditLog,
    /// The size budget of every result (`EHR_MCP_RESULT_BUDGET_BYTES`).
    pub result_budget: views::ResultBudget,
}

/// The MCP server: the shared services plus one connection's [`Session`]. Cheap to clone; build one per
/// connection (WebSocket, stdio) or per Streamable HTTP session.
#[derive(Clone)]
pub struct EhrServer {
    services: Arc<ToolServices>,
    session: Arc<Session>,
}

/// Every tool, built once.
static TOOL_ROUTER: LazyLock<ToolRouter<EhrServer>> = LazyLock::new(|| {
    EhrServer::auth_tools()
        + EhrServer::patient_tools()
        + EhrServer::provider_tools()
        + EhrServer::appointment_tools()
        + EhrServer::medication_tools()
        + EhrServer::allergy_tools()
        + EhrServer::vital_sign_tools()
        + EhrServer::lab_tools()
        + EhrServer::summary_tools()
        + EhrServer::audit_tools()
        + EhrServer::fhir_tools()
});

impl EhrServer {
    pub fn new(services: Arc<ToolServices>, session: Arc<Session>) -> Self {
        Self { services, session }
    }

    pub fn services(&self) -> &ToolServices {
        &self.services
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The names of every tool, sorted.
    pub fn tool_names() -> Vec<String> {
        TOOL_ROUTER
            .list_all()
            .into_iter()
            .map(|tool| tool.name.into_owned())
            .collect()
    }
}

const INSTRUCTIONS: &str = "Electronic health records. Authenticate first unless your connection already \
carries a bearer token: call `authenticate` with client_id, client_secret and app_id (the token then covers \
this connection), or pass `access_token` in each call. Patients are identified by MRN (e.g. MRN001); find \
one with `search_patients`. `get_patient_summary` gives demographics, active medications, allergies, latest \
vitals, recent labs and upcoming appointments in one call. Errors come back as \
{\"status\": \"error\", \"code\", \"message\", \"tool\"}; `forbidden` means your client's role or scopes do not allow the tool.";

/// Every tool's definition (name, schemas, annotations), sorted by name, the list tools with their
/// compact-view arguments (`views::describe`).
static TOOL_DEFINITIONS: LazyLock<Vec<rmcp::model::Tool>> = LazyLock::new(|| {
    let mut tools = TOOL_ROUTER.list_all();
    tools.iter_mut().for_each(views::describe);
    tools
});

/// The tools as the router defines them (before `views::describe`).
fn tool_definitions() -> Vec<rmcp::model::Tool> {
    TOOL_ROUTER.list_all()
}

fn all_tools() -> Vec<rmcp::model::Tool> {
    TOOL_DEFINITIONS.clone()
}

/// Notification handlers (`on_initialized`, `on_cancelled`, …) stay rmcp's no-op defaults: the WebSocket
/// transport serves a session's messages without rmcp's loop and does not call them
/// (`transport::ws_calls`).
#[tool_handler(router = TOOL_ROUTER)]
impl ServerHandler for EhrServer {
    /// A known caller sees only the tools it may call (`listing`).
    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, rmcp::ErrorData> {
        Ok(self.visible_tools(&context).await)
    }

    /// A request rmcp could not read as a known method lands here: a known method with malformed params
    /// (`arguments` sent as a string) is −32602, an unknown method −32601.
    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        _context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::CustomResult, rmcp::ErrorData> {
        Err(args::unreadable_request(&request.method))
    }

    #[allow(deprecated)] // logging: still asked for by 2025-xx clients
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .enable_completions()
                .enable_logging()
                .build(),
        )
        .with_server_info(Implementation::new("ehr-mcp", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS.to_owned())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(self.list_resources_for(&context).await)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(self.list_resource_templates_for(&context).await)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.read_resource_at(&request.uri, &context)
            .await
            .map(ReadResourceResponse::from)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(self.list_prompts_for(&context).await)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.get_prompt_named(&request.name, request.arguments.as_ref(), &context)
            .await
            .map(GetPromptResponse::from)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.complete_argument(request, context).await
    }

    /// Accepted for 2025-xx clients (deprecated in 2026-07-28); no log notification is ever sent, so no
    /// level can bring PHI to the client (see `completion`).
    #[allow(deprecated)]
    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }
}
