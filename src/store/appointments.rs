//! Appointments: per-patient lists, booking (one active booking per provider slot, enforced by the
//! partial unique index `appointments_active_slot`) and cancellation.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::bulk::AnyQuery;
use super::patients::patient_row_id;
use super::tx::Tx;
use super::{Store, StoreError, fetch_by_public_id, now_text, parsed, patient_records};
use crate::domain::clinical::{Appointment, AppointmentStatus};
use crate::domain::ids::{Mrn, Npi, RecordId};
use crate::domain::time::{Date, TimeOfDay};

/// Filters of a patient's appointment list; `limit` is clamped to 1..=1000.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppointmentFilter {
    pub status: Option<AppointmentStatus>,
    /// Only appointments on or after this date.
    pub from_date: Option<Date>,
    pub provider_npi: Option<Npi>,
    pub limit: u32,
}

pub(crate) const APPOINTMENT_SELECT: &str = "SELECT a.appointment_id, p.mrn AS patient_mrn, \
     pr.npi AS provider_npi, pr.name AS provider_name, a.appointment_date, a.appointment_time, \
     a.duration_minutes, a.appointment_type, a.department, a.location, a.status, a.reason, a.notes \
     FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN providers pr ON pr.id = a.provider_id";

/// The `status IN (…)` list of slot-holding statuses, as in the index definition.
const HOLDING_SLOT_SQL: &str = "('scheduled', 'confirmed', 'checked_in')";

impl Store {
    /// A patient's appointments ordered by date and slot; `NotFound` when the patient does not exist.
    pub async fn appointments(
        &self,
        mrn: &Mrn,
        filter: &AppointmentFilter,
    ) -> Result<Vec<Appointment>, StoreError> {
        let sql = format!(
            "{APPOINTMENT_SELECT} WHERE a.patient_id = $1 AND ($2 IS NULL OR a.status = $2) \
             AND ($3 IS NULL OR a.appointment_date >= $3) AND ($4 IS NULL OR pr.npi = $4) \
             ORDER BY a.appointment_date, a.slot_time, a.appointment_id LIMIT $5"
        );
        let bind = |q: AnyQuery<'static>| {
            q.bind(filter.status.map(|status| status.as_str().to_owned()))
                .bind(filter.from_date.map(|date| date.to_string()))
                .bind(
                    filter
                        .provider_npi
                        .as_ref()
                        .map(|npi| npi.as_str().to_owned()),
                )
                .bind(i64::from(filter.limit.clamp(1, 1000)))
        };
        patient_records(self, mrn, sql, bind, appointment_from_row).await
    }

    pub async fn appointment(&self, appointment_id: &RecordId) -> Result<Appointment, StoreError> {
        fetch_appointment(self.pool(), appointment_id).await
    }

    /// Books an appointment (see [`book_appointment`]).
    pub async fn book_appointment(
        &self,
        appointment: &Appointment,
    ) -> Result<Appointment, StoreError> {
        let mut conn = self.pool().acquire().await?;
        book_appointment(&mut Tx::new(&mut conn), appointment).await
    }

    /// Moves an appointment to another status (see [`set_appointment_status`]).
    pub async fn set_appointment_status(
        &self,
        appointment_id: &RecordId,
        status: AppointmentStatus,
    ) -> Result<Appointment, StoreError> {
        let mut conn = self.pool().acquire().await?;
        set_appointment_status(&mut Tx::new(&mut conn), appointment_id, status).await
    }

    /// Cancels an appointment (see [`cancel_appointment`]).
    pub async fn cancel_appointment(
        &self,
        appointment_id: &RecordId,
        reason: Option<&str>,
    ) -> Result<Appointment, StoreError> {
        let mut conn = self.pool().acquire().await?;
        cancel_appointment(&mut Tx::new(&mut conn), appointment_id, reason).await
    }
}

