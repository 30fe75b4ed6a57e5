//! Generated medications, vital signs and lab results for one patient (see [`super::generator`]).

use chrono::Duration;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::generator::{IdScheme, pick, reference_date};
use super::vocabulary as words;
use crate::domain::clinical::{
    LabComponent, LabResult, LabStatus, Medication, MedicationStatus, Provider, VitalSigns,
    bmi_from_imperial,
};
use crate::domain::ids::{Mrn, RecordId};
use crate::domain::time::{Date, Timestamp};

/// The providers and id scheme records are drawn with.
pub(super) struct Records<'a> {
    providers: &'a [Provider],
    ids: IdScheme,
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// The next id of a kind, advancing its counter.
fn next_id(ids: &IdScheme, prefix: &str, next: &mut u64) -> Option<RecordId> {
    let id = ids.record_id(prefix, *next);
    *next += 1;
    id
}

impl<'a> Records<'a> {
    pub(super) fn new(providers: &'a [Provider], ids: IdScheme) -> Self {
        Self { providers, ids }
    }

    fn clinician(&self, rng: &mut ChaCha8Rng) -> Option<String> {
        if self.providers.is_empty() {
            return None;
        }
        Some(
            self.providers[rng.random_range(0..self.providers.len())]
                .name
                .clone(),
        )
    }

    pub(super) fn medications(
        &self,
        rng: &mut ChaCha8Rng,
        mrn: &Mrn,
        next: &mut u64,
        out: &mut Vec<Medication>,
    ) {
        for _ in 0..rng.random_range(0..=4u32) {
            let (name, dosage, frequency, route) = pick(rng, words::MEDICATIONS);
            let prescribed = reference_date() - Duration::days(rng.random_range(1..1_800));
            let status = pick(
                rng,
                &[
                    MedicationStatus::Active,
                    MedicationStatus::Active,
                    MedicationStatus::Active,
                    MedicationStatus::Active,
                    MedicationStatus::Completed,
                    MedicationStatus::Discontinued,
                ],
            );
            let notes = rng
                .random_bool(0.3)
                .then(|| pick(rng, words::MEDICATION_NOTES).to_owned());
            let Some(medication_id) = next_id(&self.ids, "MED", next) else {
                continue;
            };
            out.push(Medication {
                medication_id,
                patient_mrn: mrn.clone(),
                name: name.to_owned(),
                dosage: Some(dosage.to_owned()),
                frequency: Some(frequency.to_owned()),
                route: Some(route.to_owned()),
                prescribed_date: Date::checked(prescribed),
                prescriber: self.clinician(rng),
                status,
                refills_remaining: rng.random_range(0..=6),
                notes,
            });
        }
    }

    pub(super) fn vitals(
        &self,
        rng: &mut ChaCha8Rng,
        mrn: &Mrn,
        next: &mut u64,
        out: &mut Vec<VitalSigns>,
    ) {
        let height = round1(rng.random_range(58.0..77.0));
        let mut weight = round1(rng.random_range(105.0..260.0));
        for _ in 0..rng.random_range(1..=4u32) {
            let recorded = reference_date()
                .and_hms_micro_opt(0, 0, 0, 0)
                .map(|midnight| {
                    midnight - Duration::seconds(rng.random_range(0..63_072_000))
                        + Duration::microseconds(rng.random_range(0..1_000_000))
                });
            let recorded = recorded.and_then(Timestamp::checked);
            let (Some(recorded), Some(vital_id)) = (recorded, next_id(&self.ids, "VIT", next))
            else {
                continue;
            };
            weight = round1(weight + rng.random_range(-4.0..4.0));
            out.push(VitalSigns {
                vital_id,
                patient_mrn: mrn.clone(),
                recorded_date: recorded,
                systolic_bp: Some(rng.random_range(100..=155)),
                diastolic_bp: Some(rng.random_range(60..=95)),
                heart_rate: Some(rng.random_range(55..=105)),
                temperature: Some(round1(rng.random_range(97.0..99.6))),
                respiratory_rate: Some(rng.random_range(12..=20)),
                oxygen_saturation: Some(rng.random_range(94..=100)),
                weight: Some(weight),
                height: Some(height),
                bmi: bmi_from_imperial(weight, height),
                recorded_by: Some(pick(rng, words::VITALS_RECORDERS).to_owned()),
                notes: None,
            });
        }
    }

    pub(super) fn labs(
        &self,
        rng: &mut ChaCha8Rng,
        mrn: &Mrn,
        next: &mut u64,
        out: &mut Vec<LabResult>,
    ) {
        for _ in 0..rng.random_range(0..=3u32) {
            let (test_name, analytes) = pick(rng, words::LAB_PANELS);
            let ordered = reference_date() - Duration::days(rng.random_range(0..730));
            let pending = ordered > reference_date() - Duration::days(3) && rng.random_bool(0.5);
            let day = |offset: i64| Date::checked(ordered + Duration::days(offset)).map(Into::into);
            let components: Vec<LabComponent> = analytes
                .iter()
                .map(|&(component, unit, low, high, decimals)| {
                    let span = high - low;
                    let value = rng.random_range((low - span * 0.25)..(high + span * 0.25));
                    let flag = if value < low {
                        "low"
                    } else if value > high {
                        "high"
                    } else {
                        "normal"
                    };
                    LabComponent {
                        component: component.to_owned(),
                        value: format!("{value:.decimals$}"),
                        unit: Some(unit.to_owned()),
                        reference: Some(format!("{low:.decimals$}-{high:.decimals$}")),
                        flag: Some(flag.to_owned()),
                    }
                })
                .collect();
            let Some(order_id) = next_id(&self.ids, "LAB", next) else {
                continue;
            };
            out.push(LabResult {
                order_id,
                patient_mrn: mrn.clone(),
                test_name: test_name.to_owned(),
                ordered_date: day(0),
                collected_date: day(1).filter(|_| !pending),
                resulted_date: day(2).filter(|_| !pending),
                status: if pending {
                    LabStatus::Ordered
                } else {
                    LabStatus::Final
                },
                ordered_by: self.clinician(rng),
                results_json: (!pending)
                    .then(|| serde_json::to_string(&components).ok())
                    .flatten(),
            });
        }
    }
}
