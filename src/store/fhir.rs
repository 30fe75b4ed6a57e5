//! The reads behind the FHIR API: each record with the time it last changed on this server (its
//! `updated_at`, or `created_at` for vital signs, which are never changed), the Patient, Practitioner
//! and Appointment searches with their total and an offset page, and a patient's records of one kind.
//!
//! Rules: prefixes (`name`, `family`, `given`) match case-insensitively at the start of the column (a
//! practitioner's name: at the start of any word); dates are compared as ISO text, half-open
//! `[from, until)`. Orders are stable: patients by last name, first name, MRN; practitioners by name,
//! NPI; appointments by date, slot, id. A patient's records of one kind are capped at
//! [`MAX_RECORDS_PER_KIND`]; more is refused rather than cut silently.

use chrono::{NaiveDate, NaiveDateTime};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use super::allergies::{ALLERGY_SELECT, allergy_from_row};
use super::appointments::{APPOINTMENT_SELECT, appointment_from_row};
use super::labs::{LAB_SELECT, lab_result_from_row};
use super::medications::{MEDICATION_SELECT, medication_from_row};
use super::patients::{PATIENT_COLUMNS, patient_from_row};
use super::providers::{PROVIDER_COLUMNS, provider_from_row};
use super::vitals::{VITALS_SELECT, vital_signs_from_row};
use super::{Store, StoreError};
use crate::domain::clinical::{
    Allergy, Appointment, AppointmentStatus, LabResult, Medication, Patient, Provider, VitalSigns,
};
use crate::domain::ids::{Mrn, Npi, RecordId};

/// Most records of one kind read for one patient.
pub const MAX_RECORDS_PER_KIND: u32 = 1000;

/// A record and when it last changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped<T> {
    pub record: T,
    pub last_updated: NaiveDateTime,
}

/// One page of a search and how many records match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted<T> {
    pub items: Vec<Stamped<T>>,
    pub total: u64,
}

/// Which page: at most `limit` records from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u32,
    pub offset: u32,
}

/// Patient search; every given criterion must hold. Prefixes are lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientQuery {
    pub mrn: Option<Mrn>,
    pub name_prefix: Option<String>,
    pub family_prefix: Option<String>,
    pub given_prefix: Option<String>,
    pub born_from: Option<NaiveDate>,
    pub born_until: Option<NaiveDate>,
}

/// Practitioner search; every given criterion must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderQuery {
    pub npi: Option<Npi>,
    pub name_prefix: Option<String>,
}

/// Appointment search; every given criterion must hold (empty `statuses`: any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppointmentQuery {
    pub patient: Option<Mrn>,
    pub provider: Option<Npi>,
    pub from: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    pub statuses: Vec<AppointmentStatus>,
}

/// `SELECT {column} AS last_updated, …` from a `SELECT …` of a record module.
fn stamped_select(select: &str, column: &str) -> String {
    let rest = select.strip_prefix("SELECT ").unwrap_or(select);
    format!("SELECT {column} AS last_updated, {rest}")
}

fn stamp<T>(
    row: &AnyRow,
    from_row: fn(&AnyRow) -> Result<T, StoreError>,
) -> Result<Stamped<T>, StoreError> {
    let raw: String = row.try_get("last_updated")?;
    let last_updated =
        crate::domain::time::parse_timestamp("updated_at", &raw).map_err(super::corrupt)?;
    Ok(Stamped {
        record: from_row(row)?,
        last_updated,
    })
}

fn date_text(date: Option<NaiveDate>) -> Option<String> {
    date.map(|date| date.format("%Y-%m-%d").to_string())
}

/// `text%` with LIKE's wildcards escaped (`\`).
fn prefix_pattern(text: Option<&str>) -> Option<String> {
    text.map(|text| format!("{}%", escape_like(text)))
}

fn escape_like(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            other => vec![other],
        })
        .collect()
}

