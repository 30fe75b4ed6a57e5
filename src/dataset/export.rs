//! `ehr-mcp export FILE`: every table streamed into the earlier system's JSON format, one record per
//! line, in insertion order. The file is written next to its destination and renamed into place.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use futures::TryStreamExt;
use futures::stream::BoxStream;

use super::format::SECTIONS;
use super::{DatasetError, RecordCounts};
use crate::store::{Store, StoreError};

/// Exports the whole database to `path` (replaced atomically when complete).
pub async fn export_file(store: &Store, path: &Path) -> Result<RecordCounts, DatasetError> {
    let file_error = |action| {
        let path = path.display().to_string();
        move |source| DatasetError::File {
            action,
            path,
            source,
        }
    };
    let partial = path.with_extension("partial");
    let file = File::create(&partial).map_err(file_error("create"))?;
    let mut writer = BufWriter::new(file);
    let counts = export_to_writer(store, &mut writer).await?;
    writer
        .into_inner()
        .map_err(|error| error.into_error())
        .and_then(|file| file.sync_all())
        .map_err(file_error("write"))?;
    std::fs::rename(&partial, path).map_err(file_error("replace"))?;
    Ok(counts)
}

/// Writes the export JSON to `writer`.
pub async fn export_to_writer<W: Write>(
    store: &Store,
    writer: &mut W,
) -> Result<RecordCounts, DatasetError> {
    let mut out = SectionWriter { writer };
    let mut counts = RecordCounts::default();
    out.raw("{")?;
    counts.providers = out.section(SECTIONS[0], store.stream_providers()).await?;
    counts.patients = out.section(SECTIONS[1], store.stream_patients()).await?;
    counts.appointments = out
        .section(SECTIONS[2], store.stream_appointments())
        .await?;
    counts.medications = out.section(SECTIONS[3], store.stream_medications()).await?;
    counts.allergies = out.section(SECTIONS[4], store.stream_allergies()).await?;
    counts.vitals = out.section(SECTIONS[5], store.stream_vital_signs()).await?;
    counts.labs = out.section(SECTIONS[6], store.stream_lab_results()).await?;
    out.raw("\n}\n")?;
    Ok(counts)
}

struct SectionWriter<'w, W: Write> {
    writer: &'w mut W,
}

impl<W: Write> SectionWriter<'_, W> {
    fn raw(&mut self, text: &str) -> Result<(), DatasetError> {
        self.writer
            .write_all(text.as_bytes())
            .map_err(|source| DatasetError::File {
                action: "write",
                path: "the export".to_owned(),
                source,
            })
    }

    /// Writes `"name": [ … ]` from a stream of records, each in its serde form (the file's record).
    async fn section<T: serde::Serialize>(
        &mut self,
        name: &str,
        mut records: BoxStream<'_, Result<T, StoreError>>,
    ) -> Result<u64, DatasetError> {
        let separator = if name == SECTIONS[0] { "" } else { "," };
        self.raw(&format!("{separator}\n  \"{name}\": ["))?;
        let mut count = 0u64;
        while let Some(record) = records.try_next().await? {
            self.raw(if count == 0 { "\n    " } else { ",\n    " })?;
            let line = serde_json::to_string(&record).map_err(DatasetError::Json)?;
            self.raw(&line)?;
            count += 1;
        }
        self.raw(if count == 0 { "]" } else { "\n  ]" })?;
        Ok(count)
    }
}
