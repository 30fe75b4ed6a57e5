//! The authorisation policy: one table keyed by [`Tool`] — what access it needs, which roles may call it,
//! whether it touches one patient's records, and the [`DataKind`]s it returns. Every decision is
//! [`authorize`] (a call) or [`may_call`] (`tools/list`); which sections of a multi-kind result a caller
//! may see is [`readable`]. Tools never restate these rules.

use crate::domain::access::Role;
use crate::domain::ids::Mrn;

use super::scope::Scope;
use super::tool::{DataKind, Tool};
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

/// What a caller needs to hold to call a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token (`authenticate`, `validate_token`).
    Public,
    /// This scope (for a patient client reading its own records: `read:own_records`).
    Scope(Scope),
    /// The right to read at least one of the kinds the tool returns; the result carries only those
    /// (`get_patient_summary`).
    AnyReturnedKind,
}

/// One row of the policy table.
#[derive(Debug, Clone, Copy)]
pub struct ToolPolicy {
    pub tool: Tool,
    pub access: Access,
    pub roles: &'static [Role],
    /// The tool touches one patient's records; the caller passes that patient's MRN to [`authorize`].
    pub patient_scoped: bool,
    pub patient_access: PatientAccess,
    /// The kinds of data a successful result may carry.
    pub returns: &'static [DataKind],
}

use DataKind::{
    Allergies, Appointments, Audit, Clients, Demographics, LabResults, Medications, Providers,
    VitalSigns,
};
use PatientAccess::{None as NoPatients, ReadOwn, WriteOwn};
use Role::{Admin, Doctor, Nurse, Patient, System};

const EVERY_ROLE: &[Role] = &[Doctor, Nurse, Patient, Admin, System];
const CLINICAL_READERS: &[Role] = &[Doctor, Nurse, System, Patient];
const STAFF: &[Role] = &[Doctor, Nurse, System];
const PRESCRIBERS: &[Role] = &[Doctor, System];
const ADMINS: &[Role] = &[Admin];
const ALLERGY_RECORDERS: &[Role] = &[Doctor, Nurse];

/// Every kind the FHIR API serves (`fhir_read`, `fhir_search`, `/fhir/r4/`); Audit as AuditEvent, for
/// admins only (see [`readers`]).
const FHIR: &[DataKind] = &[
    Demographics,
    Providers,
    Appointments,
    Medications,
    Allergies,
    VitalSigns,
    LabResults,
    Audit,
];
/// Who may call the FHIR reads: the clinical readers (for records) and admins (for AuditEvent only).
const FHIR_READERS: &[Role] = &[Doctor, Nurse, System, Patient, Admin];

/// Every section of a patient summary.
const SUMMARY: &[DataKind] = &[
    Demographics,
    Medications,
    Allergies,
    VitalSigns,
    LabResults,
    Appointments,
];

const fn row(
    tool: Tool,
    scope: Scope,
    roles: &'static [Role],
    patient_scoped: bool,
    patient_access: PatientAccess,
    returns: &'static [DataKind],
) -> ToolPolicy {
    ToolPolicy {
        tool,
        access: Access::Scope(scope),
        roles,
        patient_scoped,
        patient_access,
        returns,
    }
}

