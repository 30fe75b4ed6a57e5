//! Appointment tools: `get_appointments`, `schedule_appointment`, `cancel_appointment`.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EhrServer;
use super::args::{self, MRN_PATTERN, NPI_PATTERN, RECORD_ID_PATTERN, StatusFilter, ToolArgs};
use super::call::{ToolCall, run_tool};
use super::error::ToolError;
use super::record_change::{self, RecordChange};
use super::wire::{self, AppointmentWire, Success};
use crate::auth::Tool;
use crate::domain::clinical::{Appointment, AppointmentStatus};
use crate::domain::ids::{Mrn, Npi, RecordId, RecordKind};
use crate::domain::text::Text;
use crate::domain::text::field::{Label, Name, Reason};
use crate::domain::time::{Date, TimeOfDay};
use crate::store::appointments::AppointmentFilter;

/// What a booking gets when the caller does not say, as in the earlier system.
const DEFAULT_APPOINTMENT_TYPE: &str = "Office Visit";
const DEFAULT_LOCATION: &str = "Main Clinic";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetAppointmentsArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// Only appointments with this status; every status when omitted or "all".
    pub status: Option<StatusFilter<AppointmentStatus>>,
    /// Only appointments on or after this date (YYYY-MM-DD).
    pub from_date: Option<Date>,
    /// Only appointments with this provider (10-digit NPI).
    #[schemars(with = "Option<String>", regex(pattern = NPI_PATTERN))]
    pub provider_npi: Option<Npi>,
    /// Most appointments to return (1-500, default 100).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

impl ToolArgs for GetAppointmentsArgs {
    fn validate(&self) -> Result<(), ToolError> {
        args::in_range("limit", self.limit, 1, 500, "appointments")
    }

    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ScheduleAppointmentArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// The provider's 10-digit NPI (find one with search_providers).
    #[schemars(with = "String", regex(pattern = NPI_PATTERN))]
    pub provider_npi: Npi,
    /// Day of the appointment, YYYY-MM-DD, today or later.
    pub date: Date,
    /// Start time, 12-hour ("10:00 AM") or 24-hour ("14:30").
    pub time: TimeOfDay,
    /// Why the patient is coming.
    pub reason: Option<Reason>,
    /// Length in minutes (5-480, default 30).
    #[schemars(range(min = 5, max = 480))]
    pub duration_minutes: Option<i64>,
    /// For example "Follow-up", "New patient", "Annual physical" (default "Office Visit").
    pub appointment_type: Option<Name>,
    /// Where (default "Main Clinic").
    pub location: Option<Label>,
}

impl ToolArgs for ScheduleAppointmentArgs {
    fn validate(&self) -> Result<(), ToolError> {
        if self.date < Date::today() {
            return Err(ToolError::invalid("date", "must be today or later"));
        }
        args::in_range("duration_minutes", self.duration_minutes, 5, 480, "minutes")
    }

    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CancelAppointmentArgs {
    /// The patient the appointment belongs to.
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// The appointment's id (from get_appointments), e.g. APT001.
    #[schemars(with = "String", regex(pattern = RECORD_ID_PATTERN))]
    pub appointment_id: RecordId,
    /// Why it is cancelled (kept in the notes).
    pub reason: Option<Reason>,
}

impl ToolArgs for CancelAppointmentArgs {
    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AppointmentsResult {
    pub status: Success,
    pub mrn: String,
    pub count: usize,
    pub appointments: Vec<AppointmentWire>,
    /// True when more appointments match than `limit`; `message` says how to see them.
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AppointmentResult {
    pub status: Success,
    pub message: String,
    pub appointment: AppointmentWire,
}

#[tool_router(router = appointment_tools, vis = "pub(crate)")]
impl EhrServer {
    #[tool(
        title = "Get appointments",
        description = "List a patient's appointments (date, time, provider, type, location, status, reason), \
                       oldest first, optionally only one status, from a date, or with one provider.",
        input_schema = args::input_schema::<GetAppointmentsArgs>(),
        output_schema = args::output_schema::<AppointmentsResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_appointments(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::GetAppointments,
            context,
            arguments,
            get_appointments
        )
    }

    #[tool(
        title = "Schedule appointment",
        description = "Book an appointment for a patient with a provider on a date (YYYY-MM-DD, today or later) \
                       at a time (\"10:00 AM\", \"14:30\" or \"10am\"). A slot the provider already has booked is a \
                       conflict: pick another time.",
        input_schema = args::input_schema::<ScheduleAppointmentArgs>(),
        output_schema = args::output_schema::<AppointmentResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn schedule_appointment(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::ScheduleAppointment,
            context,
            arguments,
            schedule_appointment
        )
    }

