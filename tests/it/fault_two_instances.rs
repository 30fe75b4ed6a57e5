//! Two server instances on one PostgreSQL database behind a local TCP load balancer (round robin per
//! connection): a double booking attempted through both at once books exactly one; a token revoked through
//! one instance is refused by the other within the revocation refresh (1 s); afterwards the two audit
//! writers have left one intact chain (`ehr-mcp audit verify`). Skipped without `EHR_MCP_TEST_POSTGRES_URL`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ehr_mcp::store::{Store, StoreOptions};
use serde_json::{Value, json};

use crate::fault_support::{audit_verify, eventually, load_balancer};
use crate::mcp_support::{PROVIDER_NPI, demo_clients, load_clinical_fixture};
use crate::support::{TestDb, spawn_app_on};

/// Both instances name the load balancer as their public URL, so a token one issues is for the other too.
const PUBLIC_URL: &str = "http://ehr-lb.test";
/// The revocation refresh runs every second; the margin covers one poll and CI scheduling.
const REVOCATION_SEEN_WITHIN: Duration = Duration::from_millis(1_500);
const BOOKERS: usize = 8;

/// A client with no connection reuse: each request is a new TCP connection, so the balancer alternates.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn mcp_post(base: &str, token: &str, name: &str, arguments: Value) -> reqwest::Response {
    fresh_client()
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", "2025-06-18")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": name, "arguments": arguments}})
            .to_string(),
        )
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("POST /mcp")
}

async fn token(base: &str, client: &Value) -> String {
    let reply: Value = fresh_client()
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client["client_id"].as_str().unwrap()),
            ("client_secret", client["client_secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["access_token"].as_str().expect("a token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_a_load_balancer_book_once_see_revocations_and_keep_one_chain() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: EHR_MCP_TEST_POSTGRES_URL is not set (needs one PostgreSQL for both)");
        return;
    };
    let url = db.url.clone();
    load_clinical_fixture(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = demo_clients(&db, &dir).await;
    let doctor = credentials
        .iter()
        .find(|c| c["client_id"] == "copilot-studio")
        .unwrap()
        .clone();
    let second = TestDb::at(
        url.clone(),
        Store::connect(&StoreOptions::new(url.clone()))
            .await
            .expect("second pool"),
    );
    let flags = ["--public-url", PUBLIC_URL];
    let first = spawn_app_on(db, &flags).await;
    let second = spawn_app_on(second, &flags).await;
    let addresses: Vec<SocketAddr> = [first.port, second.port]
        .iter()
        .map(|port| SocketAddr::from(([127, 0, 0, 1], *port)))
        .collect();
    let balancer = format!("http://{}", load_balancer(addresses).await);

    // A double booking through both instances at once: exactly one wins.
    let booking_token = token(&balancer, &doctor).await;
    let bookings = (0..BOOKERS).map(|_| {
        let (base, token) = (balancer.clone(), booking_token.clone());
        tokio::spawn(async move {
            let reply: Value = mcp_post(
                &base,
                &token,
                "schedule_appointment",
                json!({"mrn": "MRN001", "provider_npi": PROVIDER_NPI, "date": "2031-05-06",
                       "time": "09:30", "duration_minutes": 30, "reason": "double booking"}),
            )
            .await
            .json()
            .await
            .unwrap();
            reply["result"].clone()
        })
    });
    let mut booked = 0;
    let mut conflicts = 0;
    for booking in futures::future::join_all(bookings).await {
        let result = booking.unwrap();
        if result["isError"] == true {
            let text = result["content"][0]["text"].as_str().unwrap_or_default();
            let error: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            assert_eq!(error["code"], "conflict", "{result}");
            conflicts += 1;
        } else {
            assert_eq!(result["structuredContent"]["status"], "success", "{result}");
            booked += 1;
        }
    }
    assert_eq!((booked, conflicts), (1, BOOKERS - 1));
    let stored: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM appointments WHERE appointment_date = '2031-05-06' \
         AND status <> 'cancelled'",
    )
    .fetch_one(second.db.store.pool())
    .await
    .unwrap();
    assert_eq!(stored, 1, "one appointment in the shared database");

    // A token used on both instances (each has it validated and cached), revoked through the first.
    let revoked = token(&balancer, &doctor).await;
    for app in [&first, &second] {
        let used = mcp_post(
            &app.base_url,
            &revoked,
            "get_patient",
            json!({"mrn": "MRN001"}),
        )
        .await;
        assert_eq!(used.status(), 200);
    }
    let revocation = fresh_client()
        .post(first.url("/oauth/revoke"))
        .form(&[
            ("token", revoked.as_str()),
            ("client_id", doctor["client_id"].as_str().unwrap()),
            ("client_secret", doctor["client_secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revocation.status(), 200);
    let revoked_at = Instant::now();
    let refused = mcp_post(
        &first.base_url,
        &revoked,
        "get_patient",
        json!({"mrn": "MRN001"}),
    )
    .await;
    assert_eq!(
        refused.status(),
        401,
        "the revoking instance refuses at once"
    );
    let seen = eventually(Duration::from_secs(5), || async {
        mcp_post(
            &second.base_url,
            &revoked,
            "get_patient",
            json!({"mrn": "MRN001"}),
        )
        .await
        .status()
            == 401
    })
    .await
    .expect("the other instance refuses the revoked token");
    let seen_after = revoked_at.elapsed();
    assert!(
        seen_after <= REVOCATION_SEEN_WITHIN,
        "the other instance refused it only after {seen_after:?}"
    );
    for _ in 0..2 {
        let through = mcp_post(&balancer, &revoked, "get_patient", json!({"mrn": "MRN001"})).await;
        assert_eq!(through.status(), 401, "refused through the balancer");
    }
    eprintln!(
        "two instances: 1 of {BOOKERS} concurrent bookings succeeded; revocation seen by the other \
         instance {seen_after:?} after it (poll took {seen:?})"
    );

    // Both audit writers appended to one chain.
    first.shutdown().await;
    second.shutdown().await;
    let (intact, report) = audit_verify(&url);
    assert!(intact, "audit verify: {report}");
}