/// Books an appointment. The slot is the normalised `time` (`10:00 AM` → `10:00`); the written time
/// is stored as given. `NotFound` for an unknown patient or provider; a slot already held by an active
/// booking of the provider is `Conflict { constraint: "appointments_active_slot" }` (decided by the
/// database's unique index, so concurrent bookings cannot both win).
pub async fn book_appointment(
    tx: &mut Tx<'_>,
    appointment: &Appointment,
) -> Result<Appointment, StoreError> {
    let conn = tx.conn();
    let time = &appointment.time;
    let now = now_text();
    let result = sqlx::query(
        "INSERT INTO appointments (appointment_id, patient_id, provider_id, appointment_date, \
         appointment_time, slot_time, duration_minutes, appointment_type, department, location, status, \
         reason, notes, created_at, updated_at) \
         SELECT $1, p.id, pr.id, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14 \
         FROM patients p, providers pr WHERE p.mrn = $2 AND pr.npi = $3",
    )
    .bind(appointment.appointment_id.as_str())
    .bind(appointment.patient_mrn.as_str())
    .bind(appointment.provider_npi.as_str())
    .bind(appointment.date.to_string())
    .bind(time.written())
    .bind(time.slot_text())
    .bind(appointment.duration_minutes)
    .bind(&appointment.appointment_type)
    .bind(&appointment.department)
    .bind(&appointment.location)
    .bind(appointment.status.as_str())
    .bind(&appointment.reason)
    .bind(&appointment.notes)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 0 {
        patient_row_id(&mut *conn, &appointment.patient_mrn).await?;
        return Err(StoreError::NotFound { what: "provider" });
    }
    fetch_appointment(&mut *conn, &appointment.appointment_id).await
}

/// Cancels an appointment that holds its slot (scheduled, confirmed or checked in), freeing the slot.
/// `reason`, when given, is kept in the notes as `Cancelled: <reason>`. `NotFound` for an unknown id;
/// `Conflict { constraint: "appointment_status" }` when it is already completed, cancelled or a no-show.
pub async fn cancel_appointment(
    tx: &mut Tx<'_>,
    appointment_id: &RecordId,
    reason: Option<&str>,
) -> Result<Appointment, StoreError> {
    let conn = tx.conn();
    let note = reason
        .map(str::trim)
        .filter(|reason| !reason.is_empty())
        .map(|reason| format!("Cancelled: {reason}"));
    let sql = format!(
        "UPDATE appointments SET status = 'cancelled', notes = COALESCE($2, notes), updated_at = $3 \
         WHERE appointment_id = $1 AND status IN {HOLDING_SLOT_SQL}"
    );
    let result = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(appointment_id.as_str())
        .bind(note)
        .bind(now_text())
        .execute(&mut *conn)
        .await?;
    let appointment = fetch_appointment(&mut *conn, appointment_id).await?;
    if result.rows_affected() == 0 {
        return Err(StoreError::Conflict {
            constraint: "appointment_status".to_owned(),
        });
    }
    Ok(appointment)
}

/// Sets an appointment's status (confirm, check in, complete, no-show…). `NotFound` for an unknown id;
/// moving it back into a slot-holding status while another booking holds the slot is
/// `Conflict { constraint: "appointments_active_slot" }`.
pub async fn set_appointment_status(
    tx: &mut Tx<'_>,
    appointment_id: &RecordId,
    status: AppointmentStatus,
) -> Result<Appointment, StoreError> {
    let conn = tx.conn();
    let result = sqlx::query(
        "UPDATE appointments SET status = $2, updated_at = $3 WHERE appointment_id = $1",
    )
    .bind(appointment_id.as_str())
    .bind(status.as_str())
    .bind(now_text())
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "appointment",
        });
    }
    fetch_appointment(&mut *conn, appointment_id).await
}

pub(crate) async fn fetch_appointment<'c, E>(
    executor: E,
    appointment_id: &RecordId,
) -> Result<Appointment, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    fetch_by_public_id(
        executor,
        APPOINTMENT_SELECT,
        "a.appointment_id",
        appointment_id.as_str(),
        "appointment",
        appointment_from_row,
    )
    .await
}

pub(crate) fn appointment_from_row(row: &AnyRow) -> Result<Appointment, StoreError> {
    Ok(Appointment {
        appointment_id: parsed(row, "appointment_id", |id| {
            RecordId::parse("appointment_id", id)
        })?,
        patient_mrn: parsed(row, "patient_mrn", Mrn::parse)?,
        provider_npi: parsed(row, "provider_npi", Npi::parse)?,
        provider_name: row.try_get("provider_name")?,
        date: parsed(row, "appointment_date", |date| Date::parse("date", date))?,
        time: parsed(row, "appointment_time", TimeOfDay::parse)?,
        duration_minutes: row.try_get("duration_minutes")?,
        appointment_type: row.try_get("appointment_type")?,
        department: row.try_get("department")?,
        location: row.try_get("location")?,
        status: parsed(row, "status", AppointmentStatus::parse)?,
        reason: row.try_get("reason")?,
        notes: row.try_get("notes")?,
    })
}
