//! Booking and cancelling appointments: the database refuses a second active booking of a slot,
//! even when twenty bookings race, on both engines.

use std::sync::Arc;

use ehr_mcp::domain::clinical::AppointmentStatus;
use ehr_mcp::store::StoreError;
use ehr_mcp::store::appointments::AppointmentFilter;

use crate::store_fixtures::{add_patient, appointment, book, mrn, npi, provider, record_id};
use crate::support::TestDb;

async fn seed(db: &TestDb) {
    add_patient(&db.store, "MRN001", "John", "Doe", "1985-06-15").await;
    add_patient(&db.store, "MRN002", "Jane", "Smith", "1990-03-22").await;
    db.store
        .insert_provider(&provider(
            "1234567890",
            "Dr. Sarah Smith",
            "Internal Medicine",
            "Primary Care",
        ))
        .await
        .expect("provider");
    db.store
        .insert_provider(&provider(
            "2345678901",
            "Dr. Michael Chen",
            "Cardiology",
            "Cardiology",
        ))
        .await
        .expect("provider");
}

fn is_slot_conflict(result: &Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict { constraint }) if constraint == "appointments_active_slot")
}

#[tokio::test]
async fn a_slot_is_booked_once_until_cancelled() {
    for db in TestDb::all().await {
        seed(&db).await;
        let store = &db.store;
        let booked = book(
            store,
            "APT001",
            "MRN001",
            "1234567890",
            "2025-12-05",
            "10:00 AM",
        )
        .await;
        assert_eq!(
            booked.time.to_string(),
            "10:00 AM",
            "the written time is kept"
        );
        assert_eq!(booked.provider_name.as_deref(), Some("Dr. Sarah Smith"));
        assert_eq!(booked.status, AppointmentStatus::Scheduled);

        // The same slot written in 24-hour form, by another patient.
        let second = store
            .book_appointment(&appointment(
                "APT002",
                "MRN002",
                "1234567890",
                "2025-12-05",
                "10:00",
            ))
            .await;
        assert!(is_slot_conflict(&second), "{second:?}");
        // Another provider, or another time, is free.
        book(
            store,
            "APT003",
            "MRN002",
            "2345678901",
            "2025-12-05",
            "10:00",
        )
        .await;
        book(
            store,
            "APT004",
            "MRN002",
            "1234567890",
            "2025-12-05",
            "2:00 PM",
        )
        .await;

        let cancelled = store
            .cancel_appointment(&record_id("APT001"), Some("patient request"))
            .await
            .expect("cancel");
        assert_eq!(cancelled.status, AppointmentStatus::Cancelled);
        assert_eq!(
            cancelled.notes.as_deref(),
            Some("Cancelled: patient request")
        );
        let again = store.cancel_appointment(&record_id("APT001"), None).await;
        assert!(
            matches!(&again, Err(StoreError::Conflict { constraint }) if constraint == "appointment_status"),
            "{again:?}"
        );
        assert!(matches!(
            store.cancel_appointment(&record_id("APT999"), None).await,
            Err(StoreError::NotFound {
                what: "appointment"
            })
        ));
        // The freed slot can be booked again.
        book(
            store,
            "APT005",
            "MRN002",
            "1234567890",
            "2025-12-05",
            "10:00",
        )
        .await;
    }
}

#[tokio::test]
async fn booking_refuses_unknown_people_duplicate_ids_and_bad_times() {
    for db in TestDb::all().await {
        seed(&db).await;
        let store = &db.store;
        assert!(matches!(
            store
                .book_appointment(&appointment(
                    "APT001",
                    "MRN404",
                    "1234567890",
                    "2025-12-05",
                    "10:00"
                ))
                .await,
            Err(StoreError::NotFound { what: "patient" })
        ));
        assert!(matches!(
            store
                .book_appointment(&appointment(
                    "APT001",
                    "MRN001",
                    "9999999999",
                    "2025-12-05",
                    "10:00"
                ))
                .await,
            Err(StoreError::NotFound { what: "provider" })
        ));
        // An impossible time or date cannot reach the store: its domain type refuses it.
        assert!("25:00".parse::<ehr_mcp::domain::time::TimeOfDay>().is_err());
        assert!(
            "13:00 PM"
                .parse::<ehr_mcp::domain::time::TimeOfDay>()
                .is_err()
        );
        assert!("2025-02-30".parse::<ehr_mcp::domain::time::Date>().is_err());
        book(
            store,
            "APT001",
            "MRN001",
            "1234567890",
            "2025-12-05",
            "10:00",
        )
        .await;
        let duplicate_id = store
            .book_appointment(&appointment(
                "APT001",
                "MRN001",
                "1234567890",
                "2025-12-06",
                "10:00",
            ))
            .await;
        assert!(
            matches!(&duplicate_id, Err(StoreError::Conflict { constraint }) if constraint.contains("appointment_id")),
            "{duplicate_id:?}"
        );
    }
}

