//! The FHIR search surface this server serves: the resource types, each type's search parameters (one
//! table, which the parser and the CapabilityStatement both read), and the parsing of a query into typed
//! criteria and a page. Pure: no I/O.
//!
//! Rules: an unknown or repeated parameter (except `date`, which may bound both ends) is refused, not
//! ignored; `string` parameters match case-insensitively at the start of a name part; `token` parameters
//! take `[system|]code` and a comma-separated list means "any of"; `reference` parameters take `id`,
//! `Type/id` or an absolute URL ending in `Type/id`; `date` parameters take an ISO date (`YYYY`,
//! `YYYY-MM`, `YYYY-MM-DD`, or a dateTime, compared by its date) with an optional prefix `eq`, `ge`,
//! `gt`, `le`, `lt`. Pages: `_count` 0..=100 (default 20; 0: the total only), `_offset` 0..=100000; `_total`
//! (`accurate`, `estimate`; fhirpy's `_totalMethod=count`) is accepted, totals are always exact.

use chrono::{Datelike, Months, NaiveDate};
use serde_json::Value;

use super::{MRN_SYSTEM, NPI_SYSTEM};
use crate::domain::clinical::{AppointmentStatus, MedicationStatus};
use crate::domain::ids::{Mrn, Npi, RecordId};

/// Default page size.
pub const DEFAULT_COUNT: u32 = 20;
/// Largest page.
pub const MAX_COUNT: u32 = 100;
/// Deepest page start.
pub const MAX_OFFSET: u32 = 100_000;

/// A resource type the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    Patient,
    Coverage,
    Practitioner,
    Appointment,
    MedicationRequest,
    AllergyIntolerance,
    Observation,
    DiagnosticReport,
    /// An audit row (admins only).
    AuditEvent,
}

/// One search parameter: its name, FHIR type and what it matches.
#[derive(Debug, Clone, Copy)]
pub struct SearchParam {
    pub name: &'static str,
    pub kind: &'static str,
    pub documentation: &'static str,
}

const fn param(name: &'static str, kind: &'static str, documentation: &'static str) -> SearchParam {
    SearchParam {
        name,
        kind,
        documentation,
    }
}

const PATIENT_REF: SearchParam = param("patient", "reference", "the patient (MRN)");

impl ResourceType {
    pub const ALL: [ResourceType; 9] = [
        Self::Patient,
        Self::Coverage,
        Self::Practitioner,
        Self::Appointment,
        Self::MedicationRequest,
        Self::AllergyIntolerance,
        Self::Observation,
        Self::DiagnosticReport,
        Self::AuditEvent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "Patient",
            Self::Coverage => "Coverage",
            Self::Practitioner => "Practitioner",
            Self::Appointment => "Appointment",
            Self::MedicationRequest => "MedicationRequest",
            Self::AllergyIntolerance => "AllergyIntolerance",
            Self::Observation => "Observation",
            Self::DiagnosticReport => "DiagnosticReport",
            Self::AuditEvent => "AuditEvent",
        }
    }

    /// The type with exactly this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The search parameters of this type (empty: read only).
    pub fn search_params(self) -> &'static [SearchParam] {
        match self {
            Self::Patient => PATIENT_PARAMS,
            Self::Practitioner => PRACTITIONER_PARAMS,
            Self::Observation => OBSERVATION_PARAMS,
            Self::DiagnosticReport | Self::AllergyIntolerance => &[PATIENT_REF],
            Self::MedicationRequest => MEDICATION_PARAMS,
            Self::Appointment => APPOINTMENT_PARAMS,
            Self::AuditEvent => AUDIT_EVENT_PARAMS,
            Self::Coverage => &[],
        }
    }
}

