//! People who sign in: the `Username` newtype (parsed once at the boundary) and the rules that bind a
//! user's role to a patient.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;
use super::access::Role;
use super::ids::Mrn;

/// A sign-in name: 1-64 characters of ASCII letters, digits, `.`, `_`, `-` and `@`, case-preserved and
/// compared as given.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let name = raw.trim();
        let valid = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(DomainError::new(
                "username",
                "1-64 letters, digits, '.', '_', '-' or '@'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({})", self.0)
    }
}

/// A person's role and bound patient, checked together: `patient` users need an MRN, nobody else has
/// one, and no person holds the machine role `system`.
pub fn check_user_role(role: Role, patient: Option<&Mrn>) -> Result<(), DomainError> {
    match (role, patient) {
        (Role::System, _) => Err(DomainError::new(
            "role",
            "people are doctor, nurse, patient or admin (system is for machine clients)",
        )),
        (Role::Patient, None) => Err(DomainError::new(
            "patient_mrn",
            "a patient user needs --patient-mrn",
        )),
        (role, Some(_)) if role != Role::Patient => Err(DomainError::new(
            "patient_mrn",
            "only patient users are bound to a patient",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_role_bindings() {
        assert_eq!(Username::parse(" dr.smith ").unwrap().as_str(), "dr.smith");
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse("<script>").is_err());
        let mrn = Mrn::parse("MRN001").unwrap();
        assert!(check_user_role(Role::Patient, Some(&mrn)).is_ok());
        assert!(check_user_role(Role::Patient, None).is_err());
        assert!(check_user_role(Role::Doctor, Some(&mrn)).is_err());
        assert!(check_user_role(Role::System, None).is_err());
        assert!(check_user_role(Role::Admin, None).is_ok());
    }
}
