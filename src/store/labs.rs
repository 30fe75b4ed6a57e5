//! Lab results: a patient's orders and results, newest first, lookup by order id, ordering a test.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::bulk::AnyQuery;
use super::tx::Tx;
use super::{
    Store, StoreError, fetch_by_public_id, invalid, now_text, parsed, parsed_optional,
    patient_records,
};
use crate::domain::clinical::{LabResult, LabStatus, parse_lab_components};
use crate::domain::ids::{Mrn, RecordId};
use crate::domain::time::DateOrTimestamp;

/// Changes to a lab order as it is collected and resulted; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabResultUpdate {
    pub status: Option<LabStatus>,
    pub collected_date: Option<DateOrTimestamp>,
    pub resulted_date: Option<DateOrTimestamp>,
    /// The JSON list of components (checked before it is stored).
    pub results_json: Option<String>,
}

pub(crate) const LAB_SELECT: &str = "SELECT l.order_id, p.mrn AS patient_mrn, l.test_name, l.ordered_date, \
     l.collected_date, l.resulted_date, l.status, l.ordered_by, l.results_json \
     FROM lab_results l JOIN patients p ON p.id = l.patient_id";

impl Store {
    /// A patient's most recent `limit` (1..=1000) lab results, newest order first; `NotFound` for an
    /// unknown patient.
    pub async fn lab_results(
        &self,
        mrn: &Mrn,
        status: Option<LabStatus>,
        limit: u32,
    ) -> Result<Vec<LabResult>, StoreError> {
        let sql = format!(
            "{LAB_SELECT} WHERE l.patient_id = $1 AND ($2 IS NULL OR l.status = $2) \
             ORDER BY l.ordered_date DESC, l.id DESC LIMIT $3"
        );
        let status = status.map(|status| status.as_str().to_owned());
        let limit = i64::from(limit.clamp(1, 1000));
        let bind = |q: AnyQuery<'static>| q.bind(status).bind(limit);
        patient_records(self, mrn, sql, bind, lab_result_from_row).await
    }

    pub async fn lab_result(&self, order_id: &RecordId) -> Result<LabResult, StoreError> {
        fetch_lab_result(self.pool(), order_id).await
    }

    /// Records collection or results of a lab order (see [`update_lab_result`]).
    pub async fn update_lab_result(
        &self,
        order_id: &RecordId,
        update: &LabResultUpdate,
    ) -> Result<LabResult, StoreError> {
        let mut conn = self.pool().acquire().await?;
        update_lab_result(&mut Tx::new(&mut conn), order_id, update).await
    }

    pub async fn insert_lab_result(&self, lab: &LabResult) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_lab_result(&mut Tx::new(&mut conn), lab).await
    }
}

/// Inserts a lab order or result for `lab.patient_mrn`; `NotFound { what: "patient" }` when there is none.
pub async fn insert_lab_result(tx: &mut Tx<'_>, lab: &LabResult) -> Result<(), StoreError> {
    super::bulk::insert_for_patient(tx, &super::bulk::LAB_RESULTS, lab, &lab.patient_mrn).await
}

/// Applies the set fields of `update` to a lab order. `NotFound { what: "lab order" }` for an unknown id;
/// `Invalid { field: "results_json" }` when the components are not a JSON list of components.
pub async fn update_lab_result(
    tx: &mut Tx<'_>,
    order_id: &RecordId,
    update: &LabResultUpdate,
) -> Result<LabResult, StoreError> {
    let conn = tx.conn();
    if update.results_json.is_some() {
        parse_lab_components(update.results_json.as_deref())
            .map_err(|error| invalid("results_json", error))?;
    }
    let result = sqlx::query(
        "UPDATE lab_results SET status = COALESCE($2, status), \
         collected_date = COALESCE($3, collected_date), resulted_date = COALESCE($4, resulted_date), \
         results_json = COALESCE($5, results_json), updated_at = $6 WHERE order_id = $1",
    )
    .bind(order_id.as_str())
    .bind(update.status.map(|status| status.as_str().to_owned()))
    .bind(update.collected_date.map(|date| date.to_string()))
    .bind(update.resulted_date.map(|date| date.to_string()))
    .bind(&update.results_json)
    .bind(now_text())
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound { what: "lab order" });
    }
    fetch_lab_result(&mut *conn, order_id).await
}

pub(crate) async fn fetch_lab_result<'c, E>(
    executor: E,
    order_id: &RecordId,
) -> Result<LabResult, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    fetch_by_public_id(
        executor,
        LAB_SELECT,
        "l.order_id",
        order_id.as_str(),
        "lab order",
        lab_result_from_row,
    )
    .await
}

pub(crate) fn lab_result_from_row(row: &AnyRow) -> Result<LabResult, StoreError> {
    let date = |column: &'static str| {
        parsed_optional(row, column, |date| DateOrTimestamp::parse(column, date))
    };
    Ok(LabResult {
        order_id: parsed(row, "order_id", |id| RecordId::parse("order_id", id))?,
        patient_mrn: parsed(row, "patient_mrn", Mrn::parse)?,
        test_name: row.try_get("test_name")?,
        ordered_date: date("ordered_date")?,
        collected_date: date("collected_date")?,
        resulted_date: date("resulted_date")?,
        status: parsed(row, "status", LabStatus::parse)?,
        ordered_by: row.try_get("ordered_by")?,
        results_json: row.try_get("results_json")?,
    })
}
