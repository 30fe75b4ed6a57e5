//! Overlapping bookings of one provider are refused by the database on both engines (PostgreSQL:
//! exclusion constraint; SQLite: trigger), reported as the same `appointments_active_slot` conflict as an
//! exact double booking, also when bookings race; a cancelled booking frees its minutes.

use std::sync::Arc;

use ehr_mcp::domain::clinical::Appointment;
use ehr_mcp::store::StoreError;

use crate::store_fixtures::{add_patient, appointment, provider, record_id};
use crate::support::TestDb;

async fn seed(db: &TestDb) {
    for (mrn, first) in [("MRN001", "John"), ("MRN002", "Jane")] {
        add_patient(&db.store, mrn, first, "Doe", "1985-06-15").await;
    }
    for (npi, name) in [
        ("1234567890", "Dr. Sarah Smith"),
        ("2345678901", "Dr. Chen"),
    ] {
        db.store
            .insert_provider(&provider(npi, name, "Internal Medicine", "Primary Care"))
            .await
            .expect("provider");
    }
}

fn booking(id: &str, mrn: &str, npi: &str, time: &str, minutes: i64) -> Appointment {
    Appointment {
        duration_minutes: minutes,
        ..appointment(id, mrn, npi, "2026-03-02", time)
    }
}

fn is_slot_conflict<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict { constraint }) if constraint == "appointments_active_slot")
}

#[tokio::test]
async fn an_overlapping_booking_of_one_provider_is_refused() {
    for db in TestDb::all().await {
        seed(&db).await;
        let store = &db.store;
        store
            .book_appointment(&booking("APT1", "MRN001", "1234567890", "09:00", 60))
            .await
            .expect("09:00 for 60 minutes");
        for (id, time) in [("APT2", "09:30"), ("APT3", "08:45"), ("APT4", "9:59 AM")] {
            let overlap = store
                .book_appointment(&booking(id, "MRN002", "1234567890", time, 30))
                .await;
            assert!(
                is_slot_conflict(&overlap),
                "{time} on {:?}: {overlap:?}",
                db.engine()
            );
        }
        // Adjacent minutes, and another provider at the same time, are free.
        store
            .book_appointment(&booking("APT5", "MRN002", "1234567890", "10:00", 30))
            .await
            .expect("10:00 follows 09:00-10:00");
        store
            .book_appointment(&booking("APT6", "MRN002", "1234567890", "08:30", 30))
            .await
            .expect("08:30-09:00 ends as 09:00 starts");
        store
            .book_appointment(&booking("APT7", "MRN002", "2345678901", "09:30", 30))
            .await
            .expect("another provider");
        // Cancelling frees the minutes.
        store
            .cancel_appointment(&record_id("APT1"), Some("test"))
            .await
            .expect("cancel");
        store
            .book_appointment(&booking("APT8", "MRN002", "1234567890", "09:30", 30))
            .await
            .expect("09:30 after the 09:00 booking was cancelled");
    }
}

#[tokio::test]
async fn racing_overlapping_bookings_yield_exactly_one() {
    for db in TestDb::all().await {
        seed(&db).await;
        let store = Arc::new(db.store.clone());
        // Twenty bookings at different starts, all overlapping 10:00-10:20.
        let attempts = (0..20).map(|index| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mrn = if index % 2 == 0 { "MRN001" } else { "MRN002" };
                let time = format!("10:{index:02}");
                store
                    .book_appointment(&booking(
                        &format!("APTRACE{index:02}"),
                        mrn,
                        "1234567890",
                        &time,
                        20,
                    ))
                    .await
            })
        });
        let mut booked = 0;
        for result in futures::future::join_all(attempts).await {
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
