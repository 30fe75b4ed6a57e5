//! Authentication tools: `authenticate` and `validate_token` (callable without a token) and
//! `register_client` (admins). `authenticate` also authenticates the rest of the session.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EhrServer;
use super::args::{self, MRN_PATTERN, ToolArgs};
use super::call::{ToolCall, run_tool};
use super::error::ToolError;
use super::wire::Success;
use crate::auth::Tool;
use crate::auth::clients::NewClient;
use crate::domain::access::Role;
use crate::domain::ids::Mrn;
use crate::domain::text::{Email, Text};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AuthenticateArgs {
    /// Your OAuth client id, e.g. copilot-studio.
    #[schemars(length(min = 3, max = 64))]
    pub client_id: String,
    /// Your client secret.
    #[schemars(length(min = 1, max = 512))]
    pub client_secret: String,
    /// Your application id; must match the client's registered app_id when given.
    #[schemars(length(max = 128))]
    pub app_id: Option<String>,
    /// Space-separated scopes to request (default: all the client may hold).
    #[schemars(length(max = 1024))]
    pub scope: Option<String>,
}

impl ToolArgs for AuthenticateArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ValidateTokenArgs {}

impl ToolArgs for ValidateTokenArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RegisterClientArgs {
    /// The new client's application id.
    pub app_id: Text<128>,
    /// Human-readable application name.
    pub app_name: Text<200>,
    /// doctor, nurse, patient, admin or system.
    #[schemars(extend("enum" = ["doctor", "nurse", "patient", "admin", "system"]))]
    pub role: String,
    /// The scopes, as a list (`["read:patients", "read:labs"]`) or space-separated
    /// (`"read:patients read:labs"`). The result gives them back in the same form.
    pub scopes: Scopes,
    /// The patient a `patient` client is bound to (required for role patient only).
    #[schemars(with = "Option<String>", regex(pattern = MRN_PATTERN))]
    pub patient_mrn: Option<Mrn>,
    /// Requests per hour (default 1000).
    #[schemars(range(min = 1, max = 100000000))]
    pub rate_limit: Option<i64>,
    /// What the application is for (the earlier system's argument; checked, not stored).
    #[allow(dead_code)] // parsed (so checked) by its type, not stored
    pub description: Option<Text<500>>,
    /// Who runs the application (the earlier system's argument; checked, not stored).
    #[allow(dead_code)] // parsed (so checked) by its type, not stored
    pub contact_email: Option<Email>,
}

