//! Observations: vital signs per the FHIR vital-signs profile (one Observation per measurement, blood
//! pressure as the 85354-9 panel), laboratory results (one Observation per component) and the
//! DiagnosticReport of each lab order.

use chrono::NaiveDateTime;
use serde_json::{Value, json};

use super::{
    LOINC, OBSERVATION_CATEGORY, Resource, UCUM, coded, date_time, meta, prune, reference,
    text_concept, timestamp,
};
use crate::domain::clinical::{LabComponent, LabResult, LabStatus, VitalSigns};

/// One vital sign of the FHIR vital-signs profile.
struct VitalKind {
    suffix: &'static str,
    loinc: &'static str,
    display: &'static str,
    unit: &'static str,
    ucum: &'static str,
    profile: &'static str,
}

const fn vital(
    suffix: &'static str,
    loinc: &'static str,
    display: &'static str,
    unit: &'static str,
    ucum: &'static str,
    profile: &'static str,
) -> VitalKind {
    VitalKind {
        suffix,
        loinc,
        display,
        unit,
        ucum,
        profile,
    }
}

const HEART_RATE: VitalKind = vital(
    "hr",
    "8867-4",
    "Heart rate",
    "beats/minute",
    "/min",
    "heartrate",
);
const TEMPERATURE: VitalKind = vital(
    "temp",
    "8310-5",
    "Body temperature",
    "degF",
    "[degF]",
    "bodytemp",
);
const RESPIRATORY_RATE: VitalKind = vital(
    "rr",
    "9279-1",
    "Respiratory rate",
    "breaths/minute",
    "/min",
    "resprate",
);
const OXYGEN_SATURATION: VitalKind = vital(
    "spo2",
    "59408-5",
    "Oxygen saturation in Arterial blood by Pulse oximetry",
    "%",
    "%",
    "oxygensat",
);
const WEIGHT: VitalKind = vital(
    "wt",
    "29463-7",
    "Body weight",
    "lb",
    "[lb_av]",
    "bodyweight",
);
const HEIGHT: VitalKind = vital("ht", "8302-2", "Body height", "in", "[in_i]", "bodyheight");
const BMI: VitalKind = vital(
    "bmi",
    "39156-5",
    "Body mass index (BMI) [Ratio]",
    "kg/m2",
    "kg/m2",
    "bmi",
);

fn quantity(value: f64, kind: &VitalKind) -> Value {
    json!({ "value": value, "unit": kind.unit, "system": UCUM, "code": kind.ucum })
}

