//! Providers, medications, allergies, vital signs and lab results in the store, on both engines.

use ehr_mcp::domain::clinical::{
    Allergy, AllergySeverity, AllergyStatus, LabResult, LabStatus, Medication, MedicationStatus,
    VitalSigns,
};
use ehr_mcp::domain::ids::{RecordId, RecordKind};
use ehr_mcp::store::StoreError;
use ehr_mcp::store::providers::ProviderSearch;

use crate::store_fixtures::{add_patient, book, mrn, npi, provider, record_id};
use crate::support::TestDb;

fn medication(id: &str, mrn_text: &str, name: &str, prescribed: &str) -> Medication {
    Medication {
        medication_id: record_id(id),
        patient_mrn: mrn(mrn_text),
        name: name.to_owned(),
        dosage: Some("10mg".to_owned()),
        frequency: Some("Once daily".to_owned()),
        route: Some("Oral".to_owned()),
        prescribed_date: Some(prescribed.parse().unwrap()),
        prescriber: Some("Dr. Sarah Smith".to_owned()),
        status: MedicationStatus::Active,
        refills_remaining: 3,
        notes: None,
    }
}

fn vitals(mrn_text: &str, recorded: &str, systolic: i64) -> VitalSigns {
    VitalSigns {
        vital_id: RecordId::generate(RecordKind::VitalSigns),
        patient_mrn: mrn(mrn_text),
        recorded_date: recorded.parse().unwrap(),
        systolic_bp: Some(systolic),
        diastolic_bp: Some(82),
        heart_rate: Some(72),
        temperature: Some(98.6),
        respiratory_rate: None,
        oxygen_saturation: Some(98),
        weight: Some(185.0),
        height: Some(70.0),
        bmi: Some(26.5),
        recorded_by: Some("Nurse Joy".to_owned()),
        notes: None,
    }
}

