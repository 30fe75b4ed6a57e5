//! What a status change of one patient's record (cancel an appointment, stop a medication) checks before
//! it writes: that the record belongs to the patient named (another patient's record is
//! reported exactly like a missing one), and the reason.

use super::call::ToolCall;
use super::error::ToolError;
use crate::domain::ids::{Mrn, RecordId};
use crate::domain::text::Text;
use crate::domain::text::field::Reason;
use crate::store::StoreError;

/// A checked change: the record, the reason to note, and the audit detail naming the record.
pub struct RecordChange {
    pub id: RecordId,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

/// Checks a change of record `id` (argument `id_field`, a `what`) of patient `mrn`; `patient_of`
/// loads the record's patient.
pub async fn check(
    call: &ToolCall<'_>,
    what: &str,
    id_field: &'static str,
    id: RecordId,
    mrn: &Mrn,
    reason: Option<Reason>,
    patient_of: impl AsyncFnOnce(&RecordId) -> Result<Mrn, StoreError>,
) -> Result<RecordChange, ToolError> {
    let owner = patient_of(&id).await.map_err(|e| call.store_error(e))?;
    if &owner != mrn {
        return Err(ToolError::NotFound(format!("{what} not found")));
    }
    Ok(RecordChange {
        reason: reason.map(Text::into_string),
        detail: Some(format!("{id_field}={id}")),
        id,
    })
}
