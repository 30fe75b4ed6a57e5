//! The call path of the tools that need no token (`authenticate`, `validate_token`): they resolve no caller
//! up front, so they write their own audit row (with the claimed client id on failure) before answering.

use std::time::Instant;

use rmcp::RoleServer;
use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use serde::Serialize;

use super::EhrServer;
use super::args::{parse_args, take_access_token};
use super::auth_tools::{
    AuthenticateArgs, AuthenticateResult, ClientInfoWire, TokenInfoWire, ValidateTokenResult,
};
use super::call::{log_finished, outcome_of};
use super::error::ToolError;
use super::wire::Success;
use crate::audit::Outcome;
use crate::auth::{ClientCredentials, Principal, TokenRequest, Tool};
use crate::domain::origin::Origin;

impl EhrServer {
    pub(super) async fn authenticate_call(
        &self,
        context: &RequestContext<RoleServer>,
        mut arguments: JsonObject,
    ) -> CallToolResult {
        let request_id = uuid::Uuid::now_v7().to_string();
        let started = Instant::now();
        let _ = take_access_token(&mut arguments);
        // A token request writes its own row (action `authenticate`, this request id) in the auth
        // service, success or refusal; only a call that never reaches it is audited here. One row either way.
        let result = match parse_args::<AuthenticateArgs>(arguments) {
            Ok(args) => {
                let origin = self.session().origin_of(context);
                self.issue_token(&request_id, origin, args)
                    .await
                    .map(|(_, result)| result)
            }
            Err(error) => {
                let event = self.audit_event(
                    Tool::Authenticate,
                    &request_id,
                    None,
                    None,
                    outcome_of(&error),
                    Some(error.code().to_owned()),
                );
                match self.services().audit.record(event).await {
                    Ok(()) => Err(error),
                    Err(audit_error) => Err(ToolError::internal(&request_id, &audit_error)),
                }
            }
        };
        finish_unaudited(
            self.session().transport(),
            Tool::Authenticate,
            &request_id,
            started,
            result,
        )
    }

    async fn issue_token(
        &self,
        request_id: &str,
        origin: Origin,
        args: AuthenticateArgs,
    ) -> Result<(Principal, AuthenticateResult), ToolError> {
        let auth = &self.services().auth;
        let optional = |value: Option<String>| {
            value
                .map(|text| text.trim().to_owned())
                .filter(|text| !text.is_empty())
        };
        let issued = auth
            .issue_for_authenticate_tool(TokenRequest {
                credentials: ClientCredentials::Secret {
                    client_id: args.client_id.trim().to_owned(),
                    client_secret: args.client_secret,
                },
                app_id: optional(args.app_id),
                scope: optional(args.scope),
                resource: None,
                origin,
                request_id: request_id.to_owned(),
            })
            .await
            .map_err(|error| ToolError::from_auth(request_id, error))?;
        let token = issued.access_token.clone();
        let principal = auth
            .validate(&token)
            .await
            .map_err(|error| ToolError::from_auth(request_id, error))?;
        self.session().set_principal(principal.clone());
        let result = AuthenticateResult {
            status: Success::Success,
            access_token: token,
            token_type: "Bearer".to_owned(),
            expires_in: seconds_left(&principal),
            scope: scope_text(&principal),
            client_info: ClientInfoWire {
                client_id: principal.client_id.to_string(),
                app_id: principal.app_id.clone(),
                app_name: principal.app_name.clone(),
                role: principal.role.as_str().to_owned(),
            },
        };
        Ok((principal, result))
    }

    pub(super) async fn validate_token_call(
        &self,
        context: &RequestContext<RoleServer>,
        mut arguments: JsonObject,
    ) -> CallToolResult {
        let request_id = uuid::Uuid::now_v7().to_string();
        let started = Instant::now();
        let outcome = match take_access_token(&mut arguments) {
            Ok(token) => self
                .session()
                .resolve(
                    &self.services().auth,
                    self.session().bearer_of(context),
                    token.as_deref(),
                )
                .await
                .map_err(|error| ToolError::from_auth(&request_id, error)),
            Err(error) => Err(error),
        };
        let event = self.audit_event(
            Tool::ValidateToken,
            &request_id,
            outcome.as_ref().ok(),
            None,
            outcome
                .as_ref()
                .map_or_else(outcome_of, |_| Outcome::Success),
            outcome.as_ref().err().map(|e| e.code().to_owned()),
        );
        let audited = self.services().audit.record(event).await;
        let result = match (outcome, audited) {
            (Ok(principal), Ok(())) => {
                let token = TokenInfoWire {
                    client_id: principal.client_id.to_string(),
                    app_id: principal.app_id.clone(),
                    app_name: principal.app_name.clone(),
                    role: principal.role.as_str().to_owned(),
                    scopes: principal
                        .scopes
                        .iter()
                        .map(|s| s.as_str().to_owned())
                        .collect(),
                    patient_mrn: principal.patient.as_ref().map(ToString::to_string),
                    expires_at: principal.expires_at,
                    expires_in: seconds_left(&principal),
                };
                Ok(ValidateTokenResult {
                    status: Success::Success,
                    valid: true,
                    token_info: token.clone(),
                    token,
                })
            }
            (Ok(_), Err(error)) => Err(ToolError::internal(&request_id, &error)),
            (Err(error @ ToolError::Unauthenticated(_)), _) => {
                // The earlier system's answer for a token that does not validate.
                log_finished(
                    self.session().transport(),
                    Tool::ValidateToken,
                    &request_id,
                    started,
                    Some(&error),
                );
                let mut invalid = JsonObject::new();
                invalid.insert("valid".into(), false.into());
                invalid.insert("error".into(), "Invalid token".into());
                return error.into_call_tool_result_with(Tool::ValidateToken, invalid);
            }
            (Err(error), _) => Err(error),
        };
        finish_unaudited(
            self.session().transport(),
            Tool::ValidateToken,
            &request_id,
            started,
            result,
        )
    }
}

fn seconds_left(principal: &Principal) -> i64 {
    (principal.expires_at - chrono::Utc::now().timestamp()).max(0)
}

fn scope_text(principal: &Principal) -> String {
    principal
        .scopes
        .iter()
        .map(|scope| scope.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The wire result of a call whose audit row is already written.
fn finish_unaudited<R: Serialize>(
    transport: crate::audit::Transport,
    tool: Tool,
    request_id: &str,
    started: Instant,
    result: Result<R, ToolError>,
) -> CallToolResult {
    let value = result.and_then(|value| {
        serde_json::to_value(value).map_err(|error| ToolError::internal(request_id, &error))
    });
    match value {
        Ok(value) => {
            log_finished(transport, tool, request_id, started, None);
            CallToolResult::structured(value)
        }
        Err(error) => {
            log_finished(transport, tool, request_id, started, Some(&error));
            error.into_call_tool_result(tool)
        }
    }
}
