//! Liveness and readiness endpoints.

use crate::support::{TestDb, spawn_app_on};

#[tokio::test]
async fn healthz_and_readyz_answer_on_every_engine() {
    for db in TestDb::all().await {
        let app = spawn_app_on(db, &[]).await;
        let client = reqwest::Client::new();
        let health = client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(health.status(), 200);
        let ready = client.get(app.url("/readyz")).send().await.expect("readyz");
        assert_eq!(ready.status(), 200);
        let body: serde_json::Value = ready.json().await.expect("json");
        assert_eq!(body["database"], "ok");
        app.shutdown().await;
    }
}