const PATIENT_PARAMS: &[SearchParam] = &[
    param(
        "identifier",
        "token",
        "the MRN, as `value` or `urn:ehr-mcp:mrn|value`",
    ),
    param("name", "string", "start of the given or family name"),
    param("family", "string", "start of the family name"),
    param("given", "string", "start of the given name"),
    param("birthdate", "date", "date of birth"),
];
const PRACTITIONER_PARAMS: &[SearchParam] = &[
    param(
        "identifier",
        "token",
        "the NPI, as `value` or `http://hl7.org/fhir/sid/us-npi|value`",
    ),
    param("name", "string", "start of any word of the name"),
];
const OBSERVATION_PARAMS: &[SearchParam] = &[
    PATIENT_REF,
    param("category", "token", "`vital-signs` or `laboratory`"),
    param(
        "code",
        "token",
        "a LOINC code (`http://loinc.org|8867-4`), or a lab component's name",
    ),
    param("date", "date", "effective date"),
];
const MEDICATION_PARAMS: &[SearchParam] = &[
    PATIENT_REF,
    param("status", "token", "active | on-hold | completed | stopped"),
];
const APPOINTMENT_PARAMS: &[SearchParam] = &[
    PATIENT_REF,
    param("practitioner", "reference", "the practitioner (NPI)"),
    param("date", "date", "appointment date"),
    param(
        "status",
        "token",
        "booked | checked-in | fulfilled | cancelled | noshow",
    ),
];

const AUDIT_EVENT_PARAMS: &[SearchParam] = &[
    param(
        "patient",
        "reference",
        "the patient (MRN) the audited call concerned",
    ),
    param(
        "date",
        "date",
        "when the call was recorded (`recorded`, UTC)",
    ),
    param("agent", "token", "the client id of the caller"),
    param(
        "subtype",
        "token",
        "the tool (or event) name, e.g. `get_patient`, `fhir_read`, `token.issue`",
    ),
    param(
        "outcome",
        "token",
        "0 success, 4 denied, 8 failed (comma-separated: any of)",
    ),
];

/// A search or read that cannot be served as asked: the parameter and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SearchError {
    /// `not-supported` (unknown type or parameter) or `invalid` (a bad value): the OperationOutcome code.
    pub code: &'static str,
    pub message: String,
}

impl SearchError {
    fn invalid(name: &str, rule: impl std::fmt::Display) -> Self {
        Self {
            code: "invalid",
            message: format!("invalid {name}: {rule}"),
        }
    }

    fn not_supported(message: String) -> Self {
        Self {
            code: "not-supported",
            message,
        }
    }
}

/// A half-open day range `[from, until)`; both ends open when unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DateRange {
    pub from: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
}

impl DateRange {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|from| date >= from) && self.until.is_none_or(|until| date < until)
    }

    pub fn is_unbounded(&self) -> bool {
        self.from.is_none() && self.until.is_none()
    }

    /// Narrows the range by one `date` parameter value (`ge2024-01-01`, `2024-03`, `lt2025`).
    fn narrow(&mut self, name: &str, raw: &str) -> Result<(), SearchError> {
        let (prefix, value) = match raw.get(..2) {
            Some(prefix @ ("eq" | "ge" | "gt" | "le" | "lt")) => (prefix, &raw[2..]),
            Some("ne" | "sa" | "eb" | "ap") => {
                return Err(SearchError::not_supported(format!(
                    "{name}: only the prefixes eq, ge, gt, le and lt are supported"
                )));
            }
            _ => ("eq", raw),
        };
        let (start, end) = date_span(value).ok_or_else(|| {
            SearchError::invalid(name, "expected YYYY, YYYY-MM, YYYY-MM-DD or a dateTime")
        })?;
        let (from, until) = match prefix {
            "ge" => (Some(start), None),
            "gt" => (Some(end), None),
            "le" => (None, Some(end)),
            "lt" => (None, Some(start)),
            _ => (Some(start), Some(end)),
        };
        if let Some(from) = from {
            self.from = Some(self.from.map_or(from, |current| current.max(from)));
        }
        if let Some(until) = until {
            self.until = Some(self.until.map_or(until, |current| current.min(until)));
        }
        Ok(())
    }
}

/// The days a date value of a given precision covers, as `[start, end)`.
fn date_span(value: &str) -> Option<(NaiveDate, NaiveDate)> {
    let day = value.get(..10).unwrap_or(value);
    match day.len() {
        4 => {
            let year: i32 = day.parse().ok()?;
            let start = NaiveDate::from_ymd_opt(year, 1, 1)?;
            Some((start, start.with_year(year + 1)?))
        }
        7 => {
            let start = NaiveDate::parse_from_str(&format!("{day}-01"), "%Y-%m-%d").ok()?;
            Some((start, start.checked_add_months(Months::new(1))?))
        }
        10 => {
            let start = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
            let time = &value[10..];
            if !time.is_empty() && !time.starts_with('T') {
                return None;
            }
            Some((start, start.succ_opt()?))
        }
        _ => None,
    }
}

