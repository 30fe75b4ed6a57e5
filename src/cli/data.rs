//! `ehr-mcp seed`, `import` and `export`: demo and synthetic data, the earlier system's JSON format.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::CliError;
use crate::dataset::synthetic::{SyntheticOptions, load_synthetic};
use crate::dataset::{DatasetError, demo, export, import};
use crate::store::Store;

/// `ehr-mcp seed --demo` or `ehr-mcp seed --synthetic N [--rng-seed S]`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("data").required(true).args(["demo", "synthetic"])))]
pub struct SeedArgs {
    /// Load the demo data set (patients MRN001…MRN030, providers) when the database has no patients.
    #[arg(long)]
    pub demo: bool,

    /// Generate and load N synthetic patients with full records (MRNs SYN00000001…).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub synthetic: Option<u64>,

    /// Seed of the synthetic generator: the same N and seed always give the same records.
    #[arg(long, value_name = "S", default_value_t = 42, requires = "synthetic")]
    pub rng_seed: u64,

    /// Where `--demo` writes the demo clients' credentials (mode 0600).
    #[arg(
        long,
        env = "EHR_MCP_CREDENTIALS_FILE",
        default_value = "oauth_clients_credentials.json"
    )]
    pub credentials_file: PathBuf,
}

/// `ehr-mcp import FILE [--merge]`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// An export of the earlier system (or of this one): JSON with providers, patients, appointments,
    /// medications, allergies, vitals and labs.
    pub file: PathBuf,

    /// Import into a database that already holds data: add the records whose public id (MRN, NPI,
    /// record id) is new, keep the stored ones unchanged.
    #[arg(long)]
    pub merge: bool,
}

/// `ehr-mcp export FILE`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Where to write the export (replaced when complete).
    pub file: PathBuf,
}

fn failed(error: DatasetError) -> CliError {
    match error {
        DatasetError::Store(store_error) => store_error.into(),
        other => CliError::Failed(anyhow::Error::new(other)),
    }
}

pub async fn seed(store: &Store, args: SeedArgs) -> Result<ExitCode, CliError> {
    store.migrate().await?;
    if args.demo {
        let outcome = crate::auth::demo::ensure_demo_clients(store, &args.credentials_file)
            .await
            .map_err(|error| CliError::Failed(anyhow::Error::new(error)))?;
        println!("{}", outcome.message());
        let users_file = crate::auth::demo::demo_users_path(&args.credentials_file);
        let note = crate::auth::demo::ensure_demo_users(store, &users_file)
            .await
            .map_err(|error| CliError::Failed(anyhow::Error::new(error)))?;
        println!("{note}");
        if demo::load_demo_data_if_empty(store).await.map_err(failed)? {
            println!("demo data loaded: {}", store_counts(store).await?);
        } else {
            println!("the database already holds patients; demo data not loaded");
        }
    }
    if let Some(patients) = args.synthetic {
        let options = SyntheticOptions {
            patients,
            rng_seed: args.rng_seed,
        };
        let bar = ProgressBar::new(patients).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} patients ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let started = Instant::now();
        let written = load_synthetic(store, options, |done| bar.set_position(done))
            .await
            .map_err(failed)?;
        bar.finish_and_clear();
        println!(
            "synthetic data loaded in {:.1} s (rng seed {}): {written}",
            started.elapsed().as_secs_f64(),
            args.rng_seed
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn import(store: &Store, args: ImportArgs) -> Result<ExitCode, CliError> {
    store.migrate().await?;
    let report = import::import_file(store, &args.file, args.merge)
        .await
        .map_err(failed)?;
    println!("imported: {}", report.inserted);
    if args.merge {
        println!("already present, kept unchanged: {}", report.skipped);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn export(store: &Store, args: ExportArgs) -> Result<ExitCode, CliError> {
    store.migrate().await?;
    let counts = export::export_file(store, &args.file)
        .await
        .map_err(failed)?;
    println!("exported to {}: {counts}", args.file.display());
    Ok(ExitCode::SUCCESS)
}

async fn store_counts(store: &crate::store::Store) -> Result<String, CliError> {
    let counts = store.table_counts().await?;
    Ok(format!(
        "{} providers, {} patients, {} appointments, {} medications, {} allergies, {} vital signs, \
         {} lab results",
        counts.providers,
        counts.patients,
        counts.appointments,
        counts.medications,
        counts.allergies,
        counts.vital_signs,
        counts.lab_results
    ))
}
