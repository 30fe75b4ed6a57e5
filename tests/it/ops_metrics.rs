//! `/metrics` in the Prometheus text format, and the request id on every response.

use ehr_mcp::domain::access::Role;

use crate::auth_support::{post_form, register, token_via_http};
use crate::support::spawn_app;

#[tokio::test]
async fn metrics_are_described_and_count_http_requests_and_sample_the_pool() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let health = client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
    }
    let response = client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for help in [
        "# HELP ehr_mcp_http_requests_total",
        "# HELP ehr_mcp_db_pool_connections",
        "# HELP ehr_mcp_build_info",
        "# TYPE ehr_mcp_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(help), "missing {help:?} in\n{text}");
    }
    let healthz_count = sample(
        &text,
        r#"ehr_mcp_http_requests_total{method="GET",route="/healthz",status="200"}"#,
    )
    .expect("healthz counter");
    assert!(healthz_count >= 3.0, "counted {healthz_count}");
    let pool_max = sample(&text, "ehr_mcp_db_pool_max_connections").expect("pool gauge");
    assert!(pool_max >= 1.0);
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_are_labelled_unmatched_never_by_their_text() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let missing = client
        .get(app.url("/patients/John-Smith-1980-01-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let text = client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("John-Smith"));
    assert!(text.contains(r#"route="unmatched",status="404""#));
    app.shutdown().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_sane_caller_id_is_kept() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let assigned = client.get(app.url("/healthz")).send().await.unwrap();
    let id = assigned.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");

    let kept = client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-42.a_b")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-42.a_b");

    let replaced = client
        .get(app.url("/healthz"))
        .header("x-request-id", "Jane Doe 1970-01-01")
        .send()
        .await
        .unwrap();
    let replaced_id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(replaced_id).is_ok(), "{replaced_id}");
    app.shutdown().await;
}

#[tokio::test]
async fn tokens_issued_and_refused_and_the_audit_queue_are_counted() {
    let app = spawn_app().await;
    let client = register(&app.db.store, Role::Doctor, "read:patients").await;
    let before = scrape(&app).await;
    token_via_http(&app, &client).await;
    token_via_http(&app, &client).await;
    let refused = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.as_str()),
            ("client_secret", "not-the-secret"),
        ],
        None,
    )
    .await;
    assert_eq!(refused.status(), 401);
    let garbage = reqwest::Client::new()
        .post(app.url("/oauth/introspect"))
        .basic_auth(
            client.client_id.as_str(),
            Some(client.client_secret.expose()),
        )
        .form(&[("token", "garbage")])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 200);
    let after = scrape(&app).await;

    let issued = "ehr_mcp_tokens_issued_total";
    assert!(sample(&after, issued).unwrap() >= sample(&before, issued).unwrap_or(0.0) + 2.0);
    let invalid_client = r#"ehr_mcp_tokens_refused_total{reason="invalid_client"}"#;
    assert!(
        sample(&after, invalid_client).unwrap()
            >= sample(&before, invalid_client).unwrap_or(0.0) + 1.0
    );
    let rows = "ehr_mcp_audit_rows_total";
    assert!(sample(&after, rows).unwrap() >= sample(&before, rows).unwrap_or(0.0) + 3.0);
    assert!(sample(&after, "ehr_mcp_audit_queue_depth").is_some());
    for secret in [client.client_secret.expose(), "not-the-secret"] {
        assert!(!after.contains(secret));
    }
    app.shutdown().await;
}

async fn scrape(app: &crate::support::TestApp) -> String {
    reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}