/// A token value: `code`, `system|code` or `|code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub system: Option<String>,
    pub code: String,
}

impl Token {
    fn parse(raw: &str) -> Token {
        match raw.split_once('|') {
            Some((system, code)) => Token {
                system: (!system.is_empty()).then(|| system.to_owned()),
                code: code.to_owned(),
            },
            None => Token {
                system: None,
                code: raw.to_owned(),
            },
        }
    }

    /// Whether a CodeableConcept matches: one of its codings has this code (and system, when given);
    /// a concept with text only matches a token without system equal to its text (case-insensitive).
    pub fn matches(&self, concept: &Value) -> bool {
        let codings = concept["coding"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let coded = codings.iter().any(|coding| {
            coding["code"].as_str() == Some(self.code.as_str())
                && self
                    .system
                    .as_deref()
                    .is_none_or(|system| coding["system"].as_str() == Some(system))
        });
        coded
            || (codings.is_empty()
                && self.system.is_none()
                && concept["text"]
                    .as_str()
                    .is_some_and(|text| text.eq_ignore_ascii_case(&self.code)))
    }
}

/// Observation categories we produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservationCategory {
    VitalSigns,
    Laboratory,
}

impl ObservationCategory {
    pub fn code(self) -> &'static str {
        match self {
            Self::VitalSigns => "vital-signs",
            Self::Laboratory => "laboratory",
        }
    }
}

/// A page of a search: `count` results from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub count: u32,
    pub offset: u32,
}

impl Default for Paging {
    fn default() -> Self {
        Self {
            count: DEFAULT_COUNT,
            offset: 0,
        }
    }
}

/// Patient search criteria; every given one must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientCriteria {
    pub mrn: Option<Mrn>,
    pub name: Option<String>,
    pub family: Option<String>,
    pub given: Option<String>,
    pub birthdate: DateRange,
}

/// A parsed search, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criteria {
    Patient(PatientCriteria),
    Practitioner {
        npi: Option<Npi>,
        name: Option<String>,
    },
    Observation {
        patient: Option<Mrn>,
        /// Empty: both categories.
        categories: Vec<ObservationCategory>,
        codes: Vec<Token>,
        date: DateRange,
    },
    DiagnosticReport {
        patient: Option<Mrn>,
    },
    MedicationRequest {
        patient: Option<Mrn>,
        /// Empty: any status.
        statuses: Vec<MedicationStatus>,
    },
    AllergyIntolerance {
        patient: Option<Mrn>,
    },
    Appointment {
        patient: Option<Mrn>,
        practitioner: Option<Npi>,
        date: DateRange,
        /// Empty: any status.
        statuses: Vec<AppointmentStatus>,
    },
    /// `Patient/{id}/$everything`.
    Everything {
        patient: Mrn,
    },
    /// Audit rows; every given criterion must hold. `patient` is a filter of the audit log: it does not
    /// open that patient's records (the same as `query_audit_log`'s `mrn`).
    AuditEvent {
        patient: Option<Mrn>,
        /// The client id.
        agent: Option<String>,
        /// The audited action (the tool name).
        subtype: Option<String>,
        /// Empty: any outcome. `success`, `denied`, `failed`.
        outcomes: Vec<&'static str>,
        date: DateRange,
    },
}

impl Criteria {
    /// The patient the search is confined to, when it names one.
    pub fn patient(&self) -> Option<&Mrn> {
        match self {
            Self::Patient(criteria) => criteria.mrn.as_ref(),
            Self::Practitioner { .. } => None,
            Self::Observation { patient, .. }
            | Self::DiagnosticReport { patient }
            | Self::MedicationRequest { patient, .. }
            | Self::AllergyIntolerance { patient }
            | Self::Appointment { patient, .. } => patient.as_ref(),
            Self::Everything { patient } => Some(patient),
            // A filter of the log, not the patient's record.
            Self::AuditEvent { .. } => None,
        }
    }

    /// Confines a search without a patient to `mrn` (a patient client's own compartment). `false` when
    /// the search names another patient.
    pub fn confine_to(&mut self, mrn: &Mrn) -> bool {
        let slot = match self {
            Self::Patient(criteria) => &mut criteria.mrn,
            Self::Practitioner { .. } => return true,
            Self::Observation { patient, .. }
            | Self::DiagnosticReport { patient }
            | Self::MedicationRequest { patient, .. }
            | Self::AllergyIntolerance { patient }
            | Self::Appointment { patient, .. } => patient,
            Self::Everything { patient } => return patient == mrn,
            // A patient's compartment has no audit log.
            Self::AuditEvent { .. } => return false,
        };
        match slot {
            Some(named) => named == mrn,
            None => {
                *slot = Some(mrn.clone());
                true
            }
        }
    }
}

