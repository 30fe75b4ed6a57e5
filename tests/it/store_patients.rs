//! Patients in the store: lookups, updates, cascading deletes and the indexed search, on both engines.

use ehr_mcp::domain::clinical::PatientUpdate;
use ehr_mcp::store::patient_search::SearchTuning;
use ehr_mcp::store::patients::PatientSearch;
use ehr_mcp::store::{Store, StoreError};

use crate::store_fixtures::{add_patient, book, mrn, patient, provider};
use crate::support::TestDb;

fn search(term: &str, limit: u32) -> PatientSearch {
    PatientSearch {
        term: term.to_owned(),
        limit,
        cursor: None,
    }
}

async fn seed_people(db: &TestDb) {
    let people = [
        ("MRN001", "John", "Doe", "1985-06-15"),
        ("MRN002", "Jane", "Smith", "1990-03-22"),
        ("MRN003", "Johnny", "Appleseed", "1970-01-01"),
        ("MRN004", "Mary", "Johnson", "1985-06-15"),
        ("MRN005", "Ali", "Jo", "2001-12-31"),
        ("MRN010", "Percy", "O'Brien_x", "1960-07-04"),
    ];
    for (mrn_text, first, last, dob) in people {
        add_patient(&db.store, mrn_text, first, last, dob).await;
    }
}

async fn found(db: &TestDb, term: &str) -> Vec<String> {
    db.store
        .search_patients(&search(term, 100))
        .await
        .expect("search")
        .patients
        .into_iter()
        .map(|p| p.mrn.into_string())
        .collect()
}

#[tokio::test]
async fn patients_are_inserted_read_updated_and_deleted_with_their_records() {
    for db in TestDb::all().await {
        let store = &db.store;
        let john = patient("MRN001", "John", "Doe", "1985-06-15");
        store.insert_patient(&john).await.expect("insert");
        assert_eq!(store.patient(&mrn("mrn001")).await.expect("read"), john);
        assert_eq!(store.count_patients().await.expect("count"), 1);

        let duplicate = store.insert_patient(&john).await;
        assert!(
            matches!(&duplicate, Err(StoreError::Conflict { constraint }) if constraint.contains("mrn")),
            "{duplicate:?}"
        );

        let update = PatientUpdate {
            phone: Some("+1-555-9999".to_owned()),
            city: Some("Cambridge".to_owned()),
            ..PatientUpdate::default()
        };
        let updated = store
            .update_patient(&john.mrn, &update)
            .await
            .expect("update");
        assert_eq!(updated.phone.as_deref(), Some("+1-555-9999"));
        assert_eq!(updated.city.as_deref(), Some("Cambridge"));
        assert_eq!(updated.first_name, "John");
        assert!(matches!(
            store.update_patient(&mrn("MRN999"), &update).await,
            Err(StoreError::NotFound { what: "patient" })
        ));

        store
            .insert_provider(&provider(
                "1234567890",
                "Dr. Sarah Smith",
                "Internal Medicine",
                "Primary Care",
            ))
            .await
            .expect("provider");
        book(
            store,
            "APT001",
            "MRN001",
            "1234567890",
            "2025-12-05",
            "10:00 AM",
        )
        .await;
        store.delete_patient(&john.mrn).await.expect("delete");
        assert!(matches!(
            store.patient(&john.mrn).await,
            Err(StoreError::NotFound { what: "patient" })
        ));
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM appointments")
            .fetch_one(store.pool())
            .await
            .expect("count appointments");
        assert_eq!(left, 0, "appointments cascade with the patient");
        assert!(matches!(
            store.delete_patient(&john.mrn).await,
            Err(StoreError::NotFound { what: "patient" })
        ));
    }
}

#[tokio::test]
async fn search_matches_names_in_any_order_partially_and_case_insensitively() {
    for db in TestDb::all().await {
        seed_people(&db).await;
        assert_eq!(found(&db, "John Doe").await, ["MRN001"]);
        assert_eq!(found(&db, "doe john").await, ["MRN001"]);
        assert_eq!(found(&db, "Doe, J").await, ["MRN001"]);
        assert_eq!(found(&db, "ohn").await, ["MRN003", "MRN001", "MRN004"]);
        // John Doe is named exactly "John": he comes before the substring matches.
        assert_eq!(found(&db, "JOHN").await, ["MRN001", "MRN003", "MRN004"]);
        assert_eq!(found(&db, "mrn002").await, ["MRN002"]);
        assert_eq!(found(&db, "1985-06-15").await, ["MRN001", "MRN004"]);
        assert_eq!(found(&db, "smith jane").await, ["MRN002"]);
        assert!(found(&db, "nobody").await.is_empty());
        assert!(found(&db, "john smith").await.is_empty());
        // Wildcards are literal characters, not patterns.
        assert!(found(&db, "%").await.is_empty());
        assert!(found(&db, "o_b").await.is_empty());
        assert_eq!(found(&db, "n_x").await, ["MRN010"]);
        assert_eq!(found(&db, "O'Brien").await, ["MRN010"]);
    }
}

