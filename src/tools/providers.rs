//! Provider tools: `search_providers`, `get_provider`. Providers are not patients: no patient scoping.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EhrServer;
use super::args::{self, NPI_PATTERN, ToolArgs, in_range};
use super::call::{ToolCall, run_tool};
use super::error::ToolError;
use super::wire::{self, ProviderWire, Success};
use crate::auth::Tool;
use crate::domain::ids::Npi;
use crate::domain::text::Text;
use crate::store::providers::ProviderSearch;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchProvidersArgs {
    /// Part of the provider's name, specialty or department; all providers when omitted.
    pub search_term: Option<Text<100>>,
    /// Only this specialty, e.g. "Cardiology".
    pub specialty: Option<Text<100>>,
    /// Only this department, e.g. "Primary Care".
    pub department: Option<Text<100>>,
    /// Only providers accepting (true) or not accepting (false) new patients.
    pub accepting_new_patients: Option<bool>,
    /// Most providers to return (1-100, default 50).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

impl ToolArgs for SearchProvidersArgs {
    fn validate(&self) -> Result<(), ToolError> {
        in_range("limit", self.limit, 1, 100, "providers")
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetProviderArgs {
    /// The provider's 10-digit National Provider Identifier.
    #[schemars(with = "String", regex(pattern = NPI_PATTERN))]
    pub npi: Npi,
}

impl ToolArgs for GetProviderArgs {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProvidersResult {
    /// "success", also when nothing matched (`count` 0), as the earlier system answered.
    pub status: Success,
    pub count: usize,
    pub providers: Vec<ProviderWire>,
    /// True when more providers match than `limit`.
    pub truncated: bool,
    /// Says so when nothing matched or the list was cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProviderResult {
    pub status: Success,
    pub provider: ProviderWire,
}

#[tool_router(router = provider_tools, vis = "pub(crate)")]
impl EhrServer {
    #[tool(
        title = "Search providers",
        description = "Find clinicians by name, specialty or department, optionally only those accepting new \
                       patients. Use the returned npi with schedule_appointment.",
        input_schema = args::input_schema::<SearchProvidersArgs>(),
        output_schema = args::output_schema::<ProvidersResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn search_providers(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::SearchProviders,
            context,
            arguments,
            search_providers
        )
    }

    #[tool(
        title = "Get provider",
        description = "Get one provider (name, specialty, department, contact, accepting new patients) by NPI.",
        input_schema = args::input_schema::<GetProviderArgs>(),
        output_schema = args::output_schema::<ProviderResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_provider(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(self, Tool::GetProvider, context, arguments, get_provider)
    }
}

async fn search_providers(
    call: &ToolCall<'_>,
    args: SearchProvidersArgs,
) -> Result<ProvidersResult, ToolError> {
    let limit = args.limit.unwrap_or(50);
    let search = ProviderSearch {
        term: args.search_term.map(Text::into_string),
        specialty: args.specialty.map(Text::into_string),
        department: args.department.map(Text::into_string),
        accepting_new_patients: args.accepting_new_patients,
        limit: limit + 1,
    };
    let providers = call
        .store()
        .search_providers(&search)
        .await
        .map_err(|e| call.store_error(e))?;
    let (providers, truncated) = wire::truncate(providers, limit);
    let message = if providers.is_empty() {
        Some(
            "no providers match this search; try part of a name, a specialty or a department"
                .to_owned(),
        )
    } else {
        truncated.then(|| wire::truncated_note("providers", limit, 100))
    };
    Ok(ProvidersResult {
        status: Success::Success,
        count: providers.len(),
        truncated,
        message,
        providers: wire::all(&providers),
    })
}

async fn get_provider(
    call: &ToolCall<'_>,
    args: GetProviderArgs,
) -> Result<ProviderResult, ToolError> {
    let provider = call
        .store()
        .provider(&args.npi)
        .await
        .map_err(|e| call.store_error(e))?;
    Ok(ProviderResult {
        status: Success::Success,
        provider: ProviderWire::from(&provider),
    })
}
