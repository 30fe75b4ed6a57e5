//! The role × tool matrix, generated from the policy table and checked against the product's rules
//! written out independently below; patient binding; rate limits and failed-authentication throttling.

use ehr_mcp::auth::DataKind;
use ehr_mcp::auth::Tool;
use ehr_mcp::auth::policy::{
    authorize, authorize_read, is_public, may_call, readable, required_scope, table,
};
use ehr_mcp::auth::{AuthError, Principal, ScopeSet};
use ehr_mcp::domain::access::Role;
use ehr_mcp::domain::ids::{ClientId, Mrn};

use crate::auth_support::{register, register_with, service};
use crate::support::TestDb;

/// Who may call what, as PRODUCT §4/§6 and the issue state it (D doctor, N nurse, P patient, A admin,
/// S system). Written by hand: the test fails if the table in the code drifts from it.
const EXPECTED: &[(&str, &str)] = &[
    ("authenticate", "DNPAS"),
    ("validate_token", "DNPAS"),
    ("register_client", "A"),
    ("query_audit_log", "A"),
    ("get_patient", "DNPS"),
    ("get_patient_summary", "DNPS"),
    ("search_patients", "DNS"),
    ("create_patient", "DNS"),
    ("update_patient", "DNS"),
    ("get_appointments", "DNPS"),
    ("schedule_appointment", "DNPS"),
    ("cancel_appointment", "DNPS"),
    ("search_providers", "DNPS"),
    ("get_provider", "DNPS"),
    ("get_medications", "DNPS"),
    ("prescribe_medication", "DS"),
    ("discontinue_medication", "DS"),
    ("get_lab_results", "DNPS"),
    ("order_lab", "DS"),
    ("get_vital_signs", "DNPS"),
    ("record_vital_signs", "DNS"),
    ("get_allergies", "DNPS"),
    ("add_allergy", "DN"),
    // Admins: AuditEvent only (`a_fhir_read_of_the_audit_log_is_for_admins_and_admins_read_only_that`).
    ("fhir_read", "DNPAS"),
    ("fhir_search", "DNPAS"),
];

fn letter(role: Role) -> char {
    match role {
        Role::Doctor => 'D',
        Role::Nurse => 'N',
        Role::Patient => 'P',
        Role::Admin => 'A',
        Role::System => 'S',
    }
}

fn principal(role: Role, scopes: ScopeSet) -> Principal {
    Principal {
        client_id: ClientId::parse("policy-test").unwrap(),
        app_id: "policy-test".to_owned(),
        app_name: "Policy test".to_owned(),
        role,
        scopes,
        patient: (role == Role::Patient).then(|| Mrn::parse("MRN001").unwrap()),
        user: None,
        token_id: "jti".to_owned(),
        expires_at: i64::MAX,
    }
}

fn every_scope() -> ScopeSet {
    ScopeSet::of(&ehr_mcp::auth::Scope::ALL)
}

#[test]
fn the_role_tool_matrix_matches_the_product_rules() {
    let own = Mrn::parse("MRN001").unwrap();
    let other = Mrn::parse("MRN002").unwrap();
    assert_eq!(
        Tool::ALL.len(),
        EXPECTED.len(),
        "every tool is in the expected matrix"
    );
    for policy in table() {
        let allowed = EXPECTED
            .iter()
            .find(|(tool, _)| *tool == policy.tool.name())
            .map(|(_, roles)| *roles)
            .unwrap_or_else(|| panic!("{} is missing from the expected matrix", policy.tool));
        for role in Role::ALL {
            let expected = allowed.contains(letter(role));
            let caller = principal(role, every_scope());
            let patient = policy.patient_scoped.then_some(&own);
            let decision = authorize(&caller, policy.tool, patient);
            assert_eq!(
                decision.is_ok(),
                expected,
                "{role} × {}: {decision:?}",
                policy.tool
            );
            assert_eq!(
                may_call(&caller, policy.tool),
                expected,
                "{role} × {}",
                policy.tool
            );
            if is_public(policy.tool) {
                continue;
            }
            if !expected {
                let Err(AuthError::Forbidden(message)) = decision else {
                    panic!("forbidden")
                };
                assert!(
                    message.starts_with(&format!("role {role} may not")),
                    "{message}"
                );
                continue;
            }
            // A tool of several kinds (the summary) needs one of them: without them all, refused.
            let Some(needed) = required_scope(&policy, role) else {
                let mut scopes = every_scope();
                for kind in readable(&caller, policy.returns) {
                    scopes = ScopeSet::of(
                        &scopes
                            .iter()
                            .filter(|scope| {
                                *scope != kind.read_scope()
                                    && *scope != ehr_mcp::auth::Scope::ReadOwnRecords
                            })
                            .collect::<Vec<_>>(),
                    );
                }
                let without = authorize(&principal(role, scopes), policy.tool, patient);
                assert!(
                    matches!(&without, Err(AuthError::Forbidden(m)) if m.starts_with("missing scope")),
                    "{role} × {}: {without:?}",
                    policy.tool
                );
                continue;
            };
            let mut scopes = ScopeSet::empty();
            for scope in every_scope().iter().filter(|scope| *scope != needed) {
                scopes = scopes.with(scope);
            }
            let without = authorize(&principal(role, scopes), policy.tool, patient);
            let Err(AuthError::Forbidden(message)) = without else {
                panic!("{role} × {} without {needed}", policy.tool)
            };
            assert_eq!(message, format!("missing scope {needed}"));
            // A patient only ever reaches its own records.
            if role == Role::Patient && policy.patient_scoped {
                assert!(
                    authorize(&caller, policy.tool, Some(&other)).is_err(),
                    "{}: other patient",
                    policy.tool
                );
                assert!(
                    authorize(&caller, policy.tool, None).is_err(),
                    "{}: no patient named",
                    policy.tool
                );
            }
        }
    }
    assert!(Tool::from_name("drop_tables").is_none());
    let nurse = principal(Role::Nurse, every_scope());
    assert_eq!(
        authorize(&nurse, Tool::PrescribeMedication, Some(&own))
            .unwrap_err()
            .to_string(),
        "role nurse may not call prescribe_medication"
    );
}

