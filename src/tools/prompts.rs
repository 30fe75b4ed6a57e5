//! MCP prompts (`prompts/list`, `prompts/get`): clinical tasks with arguments — medication review,
//! pre-visit summary, lab trend, discharge checklist. `prompts/get` pulls the patient's data through the
//! same lifecycle as tools ([`super::request`]: identity, rate limit, the policy row of the prompt's
//! tool, one audit row) and returns the task with the data as compact Markdown; sections the caller's
//! scopes do not cover are named as withheld, never fetched.
//!
//! Arguments are parsed once here (`mrn` as [`Mrn`]); `mrn` completes through `completion/complete`.

use rmcp::model::{
    GetPromptResult, ListPromptsResult, Prompt, PromptArgument, PromptMessage, Role,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Map, Value};

use super::EhrServer;
use super::call::ToolCall;
use super::error::ToolError;
use super::markdown;
use super::request::ReadRequest;
use super::views;
use super::wire::{self, LabResultWire};
use crate::auth::{Tool, policy};
use crate::domain::ids::Mrn;

const ACTION: &str = "prompts/get";
/// Most lab orders a trend looks back over.
const TREND_ORDERS: u32 = 100;
/// Longest free-text prompt argument.
const MAX_TEXT_ARGUMENT: usize = 200;

/// The prompts, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClinicalPrompt {
    MedicationReview,
    PreVisitSummary,
    LabTrend,
    DischargeChecklist,
}

impl ClinicalPrompt {
    const ALL: &'static [Self] = &[
        Self::MedicationReview,
        Self::PreVisitSummary,
        Self::LabTrend,
        Self::DischargeChecklist,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::MedicationReview => "medication_review",
            Self::PreVisitSummary => "pre_visit_summary",
            Self::LabTrend => "lab_trend",
            Self::DischargeChecklist => "discharge_checklist",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|prompt| prompt.name() == name)
    }

    /// The tool whose policy row decides who may get this prompt.
    fn tool(self) -> Tool {
        match self {
            Self::MedicationReview => Tool::GetMedications,
            Self::LabTrend => Tool::GetLabResults,
            Self::PreVisitSummary | Self::DischargeChecklist => Tool::GetPatientSummary,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::MedicationReview => "Medication review",
            Self::PreVisitSummary => "Pre-visit summary",
            Self::LabTrend => "Lab trend",
            Self::DischargeChecklist => "Discharge checklist",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::MedicationReview => {
                "Review a patient's active medications against their allergies, latest vitals and recent \
                 labs: interactions, duplications, contraindications, dosing and monitoring."
            }
            Self::PreVisitSummary => {
                "Brief a clinician before a visit: the chart summary and what to address."
            }
            Self::LabTrend => {
                "The trend of a patient's lab results over time (optionally one test), with out-of-range \
                 values called out."
            }
            Self::DischargeChecklist => {
                "A discharge checklist: medication reconciliation, allergies, last vitals, pending labs and \
                 follow-up appointments."
            }
        }
    }

    fn arguments(self) -> Vec<PromptArgument> {
        let mrn = PromptArgument::new("mrn")
            .with_title("Patient MRN")
            .with_description("The patient's medical record number, e.g. MRN001")
            .with_required(true);
        match self {
            Self::MedicationReview | Self::DischargeChecklist => vec![mrn],
            Self::PreVisitSummary => vec![
                mrn,
                PromptArgument::new("reason")
                    .with_title("Visit reason")
                    .with_description(
                        "Why the patient is coming in (optional, up to 200 characters)",
                    )
                    .with_required(false),
            ],
            Self::LabTrend => vec![
                mrn,
                PromptArgument::new("test_name")
                    .with_title("Test name")
                    .with_description(
                        "Only orders whose test name contains this text, e.g. \"A1C\" (optional)",
                    )
                    .with_required(false),
            ],
        }
    }

    fn definition(self) -> Prompt {
        Prompt::new(
            self.name(),
            Some(self.description()),
            Some(self.arguments()),
        )
        .with_title(self.title())
    }
}

/// The parsed arguments of a `prompts/get`.
struct PromptArgs {
    mrn: Mrn,
    /// `reason` or `test_name`, trimmed.
    text: Option<String>,
}