/// Scopes as a list or as one space-separated text, the two forms the earlier system accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Scopes {
    List(#[schemars(length(min = 1, max = 32))] Vec<String>),
    Text(#[schemars(length(min = 1, max = 1024))] String),
}

impl Scopes {
    /// The scopes as one space-separated text, bounded and non-empty.
    fn joined(&self) -> Result<String, ToolError> {
        let text = match self {
            Self::List(items) if items.len() > 32 => {
                return Err(ToolError::invalid("scopes", "at most 32 scopes"));
            }
            Self::List(items) => items.join(" "),
            Self::Text(text) => text.clone(),
        };
        crate::domain::text::check(&text, 1024)
            .map(str::to_owned)
            .map_err(|rule| ToolError::invalid("scopes", rule))
    }

    /// `scopes` (space-separated) in the form the caller used.
    fn in_form_of(&self, scopes: &str) -> Scopes {
        match self {
            Self::List(_) => Self::List(scopes.split_whitespace().map(str::to_owned).collect()),
            Self::Text(_) => Self::Text(scopes.to_owned()),
        }
    }
}

impl ToolArgs for RegisterClientArgs {
    fn validate(&self) -> Result<(), ToolError> {
        self.scopes.joined()?;
        Role::parse(&self.role)?;
        args::in_range(
            "rate_limit",
            self.rate_limit,
            1,
            100_000_000,
            "requests per hour",
        )
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ClientInfoWire {
    pub client_id: String,
    pub app_id: String,
    pub app_name: String,
    pub role: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AuthenticateResult {
    pub status: Success,
    pub access_token: String,
    /// Always "Bearer".
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    /// The granted scopes, space-separated.
    pub scope: String,
    pub client_info: ClientInfoWire,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TokenInfoWire {
    pub client_id: String,
    pub app_id: String,
    pub app_name: String,
    pub role: String,
    pub scopes: Vec<String>,
    /// The patient a patient client is bound to.
    pub patient_mrn: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: i64,
    pub expires_in: i64,
}

/// A valid token: who it belongs to, at the top level as the earlier system answered, and again under
/// `token_info`. An invalid token is an error result that also carries `valid: false` and `error`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ValidateTokenResult {
    pub status: Success,
    /// Always true here.
    pub valid: bool,
    #[serde(flatten)]
    pub token: TokenInfoWire,
    pub token_info: TokenInfoWire,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RegisterClientResult {
    pub status: Success,
    pub message: String,
    pub client_id: String,
    /// Shown this once: store it now.
    pub client_secret: String,
    pub app_id: String,
    pub app_name: String,
    pub role: String,
    /// The granted scopes, in the form they were given (list or space-separated text).
    pub scopes: Scopes,
    pub rate_limit: i64,
    pub patient_mrn: Option<String>,
}

#[tool_router(router = auth_tools, vis = "pub(crate)")]
impl EhrServer {
    #[tool(
        title = "Authenticate",
        description = "Exchange your client_id, client_secret and app_id for an access token (OAuth 2.0 client \
                       credentials). On WebSocket and stdio the token also authenticates the rest of this \
                       connection; otherwise pass it as `access_token` in later calls.",
        input_schema = args::input_schema::<AuthenticateArgs>(),
        output_schema = args::output_schema::<AuthenticateResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn authenticate(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        self.authenticate_call(&context, arguments).await
    }

    #[tool(
        title = "Validate token",
        description = "Check an access token (the `access_token` argument, else this connection's token) and \
                       show whose it is: client, application, role, scopes and expiry.",
        input_schema = args::input_schema::<ValidateTokenArgs>(),
        output_schema = args::output_schema::<ValidateTokenResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn validate_token(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        self.validate_token_call(&context, arguments).await
    }

    #[tool(
        title = "Register OAuth client",
        description = "Admins: register a new OAuth client (app_id, app_name, role, scopes, patient_mrn for \
                       patient clients). The client_secret is returned once.",
        input_schema = args::input_schema::<RegisterClientArgs>(),
        output_schema = args::output_schema::<RegisterClientResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn register_client(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::RegisterClient,
            context,
            arguments,
            register_client
        )
    }
}

async fn register_client(
    call: &ToolCall<'_>,
    args: RegisterClientArgs,
) -> Result<RegisterClientResult, ToolError> {
    if let Some(mrn) = &args.patient_mrn {
        // A patient client bound to a record that does not exist would be a dangling grant.
        call.store()
            .patient(mrn)
            .await
            .map_err(|error| match error {
                crate::store::StoreError::NotFound { .. } => {
                    ToolError::invalid("patient_mrn", format!("no patient with MRN {mrn} exists"))
                }
                other => call.store_error(other),
            })?;
    }
    let new_client = NewClient {
        app_id: args.app_id.into_string(),
        app_name: args.app_name.into_string(),
        role: Role::parse(&args.role)?,
        scopes: args.scopes.joined()?,
        patient_mrn: args.patient_mrn,
        jwks: None,
        rate_limit: args.rate_limit,
        client_id: None,
    };
    let auth = &call.server.services().auth;
    let prepared = auth
        .prepare_client(new_client)
        .map_err(|error| ToolError::from_auth(&call.request_id, error))?;
    // The client and its audit row (naming what was created, never the secret) commit together.
    let prepared = call
        .write(Some(prepared.audit_detail()), move |mut tx| {
            Box::pin(async move {
                prepared.insert(&mut tx).await?;
                Ok(prepared)
            })
        })
        .await?;
    auth.client_registered(prepared.client());
    let registered = prepared.into_registered();
    Ok(RegisterClientResult {
        status: Success::Success,
        message:
            "IMPORTANT: save the client_secret securely; it is shown only this once and cannot be \
                  retrieved again"
                .to_owned(),
        client_id: registered.client_id.to_string(),
        client_secret: registered.client_secret.expose().to_owned(),
        app_id: registered.app_id,
        app_name: registered.app_name,
        role: registered.role.as_str().to_owned(),
        scopes: args.scopes.in_form_of(&registered.scopes),
        rate_limit: registered.rate_limit,
        patient_mrn: registered.patient_mrn.map(|mrn| mrn.to_string()),
    })
}
