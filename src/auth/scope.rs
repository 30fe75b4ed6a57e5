//! OAuth scopes: the earlier system's scope names, a compact set type, and SMART on FHIR aliases.

use std::fmt;

use super::AuthError;

/// One permission a client can hold. The names are the earlier system's (`read:patients`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    ReadPatients,
    WritePatients,
    ReadAppointments,
    WriteAppointments,
    ReadMedications,
    WriteMedications,
    ReadLabs,
    WriteLabs,
    ReadVitals,
    WriteVitals,
    ReadAllergies,
    WriteAllergies,
    ReadProviders,
    ReadOwnRecords,
    AdminClients,
    ReadAudit,
}

impl Scope {
    pub const ALL: [Scope; 16] = [
        Scope::ReadPatients,
        Scope::WritePatients,
        Scope::ReadAppointments,
        Scope::WriteAppointments,
        Scope::ReadMedications,
        Scope::WriteMedications,
        Scope::ReadLabs,
        Scope::WriteLabs,
        Scope::ReadVitals,
        Scope::WriteVitals,
        Scope::ReadAllergies,
        Scope::WriteAllergies,
        Scope::ReadProviders,
        Scope::ReadOwnRecords,
        Scope::AdminClients,
        Scope::ReadAudit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadPatients => "read:patients",
            Self::WritePatients => "write:patients",
            Self::ReadAppointments => "read:appointments",
            Self::WriteAppointments => "write:appointments",
            Self::ReadMedications => "read:medications",
            Self::WriteMedications => "write:medications",
            Self::ReadLabs => "read:labs",
            Self::WriteLabs => "write:labs",
            Self::ReadVitals => "read:vitals",
            Self::WriteVitals => "write:vitals",
            Self::ReadAllergies => "read:allergies",
            Self::WriteAllergies => "write:allergies",
            Self::ReadProviders => "read:providers",
            Self::ReadOwnRecords => "read:own_records",
            Self::AdminClients => "admin:clients",
            Self::ReadAudit => "read:audit",
        }
    }

    /// The scope with exactly this name (no aliases).
    pub fn from_name(name: &str) -> Option<Scope> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes. Copy, and printed space-separated in a fixed order (the OAuth `scope` format).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(u32);

/// Every clinical read scope (what `system/*.read` means).
const CLINICAL_READ: [Scope; 7] = [
    Scope::ReadPatients,
    Scope::ReadAppointments,
    Scope::ReadMedications,
    Scope::ReadLabs,
    Scope::ReadVitals,
    Scope::ReadAllergies,
    Scope::ReadProviders,
];

/// Every clinical write scope (what `system/*.write` means).
const CLINICAL_WRITE: [Scope; 6] = [
    Scope::WritePatients,
    Scope::WriteAppointments,
    Scope::WriteMedications,
    Scope::WriteLabs,
    Scope::WriteVitals,
    Scope::WriteAllergies,
];

impl ScopeSet {
    pub const fn empty() -> Self {
        Self(0)
    }

    pub fn of(scopes: &[Scope]) -> Self {
        scopes
            .iter()
            .fold(Self::empty(), |set, scope| set.with(*scope))
    }

    /// Every clinical read and write scope (what the demo doctor clients hold).
    pub fn all_clinical() -> Self {
        Self::of(&CLINICAL_READ).union(Self::of(&CLINICAL_WRITE))
    }

