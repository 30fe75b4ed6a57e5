//! Prints the query plan and timing of a patient search against `DATABASE_URL`:
//! `DATABASE_URL=sqlite://big.db cargo run --release --example search_plan -- "John Doe" jo 1985-06-15`.
//! Used for the plans in `docs/STORAGE.md`.

use std::time::Instant;

use ehr_mcp::store::patients::PatientSearch;
use ehr_mcp::store::{Store, StoreOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")?;
    let store = Store::connect(&StoreOptions::new(url)).await?;
    println!(
        "{:?}, {} patients",
        store.engine(),
        store.count_patients().await?
    );
    for term in std::env::args().skip(1) {
        let search = PatientSearch {
            term: term.clone(),
            limit: 20,
            cursor: None,
        };
        println!("\n### {term:?}\n");
        for line in store.explain_patient_search(&search).await? {
            println!("    {line}");
        }
        store.search_patients(&search).await?;
        let started = Instant::now();
        let page = store.search_patients(&search).await?;
        println!(
            "\n{} results on the first page, {:.2} ms (warm)",
            page.patients.len(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    store.close().await?;
    Ok(())
}