/// A search: the type, its criteria, the page, and the query as given (for the `self`/`next` links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub resource_type: ResourceType,
    pub criteria: Criteria,
    pub paging: Paging,
    /// The search parameters without `_count`/`_offset`, in the order given.
    pub query: Vec<(String, String)>,
}

impl Search {
    /// The query string of the page starting at `offset` (for `self` and `next` links).
    pub fn page_query(&self, offset: u32) -> String {
        let mut parts: Vec<String> = self
            .query
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect();
        parts.push(format!("_count={}", self.paging.count));
        if offset > 0 {
            parts.push(format!("_offset={offset}"));
        }
        parts.join("&")
    }
}

/// Percent-encodes a query component (unreserved characters and `|`, `:`, `/`, `,` stay as they are).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'|'
            | b':'
            | b'/'
            | b','
            | b'$' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The logical id of a read: a record id shape (MRNs and NPIs are record ids too), else `invalid`.
pub fn parse_id(raw: &str) -> Result<RecordId, SearchError> {
    RecordId::parse("id", raw).map_err(|error| SearchError::invalid("id", error.rule))
}

/// Parses a search of `resource_type` from its query parameters (decoded name/value pairs).
pub fn parse_search(
    resource_type: ResourceType,
    params: &[(String, String)],
) -> Result<Search, SearchError> {
    let supported = resource_type.search_params();
    if supported.is_empty() {
        return Err(SearchError::not_supported(format!(
            "{} supports read only, not search",
            resource_type.as_str()
        )));
    }
    let mut paging = Paging::default();
    let mut query = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in params {
        match name.as_str() {
            "_count" => paging.count = number(name, value, 0, MAX_COUNT)?,
            "_offset" => paging.offset = number(name, value, 0, MAX_OFFSET)?,
            "_format" if is_json_format(value) => {}
            // Totals are always exact; a client asking for one (fhirpy's `count()`) gets it.
            "_total" | "_totalMethod" if is_total_method(value) => {}
            _ => {
                let Some(known) = supported.iter().find(|p| p.name == name) else {
                    let names: Vec<&str> = supported.iter().map(|p| p.name).collect();
                    return Err(SearchError::not_supported(format!(
                        "{} search supports the parameters {} (and _count, _offset, _total); not {}",
                        resource_type.as_str(),
                        names.join(", "),
                        printable(name)
                    )));
                };
                if seen.contains(&known.name) && known.kind != "date" {
                    return Err(SearchError::invalid(name, "given more than once"));
                }
                if value.trim().is_empty() {
                    return Err(SearchError::invalid(name, "empty value"));
                }
                if value.len() > 256 {
                    return Err(SearchError::invalid(name, "longer than 256 characters"));
                }
                seen.push(known.name);
                query.push((name.clone(), value.clone()));
            }
        }
    }
    let criteria = criteria(resource_type, &query)?;
    Ok(Search {
        resource_type,
        criteria,
        paging,
        query,
    })
}

/// `Patient/{id}/$everything` with its paging parameters.
pub fn parse_everything(id: &str, params: &[(String, String)]) -> Result<Search, SearchError> {
    let patient = Mrn::parse(id).map_err(|error| SearchError::invalid("id", error.rule))?;
    let mut paging = Paging::default();
    for (name, value) in params {
        match name.as_str() {
            "_count" => paging.count = number(name, value, 0, MAX_COUNT)?,
            "_offset" => paging.offset = number(name, value, 0, MAX_OFFSET)?,
            "_format" if is_json_format(value) => {}
            other => {
                return Err(SearchError::not_supported(format!(
                    "$everything supports _count and _offset; not {}",
                    printable(other)
                )));
            }
        }
    }
    Ok(Search {
        resource_type: ResourceType::Patient,
        criteria: Criteria::Everything { patient },
        paging,
        query: Vec::new(),
    })
}

fn is_total_method(value: &str) -> bool {
    matches!(value, "accurate" | "count" | "estimate")
}

