//! The deterministic record generator behind demo and synthetic data. Patient `n` draws from its own
//! ChaCha stream (`seed`, stream `n`), so a data set depends only on the seed and the patient numbers;
//! slot bookings and record numbers follow patient order.

use std::collections::HashSet;
use std::ops::Range;

use chrono::{Datelike, Duration, NaiveDate, Timelike, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Dataset;
use super::vocabulary as words;
use crate::domain::clinical::{
    Allergy, AllergySeverity, AllergyStatus, Appointment, AppointmentStatus, Patient, Provider,
};
use crate::domain::ids::{Mrn, Npi, RecordId};
use crate::domain::time::AppointmentTime;

/// The "today" of generated data: appointments before it are past, after it upcoming.
pub const REFERENCE_DATE: (i32, u32, u32) = (2025, 12, 1);

/// How generated identifiers look: `{mrn_prefix}{n:0mrn_digits}` and `{APT|MED|…}{tag}{n:0record_digits}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdScheme {
    pub mrn_prefix: &'static str,
    pub mrn_digits: usize,
    pub record_tag: &'static str,
    pub record_digits: usize,
}

impl IdScheme {
    /// `SYN00000001`, `APTS000000001`…
    pub const SYNTHETIC: IdScheme = IdScheme {
        mrn_prefix: "SYN",
        mrn_digits: 8,
        record_tag: "S",
        record_digits: 9,
    };
    /// `MRN003`, `APTD0001`…
    pub const DEMO: IdScheme = IdScheme {
        mrn_prefix: "MRN",
        mrn_digits: 3,
        record_tag: "D",
        record_digits: 4,
    };

    pub fn mrn(&self, number: u64) -> Option<Mrn> {
        Mrn::parse(&format!(
            "{}{:0width$}",
            self.mrn_prefix,
            number,
            width = self.mrn_digits
        ))
        .ok()
    }

    pub(super) fn record_id(&self, prefix: &str, number: u64) -> Option<RecordId> {
        let text = format!(
            "{prefix}{}{:0width$}",
            self.record_tag,
            number,
            width = self.record_digits
        );
        RecordId::parse("id", &text).ok()
    }
}

/// Picks one element of a non-empty constant list.
pub(super) fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

pub(super) fn reference_date() -> NaiveDate {
    let (year, month, day) = REFERENCE_DATE;
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(NaiveDate::MIN)
}

/// `count` providers with NPIs `9000000001`…, drawn from stream 0 of `seed`.
pub fn synthetic_providers(seed: u64, count: u64) -> Vec<Provider> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (1..=count)
        .filter_map(|number| {
            let first = if rng.random_bool(0.5) {
                pick(&mut rng, words::FEMALE_FIRST_NAMES)
            } else {
                pick(&mut rng, words::MALE_FIRST_NAMES)
            };
            let last = pick(&mut rng, words::LAST_NAMES);
            let (specialty, department) = pick(&mut rng, words::SPECIALTIES);
            let handle = format!("{}.{}{number}", &first[..1], last.replace(['\'', ' '], ""));
            Some(Provider {
                npi: Npi::parse(&format!("{}", 9_000_000_000u64 + number)).ok()?,
                name: format!("Dr. {first} {last}"),
                specialty: Some(specialty.to_owned()),
                department: Some(department.to_owned()),
                phone: Some(format!("+1-555-{:04}", 2000 + number % 8000)),
                email: Some(format!("{}@hospital.example.org", handle.to_lowercase())),
                accepting_new_patients: rng.random_bool(0.8),
            })
        })
        .collect()
}

/// Generates patients with their records, booking each appointment into a free provider slot.
#[derive(Debug)]
pub struct Generator {
    seed: u64,
    ids: IdScheme,
    providers: Vec<Provider>,
    taken_slots: HashSet<u64>,
    /// Next number of each record kind: appointments, medications, allergies, vitals, labs.
    next: [u64; 5],
}

/// Half-hour slots from 08:00 to 16:30.
const SLOTS_PER_DAY: u32 = 18;

impl Generator {
    pub fn new(seed: u64, ids: IdScheme, providers: Vec<Provider>) -> Self {
        Self {
            seed,
            ids,
            providers,
            taken_slots: HashSet::new(),
            next: [1; 5],
        }
    }

