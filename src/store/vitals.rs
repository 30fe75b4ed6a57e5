//! Vital signs: a patient's readings, newest first, and recording a new set.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::tx::Tx;
use super::{Store, StoreError, parsed, patient_records};
use crate::domain::clinical::VitalSigns;
use crate::domain::ids::{Mrn, RecordId};
use crate::domain::time::Timestamp;

pub(crate) const VITALS_SELECT: &str = "SELECT v.vital_id, p.mrn AS patient_mrn, v.recorded_date, v.systolic_bp, \
     v.diastolic_bp, v.heart_rate, v.temperature, v.respiratory_rate, v.oxygen_saturation, v.weight, \
     v.height, v.bmi, v.recorded_by, v.notes FROM vital_signs v JOIN patients p ON p.id = v.patient_id";

impl Store {
    /// A patient's most recent `limit` (1..=1000) readings, newest first; `NotFound` for an unknown patient.
    pub async fn vital_signs(&self, mrn: &Mrn, limit: u32) -> Result<Vec<VitalSigns>, StoreError> {
        let sql = format!(
            "{VITALS_SELECT} WHERE v.patient_id = $1 ORDER BY v.recorded_date DESC, v.id DESC LIMIT $2"
        );
        let limit = i64::from(limit.clamp(1, 1000));
        patient_records(self, mrn, sql, |q| q.bind(limit), vital_signs_from_row).await
    }

    pub async fn insert_vital_signs(&self, vitals: &VitalSigns) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_vital_signs(&mut Tx::new(&mut conn), vitals).await
    }
}

/// Records a set of vital signs for `vitals.patient_mrn`; `NotFound { what: "patient" }` when there is none.
pub async fn insert_vital_signs(tx: &mut Tx<'_>, vitals: &VitalSigns) -> Result<(), StoreError> {
    super::bulk::insert_for_patient(tx, &super::bulk::VITAL_SIGNS, vitals, &vitals.patient_mrn)
        .await
}

pub(crate) fn vital_signs_from_row(row: &AnyRow) -> Result<VitalSigns, StoreError> {
    Ok(VitalSigns {
        vital_id: parsed(row, "vital_id", |id| RecordId::parse("vital_id", id))?,
        patient_mrn: parsed(row, "patient_mrn", Mrn::parse)?,
        recorded_date: parsed(row, "recorded_date", |stamp| {
            Timestamp::parse("recorded_date", stamp)
        })?,
        systolic_bp: row.try_get("systolic_bp")?,
        diastolic_bp: row.try_get("diastolic_bp")?,
        heart_rate: row.try_get("heart_rate")?,
        temperature: row.try_get("temperature")?,
        respiratory_rate: row.try_get("respiratory_rate")?,
        oxygen_saturation: row.try_get("oxygen_saturation")?,
        weight: row.try_get("weight")?,
        height: row.try_get("height")?,
        bmi: row.try_get("bmi")?,
        recorded_by: row.try_get("recorded_by")?,
        notes: row.try_get("notes")?,
    })
}