fn is_json_format(value: &str) -> bool {
    matches!(value, "json" | "application/json" | "application/fhir+json")
}

fn number(name: &str, value: &str, min: u32, max: u32) -> Result<u32, SearchError> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| SearchError::invalid(name, format!("expected a whole number {min}-{max}")))
}

fn criteria(
    resource_type: ResourceType,
    query: &[(String, String)],
) -> Result<Criteria, SearchError> {
    let one = |name: &str| query.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim());
    let date = |name: &str| -> Result<DateRange, SearchError> {
        let mut range = DateRange::default();
        for (_, value) in query.iter().filter(|(n, _)| n == name) {
            range.narrow(name, value.trim())?;
        }
        Ok(range)
    };
    let patient = || one("patient").map(patient_reference).transpose();
    let text = |name: &str| one(name).map(|value| value.to_lowercase());
    Ok(match resource_type {
        ResourceType::Patient => Criteria::Patient(PatientCriteria {
            mrn: one("identifier")
                .map(|raw| identifier(raw, MRN_SYSTEM, |v| Mrn::parse(v).map_err(|e| e.rule)))
                .transpose()?,
            name: text("name"),
            family: text("family"),
            given: text("given"),
            birthdate: date("birthdate")?,
        }),
        ResourceType::Practitioner => Criteria::Practitioner {
            npi: one("identifier")
                .map(|raw| identifier(raw, NPI_SYSTEM, |v| Npi::parse(v).map_err(|e| e.rule)))
                .transpose()?,
            name: text("name"),
        },
        ResourceType::Observation => Criteria::Observation {
            patient: patient()?,
            categories: one("category")
                .map(categories)
                .transpose()?
                .unwrap_or_default(),
            codes: one("code")
                .map(|raw| raw.split(',').map(Token::parse).collect())
                .unwrap_or_default(),
            date: date("date")?,
        },
        ResourceType::DiagnosticReport => Criteria::DiagnosticReport {
            patient: patient()?,
        },
        ResourceType::AllergyIntolerance => Criteria::AllergyIntolerance {
            patient: patient()?,
        },
        ResourceType::MedicationRequest => Criteria::MedicationRequest {
            patient: patient()?,
            statuses: one("status")
                .map(medication_statuses)
                .transpose()?
                .unwrap_or_default(),
        },
        ResourceType::Appointment => {
            let practitioner = one("practitioner")
                .map(|raw| {
                    let id = reference_id(raw, "Practitioner");
                    Npi::parse(id).map_err(|error| SearchError::invalid("practitioner", error.rule))
                })
                .transpose()?;
            Criteria::Appointment {
                patient: patient()?,
                practitioner,
                date: date("date")?,
                statuses: one("status")
                    .map(appointment_statuses)
                    .transpose()?
                    .unwrap_or_default(),
            }
        }
        ResourceType::AuditEvent => Criteria::AuditEvent {
            patient: patient()?,
            agent: one("agent").map(|raw| Token::parse(raw).code),
            subtype: one("subtype").map(|raw| Token::parse(raw).code),
            outcomes: one("outcome")
                .map(audit_outcomes)
                .transpose()?
                .unwrap_or_default(),
            date: date("date")?,
        },
        ResourceType::Coverage => {
            return Err(SearchError::not_supported(
                "Coverage supports read only".to_owned(),
            ));
        }
    })
}

fn identifier<T>(
    raw: &str,
    our_system: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, SearchError> {
    let token = Token::parse(raw);
    if token
        .system
        .as_deref()
        .is_some_and(|system| system != our_system)
    {
        return Err(SearchError::invalid(
            "identifier",
            format!("the identifier system must be {our_system}"),
        ));
    }
    parse(&token.code).map_err(|rule| SearchError::invalid("identifier", rule))
}

/// `MRN001`, `Patient/MRN001` or `https://…/Patient/MRN001` as the MRN.
fn patient_reference(raw: &str) -> Result<Mrn, SearchError> {
    Mrn::parse(reference_id(raw, "Patient"))
        .map_err(|error| SearchError::invalid("patient", error.rule))
}

fn reference_id<'a>(raw: &'a str, resource_type: &str) -> &'a str {
    let marker = format!("{resource_type}/");
    match raw.rfind(&marker) {
        Some(at) if at == 0 || raw[..at].ends_with('/') => &raw[at + marker.len()..],
        _ => raw,
    }
}

