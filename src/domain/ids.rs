//! Identifier newtypes. Each parses (and normalises) its input once; functions take the newtype, never `&str`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DomainError;

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        #[allow(dead_code)]
        const _: &str = $field;
    };
}

fn is_code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

string_newtype!(
    /// Medical record number: 3–32 characters, letters, digits, `-` or `_`, stored upper-case (`MRN001`).
    /// Its `Debug` is redacted: an MRN identifies a patient and must not reach logs in clear.
    Mrn,
    "mrn"
);

impl Mrn {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let value = raw.trim().to_ascii_uppercase();
        if !(3..=32).contains(&value.len()) || !value.chars().all(is_code_char) {
            return Err(DomainError::new(
                "mrn",
                "expected 3-32 letters, digits, '-' or '_' (for example MRN001)",
            ));
        }
        Ok(Self(value))
    }
}

impl fmt::Debug for Mrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mrn(<redacted>)")
    }
}

string_newtype!(
    /// National Provider Identifier: exactly ten digits.
    Npi,
    "npi"
);

impl Npi {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let value = raw.trim();
        if value.len() != 10 || !value.chars().all(|c| c.is_ascii_digit()) {
            return Err(DomainError::new("npi", "expected exactly 10 digits"));
        }
        Ok(Self(value.to_owned()))
    }
}

impl fmt::Debug for Npi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Npi({})", self.0)
    }
}

/// The public identifier of a clinical record (`APT001`, `MED3EC031`, `LAB001`, `ALG…`, `VIT…`):
/// 1–64 letters, digits, `-` or `_`. Public ids are stable across export and import.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RecordId(String);

impl RecordId {
    pub fn parse(field: &str, raw: &str) -> Result<Self, DomainError> {
        let value = raw.trim();
        if value.is_empty() || value.len() > 64 || !value.chars().all(is_code_char) {
            return Err(DomainError::new(
                field,
                "expected 1-64 letters, digits, '-' or '_'",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// A new random id with the given prefix, in the earlier system's style (`APT` + 10 hex digits).
    pub fn generate(prefix: RecordKind) -> Self {
        let random = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_ascii_uppercase();
        Self(format!("{}{}", prefix.prefix(), &random[..10]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RecordId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RecordId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        // The rule only: the caller names the field.
        Self::parse("id", &raw).map_err(|error| serde::de::Error::custom(error.rule))
    }
}

/// The kinds of record that carry a public [`RecordId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Appointment,
    Medication,
    LabOrder,
    Allergy,
    VitalSigns,
}

impl RecordKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Appointment => "APT",
            Self::Medication => "MED",
            Self::LabOrder => "LAB",
            Self::Allergy => "ALG",
            Self::VitalSigns => "VIT",
        }
    }
}

string_newtype!(
    /// OAuth client identifier: 3–64 letters, digits, `-`, `_` or `.`.
    ClientId,
    "client_id"
);

impl ClientId {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let value = raw.trim();
        if !(3..=64).contains(&value.len()) || !value.chars().all(|c| is_code_char(c) || c == '.') {
            return Err(DomainError::new(
                "client_id",
                "expected 3-64 letters, digits, '-', '_' or '.'",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrn_is_normalised_and_checked() {
        assert_eq!(
            Mrn::parse(" mrn001 ").map(|m| m.into_string()),
            Ok("MRN001".to_owned())
        );
        assert!(Mrn::parse("M").is_err());
        assert!(Mrn::parse("MRN 001").is_err());
        assert!(Mrn::parse("MRN001'; DROP TABLE patients;--").is_err());
        assert_eq!(
            format!("{:?}", Mrn::parse("MRN001").ok()),
            "Some(Mrn(<redacted>))"
        );
    }

    #[test]
    fn npi_needs_ten_digits() {
        assert!(Npi::parse("1234567890").is_ok());
        assert!(Npi::parse("123456789").is_err());
        assert!(Npi::parse("12345678ab").is_err());
    }

    #[test]
    fn generated_record_ids_have_their_prefix() {
        let id = RecordId::generate(RecordKind::Appointment);
        assert!(id.as_str().starts_with("APT"));
        assert_eq!(id.as_str().len(), 13);
        assert!(RecordId::parse("appointment_id", &id.to_string()).is_ok());
    }
}
