//! Vital signs: a patient's readings, newest first, and recording a new set.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::float8::Float8;
use super::patients::patient_row_id;
use super::tx::Tx;
use super::{Store, StoreError, now_text, parsed};
use crate::domain::clinical::VitalSigns;
use crate::domain::ids::{Mrn, RecordId};
use crate::domain::time::Timestamp;

pub(crate) const VITALS_SELECT: &str = "SELECT v.vital_id, p.mrn AS patient_mrn, v.recorded_date, v.systolic_bp, \
     v.diastolic_bp, v.heart_rate, v.temperature, v.respiratory_rate, v.oxygen_saturation, v.weight, \
     v.height, v.bmi, v.recorded_by, v.notes FROM vital_signs v JOIN patients p ON p.id = v.patient_id";

impl Store {
    /// A patient's most recent `limit` (1..=1000) readings, newest first; `NotFound` for an unknown patient.
    pub async fn vital_signs(&self, mrn: &Mrn, limit: u32) -> Result<Vec<VitalSigns>, StoreError> {
        let mut lease = self.lease().await?;
        let patient_id = patient_row_id(&mut *lease, mrn).await?;
        let sql = format!(
            "{VITALS_SELECT} WHERE v.patient_id = $1 ORDER BY v.recorded_date DESC, v.id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(patient_id)
            .bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(&mut *lease)
            .await?;
        lease.settle(rows.iter().map(vital_signs_from_row).collect())
    }

    pub async fn insert_vital_signs(&self, vitals: &VitalSigns) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_vital_signs(&mut Tx::new(&mut conn), vitals).await
    }
}

/// Records a set of vital signs for `vitals.patient_mrn`; `NotFound { what: "patient" }` when there is none.
pub async fn insert_vital_signs(tx: &mut Tx<'_>, vitals: &VitalSigns) -> Result<(), StoreError> {
    let conn = tx.conn();
    let result = sqlx::query(
        "INSERT INTO vital_signs (vital_id, patient_id, recorded_date, systolic_bp, diastolic_bp, \
         heart_rate, temperature, respiratory_rate, oxygen_saturation, weight, height, bmi, recorded_by, \
         notes, created_at) \
         SELECT $1, p.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
         FROM patients p WHERE p.mrn = $2",
    )
    .bind(vitals.vital_id.as_str())
    .bind(vitals.patient_mrn.as_str())
    .bind(vitals.recorded_date.to_string())
    .bind(vitals.systolic_bp)
    .bind(vitals.diastolic_bp)
    .bind(vitals.heart_rate)
    .bind(Float8(vitals.temperature))
    .bind(vitals.respiratory_rate)
    .bind(vitals.oxygen_saturation)
    .bind(Float8(vitals.weight))
    .bind(Float8(vitals.height))
    .bind(Float8(vitals.bmi))
    .bind(&vitals.recorded_by)
    .bind(&vitals.notes)
    .bind(now_text())
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound { what: "patient" });
    }
    Ok(())
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