fn categories(raw: &str) -> Result<Vec<ObservationCategory>, SearchError> {
    raw.split(',')
        .map(|item| {
            let token = Token::parse(item);
            let system_ok = token
                .system
                .as_deref()
                .is_none_or(|system| system == super::OBSERVATION_CATEGORY);
            match (system_ok, token.code.as_str()) {
                (true, "vital-signs") => Ok(ObservationCategory::VitalSigns),
                (true, "laboratory") => Ok(ObservationCategory::Laboratory),
                _ => Err(SearchError::invalid(
                    "category",
                    "expected vital-signs or laboratory",
                )),
            }
        })
        .collect()
}

fn medication_statuses(raw: &str) -> Result<Vec<MedicationStatus>, SearchError> {
    raw.split(',')
        .map(|code| match code.trim() {
            "active" => Ok(MedicationStatus::Active),
            "on-hold" => Ok(MedicationStatus::OnHold),
            "completed" => Ok(MedicationStatus::Completed),
            "stopped" => Ok(MedicationStatus::Discontinued),
            _ => Err(SearchError::invalid(
                "status",
                "expected active, on-hold, completed or stopped",
            )),
        })
        .collect()
}

fn appointment_statuses(raw: &str) -> Result<Vec<AppointmentStatus>, SearchError> {
    let mut statuses = Vec::new();
    for code in raw.split(',') {
        match code.trim() {
            "booked" => {
                statuses.extend([AppointmentStatus::Scheduled, AppointmentStatus::Confirmed])
            }
            "checked-in" => statuses.push(AppointmentStatus::CheckedIn),
            "fulfilled" => statuses.push(AppointmentStatus::Completed),
            "cancelled" => statuses.push(AppointmentStatus::Cancelled),
            "noshow" => statuses.push(AppointmentStatus::NoShow),
            _ => {
                return Err(SearchError::invalid(
                    "status",
                    "expected booked, checked-in, fulfilled, cancelled or noshow",
                ));
            }
        }
    }
    Ok(statuses)
}

/// AuditEvent outcome codes (0, 4, 8) as the audit log's outcomes.
fn audit_outcomes(raw: &str) -> Result<Vec<&'static str>, SearchError> {
    raw.split(',')
        .map(|code| match Token::parse(code.trim()).code.as_str() {
            "0" => Ok("success"),
            "4" => Ok("denied"),
            "8" => Ok("failed"),
            _ => Err(SearchError::invalid(
                "outcome",
                "expected 0 (success), 4 (denied) or 8 (failed)",
            )),
        })
        .collect()
}

/// The audit row number of an AuditEvent id (`audit-{seq}`).
pub fn audit_seq(id: &str) -> Option<i64> {
    id.strip_prefix("audit-")?
        .parse::<i64>()
        .ok()
        .filter(|seq| *seq > 0 && format!("audit-{seq}") == id)
}

/// A short, log-safe rendering of untrusted input for error messages.
fn printable(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    format!("'{cleaned}'")
}