fn lab(id: &str, mrn_text: &str, ordered: &str, status: LabStatus) -> LabResult {
    LabResult {
        order_id: record_id(id),
        patient_mrn: mrn(mrn_text),
        test_name: "Complete Blood Count (CBC)".to_owned(),
        ordered_date: Some(ordered.parse().unwrap()),
        collected_date: None,
        resulted_date: None,
        status,
        ordered_by: Some("Dr. Sarah Smith".to_owned()),
        results_json: Some(r#"[{"component": "WBC", "value": "7.5", "unit": "K/uL", "reference": "4.5-11.0", "flag": "normal"}]"#.to_owned()),
    }
}

#[tokio::test]
async fn providers_are_searched_and_protected_by_their_appointments() {
    for db in TestDb::all().await {
        let store = &db.store;
        store
            .insert_provider(&provider(
                "1234567890",
                "Dr. Sarah Smith",
                "Internal Medicine",
                "Primary Care",
            ))
            .await
            .expect("provider");
        store
            .insert_provider(&provider(
                "2345678901",
                "Dr. Michael Chen",
                "Cardiology",
                "Heart Center",
            ))
            .await
            .expect("provider");
        let mut closed = provider(
            "3456789012",
            "Dr. Ana Lopez",
            "Pediatric Cardiology",
            "Children's",
        );
        closed.accepting_new_patients = false;
        store.insert_provider(&closed).await.expect("provider");
        let duplicate = store.insert_provider(&closed).await;
        assert!(
            matches!(&duplicate, Err(StoreError::Conflict { constraint }) if constraint.contains("npi")),
            "{duplicate:?}"
        );

        let names = |list: Vec<ehr_mcp::domain::clinical::Provider>| {
            list.into_iter().map(|p| p.name).collect::<Vec<_>>()
        };
        let everyone = ProviderSearch {
            limit: 50,
            ..ProviderSearch::default()
        };
        assert_eq!(
            names(store.search_providers(&everyone).await.expect("all")),
            ["Dr. Ana Lopez", "Dr. Michael Chen", "Dr. Sarah Smith"]
        );
        let cardiology = ProviderSearch {
            specialty: Some("CARDIO".to_owned()),
            ..everyone.clone()
        };
        assert_eq!(
            names(store.search_providers(&cardiology).await.expect("cardio")),
            ["Dr. Ana Lopez", "Dr. Michael Chen"]
        );
        let accepting = ProviderSearch {
            accepting_new_patients: Some(true),
            ..cardiology.clone()
        };
        assert_eq!(
            names(store.search_providers(&accepting).await.expect("accepting")),
            ["Dr. Michael Chen"]
        );
        let by_name = ProviderSearch {
            term: Some("smith".to_owned()),
            department: Some("primary".to_owned()),
            ..everyone.clone()
        };
        assert_eq!(
            names(store.search_providers(&by_name).await.expect("by name")),
            ["Dr. Sarah Smith"]
        );
        assert_eq!(
            store
                .provider(&npi("2345678901"))
                .await
                .expect("one")
                .specialty
                .as_deref(),
            Some("Cardiology")
        );

        add_patient(store, "MRN001", "John", "Doe", "1985-06-15").await;
        book(
            store,
            "APT001",
            "MRN001",
            "1234567890",
            "2025-12-05",
            "10:00",
        )
        .await;
        let busy = store.delete_provider(&npi("1234567890")).await;
        assert!(
            matches!(&busy, Err(StoreError::Conflict { constraint }) if constraint == "provider has appointments"),
            "{busy:?} on {:?}",
            db.engine()
        );
        store
            .delete_provider(&npi("2345678901"))
            .await
            .expect("delete free provider");
        assert!(matches!(
            store.provider(&npi("2345678901")).await,
            Err(StoreError::NotFound { what: "provider" })
        ));
        assert!(matches!(
            store.delete_provider(&npi("2345678901")).await,
            Err(StoreError::NotFound { what: "provider" })
        ));
    }
}

#[tokio::test]
async fn medications_are_listed_by_status_and_discontinued() {
    for db in TestDb::all().await {
        let store = &db.store;
        add_patient(store, "MRN001", "John", "Doe", "1985-06-15").await;
        store
            .insert_medication(&medication("MED001", "MRN001", "Lisinopril", "2023-03-15"))
            .await
            .expect("med");
        store
            .insert_medication(&medication("MED002", "MRN001", "Metformin", "2024-01-10"))
            .await
            .expect("med");
        assert!(matches!(
            store
                .insert_medication(&medication("MED003", "MRN404", "Aspirin", "2024-01-10"))
                .await,
            Err(StoreError::NotFound { what: "patient" })
        ));
        let john = mrn("MRN001");
        let listed = store.medications(&john, None).await.expect("list");
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].name, "Metformin", "newest prescription first");
        assert_eq!(
            listed[1],
            medication("MED001", "MRN001", "Lisinopril", "2023-03-15")
        );

        let stopped = store
            .discontinue_medication(&record_id("MED001"), Some("cough"))
            .await
            .expect("discontinue");
        assert_eq!(stopped.status, MedicationStatus::Discontinued);
        assert_eq!(stopped.notes.as_deref(), Some("Discontinued: cough"));
        assert!(matches!(
            store
                .discontinue_medication(&record_id("MED001"), None)
                .await,
            Err(StoreError::Conflict { .. })
        ));
        assert!(matches!(
            store
                .discontinue_medication(&record_id("MED404"), None)
                .await,
            Err(StoreError::NotFound { what: "medication" })
        ));
        let active = store
            .medications(&john, Some(MedicationStatus::Active))
            .await
            .expect("active");
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].name, "Metformin");
        assert_eq!(
            store
                .medication(&record_id("MED002"))
                .await
                .expect("one")
                .name,
            "Metformin"
        );
        assert!(matches!(
            store.medications(&mrn("MRN404"), None).await,
            Err(StoreError::NotFound { what: "patient" })
        ));
    }
}

