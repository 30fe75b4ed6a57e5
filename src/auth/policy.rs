//! The authorisation policy: one table, tool → required scope → roles allowed → patient binding.
//! Every decision is [`authorize`]; tools never restate these rules.

use crate::domain::access::Role;
use crate::domain::ids::Mrn;

use super::scope::Scope;
use super::{AuthError, Principal};

/// How a patient client may use a tool (patient clients only ever reach their own records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientAccess {
    /// Patient clients may not use the tool.
    None,
    /// Patient clients read their own records with `read:own_records` instead of the tool's scope.
    ReadOwn,
    /// Patient clients act on their own records and need the tool's own scope.
    WriteOwn,
}

/// One row of the policy table.
#[derive(Debug, Clone, Copy)]
pub struct ToolPolicy {
    pub tool: &'static str,
    /// `None`: a public tool that needs no token (`authenticate`, `validate_token`).
    pub scope: Option<Scope>,
    pub roles: &'static [Role],
    /// The tool touches one patient's records; the caller passes that patient's MRN to [`authorize`].
    pub patient_scoped: bool,
    pub patient_access: PatientAccess,
}

use Role::{Admin, Doctor, Nurse, Patient, System};

const EVERY_ROLE: &[Role] = &[Doctor, Nurse, Patient, Admin, System];
const CLINICAL_READERS: &[Role] = &[Doctor, Nurse, System, Patient];
const STAFF: &[Role] = &[Doctor, Nurse, System];
const PRESCRIBERS: &[Role] = &[Doctor, System];
const ADMINS: &[Role] = &[Admin];

const fn public(tool: &'static str) -> ToolPolicy {
    ToolPolicy {
        tool,
        scope: None,
        roles: EVERY_ROLE,
        patient_scoped: false,
        patient_access: PatientAccess::None,
    }
}

const fn rule(
    tool: &'static str,
    scope: Scope,
    roles: &'static [Role],
    patient_scoped: bool,
    patient_access: PatientAccess,
) -> ToolPolicy {
    ToolPolicy {
        tool,
        scope: Some(scope),
        roles,
        patient_scoped,
        patient_access,
    }
}

use PatientAccess::{None as NoPatients, ReadOwn, WriteOwn};

/// The policy table: every tool of PRODUCT §6.
pub static POLICY: &[ToolPolicy] = &[
    public("authenticate"),
    public("validate_token"),
    rule(
        "register_client",
        Scope::AdminClients,
        ADMINS,
        false,
        NoPatients,
    ),
    rule(
        "query_audit_log",
        Scope::ReadAudit,
        ADMINS,
        false,
        NoPatients,
    ),
    rule(
        "get_patient",
        Scope::ReadPatients,
        CLINICAL_READERS,
        true,
        ReadOwn,
    ),
    rule(
        "get_patient_summary",
        Scope::ReadPatients,
        CLINICAL_READERS,
        true,
        ReadOwn,
    ),
    rule(
        "search_patients",
        Scope::ReadPatients,
        STAFF,
        false,
        NoPatients,
    ),
    rule(
        "create_patient",
        Scope::WritePatients,
        STAFF,
        false,
        NoPatients,
    ),
    rule(
        "update_patient",
        Scope::WritePatients,
        STAFF,
        true,
        NoPatients,
    ),
    rule(
        "get_appointments",
        Scope::ReadAppointments,
        CLINICAL_READERS,
        true,
        ReadOwn,
    ),
    rule(
        "schedule_appointment",
        Scope::WriteAppointments,
        CLINICAL_READERS,
        true,
        WriteOwn,
    ),
    rule(
        "cancel_appointment",
        Scope::WriteAppointments,
        CLINICAL_READERS,
        true,
        WriteOwn,
    ),
    rule(
        "search_providers",
        Scope::ReadProviders,
        CLINICAL_READERS,
        false,
        ReadOwn,
    ),
    rule(
        "get_provider",
        Scope::ReadProviders,
        CLINICAL_READERS,
        false,
        ReadOwn,
    ),
    rule(
        "get_medications",
        Scope::ReadMedications,
        CLINICAL_READERS,
        true,
        ReadOwn,
    ),
    rule(
        "prescribe_medication",
        Scope::WriteMedications,
        PRESCRIBERS,
        true,
        NoPatients,
    ),
    rule(
        "discontinue_medication",
        Scope::WriteMedications,
        PRESCRIBERS,
        true,
        NoPatients,
    ),
    rule(
        "get_lab_results",
        Scope::ReadLabs,
        CLINICAL_READERS,
        true,
        ReadOwn,
    ),
    rule("order_lab", Scope::WriteLabs, PRESCRIBERS, true, NoPatients),
    rule(
        "get_vital_signs",
        Scope::ReadVitals,
        CLINICAL_READERS,
        true,
        ReadOwn,
    ),
    rule(
        "record_vital_signs",
        Scope::WriteVitals,
        STAFF,
        true,
        NoPatients,
    ),
    rule(
        "get_allergies",
        Scope::ReadAllergies,
        CLINICAL_READERS,
        true,
        ReadOwn,
    ),
    rule(
        "add_allergy",
        Scope::WriteAllergies,
        &[Doctor, Nurse],
        true,
        NoPatients,
    ),
];

