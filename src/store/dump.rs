//! Reading whole tables for export: each table as a stream of domain records in insertion order, so an
//! export of a million patients never holds them all in memory.

use futures::stream::{BoxStream, StreamExt};
use sqlx::any::AnyRow;

use super::allergies::{ALLERGY_SELECT, allergy_from_row};
use super::appointments::{APPOINTMENT_SELECT, appointment_from_row};
use super::labs::{LAB_SELECT, lab_result_from_row};
use super::medications::{MEDICATION_SELECT, medication_from_row};
use super::patients::{PATIENT_COLUMNS, patient_from_row};
use super::providers::{PROVIDER_COLUMNS, provider_from_row};
use super::vitals::{VITALS_SELECT, vital_signs_from_row};
use super::{Store, StoreError};
use crate::domain::clinical::{
    Allergy, Appointment, LabResult, Medication, Patient, Provider, VitalSigns,
};

/// How many rows each table holds, in export order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounts {
    pub providers: i64,
    pub patients: i64,
    pub appointments: i64,
    pub medications: i64,
    pub allergies: i64,
    pub vital_signs: i64,
    pub lab_results: i64,
}

type RecordStream<'a, T> = BoxStream<'a, Result<T, StoreError>>;

impl Store {
    /// Row counts of every clinical table.
    pub async fn table_counts(&self) -> Result<TableCounts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM providers) AS providers, \
             (SELECT COUNT(*) FROM patients) AS patients, \
             (SELECT COUNT(*) FROM appointments) AS appointments, \
             (SELECT COUNT(*) FROM medications) AS medications, \
             (SELECT COUNT(*) FROM allergies) AS allergies, \
             (SELECT COUNT(*) FROM vital_signs) AS vital_signs, \
             (SELECT COUNT(*) FROM lab_results) AS lab_results",
        )
        .fetch_one(self.pool())
        .await?;
        use sqlx::Row;
        Ok(TableCounts {
            providers: row.try_get("providers")?,
            patients: row.try_get("patients")?,
            appointments: row.try_get("appointments")?,
            medications: row.try_get("medications")?,
            allergies: row.try_get("allergies")?,
            vital_signs: row.try_get("vital_signs")?,
            lab_results: row.try_get("lab_results")?,
        })
    }

    pub fn stream_providers(&self) -> RecordStream<'_, Provider> {
        self.stream(
            format!("SELECT {PROVIDER_COLUMNS} FROM providers ORDER BY id"),
            provider_from_row,
        )
    }

    pub fn stream_patients(&self) -> RecordStream<'_, Patient> {
        self.stream(
            format!("SELECT {PATIENT_COLUMNS} FROM patients ORDER BY id"),
            patient_from_row,
        )
    }

    pub fn stream_appointments(&self) -> RecordStream<'_, Appointment> {
        self.stream(
            format!("{APPOINTMENT_SELECT} ORDER BY a.id"),
            appointment_from_row,
        )
    }

    pub fn stream_medications(&self) -> RecordStream<'_, Medication> {
        self.stream(
            format!("{MEDICATION_SELECT} ORDER BY m.id"),
            medication_from_row,
        )
    }

    pub fn stream_allergies(&self) -> RecordStream<'_, Allergy> {
        self.stream(format!("{ALLERGY_SELECT} ORDER BY a.id"), allergy_from_row)
    }

    pub fn stream_vital_signs(&self) -> RecordStream<'_, VitalSigns> {
        self.stream(
            format!("{VITALS_SELECT} ORDER BY v.id"),
            vital_signs_from_row,
        )
    }

    pub fn stream_lab_results(&self) -> RecordStream<'_, LabResult> {
        self.stream(format!("{LAB_SELECT} ORDER BY l.id"), lab_result_from_row)
    }

    fn stream<T: Send + 'static>(
        &self,
        sql: String,
        decode: fn(&AnyRow) -> Result<T, StoreError>,
    ) -> RecordStream<'_, T> {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch(self.pool())
            .map(move |row| decode(&row?))
            .boxed()
    }
}