    /// Patients numbered `numbers` (e.g. `1..2001`) with appointments, medications, allergies, vitals, labs.
    pub fn patients(&mut self, numbers: Range<u64>) -> Dataset {
        let mut dataset = Dataset::default();
        for number in numbers {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(number);
            let Some(patient) = self.patient(&mut rng, number) else {
                continue;
            };
            for _ in 0..rng.random_range(0..=3u32) {
                if let Some(appointment) = self.appointment(&mut rng, &patient.mrn) {
                    dataset.appointments.push(appointment);
                }
            }
            let records = super::clinical_records::Records::new(&self.providers, self.ids);
            records.medications(
                &mut rng,
                &patient.mrn,
                &mut self.next[1],
                &mut dataset.medications,
            );
            allergies(
                &mut rng,
                self.ids,
                &patient.mrn,
                &mut self.next[2],
                &mut dataset.allergies,
            );
            records.vitals(
                &mut rng,
                &patient.mrn,
                &mut self.next[3],
                &mut dataset.vitals,
            );
            records.labs(&mut rng, &patient.mrn, &mut self.next[4], &mut dataset.labs);
            dataset.patients.push(patient);
        }
        dataset
    }

    fn patient(&self, rng: &mut ChaCha8Rng, number: u64) -> Option<Patient> {
        let female = rng.random_bool(0.5);
        let first = pick(
            rng,
            if female {
                words::FEMALE_FIRST_NAMES
            } else {
                words::MALE_FIRST_NAMES
            },
        );
        let last = pick(rng, words::LAST_NAMES);
        let dob = reference_date() - Duration::days(rng.random_range(365..(92 * 365)));
        let (city, state, zip_code) = pick(rng, words::PLACES);
        let (insurer, policy_prefix) = pick(rng, words::INSURERS);
        let contact_names = if rng.random_bool(0.5) {
            words::FEMALE_FIRST_NAMES
        } else {
            words::MALE_FIRST_NAMES
        };
        let contact_first = pick(rng, contact_names);
        let email_name = format!("{first}.{last}")
            .to_lowercase()
            .replace(['\'', ' '], "");
        Some(Patient {
            mrn: self.ids.mrn(number)?,
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            dob: dob.format("%Y-%m-%d").to_string(),
            gender: Some(if female { "Female" } else { "Male" }.to_owned()),
            ssn: rng
                .random_bool(0.1)
                .then(|| format!("***-**-{:04}", rng.random_range(0..10_000))),
            email: Some(format!("{email_name}{number}@example.com")),
            phone: Some(format!("+1-555-{:04}", rng.random_range(0..10_000))),
            street: Some(format!(
                "{} {} {}",
                rng.random_range(1..9999),
                pick(rng, words::STREET_NAMES),
                pick(rng, words::STREET_SUFFIXES)
            )),
            city: Some(city.to_owned()),
            state: Some(state.to_owned()),
            zip_code: Some(zip_code.to_owned()),
            insurance_provider: Some(insurer.to_owned()),
            policy_number: Some(format!(
                "{policy_prefix}{:06}",
                rng.random_range(0..1_000_000)
            )),
            group_number: rng
                .random_bool(0.2)
                .then(|| format!("GRP{:04}", rng.random_range(0..10_000))),
            emergency_contact_name: Some(format!("{contact_first} {last}")),
            emergency_contact_relationship: Some(pick(rng, words::RELATIONSHIPS).to_owned()),
            emergency_contact_phone: Some(format!(
                "+1-{}-{}-{:04}",
                rng.random_range(201..990),
                rng.random_range(200..999),
                rng.random_range(0..10_000)
            )),
        })
    }

    /// Marks the slot of a hand-written appointment as booked, so no generated one takes it.
    pub fn reserve_slot(&mut self, appointment: &Appointment) {
        let provider = self
            .providers
            .iter()
            .position(|p| p.npi == appointment.provider_npi);
        let date = NaiveDate::parse_from_str(&appointment.date, "%Y-%m-%d").ok();
        let time = AppointmentTime::parse(&appointment.time).ok();
        if let (Some(provider), Some(date), Some(time)) = (provider, date, time) {
            let start = time.slot.num_seconds_from_midnight() / 60;
            let duration = u32::try_from(appointment.duration_minutes).unwrap_or(0);
            for minutes in half_hours_covered(start, duration) {
                self.taken_slots.insert(slot_key(provider, date, minutes));
            }
        }
    }

