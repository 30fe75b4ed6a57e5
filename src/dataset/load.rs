//! Writing a [`Dataset`] through the store's bulk inserts, parents first, inside the caller's transaction.

use super::{Dataset, RecordCounts};
use crate::store::bulk::{self, OnExisting, Parent, RowIds};
use crate::store::{StoreError, Tx};

/// Writes data sets in order, remembering provider row ids across calls (synthetic data arrives in
/// chunks of patients that share the providers written first).
#[derive(Debug)]
pub struct Loader {
    on_existing: OnExisting,
    provider_ids: RowIds,
}

impl Loader {
    pub fn new(on_existing: OnExisting) -> Self {
        Self {
            on_existing,
            provider_ids: RowIds::new(),
        }
    }

    /// Writes every record of `dataset`; returns how many of each kind were inserted (records skipped
    /// under [`OnExisting::Skip`] are not counted).
    pub async fn write(
        &mut self,
        tx: &mut Tx<'_>,
        dataset: &Dataset,
    ) -> Result<RecordCounts, StoreError> {
        let on_existing = self.on_existing;
        let new_providers = bulk::insert_providers(tx, &dataset.providers, on_existing).await?;
        let mut counts = RecordCounts {
            providers: new_providers.len() as u64,
            ..RecordCounts::default()
        };
        self.provider_ids.extend(new_providers);
        let mut patient_ids = bulk::insert_patients(tx, &dataset.patients, on_existing).await?;
        counts.patients = patient_ids.len() as u64;

        let missing_patients = missing(&patient_ids, referenced_mrns(dataset));
        if !missing_patients.is_empty() {
            let found = bulk::existing_row_ids(tx, Parent::Patients, &missing_patients).await?;
            patient_ids.extend(found);
        }
        let npis = dataset.appointments.iter().map(|a| a.provider_npi.as_str());
        let missing_providers = missing(&self.provider_ids, npis);
        if !missing_providers.is_empty() {
            let found = bulk::existing_row_ids(tx, Parent::Providers, &missing_providers).await?;
            self.provider_ids.extend(found);
        }

        let providers = &self.provider_ids;
        counts.appointments = bulk::insert_appointments(
            tx,
            &dataset.appointments,
            &patient_ids,
            providers,
            on_existing,
        )
        .await?;
        counts.medications = bulk::insert_children(
            tx,
            &bulk::MEDICATIONS,
            &dataset.medications,
            &patient_ids,
            on_existing,
        )
        .await?;
        counts.allergies = bulk::insert_children(
            tx,
            &bulk::ALLERGIES,
            &dataset.allergies,
            &patient_ids,
            on_existing,
        )
        .await?;
        counts.vitals = bulk::insert_children(
            tx,
            &bulk::VITAL_SIGNS,
            &dataset.vitals,
            &patient_ids,
            on_existing,
        )
        .await?;
        counts.labs = bulk::insert_children(
            tx,
            &bulk::LAB_RESULTS,
            &dataset.labs,
            &patient_ids,
            on_existing,
        )
        .await?;
        Ok(counts)
    }
}

fn referenced_mrns(dataset: &Dataset) -> impl Iterator<Item = &str> {
    dataset
        .appointments
        .iter()
        .map(|a| a.patient_mrn.as_str())
        .chain(dataset.medications.iter().map(|m| m.patient_mrn.as_str()))
        .chain(dataset.allergies.iter().map(|a| a.patient_mrn.as_str()))
        .chain(dataset.vitals.iter().map(|v| v.patient_mrn.as_str()))
        .chain(dataset.labs.iter().map(|l| l.patient_mrn.as_str()))
}

/// The distinct keys not in `known`, sorted.
fn missing<'a>(known: &RowIds, keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut missing: Vec<String> = keys
        .filter(|key| !known.contains_key(*key))
        .map(str::to_owned)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    missing
}