fn parse_arguments(
    prompt: ClinicalPrompt,
    arguments: Option<&Map<String, Value>>,
) -> Result<PromptArgs, ErrorData> {
    let invalid = |message: String| ErrorData::invalid_params(message, None);
    let text_of = |name: &str| -> Result<Option<String>, ErrorData> {
        match arguments.and_then(|a| a.get(name)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => {
                crate::domain::text::Text::<MAX_TEXT_ARGUMENT>::parse(name, text)
                    .map(|text| Some(text.into_string()))
                    .map_err(|error| invalid(error.to_string()))
            }
            Some(_) => Err(invalid(format!("invalid {name}: expected a string"))),
        }
    };
    let mrn = text_of("mrn")?
        .ok_or_else(|| invalid(format!("{} needs the argument `mrn`", prompt.name())))?;
    let mrn = Mrn::parse(&mrn).map_err(|error| invalid(error.to_string()))?;
    let text = match prompt {
        ClinicalPrompt::PreVisitSummary => text_of("reason")?,
        ClinicalPrompt::LabTrend => text_of("test_name")?,
        _ => None,
    };
    if text.as_deref().is_some_and(|text| {
        text.chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    }) {
        return Err(invalid(
            "invalid argument: contains a control character".to_owned(),
        ));
    }
    Ok(PromptArgs { mrn, text })
}

impl EhrServer {
    /// `prompts/list`: the prompts a known caller may get (all before it is known).
    pub(crate) async fn list_prompts_for(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> ListPromptsResult {
        let caller = self.known_caller(context).await;
        let prompts = ClinicalPrompt::ALL
            .iter()
            .filter(|prompt| {
                caller
                    .as_ref()
                    .is_none_or(|caller| policy::may_call(caller, prompt.tool()))
            })
            .map(|prompt| prompt.definition())
            .collect();
        ListPromptsResult::with_all_items(prompts)
    }

    /// `prompts/get`.
    pub(crate) async fn get_prompt_named(
        &self,
        name: &str,
        arguments: Option<&Map<String, Value>>,
        context: &RequestContext<RoleServer>,
    ) -> Result<GetPromptResult, ErrorData> {
        let prompt = ClinicalPrompt::from_name(name).ok_or_else(|| {
            ErrorData::invalid_params(
                "unknown prompt: ehr-mcp offers medication_review, pre_visit_summary, lab_trend and \
                 discharge_checklist (prompts/list)",
                None,
            )
        })?;
        let args = parse_arguments(prompt, arguments)?;
        let request = ReadRequest {
            action: ACTION,
            detail: prompt.name().to_owned(),
            tool: prompt.tool(),
            patient: Some(args.mrn.clone()),
        };
        let budget = self.services().result_budget;
        let text = self
            .serve_read(request, context, async |call| {
                let text = prompt_text(call, prompt, &args).await?;
                Ok(views::fit_text(
                    budget,
                    text,
                    "read the resources or call the tools for the rest",
                ))
            })
            .await?;
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                .with_description(prompt.description()),
        )
    }
}

async fn prompt_text(
    call: &ToolCall<'_>,
    prompt: ClinicalPrompt,
    args: &PromptArgs,
) -> Result<String, ToolError> {
    let mrn = &args.mrn;
    if prompt == ClinicalPrompt::LabTrend {
        return lab_trend(call, mrn, args.text.as_deref()).await;
    }
    let summary = super::summary::summary_records(call, mrn).await?.to_wire();
    let header = match &summary.patient {
        Some(patient) => format!("{} ({mrn})", patient.name),
        None => format!("patient {mrn}"),
    };
    let withheld = if summary.withheld.is_empty() {
        String::new()
    } else {
        format!(
            "\n_Withheld (not covered by this client's scopes): {}._\n",
            summary.withheld.join(", ")
        )
    };
    let text = match prompt {
        ClinicalPrompt::PreVisitSummary => {
            let reason = args
                .text
                .as_deref()
                .map(|reason| format!(" The visit reason given: \"{reason}\"."))
                .unwrap_or_default();
            format!(
                "Prepare a pre-visit brief for {header}.{reason} In at most 10 bullet points: the active \
                 problems the record suggests, medications and allergies to confirm, abnormal or overdue \
                 results, and what to address in this visit. Cite record ids in brackets. Use only the \
                 record below; say what is missing.\n\n{}",
                markdown::summary(&summary)
            )
        }
        ClinicalPrompt::MedicationReview => {
            let data = sections(&summary, false);
            format!(
                "Review the medications of {header}. For each active medication check: interactions with \
                 the others, duplicate therapy, conflicts with the recorded allergies, dosing against the \
                 latest vitals and recent labs (renal and hepatic function, potassium, glucose), and the \
                 monitoring it needs. List concerns by severity with the medication ids in brackets, then \
                 medications with no concern. Do not change any prescription; recommend.\n\n{data}{withheld}"
            )
        }
        ClinicalPrompt::DischargeChecklist => {
            let data = sections(&summary, true);
            format!(
                "Write a discharge checklist for {header} as Markdown checkboxes: medication \
                 reconciliation (continue, stop, new — by id), allergy list confirmed, last vitals within \
                 range, labs still pending or abnormal to follow up, follow-up appointments booked (or to \
                 book, with which specialty), and patient education points. Mark items the record below \
                 cannot confirm as needing review.\n\n{data}{withheld}"
            )
        }
        ClinicalPrompt::LabTrend => String::new(),
    };
    Ok(text)
}