/// The policy table: every tool of PRODUCT §6. A `match`, so a tool without a row does not compile.
#[rustfmt::skip]
pub const fn policy(tool: Tool) -> ToolPolicy {
    use Tool as T;
    match tool {
        T::Authenticate | T::ValidateToken => ToolPolicy {
            tool,
            access: Access::Public,
            roles: EVERY_ROLE,
            patient_scoped: false,
            patient_access: NoPatients,
            // Only the caller's own token and client registration.
            returns: &[],
        },
        T::RegisterClient => row(tool, Scope::AdminClients, ADMINS, false, NoPatients, &[Clients]),
        T::QueryAuditLog => row(tool, Scope::ReadAudit, ADMINS, false, NoPatients, &[Audit]),
        T::GetPatient => row(tool, Scope::ReadPatients, CLINICAL_READERS, true, ReadOwn, &[Demographics]),
        T::GetPatientSummary => ToolPolicy {
            tool,
            access: Access::AnyReturnedKind,
            roles: CLINICAL_READERS,
            patient_scoped: true,
            patient_access: ReadOwn,
            returns: SUMMARY,
        },
        T::FhirRead | T::FhirSearch => ToolPolicy {
            tool,
            access: Access::AnyReturnedKind,
            roles: FHIR_READERS,
            // Which patient (if any) depends on the resource: `authorize_read` binds it per kind, and
            // which roles may read which kind is `readers`.
            patient_scoped: false,
            patient_access: ReadOwn,
            returns: FHIR,
        },
        T::SearchPatients => row(tool, Scope::ReadPatients, STAFF, false, NoPatients, &[Demographics]),
        T::CreatePatient => row(tool, Scope::WritePatients, STAFF, false, NoPatients, &[Demographics]),
        T::UpdatePatient => row(tool, Scope::WritePatients, STAFF, true, NoPatients, &[Demographics]),
        T::GetAppointments => row(tool, Scope::ReadAppointments, CLINICAL_READERS, true, ReadOwn, &[Appointments]),
        T::ScheduleAppointment => row(tool, Scope::WriteAppointments, CLINICAL_READERS, true, WriteOwn, &[Appointments]),
        T::CancelAppointment => row(tool, Scope::WriteAppointments, CLINICAL_READERS, true, WriteOwn, &[Appointments]),
        T::SearchProviders => row(tool, Scope::ReadProviders, CLINICAL_READERS, false, ReadOwn, &[Providers]),
        T::GetProvider => row(tool, Scope::ReadProviders, CLINICAL_READERS, false, ReadOwn, &[Providers]),
        T::GetMedications => row(tool, Scope::ReadMedications, CLINICAL_READERS, true, ReadOwn, &[Medications]),
        T::PrescribeMedication => row(tool, Scope::WriteMedications, PRESCRIBERS, true, NoPatients, &[Medications]),
        T::DiscontinueMedication => row(tool, Scope::WriteMedications, PRESCRIBERS, true, NoPatients, &[Medications]),
        T::GetLabResults => row(tool, Scope::ReadLabs, CLINICAL_READERS, true, ReadOwn, &[LabResults]),
        T::OrderLab => row(tool, Scope::WriteLabs, PRESCRIBERS, true, NoPatients, &[LabResults]),
        T::GetVitalSigns => row(tool, Scope::ReadVitals, CLINICAL_READERS, true, ReadOwn, &[VitalSigns]),
        T::RecordVitalSigns => row(tool, Scope::WriteVitals, STAFF, true, NoPatients, &[VitalSigns]),
        T::GetAllergies => row(tool, Scope::ReadAllergies, CLINICAL_READERS, true, ReadOwn, &[Allergies]),
        T::AddAllergy => row(tool, Scope::WriteAllergies, ALLERGY_RECORDERS, true, NoPatients, &[Allergies]),
    }
}

/// Every row of the table, in [`Tool::ALL`] order.
pub fn table() -> impl Iterator<Item = ToolPolicy> {
    Tool::ALL.iter().map(|tool| policy(*tool))
}

/// Whether the tool may be called without a token (`authenticate`, `validate_token`).
pub fn is_public(tool: Tool) -> bool {
    policy(tool).access == Access::Public
}

/// The one scope `role` needs for `policy`, when the tool needs exactly one (a patient reads its own
/// records with `read:own_records`). `None` for public tools and [`Access::AnyReturnedKind`].
pub fn required_scope(policy: &ToolPolicy, role: Role) -> Option<Scope> {
    match (policy.access, role, policy.patient_access) {
        (Access::Scope(_), Role::Patient, PatientAccess::ReadOwn) => Some(Scope::ReadOwnRecords),
        (Access::Scope(scope), _, _) => Some(scope),
        _ => None,
    }
}

/// May `principal` read data of `kind`? Its read scope, or for a patient client `read:own_records`
/// (its own records; [`authorize`] binds the patient).
pub fn may_read(principal: &Principal, kind: DataKind) -> bool {
    principal.scopes.contains(kind.read_scope())
        || (principal.role == Role::Patient
            && kind.readable_as_own_record()
            && principal.scopes.contains(Scope::ReadOwnRecords))
}

/// May `principal` receive data of `kind` in a result? What it may read, and the records it writes
/// (a write returns the record it wrote).
pub fn may_receive(principal: &Principal, kind: DataKind) -> bool {
    may_read(principal, kind)
        || kind
            .write_scope()
            .is_some_and(|scope| principal.scopes.contains(scope))
}

/// The kinds of `kinds` that `principal` may read, in order.
pub fn readable(principal: &Principal, kinds: &[DataKind]) -> Vec<DataKind> {
    kinds
        .iter()
        .copied()
        .filter(|kind| may_read(principal, *kind))
        .collect()
}

/// May `principal` call `tool` at all (role, scope, patient binding; not which patient)? This is what
/// `tools/list` shows a known caller.
pub fn may_call(principal: &Principal, tool: Tool) -> bool {
    authorize_tool(principal, &policy(tool)).is_ok()
}

/// Whether some tool lets `role` act with `scope` (what a person of that role may be granted).
pub fn role_may_use_scope(role: Role, scope: Scope) -> bool {
    table().any(|policy| {
        policy.roles.contains(&role)
            && (role != Role::Patient || policy.patient_access != PatientAccess::None)
            && required_scope(&policy, role) == Some(scope)
    })
}

