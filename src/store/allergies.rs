//! Allergies: a patient's list (optionally by status) and recording a new allergy.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::tx::Tx;
use super::{
    Store, StoreError, fetch_by_public_id, now_text, parsed, parsed_optional, patient_records,
};
use crate::domain::clinical::{Allergy, AllergySeverity, AllergyStatus};
use crate::domain::ids::{Mrn, RecordId};
use crate::domain::time::Date;

pub(crate) const ALLERGY_SELECT: &str = "SELECT a.allergy_id, p.mrn AS patient_mrn, a.allergen, a.reaction, \
     a.severity, a.onset_date, a.status, a.notes FROM allergies a JOIN patients p ON p.id = a.patient_id";

impl Store {
    /// A patient's allergies in the order they were recorded; `NotFound` when the patient does not exist.
    pub async fn allergies(
        &self,
        mrn: &Mrn,
        status: Option<AllergyStatus>,
    ) -> Result<Vec<Allergy>, StoreError> {
        let sql = format!(
            "{ALLERGY_SELECT} WHERE a.patient_id = $1 AND ($2 IS NULL OR a.status = $2) ORDER BY a.id"
        );
        let status = status.map(|status| status.as_str().to_owned());
        patient_records(self, mrn, sql, |q| q.bind(status), allergy_from_row).await
    }

    pub async fn allergy(&self, allergy_id: &RecordId) -> Result<Allergy, StoreError> {
        fetch_allergy(self.pool(), allergy_id).await
    }

    /// Marks an allergy active, inactive or resolved (see [`set_allergy_status`]).
    pub async fn set_allergy_status(
        &self,
        allergy_id: &RecordId,
        status: AllergyStatus,
    ) -> Result<Allergy, StoreError> {
        let mut conn = self.pool().acquire().await?;
        set_allergy_status(&mut Tx::new(&mut conn), allergy_id, status).await
    }

    pub async fn insert_allergy(&self, allergy: &Allergy) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_allergy(&mut Tx::new(&mut conn), allergy).await
    }
}

/// Records an allergy for `allergy.patient_mrn`; `NotFound { what: "patient" }` when there is none.
pub async fn insert_allergy(tx: &mut Tx<'_>, allergy: &Allergy) -> Result<(), StoreError> {
    super::bulk::insert_for_patient(tx, &super::bulk::ALLERGIES, allergy, &allergy.patient_mrn)
        .await
}

/// Sets an allergy's status; `NotFound { what: "allergy" }` for an unknown id.
pub async fn set_allergy_status(
    tx: &mut Tx<'_>,
    allergy_id: &RecordId,
    status: AllergyStatus,
) -> Result<Allergy, StoreError> {
    let conn = tx.conn();
    let result =
        sqlx::query("UPDATE allergies SET status = $2, updated_at = $3 WHERE allergy_id = $1")
            .bind(allergy_id.as_str())
            .bind(status.as_str())
            .bind(now_text())
            .execute(&mut *conn)
            .await?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound { what: "allergy" });
    }
    fetch_allergy(&mut *conn, allergy_id).await
}

pub(crate) async fn fetch_allergy<'c, E>(
    executor: E,
    allergy_id: &RecordId,
) -> Result<Allergy, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    fetch_by_public_id(
        executor,
        ALLERGY_SELECT,
        "a.allergy_id",
        allergy_id.as_str(),
        "allergy",
        allergy_from_row,
    )
    .await
}

pub(crate) fn allergy_from_row(row: &AnyRow) -> Result<Allergy, StoreError> {
    Ok(Allergy {
        allergy_id: parsed(row, "allergy_id", |id| RecordId::parse("allergy_id", id))?,
        patient_mrn: parsed(row, "patient_mrn", Mrn::parse)?,
        allergen: row.try_get("allergen")?,
        reaction: row.try_get("reaction")?,
        severity: parsed(row, "severity", AllergySeverity::parse)?,
        onset_date: parsed_optional(row, "onset_date", |date| Date::parse("onset_date", date))?,
        status: parsed(row, "status", AllergyStatus::parse)?,
        notes: row.try_get("notes")?,
    })
}