    #[tool(
        title = "Cancel appointment",
        description = "Cancel a patient's scheduled, confirmed or checked-in appointment by its appointment_id, \
                       freeing the provider's slot. Completed, cancelled or no-show appointments cannot be cancelled.",
        input_schema = args::input_schema::<CancelAppointmentArgs>(),
        output_schema = args::output_schema::<AppointmentResult>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    async fn cancel_appointment(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::CancelAppointment,
            context,
            arguments,
            cancel_appointment
        )
    }
}

async fn get_appointments(
    call: &ToolCall<'_>,
    args: GetAppointmentsArgs,
) -> Result<AppointmentsResult, ToolError> {
    let limit = args.limit.unwrap_or(100);
    let filter = AppointmentFilter {
        status: StatusFilter::resolve(args.status, None),
        from_date: args.from_date,
        provider_npi: args.provider_npi,
        limit: limit + 1,
    };
    let appointments = call
        .store()
        .appointments(&args.mrn, &filter)
        .await
        .map_err(|e| call.store_error(e))?;
    let (appointments, truncated) = wire::truncate(appointments, limit);
    Ok(AppointmentsResult {
        status: Success::Success,
        mrn: args.mrn.to_string(),
        count: appointments.len(),
        appointments: wire::all(&appointments),
        truncated,
        message: truncated.then(|| wire::truncated_note("appointments", limit, 500)),
    })
}

async fn schedule_appointment(
    call: &ToolCall<'_>,
    args: ScheduleAppointmentArgs,
) -> Result<AppointmentResult, ToolError> {
    let provider = call
        .store()
        .provider(&args.provider_npi)
        .await
        .map_err(|e| call.store_error(e))?;
    let appointment = Appointment {
        appointment_id: RecordId::generate(RecordKind::Appointment),
        patient_mrn: args.mrn.clone(),
        provider_npi: provider.npi.clone(),
        provider_name: Some(provider.name.clone()),
        date: args.date,
        time: args.time,
        duration_minutes: args.duration_minutes.unwrap_or(30),
        // The earlier system's defaults for what the caller did not give.
        appointment_type: Some(
            args.appointment_type
                .map_or_else(|| DEFAULT_APPOINTMENT_TYPE.to_owned(), Text::into_string),
        ),
        department: provider.department.clone(),
        location: Some(
            args.location
                .map_or_else(|| DEFAULT_LOCATION.to_owned(), Text::into_string),
        ),
        status: AppointmentStatus::Scheduled,
        reason: Some(args.reason.map(Text::into_string).unwrap_or_default()),
        notes: None,
    };
    let detail = Some(format!("appointment_id={}", appointment.appointment_id));
    let booked = call
        .write(detail, move |mut tx| {
            Box::pin(async move {
                crate::store::appointments::book_appointment(&mut tx, &appointment).await
            })
        })
        .await?;
    Ok(AppointmentResult {
        status: Success::Success,
        message: format!(
            "appointment {} scheduled on {} at {}",
            booked.appointment_id, booked.date, booked.time
        ),
        appointment: AppointmentWire::from(&booked),
    })
}

async fn cancel_appointment(
    call: &ToolCall<'_>,
    args: CancelAppointmentArgs,
) -> Result<AppointmentResult, ToolError> {
    let RecordChange { id, reason, detail } = record_change::check(
        call,
        "appointment",
        "appointment_id",
        args.appointment_id,
        &args.mrn,
        args.reason,
        async |id| Ok(call.store().appointment(id).await?.patient_mrn),
    )
    .await?;
    let cancelled = call
        .write(detail, move |mut tx| {
            Box::pin(async move {
                crate::store::appointments::cancel_appointment(&mut tx, &id, reason.as_deref())
                    .await
            })
        })
        .await?;
    Ok(AppointmentResult {
        status: Success::Success,
        message: format!("appointment {} cancelled", cancelled.appointment_id),
        appointment: AppointmentWire::from(&cancelled),
    })
}
