//! The demo data set: two hand-written patients the earlier system's clients expect (`MRN001` John Doe,
//! `MRN002` Sarah Johnson, with appointments, medications, allergies, vitals and labs), eight providers,
//! and generated patients `MRN003`–`MRN030`. Deterministic: the same records on every load.

use super::generator::{Generator, IdScheme};
use super::import::import_dataset;
use super::validate::parse_export;
use super::{Dataset, DatasetError};
use crate::store::Store;

/// The hand-written records, in the export format (so they pass the import checks).
const HAND_WRITTEN: &str = include_str!("demo_records.json");

/// Seed of the generated demo patients.
pub const DEMO_RNG_SEED: u64 = 20_251_201;

/// Generated demo patients: `MRN003` to `MRN030`.
pub const GENERATED_PATIENTS: std::ops::Range<u64> = 3..31;

/// The demo data set.
pub fn demo_dataset() -> Result<Dataset, DatasetError> {
    let root: serde_json::Value = serde_json::from_str(HAND_WRITTEN).map_err(DatasetError::Json)?;
    let mut dataset = parse_export(&root)?;
    let mut generator = Generator::new(DEMO_RNG_SEED, IdScheme::DEMO, dataset.providers.clone());
    for appointment in &dataset.appointments {
        generator.reserve_slot(appointment);
    }
    let generated = generator.patients(GENERATED_PATIENTS);
    dataset.patients.extend(generated.patients);
    dataset.appointments.extend(generated.appointments);
    dataset.medications.extend(generated.medications);
    dataset.allergies.extend(generated.allergies);
    dataset.vitals.extend(generated.vitals);
    dataset.labs.extend(generated.labs);
    Ok(dataset)
}

/// Loads the demo data when the database has no patients (providers already stored are kept).
/// Returns whether it loaded anything. `serve --demo` and `seed --demo` call this.
pub async fn load_demo_data_if_empty(store: &Store) -> Result<bool, DatasetError> {
    if store.count_patients().await? > 0 {
        return Ok(false);
    }
    import_dataset(store, &demo_dataset()?, true).await?;
    Ok(true)
}
