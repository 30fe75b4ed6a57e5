//! Import, export, demo and synthetic data sets, on both engines.

use ehr_mcp::dataset::demo::{demo_dataset, load_demo_data_if_empty};
use ehr_mcp::dataset::export::export_to_writer;
use ehr_mcp::dataset::import::{import_dataset, import_json};
use ehr_mcp::dataset::synthetic::{SyntheticOptions, load_synthetic, synthetic_dataset};
use ehr_mcp::dataset::{DatasetError, RecordCounts};
use ehr_mcp::store::Store;
use ehr_mcp::store::dump::TableCounts;
use ehr_mcp::store::patients::PatientSearch;
use serde_json::Value;

use crate::store_fixtures::mrn;
use crate::support::TestDb;

/// The earlier system's export (the earlier system's `database_export.json`, kept in the repository).
const SEED_EXPORT: &str = include_str!("../fixtures/seed_export.json");

const SEED_COUNTS: TableCounts = TableCounts {
    providers: 49,
    patients: 221,
    appointments: 108,
    medications: 260,
    allergies: 117,
    vital_signs: 361,
    lab_results: 207,
};

async fn export_bytes(store: &Store) -> Vec<u8> {
    let mut bytes = Vec::new();
    export_to_writer(store, &mut bytes).await.expect("export");
    bytes
}

/// A fresh database of the same engine as `db`.
async fn fresh_like(db: &TestDb) -> TestDb {
    match db.engine() {
        ehr_mcp::store::Engine::Sqlite => TestDb::sqlite().await,
        ehr_mcp::store::Engine::Postgres => TestDb::postgres().await.expect("postgres"),
    }
}

/// The file with one record changed by `edit`.
fn seed_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut root: Value = serde_json::from_str(SEED_EXPORT).expect("seed json");
    edit(&mut root);
    serde_json::to_vec(&root).expect("json")
}

#[tokio::test]
async fn the_seed_export_imports_exactly_and_round_trips() {
    for db in TestDb::all().await {
        let report = import_json(&db.store, SEED_EXPORT.as_bytes(), false)
            .await
            .expect("import seed");
        assert_eq!(report.skipped, RecordCounts::default());
        assert_eq!(db.store.table_counts().await.expect("counts"), SEED_COUNTS);

        let first = export_bytes(&db.store).await;
        let again = fresh_like(&db).await;
        import_json(&again.store, &first, false)
            .await
            .expect("import export");
        let second = export_bytes(&again.store).await;
        assert_eq!(
            String::from_utf8_lossy(&first),
            String::from_utf8_lossy(&second),
            "export(import(export)) is identical on {:?}",
            db.engine()
        );

        // Field for field, the export holds the seed's records (plus the ids the earlier format lacked).
        let seed: Value = serde_json::from_str(SEED_EXPORT).expect("seed");
        let mut exported: Value = serde_json::from_slice(&first).expect("export json");
        for (section, id_key) in [("allergies", "allergy_id"), ("vitals", "vital_id")] {
            for record in exported[section].as_array_mut().expect("list") {
                let removed = record.as_object_mut().expect("object").remove(id_key);
                assert!(
                    removed.is_some_and(|id| id.is_string()),
                    "{section} carry {id_key}"
                );
            }
        }
        assert_eq!(exported, seed);
    }
}