/// The date a resource is searched by (`effectiveDateTime`, an Appointment's `start`), as a day.
pub fn resource_date(resource: &Value) -> Option<NaiveDate> {
    let text = resource["effectiveDateTime"]
        .as_str()
        .or_else(|| resource["start"].as_str())?;
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// Whether an Observation resource matches the categories, codes and date of a search.
pub fn observation_matches(
    resource: &Value,
    categories: &[ObservationCategory],
    codes: &[Token],
    date: &DateRange,
) -> bool {
    let category_ok = categories.is_empty()
        || resource["category"].as_array().is_some_and(|concepts| {
            concepts.iter().any(|concept| {
                categories.iter().any(|category| {
                    concept["coding"].as_array().is_some_and(|codings| {
                        codings
                            .iter()
                            .any(|coding| coding["code"].as_str() == Some(category.code()))
                    })
                })
            })
        });
    let code_ok = codes.is_empty() || codes.iter().any(|token| token.matches(&resource["code"]));
    let date_ok = date.is_unbounded() || resource_date(resource).is_some_and(|d| date.contains(d));
    category_ok && code_ok && date_ok
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn date_prefixes_narrow_a_half_open_range() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let search = parse_search(
            ResourceType::Observation,
            &pairs(&[
                ("patient", "MRN001"),
                ("date", "ge2024-03"),
                ("date", "lt2025"),
            ]),
        )
        .unwrap();
        let Criteria::Observation { date, .. } = search.criteria else {
            panic!()
        };
        assert_eq!(date.from, Some(day("2024-03-01")));
        assert_eq!(date.until, Some(day("2025-01-01")));
        let mut eq = DateRange::default();
        eq.narrow("date", "2024-02-29T10:00:00Z").unwrap();
        assert!(eq.contains(day("2024-02-29")) && !eq.contains(day("2024-03-01")));
        let mut le = DateRange::default();
        le.narrow("date", "le2024-12").unwrap();
        assert!(le.contains(day("2024-12-31")) && !le.contains(day("2025-01-01")));
        assert!(DateRange::default().narrow("date", "ne2024").is_err());
        assert!(DateRange::default().narrow("date", "2024-13").is_err());
    }

    #[test]
    fn references_identifiers_and_statuses_parse_to_domain_values() {
        let search = parse_search(
            ResourceType::Appointment,
            &pairs(&[
                ("patient", "https://ehr.example/fhir/r4/Patient/MRN001"),
                ("practitioner", "Practitioner/1234567890"),
                ("status", "booked,noshow"),
            ]),
        )
        .unwrap();
        let Criteria::Appointment {
            patient,
            practitioner,
            statuses,
            ..
        } = &search.criteria
        else {
            panic!()
        };
        assert_eq!(patient.as_ref().map(Mrn::as_str), Some("MRN001"));
        assert_eq!(practitioner.as_ref().map(Npi::as_str), Some("1234567890"));
        assert_eq!(statuses.len(), 3);
        let patient = parse_search(
            ResourceType::Patient,
            &pairs(&[("identifier", "urn:ehr-mcp:mrn|MRN002"), ("family", "Maj")]),
        )
        .unwrap();
        assert_eq!(patient.criteria.patient().map(Mrn::as_str), Some("MRN002"));
        let wrong_system = parse_search(
            ResourceType::Patient,
            &pairs(&[("identifier", "http://other|MRN002")]),
        );
        assert_eq!(wrong_system.unwrap_err().code, "invalid");
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_and_paging_is_bounded() {
        let unknown = parse_search(ResourceType::Patient, &pairs(&[("ssn", "1")])).unwrap_err();
        assert_eq!(unknown.code, "not-supported");
        assert!(
            unknown
                .message
                .contains("identifier, name, family, given, birthdate")
        );
        let twice = parse_search(
            ResourceType::Patient,
            &pairs(&[("name", "a"), ("name", "b")]),
        );
        assert!(twice.is_err());
        assert!(parse_search(ResourceType::Patient, &pairs(&[("_count", "101")])).is_err());
        assert!(parse_search(ResourceType::Patient, &pairs(&[("_count", "-1")])).is_err());
        let paged = parse_search(
            ResourceType::Patient,
            &pairs(&[("name", "jo hn"), ("_count", "5"), ("_offset", "10")]),
        )
        .unwrap();
        assert_eq!(
            paged.paging,
            Paging {
                count: 5,
                offset: 10
            }
        );
        assert_eq!(paged.page_query(15), "name=jo%20hn&_count=5&_offset=15");
        assert!(parse_search(ResourceType::Coverage, &[]).is_err());
    }

    #[test]
    fn a_patient_compartment_confines_searches() {
        let own = Mrn::parse("MRN001").unwrap();
        let mut open = parse_search(ResourceType::AllergyIntolerance, &[]).unwrap();
        assert!(open.criteria.confine_to(&own));
        assert_eq!(open.criteria.patient(), Some(&own));
        let mut other = parse_search(
            ResourceType::AllergyIntolerance,
            &pairs(&[("patient", "MRN002")]),
        )
        .unwrap();
        assert!(!other.criteria.confine_to(&own));
    }

    #[test]
    fn tokens_match_codings_or_text() {
        let concept =
            serde_json::json!({"coding": [{"system": "http://loinc.org", "code": "8867-4"}]});
        assert!(Token::parse("8867-4").matches(&concept));
        assert!(Token::parse("http://loinc.org|8867-4").matches(&concept));
        assert!(!Token::parse("http://snomed.info/sct|8867-4").matches(&concept));
        let text = serde_json::json!({"text": "WBC"});
        assert!(Token::parse("wbc").matches(&text));
    }
}
