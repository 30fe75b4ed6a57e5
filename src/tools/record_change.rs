//! What a status change of one patient's record (cancel an appointment, stop a medication) checks before
//! it writes: the record id, that the record belongs to the patient named (another patient's record is
//! reported exactly like a missing one), and the reason.

use super::args::optional_text;
use super::call::ToolCall;
use super::error::ToolError;
use crate::domain::ids::{Mrn, RecordId};
use crate::store::StoreError;

/// A checked change: the record, the reason to note, and the audit detail naming the record.
pub struct RecordChange {
    pub id: RecordId,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

/// Checks a change of record `raw_id` (argument `id_field`, a `what`) of patient `mrn`; `patient_of`
/// loads the record's patient.
pub async fn check(
    call: &ToolCall<'_>,
    what: &str,
    id_field: &'static str,
    raw_id: &str,
    mrn: &Mrn,
    reason: Option<&str>,
    patient_of: impl AsyncFnOnce(&RecordId) -> Result<Mrn, StoreError>,
) -> Result<RecordChange, ToolError> {
    let id = RecordId::parse(id_field, raw_id)?;
    let owner = patient_of(&id).await.map_err(|e| call.store_error(e))?;
    if &owner != mrn {
        return Err(ToolError::NotFound(format!("{what} not found")));
    }
    Ok(RecordChange {
        reason: optional_text("reason", reason, 500)?,
        detail: Some(format!("{id_field}={id}")),
        id,
    })
}
