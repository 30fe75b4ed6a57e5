//! `ehr-mcp seed --synthetic N [--rng-seed S]`: N generated patients with full records, bulk loaded.
//!
//! Patients are generated in chunks and written with multi-row inserts; a transaction commits every
//! [`PATIENTS_PER_TRANSACTION`] patients so the write-ahead log stays bounded. The same `N` and seed
//! always give the same records (ids `SYN00000001`…, NPIs `9000000001`…).

use super::generator::{Generator, IdScheme, synthetic_providers};
use super::load::Loader;
use super::{Dataset, DatasetError, RecordCounts};
use crate::store::bulk::OnExisting;
use crate::store::{Store, StoreError};

/// Patients generated and written per multi-row batch.
pub const PATIENTS_PER_CHUNK: u64 = 2_000;
/// Patients per transaction.
pub const PATIENTS_PER_TRANSACTION: u64 = 50_000;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticOptions {
    pub patients: u64,
    pub rng_seed: u64,
}

impl SyntheticOptions {
    /// One provider per 100 patients, at least 20 and at most 10,000.
    pub fn provider_count(&self) -> u64 {
        (self.patients / 100).clamp(20, 10_000)
    }
}

/// The whole synthetic data set in memory (for small `N`: tests and previews).
pub fn synthetic_dataset(options: SyntheticOptions) -> Dataset {
    let providers = synthetic_providers(options.rng_seed, options.provider_count());
    let mut generator = Generator::new(options.rng_seed, IdScheme::SYNTHETIC, providers.clone());
    let mut dataset = generator.patients(1..options.patients + 1);
    dataset.providers = providers;
    dataset
}

/// Generates and loads the data set, calling `progress` with the number of patients written so far.
/// Refuses a database that already holds synthetic patients.
pub async fn load_synthetic(
    store: &Store,
    options: SyntheticOptions,
    mut progress: impl FnMut(u64),
) -> Result<RecordCounts, DatasetError> {
    if let Some(first) = IdScheme::SYNTHETIC.mrn(1) {
        match store.patient(&first).await {
            Ok(_) => return Err(DatasetError::SyntheticPresent),
            Err(StoreError::NotFound { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let providers = synthetic_providers(options.rng_seed, options.provider_count());
    let mut generator = Generator::new(options.rng_seed, IdScheme::SYNTHETIC, providers.clone());
    let mut loader = Loader::new(OnExisting::Fail);
    let mut counts = RecordCounts::default();
    let mut pending = Dataset {
        providers,
        ..Dataset::default()
    };
    let mut next_patient = 1;
    while next_patient <= options.patients || !pending.providers.is_empty() {
        let mut batch = store.begin().await?;
        let transaction_end = (next_patient + PATIENTS_PER_TRANSACTION).min(options.patients + 1);
        loop {
            let chunk_end = (next_patient + PATIENTS_PER_CHUNK).min(transaction_end);
            let chunk = generator.patients(next_patient..chunk_end);
            pending.patients = chunk.patients;
            pending.appointments = chunk.appointments;
            pending.medications = chunk.medications;
            pending.allergies = chunk.allergies;
            pending.vitals = chunk.vitals;
            pending.labs = chunk.labs;
            counts.add(loader.write(&mut batch.tx(), &pending).await?);
            pending.providers.clear();
            next_patient = chunk_end;
            progress(next_patient - 1);
            if next_patient >= transaction_end {
                break;
            }
        }
        batch.commit().await?;
    }
    store.refresh_statistics().await?;
    Ok(counts)
}