/// Issue #12: AuditEvent (the audit log through `fhir_read`/`fhir_search`) is for admins only, and
/// admins read nothing else through the FHIR tools, whatever scopes they hold.
#[test]
fn a_fhir_read_of_the_audit_log_is_for_admins_and_admins_read_only_that() {
    let own = Mrn::parse("MRN001").unwrap();
    for tool in [Tool::FhirRead, Tool::FhirSearch] {
        for role in Role::ALL {
            let caller = principal(role, every_scope());
            let audit = authorize_read(&caller, tool, DataKind::Audit, None);
            assert_eq!(
                audit.is_ok(),
                role == Role::Admin,
                "{role} × {tool}: {audit:?}"
            );
            for kind in [
                DataKind::Demographics,
                DataKind::Providers,
                DataKind::LabResults,
            ] {
                let decision = authorize_read(&caller, tool, kind, Some(&own));
                assert_eq!(
                    decision.is_ok(),
                    role != Role::Admin,
                    "{role} × {tool} × {kind:?}: {decision:?}"
                );
            }
        }
        let scopes = ScopeSet::of(&[ehr_mcp::auth::Scope::AdminClients]);
        let without = authorize_read(&principal(Role::Admin, scopes), tool, DataKind::Audit, None);
        assert!(without.is_err(), "an admin without read:audit");
    }
}

#[tokio::test]
async fn a_client_beyond_its_hourly_rate_gets_a_retry_time() {
    for db in TestDb::all().await {
        let client = register_with(&db.store, Role::Doctor, "read:patients", None, Some(3)).await;
        let auth = service(&db.store, None).await;
        let token = auth
            .issue_for_client_secret(
                client.client_id.as_str(),
                client.client_secret.expose(),
                None,
                None,
                crate::auth_support::http_origin("10.3.3.3"),
            )
            .await
            .unwrap();
        let principal = auth.validate(&token.access_token).await.unwrap();
        assert!(auth.check_rate_limit(&principal).is_ok());
        assert!(auth.check_rate_limit(&principal).is_ok());
        let Err(AuthError::RateLimited { retry_after }) = auth.check_rate_limit(&principal) else {
            panic!("the fourth request in the hour is limited");
        };
        assert!(retry_after.as_secs() > 60 * 10, "{retry_after:?}");
    }
}

#[tokio::test]
async fn failed_authentications_throttle_the_source_and_the_client_id() {
    let db = TestDb::sqlite().await;
    let victim = register(&db.store, Role::Doctor, "read:patients").await;
    let bystander = register(&db.store, Role::Nurse, "read:patients").await;
    let app = crate::support::spawn_app_on(db, &[]).await;
    let (id, secret) = (victim.client_id.as_str(), victim.client_secret.expose());
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = crate::auth_support::post_form(
            &app,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((id, "wrong")),
        )
        .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(statuses[10..], [429, 429]);
    // The address is throttled now: even a correct secret of another client waits.
    let response = crate::auth_support::post_form(
        &app,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        Some((
            bystander.client_id.as_str(),
            bystander.client_secret.expose(),
        )),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert!(
        response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].is_string() && body["error_description"].is_string());
    // Per client id, across many addresses.
    let auth = crate::auth_support::service(&app.db.store, None).await;
    let mut limited = false;
    for attempt in 0..25 {
        let result = auth
            .issue_for_client_secret(
                id,
                "wrong",
                None,
                None,
                crate::auth_support::http_origin(&format!("10.9.0.{attempt}")),
            )
            .await;
        limited |= matches!(result, Err(AuthError::RateLimited { .. }));
    }
    assert!(
        limited,
        "a client id under attack from many addresses is throttled"
    );
    // The owner is not locked out: a correct secret from an unthrottled address passes the backoff,
    // while a wrong one from a fresh address is still refused with 429.
    let right_secret = auth
        .issue_for_client_secret(
            id,
            secret,
            None,
            None,
            crate::auth_support::http_origin("10.9.1.1"),
        )
        .await;
    assert!(right_secret.is_ok(), "{right_secret:?}");
    let wrong_again = auth
        .issue_for_client_secret(
            id,
            "wrong",
            None,
            None,
            crate::auth_support::http_origin("10.9.1.2"),
        )
        .await;
    assert!(matches!(wrong_again, Err(AuthError::RateLimited { .. })));
    app.shutdown().await;
}
