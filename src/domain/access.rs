//! Who a caller is, in domain terms: the roles a client can hold.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// The role of an OAuth client. What each role may do lives in the policy table (`auth::policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Doctor,
    Nurse,
    Patient,
    Admin,
    System,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Doctor,
        Role::Nurse,
        Role::Patient,
        Role::Admin,
        Role::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Doctor => "doctor",
            Self::Nurse => "nurse",
            Self::Patient => "patient",
            Self::Admin => "admin",
            Self::System => "system",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| {
                DomainError::new(
                    "role",
                    "expected one of doctor, nurse, patient, admin, system",
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