fn vital_category() -> Value {
    json!([coded(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")])
}

fn vital_base(
    vitals: &VitalSigns,
    last_updated: NaiveDateTime,
    suffix: &str,
    profile: &str,
    code: Value,
) -> serde_json::Map<String, Value> {
    let mut base = serde_json::Map::new();
    let fields = json!({
        "resourceType": "Observation",
        "id": format!("{}-{suffix}", vitals.vital_id.as_str()),
        "meta": meta(
            Some(&format!("http://hl7.org/fhir/StructureDefinition/{profile}")),
            last_updated,
        ),
        "status": "final",
        "category": vital_category(),
        "code": code,
        "subject": reference("Patient", vitals.patient_mrn.as_str()),
        "effectiveDateTime": date_time(&vitals.recorded_date),
        "performer": [vitals.recorded_by.as_deref().map(|name| json!({ "display": name }))],
        "note": [vitals.notes.as_deref().map(|text| json!({ "text": text }))],
    });
    if let Value::Object(fields) = fields {
        base = fields;
    }
    base
}

fn measurement(
    vitals: &VitalSigns,
    last_updated: NaiveDateTime,
    kind: &VitalKind,
    value: Option<f64>,
) -> Option<Resource> {
    let value = value?;
    let mut observation = vital_base(
        vitals,
        last_updated,
        kind.suffix,
        kind.profile,
        coded(LOINC, kind.loinc, kind.display),
    );
    observation.insert("valueQuantity".into(), quantity(value, kind));
    Some(prune(Value::Object(observation)))
}

fn blood_pressure(vitals: &VitalSigns, last_updated: NaiveDateTime) -> Option<Resource> {
    if vitals.systolic_bp.is_none() && vitals.diastolic_bp.is_none() {
        return None;
    }
    let component = |loinc: &str, display: &str, value: Option<i64>| {
        value.map(|value| {
            json!({
                "code": coded(LOINC, loinc, display),
                "valueQuantity": { "value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]" },
            })
        })
    };
    let mut observation = vital_base(
        vitals,
        last_updated,
        "bp",
        "bp",
        coded(
            LOINC,
            "85354-9",
            "Blood pressure panel with all children optional",
        ),
    );
    observation.insert(
        "component".into(),
        json!([
            component("8480-6", "Systolic blood pressure", vitals.systolic_bp),
            component("8462-4", "Diastolic blood pressure", vitals.diastolic_bp),
        ]),
    );
    Some(prune(Value::Object(observation)))
}

/// Every measurement of one vital-signs row as its own Observation (`{vital_id}-{bp|hr|temp|rr|spo2|wt|ht|bmi}`).
pub fn vital_sign_observations(vitals: &VitalSigns, last_updated: NaiveDateTime) -> Vec<Resource> {
    let as_f64 = |value: Option<i64>| value.map(|value| value as f64);
    let at = last_updated;
    [
        blood_pressure(vitals, at),
        measurement(vitals, at, &HEART_RATE, as_f64(vitals.heart_rate)),
        measurement(vitals, at, &TEMPERATURE, vitals.temperature),
        measurement(
            vitals,
            at,
            &RESPIRATORY_RATE,
            as_f64(vitals.respiratory_rate),
        ),
        measurement(
            vitals,
            at,
            &OXYGEN_SATURATION,
            as_f64(vitals.oxygen_saturation),
        ),
        measurement(vitals, at, &WEIGHT, vitals.weight),
        measurement(vitals, at, &HEIGHT, vitals.height),
        measurement(vitals, at, &BMI, vitals.bmi),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// FHIR status of an observation / report for our lab order status.
pub fn lab_status(status: LabStatus) -> (&'static str, &'static str) {
    match status {
        LabStatus::Ordered | LabStatus::Collected | LabStatus::InProgress => {
            ("registered", "registered")
        }
        LabStatus::Preliminary => ("preliminary", "preliminary"),
        LabStatus::Final => ("final", "final"),
        LabStatus::Corrected => ("corrected", "corrected"),
        LabStatus::Cancelled => ("cancelled", "cancelled"),
    }
}

/// The HL7 v3 ObservationInterpretation code for a flag (`normal`, `high`, `low`, `critical`, …).
pub fn interpretation(flag: &str) -> Option<Value> {
    let (code, display) = match flag.trim().to_ascii_lowercase().as_str() {
        "normal" | "n" => ("N", "Normal"),
        "high" | "h" => ("H", "High"),
        "low" | "l" => ("L", "Low"),
        "critical" | "critical_high" | "critical high" | "hh" => ("HH", "Critical high"),
        "critical_low" | "critical low" | "ll" => ("LL", "Critical low"),
        "abnormal" | "a" => ("A", "Abnormal"),
        "" => return None,
        _ => return Some(text_concept(flag)),
    };
    Some(coded(
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        code,
        display,
    ))
}

/// A reference range `low-high`, `<high`, `>low` (numbers), else its text.
pub fn reference_range(text: &str, unit: Option<&str>) -> Value {
    let bound = |number: &str| {
        number.trim().parse::<f64>().ok().map(|value| match unit {
            Some(unit) => json!({ "value": value, "unit": unit }),
            None => json!({ "value": value }),
        })
    };
    let text = text.trim();
    let (low, high) = if let Some(rest) = text.strip_prefix('<') {
        (None, bound(rest.trim_start_matches('=')))
    } else if let Some(rest) = text.strip_prefix('>') {
        (bound(rest.trim_start_matches('=')), None)
    } else if let Some((low, high)) = text.split_once('-').filter(|(low, _)| !low.is_empty()) {
        (bound(low), bound(high))
    } else {
        (None, None)
    };
    json!({ "low": low, "high": high, "text": text })
}

/// The id of a lab order's `index`-th component Observation (`{order_id}-{n}`, 1-based).
pub fn lab_observation_id(lab: &LabResult, index: usize) -> String {
    format!("{}-{}", lab.order_id.as_str(), index + 1)
}

fn lab_observation(
    lab: &LabResult,
    last_updated: NaiveDateTime,
    index: usize,
    component: &LabComponent,
) -> Resource {
    let unit = component
        .unit
        .as_deref()
        .filter(|unit| !unit.trim().is_empty());
    let value = match component.value.trim().parse::<f64>() {
        Ok(number) if number.is_finite() => {
            ("valueQuantity", json!({ "value": number, "unit": unit }))
        }
        _ => ("valueString", json!(component.value)),
    };
    let effective = lab
        .collected_date
        .as_deref()
        .or(lab.resulted_date.as_deref());
    let mut observation = json!({
        "resourceType": "Observation",
        "id": lab_observation_id(lab, index),
        "meta": meta(
            Some("http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"),
            last_updated,
        ),
        "status": lab_status(lab.status).0,
        "category": [coded(OBSERVATION_CATEGORY, "laboratory", "Laboratory")],
        "code": text_concept(&component.component),
        "subject": reference("Patient", lab.patient_mrn.as_str()),
        "effectiveDateTime": effective.and_then(date_time),
        "issued": lab.resulted_date.as_deref().and_then(timestamp).map(super::instant),
        "interpretation": [component.flag.as_deref().and_then(interpretation)],
        "referenceRange": [component.reference.as_deref().map(|range| reference_range(range, unit))],
    });
    observation[value.0] = value.1;
    prune(observation)
}

/// One Observation per component of a lab order (an order without parsable results has none).
pub fn lab_observations(lab: &LabResult, last_updated: NaiveDateTime) -> Vec<Resource> {
    lab.components()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, component)| lab_observation(lab, last_updated, index, component))
        .collect()
}

/// US Core DiagnosticReport for a lab order (id = order id), its results referencing [`lab_observations`].
pub fn diagnostic_report(lab: &LabResult, last_updated: NaiveDateTime) -> Resource {
    let results: Vec<Value> = (0..lab.components().map(|c| c.len()).unwrap_or(0))
        .map(|index| reference("Observation", &lab_observation_id(lab, index)))
        .collect();
    let effective = lab
        .collected_date
        .as_deref()
        .or(lab.ordered_date.as_deref());
    let status = match lab.status {
        LabStatus::Ordered | LabStatus::Collected => "registered",
        LabStatus::InProgress => "partial",
        other => lab_status(other).1,
    };
    prune(json!({
        "resourceType": "DiagnosticReport",
        "id": lab.order_id.as_str(),
        "meta": meta(
            Some("http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab"),
            last_updated,
        ),
        "status": status,
        "category": [coded("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")],
        "code": text_concept(&lab.test_name),
        "subject": reference("Patient", lab.patient_mrn.as_str()),
        "effectiveDateTime": effective.and_then(date_time),
        "issued": lab.resulted_date.as_deref().and_then(timestamp).map(super::instant),
        "performer": [lab.ordered_by.as_deref().map(|name| json!({ "display": name }))],
        "resultsInterpreter": [],
        "result": results,
    }))
}
