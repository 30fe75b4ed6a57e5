//! `completion/complete` for prompt and resource-template arguments, and `logging/setLevel`.
//!
//! Completion works for any prompt or template: the argument's *name* says what it holds (`mrn`,
//! `patient_mrn` → MRNs; `npi`, `provider_npi` → NPIs; `provider`, `provider_name` → provider names), so
//! prompts and templates added later complete without a change here; other arguments get no values.
//! Candidates pass the same policy as the tools: MRNs need `search_patients` and each one is shown only if
//! the caller may open it as `get_patient` (a patient client completes only its own MRN, without a query);
//! NPIs and names need `search_providers`. The caller's rate limit applies as for tools. Every completion
//! that reaches the policy writes one audit row.
//!
//! `logging/setLevel` is accepted for clients of the revisions that have it; the server sends no log
//! notifications at all, so no level can make PHI reach the client.

use rmcp::model::{CompleteRequestParams, CompleteResult, CompletionInfo};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use super::EhrServer;
use super::error::ToolError;
use crate::audit::{AuditEvent, Outcome};
use crate::auth::policy::authorize;
use crate::auth::{Principal, Tool};
use crate::domain::access::Role;
use crate::domain::ids::Mrn;

/// The audit action of a completion.
const ACTION: &str = "completion/complete";

/// What an argument holds, read from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Candidates {
    Mrn,
    Npi,
    ProviderName,
}

impl Candidates {
    fn of(argument: &str) -> Option<Self> {
        match argument.to_ascii_lowercase().as_str() {
            "mrn" | "patient" | "patient_mrn" | "patient_id" => Some(Self::Mrn),
            "npi" | "provider_npi" | "provider_id" => Some(Self::Npi),
            "provider" | "provider_name" | "doctor" => Some(Self::ProviderName),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Mrn => "mrn",
            Self::Npi => "npi",
            Self::ProviderName => "provider_name",
        }
    }
}

impl EhrServer {
    pub(crate) async fn complete_argument(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let Some(kind) = Candidates::of(&request.argument.name) else {
            return Ok(CompleteResult::new(CompletionInfo::default()));
        };
        let request_id = uuid::Uuid::now_v7().to_string();
        let auth = &self.services().auth;
        let principal = self
            .session()
            .resolve(auth, self.session().bearer_of(&context), None)
            .await
            .map_err(|error| ToolError::from_auth(&request_id, error).into_error_data())?;
        // The caller's rate limit, as for tools; a limited completion is audited as denied.
        let outcome = match auth.check_rate_limit(&principal) {
            Ok(()) => {
                self.candidates(&principal, kind, &request.argument.value, &request_id)
                    .await
            }
            Err(error) => Err(ToolError::from_auth(&request_id, error)),
        };
        let (audit_outcome, detail) = match &outcome {
            Ok(_) => (Outcome::Success, kind.as_str().to_owned()),
            Err(error) => (
                super::call::outcome_of(error),
                format!("{}: {}", kind.as_str(), error.code()),
            ),
        };
        let event = AuditEvent {
            request_id: request_id.clone(),
            client_id: Some(principal.client_id.to_string()),
            app_id: Some(principal.app_id.clone()),
            role: Some(principal.role.as_str().to_owned()),
            detail: Some(detail),
            ..AuditEvent::new(self.session().transport(), ACTION, audit_outcome)
        };
        if let Err(error) = self.services().audit.record(event).await {
            return Err(ToolError::internal(&request_id, &error).into_error_data());
        }
        let mut values = outcome.map_err(ToolError::into_error_data)?;
        let has_more = values.len() > CompletionInfo::MAX_VALUES;
        values.truncate(CompletionInfo::MAX_VALUES);
        let completion = CompletionInfo::with_pagination(values, None, has_more)
            .map_err(|error| ToolError::internal(&request_id, &error).into_error_data())?;
        Ok(CompleteResult::new(completion))
    }

    /// The values `principal` may see for `kind` starting with (or, for names, containing) `typed`: at
    /// most one more than a response holds.
    async fn candidates(
        &self,
        principal: &Principal,
        kind: Candidates,
        typed: &str,
        request_id: &str,
    ) -> Result<Vec<String>, ToolError> {
        let store = &self.services().store;
        let limit = CompletionInfo::MAX_VALUES as u32 + 1;
        let denied = |error| ToolError::from_auth(request_id, error);
        let failed = |error| ToolError::from_store(request_id, error);
        match kind {
            Candidates::Mrn if principal.role == Role::Patient => {
                let own = principal.patient.as_ref();
                authorize(principal, Tool::GetPatient, own).map_err(denied)?;
                Ok(own
                    .filter(|mrn| mrn.as_str().starts_with(&typed.trim().to_ascii_uppercase()))
                    .map(|mrn| vec![mrn.as_str().to_owned()])
                    .unwrap_or_default())
            }
            Candidates::Mrn => {
                authorize(principal, Tool::SearchPatients, None).map_err(denied)?;
                let mrns = store.complete_mrns(typed, limit).await.map_err(failed)?;
                Ok(mrns
                    .into_iter()
                    .filter(|mrn| {
                        Mrn::parse(mrn).is_ok_and(|mrn| {
                            authorize(principal, Tool::GetPatient, Some(&mrn)).is_ok()
                        })
                    })
                    .collect())
            }
            Candidates::Npi => {
                authorize(principal, Tool::SearchProviders, None).map_err(denied)?;
                store.complete_npis(typed, limit).await.map_err(failed)
            }
            Candidates::ProviderName => {
                authorize(principal, Tool::SearchProviders, None).map_err(denied)?;
                store
                    .complete_provider_names(typed, limit)
                    .await
                    .map_err(failed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Candidates;

    #[test]
    fn argument_names_say_what_they_complete() {
        assert_eq!(Candidates::of("mrn"), Some(Candidates::Mrn));
        assert_eq!(Candidates::of("Patient_MRN"), Some(Candidates::Mrn));
        assert_eq!(Candidates::of("provider_npi"), Some(Candidates::Npi));
        assert_eq!(Candidates::of("provider"), Some(Candidates::ProviderName));
        assert_eq!(Candidates::of("arg1"), None);
    }
}