/// May `principal` call `tool` on `patient`'s records? For patient-scoped tools the caller passes the
/// MRN of the patient whose records are touched (for a record id, the record's patient). The error names
/// what is missing.
pub fn authorize(
    principal: &Principal,
    tool: Tool,
    patient: Option<&Mrn>,
) -> Result<(), AuthError> {
    let policy = policy(tool);
    authorize_tool(principal, &policy)?;
    if policy.access != Access::Public
        && principal.role == Role::Patient
        && policy.patient_scoped
        && (patient.is_none() || patient != principal.patient.as_ref())
    {
        return Err(AuthError::Forbidden(
            "patient clients may only access their own records".to_owned(),
        ));
    }
    Ok(())
}

/// May `principal` read data of `kind` through `tool` (a tool returning several kinds: the FHIR reads),
/// about `patient` (whose record it is; `None` for the provider directory or a search across patients)?
/// The tool's own rule, then: the kind is one the tool returns, the caller may read it, and a patient
/// client reads clinical data of its own patient only.
pub fn authorize_read(
    principal: &Principal,
    tool: Tool,
    kind: DataKind,
    patient: Option<&Mrn>,
) -> Result<(), AuthError> {
    let policy = policy(tool);
    authorize_tool(principal, &policy)?;
    if !policy.returns.contains(&kind) {
        return Err(AuthError::Forbidden(format!(
            "{tool} does not return {kind:?}"
        )));
    }
    if !readers(kind).contains(&principal.role) {
        return Err(AuthError::Forbidden(format!(
            "role {} may not read {kind:?} through {tool}",
            principal.role
        )));
    }
    if !may_read(principal, kind) {
        return Err(AuthError::Forbidden(format!(
            "missing scope {}",
            kind.read_scope()
        )));
    }
    if principal.role == Role::Patient
        && kind.is_clinical()
        && (patient.is_none() || patient != principal.patient.as_ref())
    {
        return Err(AuthError::Forbidden(
            "patient clients may only access their own records".to_owned(),
        ));
    }
    Ok(())
}

/// The roles that may read `kind` through a tool returning several kinds (the FHIR reads): the audit
/// log is for admins only, and admins read nothing else there (no clinical data, not the directory).
pub const fn readers(kind: DataKind) -> &'static [Role] {
    match kind {
        Audit | Clients => ADMINS,
        _ => CLINICAL_READERS,
    }
}

/// The patient whose records alone `principal` may read: its own patient, for a patient client.
/// Searches that name no patient are confined to it.
pub fn compartment(principal: &Principal) -> Option<&Mrn> {
    match principal.role {
        Role::Patient => principal.patient.as_ref(),
        _ => None,
    }
}

fn authorize_tool(principal: &Principal, policy: &ToolPolicy) -> Result<(), AuthError> {
    let tool = policy.tool;
    if policy.access == Access::Public {
        return Ok(());
    }
    let role = principal.role;
    let patient_may_use = policy.patient_access != PatientAccess::None;
    if !policy.roles.contains(&role) || (role == Role::Patient && !patient_may_use) {
        return Err(AuthError::Forbidden(format!(
            "role {role} may not call {tool}"
        )));
    }
    match policy.access {
        Access::Scope(_) => {
            if let Some(scope) = required_scope(policy, role) {
                if !principal.scopes.contains(scope) {
                    return Err(AuthError::Forbidden(format!("missing scope {scope}")));
                }
            }
        }
        Access::AnyReturnedKind => {
            if readable(principal, policy.returns).is_empty() {
                let scopes: Vec<&str> = policy
                    .returns
                    .iter()
                    .map(|kind| kind.read_scope().as_str())
                    .collect();
                return Err(AuthError::Forbidden(format!(
                    "missing scope: {tool} needs at least one of {}",
                    scopes.join(", ")
                )));
            }
        }
        Access::Public => {}
    }
    if role == Role::Patient && principal.patient.is_none() {
        return Err(AuthError::Forbidden(
            "patient client is not bound to a patient".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a tool declares it returns is what its access rule protects: its one scope reads or writes
    /// every kind it returns.
    #[test]
    fn each_tools_scope_covers_the_kinds_it_returns() {
        for row in table() {
            let Access::Scope(scope) = row.access else {
                continue;
            };
            assert!(!row.returns.is_empty(), "{}: declares no data", row.tool);
            for kind in row.returns {
                assert!(
                    kind.read_scope() == scope || kind.write_scope() == Some(scope),
                    "{}: {scope} does not cover {kind:?}",
                    row.tool
                );
            }
        }
    }
}
