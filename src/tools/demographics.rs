//! Patient demographics as tool arguments: the fields `create_patient` and `update_patient` share, and the
//! rules they must meet (gender enumeration, e-mail and phone forms, lengths, date of birth).

use schemars::JsonSchema;
use serde::Deserialize;

use super::args::{email, iso_date, optional_text};
use super::error::ToolError;
use crate::domain::clinical::{Gender, PatientUpdate};
use crate::domain::ids::Mrn;

/// Demographic fields shared by `create_patient` and `update_patient`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Demographics {
    /// Male, Female, Other or Unknown.
    #[schemars(extend("enum" = ["Male", "Female", "Other", "Unknown"]))]
    pub gender: Option<String>,
    #[schemars(email, length(max = 254))]
    pub email: Option<String>,
    /// Phone number, e.g. +1-555-0101.
    #[schemars(length(max = 32))]
    pub phone: Option<String>,
    #[schemars(length(max = 200))]
    pub street: Option<String>,
    #[schemars(length(max = 100))]
    pub city: Option<String>,
    #[schemars(length(max = 50))]
    pub state: Option<String>,
    #[schemars(length(max = 20))]
    pub zip_code: Option<String>,
    #[schemars(length(max = 200))]
    pub insurance_provider: Option<String>,
    #[schemars(length(max = 100))]
    pub policy_number: Option<String>,
    #[schemars(length(max = 100))]
    pub group_number: Option<String>,
    #[schemars(length(max = 200))]
    pub emergency_contact_name: Option<String>,
    #[schemars(length(max = 100))]
    pub emergency_contact_relationship: Option<String>,
    #[schemars(length(max = 32))]
    pub emergency_contact_phone: Option<String>,
}

/// Demographics after validation.
pub struct CheckedDemographics(pub PatientUpdate);

impl Demographics {
    pub fn check(&self) -> Result<CheckedDemographics, ToolError> {
        let gender = match self.gender.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(Gender::parse(raw)?.as_str().to_owned()),
        };
        Ok(CheckedDemographics(PatientUpdate {
            gender,
            email: email("email", self.email.as_deref())?,
            phone: phone("phone", self.phone.as_deref())?,
            street: optional_text("street", self.street.as_deref(), 200)?,
            city: optional_text("city", self.city.as_deref(), 100)?,
            state: optional_text("state", self.state.as_deref(), 50)?,
            zip_code: optional_text("zip_code", self.zip_code.as_deref(), 20)?,
            insurance_provider: optional_text(
                "insurance_provider",
                self.insurance_provider.as_deref(),
                200,
            )?,
            policy_number: optional_text("policy_number", self.policy_number.as_deref(), 100)?,
            group_number: optional_text("group_number", self.group_number.as_deref(), 100)?,
            emergency_contact_name: optional_text(
                "emergency_contact_name",
                self.emergency_contact_name.as_deref(),
                200,
            )?,
            emergency_contact_relationship: optional_text(
                "emergency_contact_relationship",
                self.emergency_contact_relationship.as_deref(),
                100,
            )?,
            emergency_contact_phone: phone(
                "emergency_contact_phone",
                self.emergency_contact_phone.as_deref(),
            )?,
            ..PatientUpdate::default()
        }))
    }
}

/// A date of birth: an ISO date, not in the future, not before 1900.
pub fn date_of_birth(raw: &str) -> Result<String, ToolError> {
    let date = iso_date("dob", raw)?;
    let today = chrono::Utc::now().date_naive();
    if date > today {
        return Err(ToolError::invalid("dob", "must not be in the future"));
    }
    if date < chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(date) {
        return Err(ToolError::invalid("dob", "must be 1900-01-01 or later"));
    }
    Ok(crate::domain::time::format_date(date))
}

/// A phone number: digits with optional `+ - ( ) .` and spaces, 7-32 characters.
pub fn phone(field: &str, value: Option<&str>) -> Result<Option<String>, ToolError> {
    let Some(text) = optional_text(field, value, 32)? else {
        return Ok(None);
    };
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let allowed = text
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if allowed && digits >= 7 {
        Ok(Some(text))
    } else {
        Err(ToolError::invalid(
            field,
            "expected a phone number such as +1-555-0101",
        ))
    }
}

/// A fresh MRN: `MRN` and ten hexadecimal digits.
pub fn generated_mrn() -> Result<Mrn, ToolError> {
    let random = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    Ok(Mrn::parse(&format!("MRN{}", &random[..10]))?)
}
