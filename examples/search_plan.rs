//! Prints the query plan and timing of a patient search against `DATABASE_URL`:
//! `DATABASE_URL=sqlite://big.db cargo run --release --example search_plan -- "John Doe" jo 1985-06-15`.
//! Used for the plans in `docs/STORAGE.md` and the search figures in `BENCHMARKS.md`.

use std::time::Instant;

use ehr_mcp::store::patients::PatientSearch;
use ehr_mcp::store::{Store, StoreOptions};

/// Timed searches per term.
const RUNS: usize = 100;

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
        let page = store.search_patients(&search).await?;
        // Warm, then `RUNS` timed searches one after another: p50 and p99.
        let mut millis = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            store.search_patients(&search).await?;
            millis.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        millis.sort_by(f64::total_cmp);
        println!(
            "\n{} results on the first page; {RUNS} warm runs: p50 {:.2} ms, p99 {:.2} ms",
            page.patients.len(),
            millis[RUNS / 2],
            millis[RUNS * 99 / 100]
        );
    }
    store.close().await?;
    Ok(())
}