/// The clinical sections of a summary the caller may see, as Markdown (appointments when asked).
fn sections(summary: &super::summary::PatientSummaryResult, appointments: bool) -> String {
    let mut data = String::new();
    if let Some(medications) = &summary.active_medications {
        data.push_str(&markdown::medication_section(
            "Active medications",
            medications,
        ));
    }
    if let Some(allergies) = &summary.allergies {
        data.push_str(&markdown::allergy_section(allergies));
    }
    if let Some(vitals) = &summary.latest_vital_signs {
        data.push_str(&markdown::vitals_section(vitals.as_ref()));
    }
    if let Some(labs) = &summary.recent_lab_results {
        data.push_str(&markdown::lab_section("Recent lab results", labs));
    }
    if let (true, Some(upcoming)) = (appointments, &summary.upcoming_appointments) {
        data.push_str(&markdown::appointment_section(upcoming));
    }
    data
}

/// The lab-trend prompt: every component of the matching orders, oldest first, per component.
async fn lab_trend(
    call: &ToolCall<'_>,
    mrn: &Mrn,
    test_name: Option<&str>,
) -> Result<String, ToolError> {
    let labs = call
        .store()
        .lab_results(mrn, None, TREND_ORDERS)
        .await
        .map_err(|error| call.store_error(error))?;
    let wanted = test_name.map(str::to_lowercase);
    let mut labs: Vec<LabResultWire> = wire::all::<_, LabResultWire>(&labs)
        .into_iter()
        .filter(|lab| {
            wanted
                .as_deref()
                .is_none_or(|wanted| lab.test_name.to_lowercase().contains(wanted))
        })
        .collect();
    labs.reverse();
    let scope = test_name
        .map(|name| format!(" for tests matching \"{name}\""))
        .unwrap_or_default();
    let mut components: Vec<(String, Vec<String>)> = Vec::new();
    for lab in &labs {
        let date = lab
            .resulted_date
            .as_deref()
            .or(lab.collected_date.as_deref())
            .or(lab.ordered_date.as_deref())
            .unwrap_or("undated");
        for component in &lab.results {
            let flag = component
                .flag
                .as_deref()
                .filter(|f| !f.trim().is_empty() && !f.eq_ignore_ascii_case("normal"))
                .map(|f| format!(" **{f}**"))
                .unwrap_or_default();
            let point = format!(
                "{date}: {} {}{flag}",
                component.value,
                component.unit.as_deref().unwrap_or("")
            );
            let name = format!(
                "{} — {}{}",
                lab.test_name,
                component.component,
                component
                    .reference
                    .as_deref()
                    .map(|r| format!(" (ref {r})"))
                    .unwrap_or_default()
            );
            match components.iter_mut().find(|(known, _)| *known == name) {
                Some((_, points)) => points.push(point),
                None => components.push((name, vec![point])),
            }
        }
    }
    let mut data = format!("## Lab results of {mrn}{scope}, oldest first\n");
    if components.is_empty() {
        data.push_str("- no resulted components recorded\n");
    }
    for (name, points) in &components {
        data.push_str(&format!("- {name}: {}\n", points.join(" → ")));
    }
    Ok(format!(
        "Describe the trend of the lab results of patient {mrn}{scope}: for each component, whether it is \
         improving, stable or worsening, the latest value against its reference range, and the values \
         flagged abnormal. Suggest follow-up testing only where the trend calls for it. Use only the data \
         below.\n\n{data}"
    ))
}
