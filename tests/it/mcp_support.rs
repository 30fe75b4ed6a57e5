//! An MCP test server: the real application over a fresh database holding a small clinical data set
//! (patients MRN001 John Doe and MRN002 Mary Major, two providers, a record of every kind) and the demo
//! OAuth clients, whose credentials the tests read from the credentials file, as a user would.

use std::path::PathBuf;

use ehr_mcp::domain::clinical::{
    Allergy, AllergySeverity, AllergyStatus, LabResult, LabStatus, Medication, MedicationStatus,
    VitalSigns,
};
use serde_json::Value;

use crate::store_fixtures::{appointment, mrn, patient, provider, record_id};
use crate::support::{TestApp, TestDb, spawn_app_on};

pub const PROVIDER_NPI: &str = "1234567890";

/// Where the real client programs and their installed SDKs live (`tests/clients/setup.sh`).
pub fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs a client program; fails the test with its output unless it exits 0. Returns its JSON summary
/// (the last line of its stdout).
pub async fn run_client(mut command: tokio::process::Command) -> Value {
    command.kill_on_drop(true);
    let output = tokio::time::timeout(std::time::Duration::from_secs(180), command.output())
        .await
        .expect("client finished within 180 s")
        .expect("client started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| panic!("no JSON summary in:\n{stdout}"))
}

/// A running server plus the demo clients' credentials.
pub struct McpApp {
    pub app: TestApp,
    pub credentials: Vec<Value>,
    /// Holds the credentials file (removed on drop).
    pub _dir: tempfile::TempDir,
}

impl McpApp {
    /// The credentials entry of a demo client (`copilot-studio`, `patient-portal`, …).
    pub fn client(&self, client_id: &str) -> &Value {
        self.credentials
            .iter()
            .find(|c| c["client_id"] == client_id)
            .unwrap_or_else(|| panic!("no demo client {client_id}"))
    }

    /// Every demo client id.
    pub fn client_ids(&self) -> Vec<String> {
        self.credentials
            .iter()
            .filter_map(|c| c["client_id"].as_str().map(str::to_owned))
            .collect()
    }

    /// A token for a demo client from the OAuth token endpoint (client_secret_post).
    pub async fn token(&self, client_id: &str) -> String {
        let client = self.client(client_id);
        let response = reqwest::Client::new()
            .post(self.app.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", client["client_secret"].as_str().unwrap()),
            ])
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), 200, "token for {client_id}");
        let body: Value = response.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.app.port)
    }

    pub fn mcp_url(&self) -> String {
        self.app.url("/mcp")
    }

    /// One JSON-RPC request on `/mcp` (protocol 2025-11-25, no session) and its JSON answer.
    pub async fn rpc(&self, token: &str, method: &str, params: Value) -> Value {
        reqwest::Client::new()
            .post(self.mcp_url())
            .bearer_auth(token)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("MCP-Protocol-Version", "2025-11-25")
            .body(
                serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
                    .to_string(),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn shutdown(self) {
        self.app.shutdown().await;
    }
}

/// Loads the small clinical data set into `db`.
pub async fn load_clinical_fixture(db: &TestDb) {
    let store = &db.store;
    store
        .insert_provider(&provider(
            PROVIDER_NPI,
            "Dr. Sarah Smith",
            "Internal Medicine",
            "Primary Care",
        ))
        .await
        .unwrap();
    store
        .insert_provider(&provider(
            "2345678901",
            "Dr. Omar Haddad",
            "Cardiology",
            "Cardiology",
        ))
        .await
        .unwrap();
    store
        .insert_patient(&patient("MRN001", "John", "Doe", "1985-06-15"))
        .await
        .unwrap();
    store
        .insert_patient(&patient("MRN002", "Mary", "Major", "1990-03-22"))
        .await
        .unwrap();
    store
        .book_appointment(&appointment(
            "APT001",
            "MRN001",
            PROVIDER_NPI,
            "2099-12-05",
            "10:00 AM",
        ))
        .await
        .unwrap();
    store
        .insert_medication(&Medication {
            medication_id: record_id("MED001"),
            patient_mrn: mrn("MRN001"),
            name: "Lisinopril".into(),
            dosage: Some("10mg".into()),
            frequency: Some("Once daily".into()),
            route: Some("Oral".into()),
            prescribed_date: Some("2023-03-15".parse().unwrap()),
            prescriber: Some("Dr. Sarah Smith".into()),
            status: MedicationStatus::Active,
            refills_remaining: 3,
            notes: None,
        })
        .await
        .unwrap();
    for (id, who, allergen) in [
        ("ALG001", "MRN001", "Penicillin"),
        ("ALG002", "MRN002", "Peanuts"),
    ] {
        store
            .insert_allergy(&Allergy {
                allergy_id: record_id(id),
                patient_mrn: mrn(who),
                allergen: allergen.into(),
                reaction: Some("Hives".into()),
                severity: AllergySeverity::Severe,
                onset_date: Some("2010-05-10".parse().unwrap()),
                status: AllergyStatus::Active,
                notes: None,
            })
            .await
            .unwrap();
    }
    store
        .insert_vital_signs(&VitalSigns {
            vital_id: record_id("VIT001"),
            patient_mrn: mrn("MRN001"),
            recorded_date: "2025-11-21T08:09:31.946571".parse().unwrap(),
            systolic_bp: Some(128),
            diastolic_bp: Some(82),
            heart_rate: Some(72),
            temperature: Some(98.6),
            respiratory_rate: Some(16),
            oxygen_saturation: Some(98),
            weight: Some(185.0),
            height: Some(70.0),
            bmi: Some(26.5),
            recorded_by: Some("Nurse John Jones".into()),
            notes: None,
        })
        .await
        .unwrap();
    store
        .insert_lab_result(&LabResult {
            order_id: record_id("LAB001"),
            patient_mrn: mrn("MRN001"),
            test_name: "Complete Blood Count (CBC)".into(),
            ordered_date: Some("2025-11-18".parse().unwrap()),
            collected_date: Some("2025-11-19".parse().unwrap()),
            resulted_date: Some("2025-11-20".parse().unwrap()),
            status: LabStatus::Final,
            ordered_by: Some("Dr. Sarah Smith".into()),
            results_json: Some(
                r#"[{"component": "WBC", "value": "7.5", "unit": "K/uL", "reference": "4.5-11.0", "flag": "normal"}]"#
                    .into(),
            ),
        })
        .await
        .unwrap();
}

/// Creates the demo clients in `db` and returns their credentials, read from the credentials file.
pub async fn demo_clients(db: &TestDb, dir: &tempfile::TempDir) -> Vec<Value> {
    let path: PathBuf = dir.path().join("oauth_clients_credentials.json");
    ehr_mcp::auth::demo::ensure_demo_clients(&db.store, &path)
        .await
        .expect("demo clients");
    let text = std::fs::read_to_string(&path).expect("credentials file");
    serde_json::from_str(&text).expect("credentials JSON")
}

/// The application with the clinical fixture and the demo clients, plus `extra` serve flags.
pub async fn spawn_mcp_app(extra: &[&str]) -> McpApp {
    spawn_mcp_app_on(TestDb::for_app().await, extra).await
}

/// The application over `db` holding the earlier system's data (`tests/fixtures/seed_export.json`,
/// imported) and the demo clients.
pub async fn spawn_on_seed_export(db: TestDb) -> McpApp {
    spawn_seed_export_with(db, &[]).await
}

/// [`spawn_on_seed_export`] with `extra` serve flags.
pub async fn spawn_seed_export_with(db: TestDb, extra: &[&str]) -> McpApp {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed_export.json");
    ehr_mcp::dataset::import::import_file(&db.store, &path, false)
        .await
        .expect("import the seed export");
    let dir = tempfile::tempdir().expect("temp dir");
    let credentials = demo_clients(&db, &dir).await;
    McpApp {
        app: spawn_app_on(db, extra).await,
        credentials,
        _dir: dir,
    }
}

/// [`spawn_mcp_app`] over `db` (either engine).
pub async fn spawn_mcp_app_on(db: TestDb, extra: &[&str]) -> McpApp {
    load_clinical_fixture(&db).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let credentials = demo_clients(&db, &dir).await;
    let app = spawn_app_on(db, extra).await;
    McpApp {
        app,
        credentials,
        _dir: dir,
    }
}
