//! TLS with rustls: https:// on the one port with a self-signed certificate, and clear errors for bad files.

use std::net::SocketAddr;

use crate::support::{TestDb, serve_args, spawn_app_on};

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files in a temp dir.
pub struct SelfSigned {
    pub dir: tempfile::TempDir,
    pub certificate_pem: String,
}

impl SelfSigned {
    pub fn new() -> SelfSigned {
        let generated = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("self-signed certificate");
        let dir = tempfile::tempdir().unwrap();
        let certificate_pem = generated.cert.pem();
        std::fs::write(dir.path().join("cert.pem"), &certificate_pem).unwrap();
        std::fs::write(
            dir.path().join("key.pem"),
            generated.signing_key.serialize_pem(),
        )
        .unwrap();
        SelfSigned {
            dir,
            certificate_pem,
        }
    }

    pub fn certificate_path(&self) -> String {
        self.dir.path().join("cert.pem").display().to_string()
    }

    pub fn key_path(&self) -> String {
        self.dir.path().join("key.pem").display().to_string()
    }
}

#[tokio::test]
async fn serves_https_with_the_given_certificate() {
    let tls = SelfSigned::new();
    let app = spawn_app_on(
        TestDb::sqlite().await,
        &[
            "--tls-cert",
            &tls.certificate_path(),
            "--tls-key",
            &tls.key_path(),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(tls.certificate_pem.as_bytes()).unwrap(),
        )
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], app.port)))
        .build()
        .unwrap();
    let response = client
        .get(format!("https://localhost:{}/healthz", app.port))
        .send()
        .await
        .expect("https request");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", app.port))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // A client that does not trust the certificate refuses it.
    let untrusting = reqwest::Client::builder()
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], app.port)))
        .build()
        .unwrap()
        .get(format!("https://localhost:{}/healthz", app.port))
        .send()
        .await;
    assert!(untrusting.is_err());
    app.shutdown().await;
}

#[tokio::test]
async fn unreadable_or_mismatched_tls_files_are_named_in_the_error() {
    let db = TestDb::sqlite().await;
    let tls = SelfSigned::new();
    let missing = tls.dir.path().join("missing.pem").display().to_string();
    let error = ehr_mcp::app::Application::build(
        db.store.clone(),
        serve_args(&["--tls-cert", &missing, "--tls-key", &tls.key_path()]),
    )
    .await
    .err()
    .expect("missing certificate refused");
    assert!(error.to_string().contains("EHR_MCP_TLS_CERT"), "{error}");

    let other = SelfSigned::new();
    let error = ehr_mcp::app::Application::build(
        db.store.clone(),
        serve_args(&[
            "--tls-cert",
            &tls.certificate_path(),
            "--tls-key",
            &other.key_path(),
        ]),
    )
    .await
    .err()
    .expect("mismatched key refused");
    assert!(
        error.to_string().contains("cannot be used together"),
        "{error}"
    );

    let error = ehr_mcp::app::Application::build(
        db.store.clone(),
        serve_args(&[
            "--tls-cert",
            &tls.certificate_path(),
            "--tls-key",
            &tls.certificate_path(),
        ]),
    )
    .await
    .err()
    .expect("a certificate is not a key");
    assert!(error.to_string().contains("EHR_MCP_TLS_KEY"), "{error}");
}
