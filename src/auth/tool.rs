//! The tools the policy knows, as a closed enum ([`Tool`]), and the kinds of data a tool may return
//! ([`DataKind`]) with the scopes that let a caller see each. A typo in a tool name fails to compile.

use std::fmt;

use super::scope::Scope;

/// Declares [`Tool`] with its wire names, once.
macro_rules! tools {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// Every tool of PRODUCT §6, by its MCP name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Tool { $($variant),+ }

        impl Tool {
            pub const ALL: &'static [Tool] = &[$(Tool::$variant),+];

            /// The MCP tool name (also the audit log's `action`).
            pub const fn name(self) -> &'static str {
                match self { $(Tool::$variant => $name),+ }
            }
        }
    };
}

tools! {
    Authenticate => "authenticate",
    ValidateToken => "validate_token",
    RegisterClient => "register_client",
    QueryAuditLog => "query_audit_log",
    GetPatient => "get_patient",
    GetPatientSummary => "get_patient_summary",
    SearchPatients => "search_patients",
    CreatePatient => "create_patient",
    UpdatePatient => "update_patient",
    GetAppointments => "get_appointments",
    ScheduleAppointment => "schedule_appointment",
    CancelAppointment => "cancel_appointment",
    SearchProviders => "search_providers",
    GetProvider => "get_provider",
    GetMedications => "get_medications",
    PrescribeMedication => "prescribe_medication",
    DiscontinueMedication => "discontinue_medication",
    GetLabResults => "get_lab_results",
    OrderLab => "order_lab",
    GetVitalSigns => "get_vital_signs",
    RecordVitalSigns => "record_vital_signs",
    GetAllergies => "get_allergies",
    AddAllergy => "add_allergy",
    FhirRead => "fhir_read",
    FhirSearch => "fhir_search",
}

impl Tool {
    /// The tool with this MCP name.
    pub fn from_name(name: &str) -> Option<Tool> {
        Self::ALL.iter().copied().find(|tool| tool.name() == name)
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A kind of data a tool result can carry. Each kind is seen with its read scope; patient clients see
/// their own clinical records (and the provider directory) with `read:own_records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataKind {
    /// Patient demographics (name, date of birth, contact, address, insurance).
    Demographics,
    Appointments,
    Medications,
    Allergies,
    VitalSigns,
    LabResults,
    /// The provider directory.
    Providers,
    /// OAuth client registrations (with a new client's secret).
    Clients,
    /// The audit log.
    Audit,
}

impl DataKind {
    pub const ALL: &'static [DataKind] = &[
        DataKind::Demographics,
        DataKind::Appointments,
        DataKind::Medications,
        DataKind::Allergies,
        DataKind::VitalSigns,
        DataKind::LabResults,
        DataKind::Providers,
        DataKind::Clients,
        DataKind::Audit,
    ];

    /// The scope that lets a caller read this kind.
    pub const fn read_scope(self) -> Scope {
        match self {
            Self::Demographics => Scope::ReadPatients,
            Self::Appointments => Scope::ReadAppointments,
            Self::Medications => Scope::ReadMedications,
            Self::Allergies => Scope::ReadAllergies,
            Self::VitalSigns => Scope::ReadVitals,
            Self::LabResults => Scope::ReadLabs,
            Self::Providers => Scope::ReadProviders,
            Self::Clients => Scope::AdminClients,
            Self::Audit => Scope::ReadAudit,
        }
    }

    /// The scope that lets a caller change this kind (a write returns the record it wrote).
    pub const fn write_scope(self) -> Option<Scope> {
        match self {
            Self::Demographics => Some(Scope::WritePatients),
            Self::Appointments => Some(Scope::WriteAppointments),
            Self::Medications => Some(Scope::WriteMedications),
            Self::Allergies => Some(Scope::WriteAllergies),
            Self::VitalSigns => Some(Scope::WriteVitals),
            Self::LabResults => Some(Scope::WriteLabs),
            Self::Providers | Self::Audit => None,
            Self::Clients => Some(Scope::AdminClients),
        }
    }

    /// Whether a patient client reads this kind (for its own patient) with `read:own_records`.
    pub const fn readable_as_own_record(self) -> bool {
        !matches!(self, Self::Clients | Self::Audit)
    }

    /// Clinical data: a patient's records (what admins never see).
    pub const fn is_clinical(self) -> bool {
        !matches!(self, Self::Providers | Self::Clients | Self::Audit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for tool in Tool::ALL {
            assert_eq!(Tool::from_name(tool.name()), Some(*tool));
        }
        assert_eq!(Tool::from_name("drop_tables"), None);
        assert_eq!(Tool::ALL.len(), 25);
    }
}