#[tokio::test]
async fn a_bad_record_refuses_the_whole_file_and_names_record_and_field() {
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            seed_with(|root| root["appointments"][3]["patient_mrn"] = "MRN404".into()),
            "appointments[3]",
            "patient_mrn",
        ),
        (
            seed_with(|root| root["appointments"][5]["provider_npi"] = "5555555555".into()),
            "appointments[5]",
            "provider_npi",
        ),
        (
            seed_with(|root| root["patients"][7]["dob"] = "1985-02-30".into()),
            "patients[7]",
            "dob",
        ),
        (
            seed_with(|root| {
                let copy = root["patients"][0].clone();
                root["patients"].as_array_mut().expect("list").push(copy);
            }),
            "patients[221] (mrn MRN001)",
            "mrn",
        ),
        (
            seed_with(|root| root["labs"][2]["results_json"] = "[{\"component\": ".into()),
            "labs[2]",
            "results_json",
        ),
        (
            seed_with(|root| root["medications"][9]["status"] = "maybe".into()),
            "medications[9]",
            "status",
        ),
        (
            seed_with(|root| root["vitals"][4]["recorded_date"] = "yesterday".into()),
            "vitals[4]",
            "recorded_date",
        ),
        (
            seed_with(|root| root["appointments"][0]["time"] = "25:99".into()),
            "appointments[0] (appointment_id APT001)",
            "time",
        ),
        (
            seed_with(|root| root["vitals"][1]["heart_rate"] = "fast".into()),
            "vitals[1]",
            "heart_rate",
        ),
        // The import reads every field through the same domain type a tool argument does.
        (
            seed_with(|root| root["patients"][2]["dob"] = "+10000-01-01".into()),
            "patients[2]",
            "dob",
        ),
        (
            seed_with(|root| root["allergies"][1]["onset_date"] = "-0001-01-01".into()),
            "allergies[1]",
            "onset_date",
        ),
        (
            seed_with(|root| root["appointments"][2]["time"] = "13:00 PM".into()),
            "appointments[2]",
            "time",
        ),
        (
            seed_with(|root| root["patients"][4]["gender"] = "robot".into()),
            "patients[4]",
            "gender",
        ),
        (
            seed_with(|root| root["patients"][5]["last_name"] = "Do\u{0}e".into()),
            "patients[5]",
            "last_name",
        ),
        (
            seed_with(|root| root["medications"][6]["notes"] = "x".repeat(1001).into()),
            "medications[6]",
            "notes",
        ),
    ];
    for db in TestDb::all().await {
        for (file, record, field) in &cases {
            let error = import_json(&db.store, file, false)
                .await
                .expect_err("bad file refused");
            let message = error.to_string();
            assert!(matches!(error, DatasetError::Invalid(_)), "{message}");
            assert!(message.contains(record), "{message} names {record}");
            assert!(
                message.contains(&format!("field {field}")),
                "{message} names {field}"
            );
            assert_eq!(
                db.store.table_counts().await.expect("counts"),
                TableCounts::default(),
                "nothing written"
            );
        }
        let error = import_json(&db.store, b"{not json", false).await;
        assert!(matches!(error, Err(DatasetError::Json(_))));
    }
}

#[tokio::test]
async fn importing_into_a_database_with_data_needs_merge_which_adds_only_new_records() {
    for db in TestDb::all().await {
        let store = &db.store;
        load_demo_data_if_empty(store).await.expect("demo");
        let before = store.table_counts().await.expect("counts");
        let refused = import_json(store, SEED_EXPORT.as_bytes(), false).await;
        assert!(
            matches!(refused, Err(DatasetError::NotEmpty { patients: 30, .. })),
            "{refused:?}"
        );
        assert_eq!(store.table_counts().await.expect("counts"), before);

        // The demo set shares MRN001, MRN002, APT001… and some NPIs with the seed: those are kept as stored.
        let report = import_json(store, SEED_EXPORT.as_bytes(), true)
            .await
            .expect("merge");
        assert!(
            report.skipped.patients >= 2 && report.skipped.providers >= 1,
            "{report:?}"
        );
        assert_eq!(
            store
                .patient(&mrn("MRN002"))
                .await
                .expect("kept")
                .first_name,
            "Sarah"
        );
        let merged = store.table_counts().await.expect("counts");
        assert_eq!(
            merged.patients as u64,
            before.patients as u64 + report.inserted.patients
        );
        // Merging the same file again adds nothing: allergies and vitals get content-derived ids.
        let again = import_json(store, SEED_EXPORT.as_bytes(), true)
            .await
            .expect("merge again");
        assert_eq!(again.inserted, RecordCounts::default());
        assert_eq!(store.table_counts().await.expect("counts"), merged);
    }
}