/// The policy row of a tool.
pub fn policy_for(tool: &str) -> Option<&'static ToolPolicy> {
    POLICY.iter().find(|policy| policy.tool == tool)
}

/// Whether the tool may be called without a token (`authenticate`, `validate_token`).
pub fn is_public(tool: &str) -> bool {
    policy_for(tool).is_some_and(|policy| policy.scope.is_none())
}

/// The scope `principal` needs for `policy` (a patient reads its own records with `read:own_records`).
pub fn required_scope(policy: &ToolPolicy, role: Role) -> Option<Scope> {
    match (role, policy.patient_access) {
        (Role::Patient, PatientAccess::ReadOwn) => Some(Scope::ReadOwnRecords),
        _ => policy.scope,
    }
}

/// Whether some tool lets `role` act with `scope` (what a person of that role may be granted).
pub fn role_may_use_scope(role: Role, scope: Scope) -> bool {
    POLICY.iter().any(|policy| {
        policy.scope.is_some()
            && policy.roles.contains(&role)
            && (role != Role::Patient || policy.patient_access != PatientAccess::None)
            && required_scope(policy, role) == Some(scope)
    })
}

/// May `principal` call `tool` on `patient`'s records? For patient-scoped tools the caller passes the
/// MRN of the patient whose records are touched (for a record id, the record's patient). Unknown tools
/// are refused. The error names what is missing.
pub fn authorize(
    principal: &Principal,
    tool: &str,
    patient: Option<&Mrn>,
) -> Result<(), AuthError> {
    let policy =
        policy_for(tool).ok_or_else(|| AuthError::Forbidden(format!("unknown tool {tool}")))?;
    let Some(_) = policy.scope else {
        return Ok(());
    };
    let role = principal.role;
    let patient_may_use = policy.patient_access != PatientAccess::None;
    if !policy.roles.contains(&role) || (role == Role::Patient && !patient_may_use) {
        return Err(AuthError::Forbidden(format!(
            "role {role} may not call {tool}"
        )));
    }
    if let Some(scope) = required_scope(policy, role) {
        if !principal.scopes.contains(scope) {
            return Err(AuthError::Forbidden(format!("missing scope {scope}")));
        }
    }
    if role == Role::Patient {
        if principal.patient.is_none() {
            return Err(AuthError::Forbidden(
                "patient client is not bound to a patient".to_owned(),
            ));
        }
        if policy.patient_scoped && (patient.is_none() || patient != principal.patient.as_ref()) {
            return Err(AuthError::Forbidden(
                "patient clients may only access their own records".to_owned(),
            ));
        }
    }
    Ok(())
}