    pub fn with(self, scope: Scope) -> Self {
        Self(self.0 | scope.bit())
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    pub fn is_subset_of(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }

    /// Parses stored scopes (canonical names only, space-separated). Used for what a client is allowed.
    pub fn parse_canonical(raw: &str) -> Result<Self, AuthError> {
        raw.split_whitespace().try_fold(Self::empty(), |set, name| {
            Scope::from_name(name)
                .map(|scope| set.with(scope))
                .ok_or_else(|| {
                    AuthError::InvalidScope(format!("unknown scope {}", printable(name)))
                })
        })
    }

    /// Parses a requested `scope` parameter: canonical names and SMART on FHIR aliases. Each item is
    /// returned with whether it is a wildcard (`system/*.read`), which asks for "whatever of these you hold".
    pub fn parse_request(raw: &str) -> Result<ScopeRequest, AuthError> {
        let mut request = ScopeRequest::default();
        for item in raw.split_whitespace() {
            if let Some(scope) = Scope::from_name(item) {
                request.exact = request.exact.with(scope);
                continue;
            }
            let alias = smart_alias(item).ok_or_else(|| {
                AuthError::InvalidScope(format!("unknown scope {}", printable(item)))
            })?;
            if alias.wildcard {
                request.wildcards.push(alias.scopes);
            } else {
                request.exact = request.exact.union(alias.scopes);
            }
        }
        Ok(request)
    }
}

/// A parsed `scope` request: scopes asked for exactly, and wildcard groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeRequest {
    pub exact: ScopeSet,
    pub wildcards: Vec<ScopeSet>,
}

impl ScopeRequest {
    /// Every scope the request names, wildcards expanded (to cut to what a holder may have).
    pub fn named(&self) -> ScopeSet {
        self.wildcards
            .iter()
            .fold(self.exact, |set, group| set.union(*group))
    }

    /// What to grant a client allowed `allowed`: exact scopes must all be allowed (else `invalid_scope`,
    /// naming the first one missing); a wildcard group grants its allowed part and must not come out empty.
    pub fn grant(&self, allowed: ScopeSet) -> Result<ScopeSet, AuthError> {
        if let Some(missing) = self.exact.iter().find(|scope| !allowed.contains(*scope)) {
            return Err(AuthError::InvalidScope(format!(
                "scope {missing} is not allowed for this client"
            )));
        }
        let mut granted = self.exact;
        for group in &self.wildcards {
            let part = group.intersection(allowed);
            if part.is_empty() {
                return Err(AuthError::InvalidScope(
                    "the requested wildcard scope grants nothing this client holds".to_owned(),
                ));
            }
            granted = granted.union(part);
        }
        if granted.is_empty() {
            return Err(AuthError::InvalidScope("no scope requested".to_owned()));
        }
        Ok(granted)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
            first = false;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({self})")
    }
}

struct Alias {
    scopes: ScopeSet,
    wildcard: bool,
}

/// SMART on FHIR scopes (v1 `system/Patient.read`, v2 `system/Patient.rs`, wildcards `system/*.read`) as
/// our scopes. `patient/` context reads map to `read:own_records`; `user/` and `system/` to the full scopes.
fn smart_alias(item: &str) -> Option<Alias> {
    let (context, rest) = item.split_once('/')?;
    let (resource, permission) = rest.split_once('.')?;
    let (read, write) = smart_permission(permission)?;
    let wildcard = resource == "*";
    let (read_scopes, write_scopes): (&[Scope], &[Scope]) = match resource {
        "*" => (&CLINICAL_READ, &CLINICAL_WRITE),
        "Patient" => (&[Scope::ReadPatients], &[Scope::WritePatients]),
        "Appointment" => (&[Scope::ReadAppointments], &[Scope::WriteAppointments]),
        "MedicationRequest" | "MedicationStatement" | "Medication" => {
            (&[Scope::ReadMedications], &[Scope::WriteMedications])
        }
        "DiagnosticReport" | "ServiceRequest" => (&[Scope::ReadLabs], &[Scope::WriteLabs]),
        "Observation" => (
            &[Scope::ReadLabs, Scope::ReadVitals],
            &[Scope::WriteLabs, Scope::WriteVitals],
        ),
        "AllergyIntolerance" => (&[Scope::ReadAllergies], &[Scope::WriteAllergies]),
        "Practitioner" | "PractitionerRole" => (&[Scope::ReadProviders], &[]),
        _ => return None,
    };
    let mut scopes = ScopeSet::empty();
    match context {
        "system" | "user" => {
            if read {
                scopes = scopes.union(ScopeSet::of(read_scopes));
            }
            if write {
                scopes = scopes.union(ScopeSet::of(write_scopes));
            }
        }
        "patient" => {
            if read {
                scopes = scopes.with(Scope::ReadOwnRecords);
            }
            if write {
                // A patient may only book and cancel its own appointments.
                if resource == "Appointment" || resource == "*" {
                    scopes = scopes.with(Scope::WriteAppointments);
                }
            }
        }
        _ => return None,
    }
    if scopes.is_empty() {
        return None;
    }
    Some(Alias { scopes, wildcard })
}