#[tokio::test]
async fn demo_data_has_what_the_earlier_clients_expect_and_loads_once() {
    for db in TestDb::all().await {
        let store = &db.store;
        assert!(load_demo_data_if_empty(store).await.expect("load"));
        assert!(!load_demo_data_if_empty(store).await.expect("second load"));
        let john = store.patient(&mrn("MRN001")).await.expect("MRN001");
        assert_eq!(
            (
                john.first_name.as_str(),
                john.last_name.as_str(),
                john.dob.to_string().as_str()
            ),
            ("John", "Doe", "1985-06-15")
        );
        for patient in ["MRN001", "MRN002"] {
            let patient = mrn(patient);
            let filter = ehr_mcp::store::appointments::AppointmentFilter {
                limit: 50,
                ..Default::default()
            };
            assert!(
                !store
                    .appointments(&patient, &filter)
                    .await
                    .expect("appointments")
                    .is_empty()
            );
            assert!(
                !store
                    .medications(&patient, None)
                    .await
                    .expect("medications")
                    .is_empty()
            );
            assert!(
                !store
                    .vital_signs(&patient, 10)
                    .await
                    .expect("vitals")
                    .is_empty()
            );
            assert!(
                !store
                    .lab_results(&patient, None, 10)
                    .await
                    .expect("labs")
                    .is_empty()
            );
        }
        assert!(
            !store
                .allergies(&mrn("MRN002"), None)
                .await
                .expect("allergies")
                .is_empty()
        );
        let found = store
            .search_patients(&PatientSearch {
                term: "John".to_owned(),
                limit: 20,
                cursor: None,
            })
            .await
            .expect("search");
        assert!(found.patients.iter().any(|p| p.mrn.as_str() == "MRN001"));
        assert_eq!(store.count_patients().await.expect("count"), 30);
    }
    assert_eq!(
        demo_dataset().expect("demo"),
        demo_dataset().expect("demo again")
    );
}

#[tokio::test]
async fn synthetic_data_is_deterministic_complete_and_loads_on_every_engine() {
    let options = SyntheticOptions {
        patients: 300,
        rng_seed: 7,
    };
    let expected = synthetic_dataset(options);
    assert_eq!(expected, synthetic_dataset(options), "same seed, same data");
    assert_ne!(
        expected,
        synthetic_dataset(SyntheticOptions {
            rng_seed: 8,
            ..options
        }),
        "another seed, other data"
    );
    let counts = expected.counts();
    assert_eq!(counts.patients, 300);
    for (kind, count) in [
        ("appointments", counts.appointments),
        ("medications", counts.medications),
        ("allergies", counts.allergies),
        ("vitals", counts.vitals),
        ("labs", counts.labs),
    ] {
        assert!(count > 100, "{kind}: {count}");
    }

    let mut exports = Vec::new();
    for db in TestDb::all().await {
        let mut seen = Vec::new();
        let written = load_synthetic(&db.store, options, |done| seen.push(done))
            .await
            .expect("load");
        assert_eq!(written, counts);
        assert_eq!(seen.last(), Some(&300));
        if db.engine() == ehr_mcp::store::Engine::Postgres {
            // The planner has statistics at once (-1: never analysed), not only once autovacuum runs.
            let rows: f32 = sqlx::query_scalar(
                "SELECT reltuples FROM pg_class WHERE relname = 'patients' AND relkind = 'r'",
            )
            .fetch_one(db.store.pool())
            .await
            .expect("pg_class");
            assert_eq!(rows, 300.0, "patients analysed after the load");
        }
        assert!(matches!(
            load_synthetic(&db.store, options, |_| {}).await,
            Err(DatasetError::SyntheticPresent)
        ));
        // What was loaded is what the generator made: importing the in-memory set elsewhere exports the same.
        let reference = fresh_like(&db).await;
        import_dataset(&reference.store, &expected, false)
            .await
            .expect("import generated");
        let loaded = export_bytes(&db.store).await;
        assert_eq!(loaded, export_bytes(&reference.store).await);
        exports.push(loaded);
    }
    assert!(
        exports.windows(2).all(|pair| pair[0] == pair[1]),
        "engines agree"
    );
}

/// A provider's generated visits never overlap: 45- and 60-minute visits take every half hour they
/// cover, so the database's overlap constraint (migration 0003) accepts a large synthetic set.
#[tokio::test]
async fn large_synthetic_sets_book_no_overlapping_visits() {
    let options = SyntheticOptions {
        patients: 3000,
        rng_seed: 42,
    };
    for db in TestDb::all().await {
        let written = load_synthetic(&db.store, options, |_| {})
            .await
            .expect("3,000 synthetic patients load without an overlapping booking");
        assert_eq!(written.patients, 3000);
        assert!(written.appointments > 1000, "{}", written.appointments);
    }
}