#[tokio::test]
async fn short_terms_match_name_and_mrn_prefixes() {
    for db in TestDb::all().await {
        seed_people(&db).await;
        // Ali Jo's last name is exactly "jo"; the prefix matches follow in name order.
        assert_eq!(
            found(&db, "jo").await,
            ["MRN005", "MRN003", "MRN001", "MRN004"]
        );
        assert_eq!(found(&db, "J D").await, ["MRN001"]);
        assert_eq!(found(&db, "ma").await, ["MRN004"]);
        assert_eq!(found(&db, "mr").await.len(), 6);
    }
}

#[tokio::test]
async fn search_pages_with_a_cursor_in_a_stable_order() {
    for db in TestDb::all().await {
        seed_people(&db).await;
        let mut seen = Vec::new();
        let mut request = search("", 2);
        loop {
            let page = db.store.search_patients(&request).await.expect("page");
            assert!(page.patients.len() <= 2);
            seen.extend(page.patients.iter().map(|p| p.last_name.clone()));
            match page.next_cursor {
                Some(cursor) => request.cursor = Some(cursor),
                None => break,
            }
        }
        assert_eq!(
            seen,
            ["Appleseed", "Doe", "Jo", "Johnson", "O'Brien_x", "Smith"]
        );

        let bad_cursor = PatientSearch {
            cursor: Some("garbage!".to_owned()),
            ..search("john", 10)
        };
        assert!(matches!(
            db.store.search_patients(&bad_cursor).await,
            Err(StoreError::Invalid {
                field: "cursor",
                ..
            })
        ));
        assert!(matches!(
            db.store.search_patients(&search("john", 0)).await,
            Err(StoreError::Invalid { field: "limit", .. })
        ));
        assert!(matches!(
            db.store.search_patients(&search("john", 101)).await,
            Err(StoreError::Invalid { field: "limit", .. })
        ));
    }
}

/// Every page of `term`, `limit` at a time, as MRNs in the order served.
async fn all_pages(db: &TestDb, term: &str, limit: u32) -> Vec<String> {
    pages_of(&db.store, term, limit).await
}

async fn pages_of(store: &Store, term: &str, limit: u32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut request = search(term, limit);
    loop {
        let page = store.search_patients(&request).await.expect("page");
        assert!(page.patients.len() <= limit as usize);
        seen.extend(page.patients.into_iter().map(|p| p.mrn.into_string()));
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => return seen,
        }
    }
}

/// The broad plan (exact matches merged from index ranges, then a walk of the name index, falling back
/// to sorting when its window runs out) serves exactly the pages of the sorted plan, for every term class.
#[tokio::test]
async fn every_search_plan_serves_the_same_pages() {
    for db in TestDb::all().await {
        let firsts = [
            "John", "Johnny", "Jo", "Mary Ann", "Olivia", "Ward", "Jürgen",
        ];
        let lasts = [
            "Doe", "Johnson", "Ward", "Smith", "Jo", "Olivia", "John", "Müller",
        ];
        let mut number = 200;
        for (index, first) in firsts.iter().enumerate() {
            for last in lasts.iter().skip(index % 2) {
                number += 1;
                add_patient(
                    &db.store,
                    &format!("MRN{number}"),
                    first,
                    last,
                    "1980-01-01",
                )
                .await;
            }
        }
        // Same names, another MRN: the MRN orders them.
        add_patient(&db.store, "MRN100", "John", "Doe", "1981-01-01").await;
        add_patient(&db.store, "JOHN", "Olivia", "Ward", "1981-01-01").await;
        let sorted = db.store.clone().with_search_tuning(SearchTuning {
            broad_matches: u32::MAX,
            walk_window: 1,
        });
        let walked = db.store.clone().with_search_tuning(SearchTuning {
            broad_matches: 1,
            walk_window: 1_000_000,
        });
        let windowed = db.store.clone().with_search_tuning(SearchTuning {
            broad_matches: 0,
            walk_window: 3,
        });
        let terms = [
            "jo",
            "ohn",
            "john",
            "JOHN",
            "Olivia Ward",
            "ward, olivia",
            "mary ann smith",
            "ol wa",
            "john d",
            "j d",
            "mrn2",
            "MRN205",
            "mül",
            "nothing",
            "",
        ];
        for term in terms {
            for limit in [1, 3, 100] {
                let expected = pages_of(&sorted, term, limit).await;
                assert_eq!(
                    pages_of(&walked, term, limit).await,
                    expected,
                    "{term:?} {limit}"
                );
                assert_eq!(
                    pages_of(&windowed, term, limit).await,
                    expected,
                    "{term:?} {limit}"
                );
            }
        }
        // The reference is what the rules say: "john" finds the 16 first names John and Johnny, 10 last
        // names John and Johnson of others, and the MRN JOHN; exact matches first, John Doe leading.
        let john = pages_of(&sorted, "john", 100).await;
        assert_eq!(john.len(), 27, "{john:?}");
        assert_eq!(john[..2], ["MRN100", "MRN201"], "{john:?}");
    }
}