#[tokio::test]
async fn twenty_concurrent_bookings_of_one_slot_yield_exactly_one() {
    for db in TestDb::all().await {
        seed(&db).await;
        let store = Arc::new(db.store.clone());
        let attempts = (0..20).map(|index| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mrn_text = if index % 2 == 0 { "MRN001" } else { "MRN002" };
                store
                    .book_appointment(&appointment(
                        &format!("APTRACE{index:02}"),
                        mrn_text,
                        "1234567890",
                        "2026-01-15",
                        if index % 3 == 0 { "9:30 AM" } else { "09:30" },
                    ))
                    .await
            })
        });
        let results = futures::future::join_all(attempts).await;
        let mut booked = 0;
        for result in results {
            let result = result.expect("task");
            if result.is_ok() {
                booked += 1;
            } else {
                assert!(is_slot_conflict(&result), "{result:?}");
            }
        }
        assert_eq!(booked, 1, "exactly one booking wins on {:?}", db.engine());
    }
}

#[tokio::test]
async fn appointment_lists_filter_and_order_by_date_and_slot() {
    for db in TestDb::all().await {
        seed(&db).await;
        let store = &db.store;
        for (id, npi_text, date, time) in [
            ("APT003", "1234567890", "2025-12-06", "9:00 AM"),
            ("APT001", "1234567890", "2025-12-05", "2:00 PM"),
            ("APT002", "2345678901", "2025-12-05", "09:15"),
            ("APT004", "2345678901", "2025-11-01", "11:00"),
        ] {
            book(store, id, "MRN001", npi_text, date, time).await;
        }
        store
            .cancel_appointment(&record_id("APT003"), None)
            .await
            .expect("cancel");
        let all = AppointmentFilter {
            limit: 100,
            ..AppointmentFilter::default()
        };
        let ids = |list: Vec<ehr_mcp::domain::clinical::Appointment>| {
            list.into_iter()
                .map(|a| a.appointment_id.to_string())
                .collect::<Vec<_>>()
        };
        let mrn001 = mrn("MRN001");
        assert_eq!(
            ids(store.appointments(&mrn001, &all).await.expect("list")),
            ["APT004", "APT002", "APT001", "APT003"]
        );
        let scheduled_from = AppointmentFilter {
            status: Some(AppointmentStatus::Scheduled),
            from_date: Some("2025-12-01".parse().unwrap()),
            ..all.clone()
        };
        assert_eq!(
            ids(store
                .appointments(&mrn001, &scheduled_from)
                .await
                .expect("list")),
            ["APT002", "APT001"]
        );
        let by_provider = AppointmentFilter {
            provider_npi: Some(npi("2345678901")),
            limit: 1,
            ..all.clone()
        };
        assert_eq!(
            ids(store
                .appointments(&mrn001, &by_provider)
                .await
                .expect("list")),
            ["APT004"]
        );
        assert!(
            store
                .appointments(&mrn("MRN002"), &all)
                .await
                .expect("empty list")
                .is_empty()
        );
        assert!(matches!(
            store.appointments(&mrn("MRN404"), &all).await,
            Err(StoreError::NotFound { what: "patient" })
        ));
        assert_eq!(
            store
                .appointment(&record_id("APT002"))
                .await
                .expect("one")
                .provider_name
                .as_deref(),
            Some("Dr. Michael Chen")
        );
    }
}

#[tokio::test]
async fn status_changes_keep_the_one_active_booking_rule() {
    for db in TestDb::all().await {
        seed(&db).await;
        let store = &db.store;
        book(
            store,
            "APT001",
            "MRN001",
            "1234567890",
            "2025-12-05",
            "10:00",
        )
        .await;
        let checked_in = store
            .set_appointment_status(&record_id("APT001"), AppointmentStatus::CheckedIn)
            .await
            .expect("check in");
        assert_eq!(checked_in.status, AppointmentStatus::CheckedIn);
        store
            .set_appointment_status(&record_id("APT001"), AppointmentStatus::NoShow)
            .await
            .expect("no-show");
        book(
            store,
            "APT002",
            "MRN002",
            "1234567890",
            "2025-12-05",
            "10:00 AM",
        )
        .await;
        let back = store
            .set_appointment_status(&record_id("APT001"), AppointmentStatus::Scheduled)
            .await;
        assert!(is_slot_conflict(&back), "{back:?}");
        assert!(matches!(
            store
                .set_appointment_status(&record_id("APT404"), AppointmentStatus::Completed)
                .await,
            Err(StoreError::NotFound {
                what: "appointment"
            })
        ));
    }
}