    fn appointment(&mut self, rng: &mut ChaCha8Rng, mrn: &Mrn) -> Option<Appointment> {
        if self.providers.is_empty() {
            return None;
        }
        // The visit's length decides how many half-hour slots it occupies: one provider's bookings
        // never overlap (the database refuses overlapping slots, migration 0003).
        let (kind, duration_minutes) = pick(rng, words::APPOINTMENT_TYPES);
        let duration = u32::try_from(duration_minutes).unwrap_or(0);
        let (index, date, slot) = (0..20).find_map(|_| {
            let index = rng.random_range(0..self.providers.len());
            let date = reference_date() + Duration::days(rng.random_range(-365..120));
            let slot = rng.random_range(0..SLOTS_PER_DAY);
            let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
            let keys: Vec<u64> = half_hours_covered(8 * 60 + slot * 30, duration)
                .map(|minutes| slot_key(index, date, minutes))
                .collect();
            let free = !weekend && keys.iter().all(|key| !self.taken_slots.contains(key));
            free.then(|| {
                self.taken_slots.extend(keys);
                (index, date, slot)
            })
        })?;
        let provider = &self.providers[index];
        let (hour, minute) = (8 + slot / 2, (slot % 2) * 30);
        let time = if rng.random_bool(0.5) {
            let (twelve, meridiem) = if hour >= 12 {
                (if hour == 12 { 12 } else { hour - 12 }, "PM")
            } else {
                (hour, "AM")
            };
            format!("{twelve}:{minute:02} {meridiem}")
        } else {
            format!("{hour:02}:{minute:02}")
        };
        let status = if date < reference_date() {
            pick(
                rng,
                &[
                    AppointmentStatus::Completed,
                    AppointmentStatus::Completed,
                    AppointmentStatus::Completed,
                    AppointmentStatus::Cancelled,
                    AppointmentStatus::NoShow,
                ],
            )
        } else {
            pick(
                rng,
                &[
                    AppointmentStatus::Scheduled,
                    AppointmentStatus::Scheduled,
                    AppointmentStatus::Scheduled,
                    AppointmentStatus::Confirmed,
                ],
            )
        };
        let department = provider.department.clone();
        let number = self.next[0];
        self.next[0] += 1;
        Some(Appointment {
            appointment_id: self.ids.record_id("APT", number)?,
            patient_mrn: mrn.clone(),
            provider_npi: provider.npi.clone(),
            provider_name: None,
            date: date.format("%Y-%m-%d").to_string(),
            time,
            duration_minutes,
            appointment_type: Some(kind.to_owned()),
            location: department
                .as_ref()
                .map(|d| format!("{d} - Room {}", rng.random_range(100..400))),
            department,
            status,
            reason: Some(pick(rng, words::VISIT_REASONS).to_owned()),
            notes: None,
        })
    }
}

fn allergies(
    rng: &mut ChaCha8Rng,
    ids: IdScheme,
    mrn: &Mrn,
    next: &mut u64,
    out: &mut Vec<Allergy>,
) {
    let count = if rng.random_bool(0.6) {
        0
    } else {
        rng.random_range(1..=3)
    };
    for _ in 0..count {
        let (allergen, reaction) = pick(rng, words::ALLERGENS);
        let onset = reference_date() - Duration::days(rng.random_range(100..12_000));
        let severity = pick(
            rng,
            &[
                AllergySeverity::Mild,
                AllergySeverity::Moderate,
                AllergySeverity::Moderate,
                AllergySeverity::Severe,
            ],
        );
        let number = *next;
        *next += 1;
        let Some(allergy_id) = ids.record_id("ALG", number) else {
            continue;
        };
        out.push(Allergy {
            allergy_id,
            patient_mrn: mrn.clone(),
            allergen: allergen.to_owned(),
            reaction: Some(reaction.to_owned()),
            severity,
            onset_date: Some(onset.format("%Y-%m-%d").to_string()),
            status: AllergyStatus::Active,
            notes: None,
        });
    }
}

/// The starting minutes of the half-hour slots that `[start, start + duration)` overlaps.
fn half_hours_covered(start: u32, duration: u32) -> impl Iterator<Item = u32> {
    let first = start / 30 * 30;
    let end = start + duration.max(1);
    (first..end).step_by(30)
}

/// One number per (provider, day, minute of the day) for the set of booked slots.
fn slot_key(provider_index: usize, date: NaiveDate, minutes: u32) -> u64 {
    let day = u64::from(date.num_days_from_ce().unsigned_abs());
    ((provider_index as u64) << 32) | (day << 11) | u64::from(minutes)
}