#[tokio::test]
async fn exact_names_rank_before_substring_matches_on_every_page() {
    for db in TestDb::all().await {
        let people = [
            ("MRN101", "Olivia", "Edwards"),
            ("MRN102", "Olivia", "Howard"),
            ("MRN103", "Olivia", "Ward"),
            ("MRN104", "Oliviana", "Ward"),
            ("MRN105", "Olivia", "Warden"),
            ("MRN106", "Ward", "Olivia"),
            ("MRN107", "Olivia", "Ward"),
            ("MRN108", "Mary Ann", "Smith"),
            ("MRN109", "Mary", "Annsmith"),
        ];
        for (mrn_text, first, last) in people {
            add_patient(&db.store, mrn_text, first, last, "1980-01-01").await;
        }
        let olivia_ward = [
            // Exact: both tokens are whole names (either order), then name order and MRN.
            "MRN106", "MRN103", "MRN107", // Substring matches in name order.
            "MRN101", "MRN102", "MRN104", "MRN105",
        ];
        let ward = [
            "MRN106", "MRN103", "MRN107", "MRN104", "MRN101", "MRN102", "MRN105",
        ];
        for limit in [1, 2, 3, 100] {
            assert_eq!(
                all_pages(&db, "Olivia Ward", limit).await,
                olivia_ward,
                "limit {limit}"
            );
            assert_eq!(
                all_pages(&db, "ward, olivia", limit).await,
                olivia_ward,
                "limit {limit}"
            );
            assert_eq!(all_pages(&db, "WARD", limit).await, ward, "limit {limit}");
            // The whole term equal to "first last" counts even when the first name has a space.
            assert_eq!(
                all_pages(&db, "mary ann smith", limit).await,
                ["MRN108", "MRN109"],
                "limit {limit}"
            );
        }
        // An exact MRN is exact too; short-token (prefix) searches rank the same way.
        assert_eq!(found(&db, "mrn105").await, ["MRN105"]);
        assert_eq!(
            all_pages(&db, "ol wa", 2).await,
            ["MRN106", "MRN103", "MRN107", "MRN104", "MRN105"]
        );
    }
}

/// The search's query plan: the trigram index for long tokens, b-tree ranges for short ones, the dob
/// index for dates, and never a full scan of `patients`. PostgreSQL's planner prefers a sequential scan
/// on a tiny table, so there the test disables it to show the index can serve each search.
#[tokio::test]
async fn search_is_served_by_indexes_on_every_engine() {
    for db in TestDb::all().await {
        seed_people(&db).await;
        let store = match db.engine() {
            ehr_mcp::store::Engine::Sqlite => db.store.clone(),
            ehr_mcp::store::Engine::Postgres => {
                let name = db.url.rsplit('/').next().expect("database name");
                // The name is generated by the test support from digits and hex only.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER DATABASE {name} SET enable_seqscan = off"
                )))
                .execute(db.store.pool())
                .await
                .expect("disable seqscan");
                ehr_mcp::store::Store::connect(&ehr_mcp::store::StoreOptions::new(db.url.clone()))
                    .await
                    .expect("reconnect")
            }
        };
        for (term, index) in [
            ("John Doe", "patients_search"),
            ("doe, j", "patients_search"),
            ("jo", "patients_first"),
            ("1985-06-15", "patients_dob"),
        ] {
            let plan = store
                .explain_patient_search(&search(term, 20))
                .await
                .expect("explain")
                .join("\n");
            assert!(plan.contains(index), "{term:?} uses {index}:\n{plan}");
            let full_scan = plan.lines().any(|line| {
                let line = line.trim_start_matches(['-', '>', ' ']);
                line == "SCAN p" || line.starts_with("Seq Scan on patients")
            });
            assert!(!full_scan, "{term:?} scans the whole table:\n{plan}");
        }
    }
}
