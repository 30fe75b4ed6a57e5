//! The earlier system's JSON export format, as written by `export`: one object with the arrays
//! `providers, patients, appointments, medications, allergies, vitals, labs`, records linked by
//! `patient_mrn` and `provider_npi`, keys in the earlier system's order. Allergies and vitals carry
//! `allergy_id` / `vital_id`, which the earlier format lacked (import accepts files with or without them). A record's
//! shape is the serde form of its domain record (`domain::clinical`), so the keys are declared once.

/// The top-level keys, in file order.
pub const SECTIONS: [&str; 7] = [
    "providers",
    "patients",
    "appointments",
    "medications",
    "allergies",
    "vitals",
    "labs",
];
