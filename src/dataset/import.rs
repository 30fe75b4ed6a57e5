//! `ehr-mcp import FILE [--merge]`: validate the whole file first, then write it in one transaction.
//!
//! Rules: every record is checked (types, dates, times, enumerations, `results_json`, duplicate keys,
//! references, double-booked slots) and any problem refuses the file with the record and field named;
//! nothing is written. A database that already holds patients or providers is refused unless `merge`
//! is set; merging inserts the records whose public id (MRN, NPI, record id) is new and leaves the
//! stored ones untouched, reporting them as skipped.

use std::path::Path;

use super::validate::{check_references, outside_references, parse_export};
use super::{Dataset, DatasetError, RecordCounts};
use crate::dataset::load::Loader;
use crate::store::Store;
use crate::store::bulk::{self, OnExisting, Parent};

/// What an import wrote, and what it left alone because the public id was already stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub inserted: RecordCounts,
    pub skipped: RecordCounts,
}

/// Reads and imports an export file.
pub async fn import_file(
    store: &Store,
    path: &Path,
    merge: bool,
) -> Result<ImportReport, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::File {
        action: "read",
        path: path.display().to_string(),
        source,
    })?;
    import_json(store, &bytes, merge).await
}

/// Imports the JSON text of an export.
pub async fn import_json(
    store: &Store,
    json: &[u8],
    merge: bool,
) -> Result<ImportReport, DatasetError> {
    let root: serde_json::Value = serde_json::from_slice(json).map_err(DatasetError::Json)?;
    let dataset = parse_export(&root)?;
    import_dataset(store, &dataset, merge).await
}

/// Imports a validated data set in one transaction.
pub async fn import_dataset(
    store: &Store,
    dataset: &Dataset,
    merge: bool,
) -> Result<ImportReport, DatasetError> {
    let mut batch = store.begin().await?;
    let mut tx = batch.tx();
    let conn = &mut tx;
    let (patients, providers) = bulk::parent_counts(conn).await?;
    if !merge && (patients > 0 || providers > 0) {
        return Err(DatasetError::NotEmpty {
            patients,
            providers,
        });
    }
    let (mut unknown_mrns, mut unknown_npis) = outside_references(dataset);
    if merge {
        let mrns: Vec<String> = unknown_mrns.iter().cloned().collect();
        for mrn in bulk::existing_row_ids(conn, Parent::Patients, &mrns)
            .await?
            .keys()
        {
            unknown_mrns.remove(mrn);
        }
        let npis: Vec<String> = unknown_npis.iter().cloned().collect();
        for npi in bulk::existing_row_ids(conn, Parent::Providers, &npis)
            .await?
            .keys()
        {
            unknown_npis.remove(npi);
        }
    }
    let problems = check_references(dataset, &unknown_mrns, &unknown_npis);
    if !problems.is_empty() {
        return Err(DatasetError::Invalid(problems));
    }
    let on_existing = if merge {
        OnExisting::Skip
    } else {
        OnExisting::Fail
    };
    let inserted = Loader::new(on_existing).write(conn, dataset).await?;
    batch.commit().await?;
    store.refresh_statistics().await?;
    let total = dataset.counts();
    Ok(ImportReport {
        inserted,
        skipped: RecordCounts {
            providers: total.providers - inserted.providers,
            patients: total.patients - inserted.patients,
            appointments: total.appointments - inserted.appointments,
            medications: total.medications - inserted.medications,
            allergies: total.allergies - inserted.allergies,
            vitals: total.vitals - inserted.vitals,
            labs: total.labs - inserted.labs,
        },
    })
}
