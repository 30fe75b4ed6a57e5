//! Patient demographics as tool arguments: the fields `create_patient` and `update_patient` share, and the
//! types they parse into (gender enumeration, e-mail and phone forms, bounded text), and the date of birth
//! rule.

use schemars::JsonSchema;
use serde::Deserialize;

use super::error::ToolError;
use crate::domain::clinical::{Gender, PatientUpdate};
use crate::domain::ids::Mrn;
use crate::domain::text::field::{Code, Label, Name, Short};
use crate::domain::text::{Email, Phone, Text};
use crate::domain::time::Date;

/// Demographic fields shared by `create_patient` and `update_patient`, parsed by their types.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Demographics {
    /// Male, Female, Other or Unknown.
    pub gender: Option<Gender>,
    pub email: Option<Email>,
    /// Phone number, e.g. +1-555-0101.
    pub phone: Option<Phone>,
    pub street: Option<Label>,
    pub city: Option<Name>,
    pub state: Option<Short>,
    pub zip_code: Option<Code>,
    pub insurance_provider: Option<Label>,
    pub policy_number: Option<Name>,
    pub group_number: Option<Name>,
    pub emergency_contact_name: Option<Label>,
    pub emergency_contact_relationship: Option<Name>,
    pub emergency_contact_phone: Option<Phone>,
}

fn text<const MAX: usize>(value: Option<Text<MAX>>) -> Option<String> {
    value.map(Text::into_string)
}

impl From<Demographics> for PatientUpdate {
    fn from(d: Demographics) -> Self {
        PatientUpdate {
            gender: d.gender,
            email: d.email.map(Email::into_string),
            phone: d.phone.map(Phone::into_string),
            street: text(d.street),
            city: text(d.city),
            state: text(d.state),
            zip_code: text(d.zip_code),
            insurance_provider: text(d.insurance_provider),
            policy_number: text(d.policy_number),
            group_number: text(d.group_number),
            emergency_contact_name: text(d.emergency_contact_name),
            emergency_contact_relationship: text(d.emergency_contact_relationship),
            emergency_contact_phone: d.emergency_contact_phone.map(Phone::into_string),
            ..PatientUpdate::default()
        }
    }
}

/// A date of birth: not in the future (the year range is [`Date`]'s own rule).
pub fn check_birth_date(dob: Date) -> Result<Date, ToolError> {
    Ok(dob.not_after("dob", Date::today())?)
}

/// A fresh MRN: `MRN` and ten hexadecimal digits.
pub fn generated_mrn() -> Result<Mrn, ToolError> {
    let random = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    Ok(Mrn::parse(&format!("MRN{}", &random[..10]))?)
}
