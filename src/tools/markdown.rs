//! Compact Markdown views of a chart for LLM contexts: the patient summary (resource
//! `ehr://patients/{mrn}/summary.md` and the prompts) and the sections prompts quote. Built from the wire
//! shapes, so they show exactly what the JSON results show; a section the caller's scopes withhold is
//! named as withheld, never silently missing. Identifiers (MRN, NPI, record ids) are kept so an agent can
//! act on what it reads.

use std::fmt::Write;

use super::summary::PatientSummaryResult;
use super::wire::{
    AllergyWire, AppointmentWire, LabResultWire, MedicationWire, PatientWire, VitalSignsWire,
};

/// `value` or an em dash.
fn or_dash(value: Option<&str>) -> &str {
    value.filter(|v| !v.trim().is_empty()).unwrap_or("—")
}

/// The compact Markdown form of a patient summary.
pub fn summary(result: &PatientSummaryResult) -> String {
    let mut out = String::new();
    match &result.patient {
        Some(patient) => demographics(&mut out, patient),
        None => {
            let _ = writeln!(out, "# Patient {}\n", result.mrn);
        }
    }
    if let Some(medications) = &result.active_medications {
        out.push_str(&medication_section("Active medications", medications));
    }
    if let Some(allergies) = &result.allergies {
        out.push_str(&allergy_section(allergies));
    }
    if let Some(vitals) = &result.latest_vital_signs {
        out.push_str(&vitals_section(vitals.as_ref()));
    }
    if let Some(labs) = &result.recent_lab_results {
        out.push_str(&lab_section("Recent lab results", labs));
    }
    if let Some(appointments) = &result.upcoming_appointments {
        out.push_str(&appointment_section(appointments));
    }
    if !result.withheld.is_empty() {
        let _ = writeln!(
            out,
            "_Withheld (not covered by this client's scopes): {}._",
            result.withheld.join(", ")
        );
    }
    out
}

fn demographics(out: &mut String, patient: &PatientWire) {
    let _ = writeln!(out, "# {} ({})\n", patient.name, patient.mrn);
    let _ = writeln!(
        out,
        "- DOB {} · {}",
        patient.dob,
        or_dash(patient.gender.as_deref())
    );
    if patient.phone.is_some() || patient.email.is_some() {
        let _ = writeln!(
            out,
            "- Contact: {} · {}",
            or_dash(patient.phone.as_deref()),
            or_dash(patient.email.as_deref())
        );
    }
    if let Some(insurance) = &patient.insurance {
        let _ = writeln!(
            out,
            "- Insurance: {}",
            or_dash(insurance.provider.as_deref())
        );
    }
    if let Some(contact) = &patient.emergency_contact {
        let _ = writeln!(
            out,
            "- Emergency contact: {} ({}) {}",
            or_dash(contact.name.as_deref()),
            or_dash(contact.relationship.as_deref()),
            or_dash(contact.phone.as_deref())
        );
    }
    out.push('\n');
}

/// A medications section.
pub fn medication_section(title: &str, medications: &[MedicationWire]) -> String {
    let mut out = format!("## {title} ({})\n", medications.len());
    if medications.is_empty() {
        out.push_str("- none recorded\n");
    }
    for medication in medications {
        let _ = writeln!(
            out,
            "- {} {} {} — {}, refills {} [{}]",
            medication.name,
            or_dash(medication.dosage.as_deref()),
            or_dash(medication.frequency.as_deref()),
            medication.status,
            medication.refills_remaining,
            medication.medication_id
        );
    }
    out.push('\n');
    out
}

/// An allergies section.
pub fn allergy_section(allergies: &[AllergyWire]) -> String {
    let mut out = format!("## Allergies ({})\n", allergies.len());
    if allergies.is_empty() {
        out.push_str("- no known allergies recorded\n");
    }
    for allergy in allergies {
        let _ = writeln!(
            out,
            "- {} — {}, reaction: {}",
            allergy.allergen,
            allergy.severity,
            or_dash(allergy.reaction.as_deref())
        );
    }
    out.push('\n');
    out
}

/// The latest vital signs section.
pub fn vitals_section(vitals: Option<&VitalSignsWire>) -> String {
    let Some(v) = vitals else {
        return "## Latest vital signs\n- none recorded\n\n".to_owned();
    };
    let number = |value: Option<f64>| value.map_or_else(|| "—".to_owned(), |v| v.to_string());
    let integer = |value: Option<i64>| value.map_or_else(|| "—".to_owned(), |v| v.to_string());
    format!(
        "## Latest vital signs ({})\n- BP {} · HR {} · Temp {} °F · RR {} · SpO2 {}% · Weight {} lb · BMI {}\n\n",
        v.recorded_date,
        or_dash(v.blood_pressure.as_deref()),
        integer(v.heart_rate),
        number(v.temperature),
        integer(v.respiratory_rate),
        integer(v.oxygen_saturation),
        number(v.weight),
        number(v.bmi),
    )
}

/// A lab results section: one line per order, its flagged components spelled out.
pub fn lab_section(title: &str, labs: &[LabResultWire]) -> String {
    let mut out = format!("## {title} ({})\n", labs.len());
    if labs.is_empty() {
        out.push_str("- none recorded\n");
    }
    for lab in labs {
        let components: Vec<String> = lab
            .results
            .iter()
            .map(|c| {
                let flag = c
                    .flag
                    .as_deref()
                    .filter(|f| !f.trim().is_empty() && !f.eq_ignore_ascii_case("normal"))
                    .map(|f| format!(" **{f}**"))
                    .unwrap_or_default();
                format!(
                    "{} {} {}{}",
                    c.component,
                    c.value,
                    c.unit.as_deref().unwrap_or(""),
                    flag
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "- {} {} ({}): {} [{}]",
            or_dash(lab.resulted_date.as_deref().or(lab.ordered_date.as_deref())),
            lab.test_name,
            lab.status,
            if components.is_empty() {
                "no results yet".to_owned()
            } else {
                components.join("; ")
            },
            lab.order_id
        );
    }
    out.push('\n');
    out
}

/// An upcoming appointments section.
pub fn appointment_section(appointments: &[AppointmentWire]) -> String {
    let mut out = format!("## Upcoming appointments ({})\n", appointments.len());
    if appointments.is_empty() {
        out.push_str("- none scheduled\n");
    }
    for appointment in appointments {
        let _ = writeln!(
            out,
            "- {} {} with {} — {} ({}) [{}]",
            appointment.date,
            appointment.time,
            or_dash(appointment.provider_name.as_deref()),
            or_dash(appointment.reason.as_deref()),
            appointment.status,
            appointment.appointment_id
        );
    }
    out.push('\n');
    out
}