#[tokio::test]
async fn allergies_vitals_and_labs_are_recorded_and_listed() {
    for db in TestDb::all().await {
        let store = &db.store;
        add_patient(store, "MRN002", "Jane", "Smith", "1990-03-22").await;
        let jane = mrn("MRN002");
        let allergy = Allergy {
            allergy_id: RecordId::generate(RecordKind::Allergy),
            patient_mrn: jane.clone(),
            allergen: "Penicillin".to_owned(),
            reaction: Some("Hives".to_owned()),
            severity: AllergySeverity::Severe,
            onset_date: Some("2010-05-10".parse().unwrap()),
            status: AllergyStatus::Active,
            notes: None,
        };
        store.insert_allergy(&allergy).await.expect("allergy");
        assert_eq!(store.allergies(&jane, None).await.expect("list"), [allergy]);
        assert!(
            store
                .allergies(&jane, Some(AllergyStatus::Resolved))
                .await
                .expect("none resolved")
                .is_empty()
        );

        let older = vitals("MRN002", "2025-11-01T08:00:00", 120);
        let newer = vitals("MRN002", "2025-11-21T08:09:31.946571", 130);
        store.insert_vital_signs(&older).await.expect("vitals");
        store.insert_vital_signs(&newer).await.expect("vitals");
        assert_eq!(
            store.vital_signs(&jane, 10).await.expect("vitals"),
            [newer.clone(), older]
        );
        assert_eq!(store.vital_signs(&jane, 1).await.expect("latest"), [newer]);

        store
            .insert_lab_result(&lab("LAB001", "MRN002", "2025-11-18", LabStatus::Final))
            .await
            .expect("lab");
        store
            .insert_lab_result(&lab("LAB002", "MRN002", "2025-11-20", LabStatus::Ordered))
            .await
            .expect("lab");
        let labs = store.lab_results(&jane, None, 10).await.expect("labs");
        assert_eq!(
            labs.iter()
                .map(|l| l.order_id.to_string())
                .collect::<Vec<_>>(),
            ["LAB002", "LAB001"]
        );
        let finals = store
            .lab_results(&jane, Some(LabStatus::Final), 10)
            .await
            .expect("final labs");
        assert_eq!(
            finals,
            [lab("LAB001", "MRN002", "2025-11-18", LabStatus::Final)]
        );
        assert_eq!(
            finals[0].components().expect("components")[0].component,
            "WBC"
        );
        assert!(matches!(
            store.lab_result(&record_id("LAB404")).await,
            Err(StoreError::NotFound { what: "lab order" })
        ));
        for missing in [
            store.allergies(&mrn("MRN404"), None).await.err(),
            store.vital_signs(&mrn("MRN404"), 5).await.err(),
            store.lab_results(&mrn("MRN404"), None, 5).await.err(),
        ] {
            assert!(matches!(
                missing,
                Some(StoreError::NotFound { what: "patient" })
            ));
        }
    }
}

#[tokio::test]
async fn lab_results_and_allergies_are_updated_in_place() {
    for db in TestDb::all().await {
        let store = &db.store;
        add_patient(store, "MRN002", "Jane", "Smith", "1990-03-22").await;
        let mut ordered = lab("LAB010", "MRN002", "2025-11-20", LabStatus::Ordered);
        ordered.results_json = None;
        store.insert_lab_result(&ordered).await.expect("order");

        let update = ehr_mcp::store::labs::LabResultUpdate {
            status: Some(LabStatus::Final),
            collected_date: Some("2025-11-21".parse().unwrap()),
            resulted_date: Some("2025-11-22".parse().unwrap()),
            results_json: Some(
                r#"[{"component": "TSH", "value": "2.1", "unit": "mIU/L", "reference": "0.4-4.0", "flag": "normal"}]"#
                    .to_owned(),
            ),
        };
        let resulted = store
            .update_lab_result(&record_id("LAB010"), &update)
            .await
            .expect("result");
        assert_eq!(resulted.status, LabStatus::Final);
        assert_eq!(
            resulted.resulted_date.map(|d| d.to_string()).as_deref(),
            Some("2025-11-22")
        );
        assert_eq!(
            resulted.ordered_date.map(|d| d.to_string()).as_deref(),
            Some("2025-11-20"),
            "kept"
        );
        assert_eq!(resulted.components().expect("components")[0].value, "2.1");
        assert_eq!(
            store.lab_result(&record_id("LAB010")).await.expect("read"),
            resulted
        );

        let garbage = ehr_mcp::store::labs::LabResultUpdate {
            results_json: Some("{not a list".to_owned()),
            ..Default::default()
        };
        assert!(matches!(
            store
                .update_lab_result(&record_id("LAB010"), &garbage)
                .await,
            Err(StoreError::Invalid {
                field: "results_json",
                ..
            })
        ));
        assert!(matches!(
            store
                .update_lab_result(&record_id("LAB404"), &Default::default())
                .await,
            Err(StoreError::NotFound { what: "lab order" })
        ));

        let allergy = Allergy {
            allergy_id: record_id("ALG010"),
            patient_mrn: mrn("MRN002"),
            allergen: "Latex".to_owned(),
            reaction: None,
            severity: AllergySeverity::Mild,
            onset_date: None,
            status: AllergyStatus::Active,
            notes: None,
        };
        store.insert_allergy(&allergy).await.expect("allergy");
        let resolved = store
            .set_allergy_status(&record_id("ALG010"), AllergyStatus::Resolved)
            .await
            .expect("resolve");
        assert_eq!(resolved.status, AllergyStatus::Resolved);
        assert_eq!(
            store.allergy(&record_id("ALG010")).await.expect("read"),
            resolved
        );
        assert!(matches!(
            store
                .set_allergy_status(&record_id("ALG404"), AllergyStatus::Resolved)
                .await,
            Err(StoreError::NotFound { what: "allergy" })
        ));
    }
}