fn window_limit(window: Window) -> (i64, i64) {
    (i64::from(window.limit.min(1000)), i64::from(window.offset))
}

type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

impl Store {
    async fn one_stamped<T>(
        &self,
        query: AnyQuery<'_>,
        what: &'static str,
        from_row: fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Stamped<T>, StoreError> {
        let row = query
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what })?;
        stamp(&row, from_row)
    }

    async fn all_stamped<T>(
        &self,
        query: AnyQuery<'_>,
        from_row: fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Vec<Stamped<T>>, StoreError> {
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(|row| stamp(row, from_row)).collect()
    }

    pub async fn stamped_patient(&self, mrn: &Mrn) -> Result<Stamped<Patient>, StoreError> {
        let sql = format!(
            "SELECT updated_at AS last_updated, {PATIENT_COLUMNS} FROM patients WHERE mrn = $1"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mrn.as_str().to_owned());
        self.one_stamped(query, "patient", patient_from_row).await
    }

    pub async fn stamped_provider(&self, npi: &Npi) -> Result<Stamped<Provider>, StoreError> {
        let sql = format!(
            "SELECT updated_at AS last_updated, {PROVIDER_COLUMNS} FROM providers WHERE npi = $1"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(npi.as_str().to_owned());
        self.one_stamped(query, "provider", provider_from_row).await
    }

    pub async fn stamped_appointment(
        &self,
        id: &RecordId,
    ) -> Result<Stamped<Appointment>, StoreError> {
        let sql = format!(
            "{} WHERE a.appointment_id = $1",
            stamped_select(APPOINTMENT_SELECT, "a.updated_at")
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_str().to_owned());
        self.one_stamped(query, "appointment", appointment_from_row)
            .await
    }

    pub async fn stamped_medication(
        &self,
        id: &RecordId,
    ) -> Result<Stamped<Medication>, StoreError> {
        let sql = format!(
            "{} WHERE m.medication_id = $1",
            stamped_select(MEDICATION_SELECT, "m.updated_at")
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_str().to_owned());
        self.one_stamped(query, "medication", medication_from_row)
            .await
    }

    pub async fn stamped_allergy(&self, id: &RecordId) -> Result<Stamped<Allergy>, StoreError> {
        let sql = format!(
            "{} WHERE a.allergy_id = $1",
            stamped_select(ALLERGY_SELECT, "a.updated_at")
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_str().to_owned());
        self.one_stamped(query, "allergy", allergy_from_row).await
    }

    pub async fn stamped_vital_signs(
        &self,
        id: &RecordId,
    ) -> Result<Stamped<VitalSigns>, StoreError> {
        let sql = format!(
            "{} WHERE v.vital_id = $1",
            stamped_select(VITALS_SELECT, "v.created_at")
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_str().to_owned());
        self.one_stamped(query, "vital signs", vital_signs_from_row)
            .await
    }

    pub async fn stamped_lab_result(
        &self,
        id: &RecordId,
    ) -> Result<Stamped<LabResult>, StoreError> {
        let sql = format!(
            "{} WHERE l.order_id = $1",
            stamped_select(LAB_SELECT, "l.updated_at")
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_str().to_owned());
        self.one_stamped(query, "lab order", lab_result_from_row)
            .await
    }

    /// Patients matching `query`, one page and the total.
    pub async fn search_stamped_patients(
        &self,
        query: &PatientQuery,
        window: Window,
    ) -> Result<Counted<Patient>, StoreError> {
        const WHERE: &str = "WHERE ($1 IS NULL OR mrn = $1) \
             AND ($2 IS NULL OR lower(first_name) LIKE $2 ESCAPE '\\' OR lower(last_name) LIKE $2 ESCAPE '\\') \
             AND ($3 IS NULL OR lower(last_name) LIKE $3 ESCAPE '\\') \
             AND ($4 IS NULL OR lower(first_name) LIKE $4 ESCAPE '\\') \
             AND ($5 IS NULL OR dob >= $5) AND ($6 IS NULL OR dob < $6)";
        let bind = |sql: String| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(query.mrn.as_ref().map(|mrn| mrn.as_str().to_owned()))
                .bind(prefix_pattern(query.name_prefix.as_deref()))
                .bind(prefix_pattern(query.family_prefix.as_deref()))
                .bind(prefix_pattern(query.given_prefix.as_deref()))
                .bind(date_text(query.born_from))
                .bind(date_text(query.born_until))
        };
        let total = self
            .count(bind(format!(
                "SELECT COUNT(*) AS total FROM patients {WHERE}"
            )))
            .await?;
        let (limit, offset) = window_limit(window);
        let page = bind(format!(
            "SELECT updated_at AS last_updated, {PATIENT_COLUMNS} FROM patients {WHERE} \
             ORDER BY lower(last_name), lower(first_name), mrn LIMIT $7 OFFSET $8"
        ))
        .bind(limit)
        .bind(offset);
        let items = self.all_stamped(page, patient_from_row).await?;
        Ok(Counted { items, total })
    }

    /// Practitioners matching `query`, one page and the total.
    pub async fn search_stamped_providers(
        &self,
        query: &ProviderQuery,
        window: Window,
    ) -> Result<Counted<Provider>, StoreError> {
        const WHERE: &str = "WHERE ($1 IS NULL OR npi = $1) \
             AND ($2 IS NULL OR lower(name) LIKE $2 ESCAPE '\\' OR lower(name) LIKE $3 ESCAPE '\\')";
        let bind = |sql: String| {
            let word = query
                .name_prefix
                .as_deref()
                .map(|prefix| format!("% {}%", escape_like(prefix)));
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(query.npi.as_ref().map(|npi| npi.as_str().to_owned()))
                .bind(prefix_pattern(query.name_prefix.as_deref()))
                .bind(word)
        };
        let total = self
            .count(bind(format!(
                "SELECT COUNT(*) AS total FROM providers {WHERE}"
            )))
            .await?;
        let (limit, offset) = window_limit(window);
        let page = bind(format!(
            "SELECT updated_at AS last_updated, {PROVIDER_COLUMNS} FROM providers {WHERE} \
             ORDER BY lower(name), npi LIMIT $4 OFFSET $5"
        ))
        .bind(limit)
        .bind(offset);
        let items = self.all_stamped(page, provider_from_row).await?;
        Ok(Counted { items, total })
    }

    /// Appointments matching `query`, one page and the total.
    pub async fn search_stamped_appointments(
        &self,
        query: &AppointmentQuery,
        window: Window,
    ) -> Result<Counted<Appointment>, StoreError> {
        // The status list binds as $5, $6, …: statuses come from a closed enum, so the text is fixed.
        let statuses = (0..query.statuses.len())
            .map(|index| format!("${}", index + 5))
            .collect::<Vec<_>>()
            .join(", ");
        let status_filter = if statuses.is_empty() {
            String::new()
        } else {
            format!(" AND a.status IN ({statuses})")
        };
        let filter = format!(
            "WHERE ($1 IS NULL OR p.mrn = $1) AND ($2 IS NULL OR pr.npi = $2) \
             AND ($3 IS NULL OR a.appointment_date >= $3) AND ($4 IS NULL OR a.appointment_date < $4)\
             {status_filter}"
        );
        let bind = |sql: String| {
            let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(query.patient.as_ref().map(|mrn| mrn.as_str().to_owned()))
                .bind(query.provider.as_ref().map(|npi| npi.as_str().to_owned()))
                .bind(date_text(query.from))
                .bind(date_text(query.until));
            for status in &query.statuses {
                statement = statement.bind(status.as_str().to_owned());
            }
            statement
        };
        let total = self
            .count(bind(format!(
                "SELECT COUNT(*) AS total FROM appointments a JOIN patients p ON p.id = a.patient_id \
                 JOIN providers pr ON pr.id = a.provider_id {filter}"
            )))
            .await?;
        let next = query.statuses.len() + 5;
        let (limit, offset) = window_limit(window);
        let page = bind(format!(
            "{} {filter} ORDER BY a.appointment_date, a.slot_time, a.appointment_id \
             LIMIT ${next} OFFSET ${}",
            stamped_select(APPOINTMENT_SELECT, "a.updated_at"),
            next + 1
        ))
        .bind(limit)
        .bind(offset);
        let items = self.all_stamped(page, appointment_from_row).await?;
        Ok(Counted { items, total })
    }

    async fn count(&self, query: AnyQuery<'_>) -> Result<u64, StoreError> {
        let row = query.fetch_one(self.pool()).await?;
        let total: i64 = row.try_get("total")?;
        Ok(u64::try_from(total).unwrap_or_default())
    }

    /// A patient's records of one kind, oldest first, at most [`MAX_RECORDS_PER_KIND`] (more is
    /// `Invalid`). An unknown patient has none.
    async fn records_of<T>(
        &self,
        select: &str,
        column: &str,
        order: &str,
        mrn: &Mrn,
        from_row: fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Vec<Stamped<T>>, StoreError> {
        let sql = format!(
            "{} WHERE p.mrn = $1 ORDER BY {order} LIMIT $2",
            stamped_select(select, column)
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(mrn.as_str().to_owned())
            .bind(i64::from(MAX_RECORDS_PER_KIND) + 1);
        let records = self.all_stamped(query, from_row).await?;
        if records.len() > MAX_RECORDS_PER_KIND as usize {
            return Err(StoreError::Invalid {
                field: "patient",
                rule: format!(
                    "the patient has more than {MAX_RECORDS_PER_KIND} records of one kind; \
                     this server does not page beyond that"
                ),
            });
        }
        Ok(records)
    }

    pub async fn patient_medications(
        &self,
        mrn: &Mrn,
    ) -> Result<Vec<Stamped<Medication>>, StoreError> {
        let order = "m.prescribed_date, m.medication_id";
        self.records_of(
            MEDICATION_SELECT,
            "m.updated_at",
            order,
            mrn,
            medication_from_row,
        )
        .await
    }

    pub async fn patient_allergies(&self, mrn: &Mrn) -> Result<Vec<Stamped<Allergy>>, StoreError> {
        self.records_of(
            ALLERGY_SELECT,
            "a.updated_at",
            "a.id",
            mrn,
            allergy_from_row,
        )
        .await
    }

    pub async fn patient_vital_signs(
        &self,
        mrn: &Mrn,
    ) -> Result<Vec<Stamped<VitalSigns>>, StoreError> {
        let order = "v.recorded_date, v.id";
        self.records_of(
            VITALS_SELECT,
            "v.created_at",
            order,
            mrn,
            vital_signs_from_row,
        )
        .await
    }

    pub async fn patient_lab_results(
        &self,
        mrn: &Mrn,
    ) -> Result<Vec<Stamped<LabResult>>, StoreError> {
        let order = "l.ordered_date, l.id";
        self.records_of(LAB_SELECT, "l.updated_at", order, mrn, lab_result_from_row)
            .await
    }

    pub async fn patient_appointments(
        &self,
        mrn: &Mrn,
    ) -> Result<Vec<Stamped<Appointment>>, StoreError> {
        let order = "a.appointment_date, a.slot_time, a.appointment_id";
        self.records_of(
            APPOINTMENT_SELECT,
            "a.updated_at",
            order,
            mrn,
            appointment_from_row,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_input_are_escaped() {
        assert_eq!(prefix_pattern(Some("o_b%")), Some("o\\_b\\%%".to_owned()));
        assert_eq!(
            stamped_select("SELECT a.x FROM t a", "a.updated_at"),
            "SELECT a.updated_at AS last_updated, a.x FROM t a"
        );
    }
}