/// SMART permissions: v1 `read`, `write`, `*`; v2 a subset of `cruds` in that order (`rs`, `cud`, `cruds`).
/// Returns (grants read, grants write).
fn smart_permission(permission: &str) -> Option<(bool, bool)> {
    match permission {
        "read" => return Some((true, false)),
        "write" => return Some((false, true)),
        "*" => return Some((true, true)),
        _ => {}
    }
    if permission.is_empty() || !is_in_cruds_order(permission) {
        return None;
    }
    let read = permission.contains('r') || permission.contains('s');
    let write = permission.contains('c') || permission.contains('u') || permission.contains('d');
    Some((read, write))
}

fn is_in_cruds_order(permission: &str) -> bool {
    let mut position = 0;
    for letter in permission.chars() {
        match "cruds"[position..].find(letter) {
            Some(offset) => position += offset + 1,
            None => return false,
        }
    }
    true
}

/// A short, log-safe rendering of untrusted input for error messages.
fn printable(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    format!("'{cleaned}'")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(Scope::from_name(scope.as_str()), Some(scope));
        }
        let set = ScopeSet::parse_canonical("read:labs read:patients").unwrap();
        assert_eq!(set.to_string(), "read:patients read:labs");
        assert!(ScopeSet::parse_canonical("read:everything").is_err());
    }

    #[test]
    fn smart_v1_and_v2_aliases_map_to_our_scopes() {
        let request = ScopeSet::parse_request("system/Patient.read").unwrap();
        assert_eq!(request.exact, ScopeSet::of(&[Scope::ReadPatients]));
        let request = ScopeSet::parse_request("system/Patient.rs").unwrap();
        assert_eq!(request.exact, ScopeSet::of(&[Scope::ReadPatients]));
        let request = ScopeSet::parse_request("user/MedicationRequest.cruds").unwrap();
        assert_eq!(
            request.exact,
            ScopeSet::of(&[Scope::ReadMedications, Scope::WriteMedications])
        );
        let request = ScopeSet::parse_request("patient/*.read").unwrap();
        assert_eq!(
            request.wildcards,
            vec![ScopeSet::of(&[Scope::ReadOwnRecords])]
        );
        assert!(ScopeSet::parse_request("system/Patient.sr").is_err());
        assert!(ScopeSet::parse_request("system/Unknown.read").is_err());
        assert!(ScopeSet::parse_request("robot/Patient.read").is_err());
    }

    #[test]
    fn grant_is_requested_intersected_with_allowed() {
        let allowed = ScopeSet::of(&[Scope::ReadPatients, Scope::ReadLabs, Scope::WriteLabs]);
        let exact = ScopeSet::parse_request("read:labs").unwrap();
        assert_eq!(
            exact.grant(allowed).unwrap(),
            ScopeSet::of(&[Scope::ReadLabs])
        );
        let wildcard = ScopeSet::parse_request("system/*.read").unwrap();
        assert_eq!(
            wildcard.grant(allowed).unwrap(),
            ScopeSet::of(&[Scope::ReadPatients, Scope::ReadLabs])
        );
        let too_much = ScopeSet::parse_request("read:labs write:medications").unwrap();
        assert!(matches!(
            too_much.grant(allowed),
            Err(AuthError::InvalidScope(_))
        ));
        let nothing = ScopeSet::parse_request("system/*.read").unwrap();
        assert!(nothing.grant(ScopeSet::of(&[Scope::AdminClients])).is_err());
    }
}
