//! Sign-in for people (issue #10) over real HTTP: authorization code + PKCE through the login and
//! consent pages, refresh-token rotation, remembered consent, the metadata, and every attack the issue
//! lists, each refused. The server runs on SQLite, or on PostgreSQL with `EHR_MCP_TEST_ENGINE=postgres`.

use ehr_mcp::domain::access::Role;
use ehr_mcp::domain::user::Username;
use ehr_mcp::store::audit::AuditFilter;
use serde_json::{Value, json};

use crate::mcp_support::{McpApp, spawn_mcp_app};
use crate::signin_support::*;

async fn app_with_users() -> McpApp {
    let app = spawn_mcp_app(&[]).await;
    add_user(&app, "dr.who", Role::Doctor, None).await;
    add_user(&app, "nurse.joy", Role::Nurse, None).await;
    add_user(&app, "pat.one", Role::Patient, Some("MRN001")).await;
    app
}

#[tokio::test]
async fn a_doctor_signs_in_and_the_token_carries_user_client_role_and_scopes() {
    let app = app_with_users().await;
    let client_id = register_public(&app).await;
    let (code, verifier) = code_for(&app, &client_id, "dr.who", None).await;
    let (status, body) = exchange(&app, &client_id, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert!(body["refresh_token"].is_string());
    let claims = claims(access);
    assert_eq!(claims["sub"], "dr.who");
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["role"], "doctor");
    assert_eq!(claims["aud"], format!("{}/mcp", app.app.base_url));
    assert!(!claims["scope"].as_str().unwrap().contains("admin:clients"));
    let (status, result) = call_get_patient(&app, access, "MRN001").await;
    assert_eq!(status, 200);
    assert_eq!(result["result"]["isError"], false, "{result}");

    // Audit rows name the user and the client: the token issue and the tool call.
    let rows = app
        .app
        .db
        .store
        .query_audit(&AuditFilter {
            client_id: Some(client_id.clone()),
            limit: 50,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let issued = rows.iter().find(|row| row.action == "token.issue").unwrap();
    assert!(issued.detail.as_deref().unwrap().contains("user=dr.who"));
    let call = rows.iter().find(|row| row.action == "get_patient").unwrap();
    assert!(
        call.detail.as_deref().unwrap_or("").contains("user=dr.who"),
        "{call:?}"
    );
    assert!(rows.iter().any(|row| row.action == "consent.grant"));
    app.shutdown().await;
}

#[tokio::test]
async fn scopes_are_requested_and_client_and_role_and_a_patient_sees_only_their_record() {
    let app = app_with_users().await;
    let client_id = register_public(&app).await;
    let (code, verifier) = code_for(
        &app,
        &client_id,
        "nurse.joy",
        Some("read:patients write:medications read:vitals"),
    )
    .await;
    let (_, body) = exchange(&app, &client_id, &code, &verifier).await;
    assert_eq!(
        body["scope"], "read:patients read:vitals",
        "a nurse never gets write:medications"
    );

    let (code, verifier) = code_for(&app, &client_id, "pat.one", None).await;
    let (_, body) = exchange(&app, &client_id, &code, &verifier).await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["patient"], "MRN001");
    assert_eq!(claims(access)["role"], "patient");
    let (_, own) = call_get_patient(&app, access, "MRN001").await;
    assert_eq!(own["result"]["isError"], false, "{own}");
    let (_, other) = call_get_patient(&app, access, "MRN002").await;
    assert_eq!(other["result"]["isError"], true, "{other}");
    app.shutdown().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_whole_family() {
    let app = app_with_users().await;
    let client_id = register_public(&app).await;
    let (code, verifier) = code_for(&app, &client_id, "dr.who", None).await;
    let (_, first) = exchange(&app, &client_id, &code, &verifier).await;
    let refresh_1 = first["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |refresh_token: String| {
        let client_id = client_id.clone();
        let app = &app;
        async move {
            token(
                app,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &client_id),
                    ("refresh_token", &refresh_token),
                ],
                None,
            )
            .await
        }
    };
    let (status, second) = refresh(refresh_1.clone()).await;
    assert_eq!(status, 200, "{second}");
    let refresh_2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh_1, refresh_2, "rotated");
    let access_2 = second["access_token"].as_str().unwrap().to_owned();
    assert_eq!(call_get_patient(&app, &access_2, "MRN001").await.0, 200);

    // An attacker replays the first (spent) refresh token: refused, and the family is revoked.
    let (status, reuse) = refresh(refresh_1).await;
    assert_eq!(status, 400);
    assert_eq!(reuse["error"], "invalid_grant");
    let (status, after) = refresh(refresh_2).await;
    assert_eq!(
        (status, after["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(call_get_patient(&app, &access_2, "MRN001").await.0, 401);
    app.shutdown().await;
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let app = app_with_users().await;
    let client_id = register_public(&app).await;
    let (code, verifier) = code_for(&app, &client_id, "dr.who", None).await;
    let (status, first) = exchange(&app, &client_id, &code, &verifier).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap().to_owned();
    let (status, replay) = exchange(&app, &client_id, &code, &verifier).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(call_get_patient(&app, &access, "MRN001").await.0, 401);
    let (status, _) = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ],
        None,
    )
    .await;
    assert_eq!(status, 400, "the code's refresh token is revoked too");
    app.shutdown().await;
}

#[tokio::test]
async fn pkce_is_required_plain_is_refused_and_a_wrong_verifier_fails() {
    let app = app_with_users().await;
    let client_id = register_public(&app).await;
    let (_, challenge) = pkce();
    for (method, value) in [("plain", challenge.as_str()), ("", "")] {
        let mut params = authorize_params(&client_id, value, None);
        params.retain(|(k, _)| {
            k != "code_challenge_method" && (k != "code_challenge" || !value.is_empty())
        });
        if !method.is_empty() {
            params.push(("code_challenge_method".into(), method.into()));
        }
        let response = get_authorize(&app, &params).await;
        assert_eq!(response.status(), 302, "method {method:?}");
        let back = location(&response);
        assert!(back.starts_with(REDIRECT));
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_request")
        );
        assert_eq!(query_param(&back, "state").as_deref(), Some("xyz-state"));
        assert!(query_param(&back, "iss").is_some());
        assert!(query_param(&back, "code").is_none());
    }
    let (code, _) = code_for(&app, &client_id, "dr.who", None).await;
    let (wrong, _) = pkce();
    let (status, body) = exchange(&app, &client_id, &code, &wrong).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_clients_and_unregistered_redirects_are_shown_on_a_page_never_redirected() {
    let app = app_with_users().await;
    let client_id = register_public(&app).await;
    let (_, challenge) = pkce();
    for (client, redirect) in [
        (client_id.as_str(), "https://evil.example/callback"),
        (client_id.as_str(), "http://127.0.0.1:9/other"),
        (client_id.as_str(), "http://127.0.0.1.evil.example/callback"),
        ("no-such-client", REDIRECT),
    ] {
        let mut params = authorize_params(client, &challenge, None);
        params.retain(|(k, _)| k != "redirect_uri");
        params.push(("redirect_uri".into(), redirect.into()));
        let response = get_authorize(&app, &params).await;
        assert_eq!(response.status(), 400, "{client} {redirect}");
        assert!(response.headers().get("location").is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("cannot go on"), "{html}");
    }
    // A code redeemed with another redirect URI than the one it was issued for.
    let (code, verifier) = code_for(&app, &client_id, "dr.who", None).await;
    let (status, body) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", &verifier),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Dynamic registration of an open redirect is refused.
    let response = http()
        .post(app.app.url("/oauth/register"))
        .json(&json!({"redirect_uris": ["https://evil.example/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");
    app.shutdown().await;
}

#[tokio::test]
async fn csrf_tokens_and_the_consent_ticket_are_required() {
    let app = app_with_users().await;
    let client_id = register_public(&app).await;
    let (_, challenge) = pkce();
    let params = authorize_params(&client_id, &challenge, None);

    // Login without, or with a wrong, CSRF token.
    let mut browser = Browser::new(&app);
    let query = serde_urlencoded::to_string(&params).unwrap();
    let login = browser.get(&format!("/oauth/authorize?{query}")).await;
    assert!(login.text().await.unwrap().contains("csrf_token"));
    for csrf in [None, Some("wrong-token")] {
        let mut form = params.clone();
        if let Some(csrf) = csrf {
            form.push(("csrf_token".into(), csrf.into()));
        }
        form.push(("username".into(), "dr.who".into()));
        form.push(("password".into(), PASSWORD.into()));
        let response = browser.post(&form).await;
        assert_eq!(response.status(), 403, "csrf {csrf:?}");
    }

    // Posting an approval with no session at all.
    let mut stranger = Browser::new(&app);
    let mut form = params.clone();
    form.push(("decision".into(), "allow".into()));
    form.push(("csrf_token".into(), "guess".into()));
    assert_eq!(stranger.post(&form).await.status(), 403);

    // Signed in, with the right CSRF token, but straight to the approval without the consent page's
    // ticket, or with the ticket of a different request (wider scope).
    let mut user = Browser::new(&app);
    let consent = user.sign_in(&params, "dr.who").await;
    let csrf = hidden(&consent, "csrf_token").unwrap();
    let ticket = hidden(&consent, "consent_ticket").unwrap();
    let mut bypass = params.clone();
    bypass.push(("csrf_token".into(), csrf.clone()));
    bypass.push(("decision".into(), "allow".into()));
    let response = user.post(&bypass).await;
    assert_eq!(response.status(), 403);
    let mut other_request = authorize_params(
        &client_id,
        &challenge,
        Some("read:patients write:medications"),
    );
    other_request.push(("csrf_token".into(), csrf));
    other_request.push(("consent_ticket".into(), ticket));
    other_request.push(("decision".into(), "allow".into()));
    let response = user.post(&other_request).await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none());
    app.shutdown().await;
}

#[tokio::test]
async fn consent_is_remembered_per_user_and_client_and_revocable() {
    let app = app_with_users().await;
    let client_id = register_public(&app).await;
    let (_, challenge) = pkce();
    let params = authorize_params(&client_id, &challenge, None);
    let mut browser = Browser::new(&app);
    let consent = browser.sign_in(&params, "dr.who").await;
    let denied = browser.decide(&params, &consent, "deny").await;
    assert_eq!(
        query_param(&denied, "error").as_deref(),
        Some("access_denied")
    );
    let consent = browser
        .get(&format!(
            "/oauth/authorize?{}",
            serde_urlencoded::to_string(&params).unwrap()
        ))
        .await;
    let consent = consent.text().await.unwrap();
    assert!(
        consent.contains(r#"value="allow""#),
        "a denial is not remembered"
    );
    browser.decide(&params, &consent, "allow").await;

    // Remembered: the same session goes straight back with a code.
    let query = serde_urlencoded::to_string(&params).unwrap();
    let again = browser.get(&format!("/oauth/authorize?{query}")).await;
    assert_eq!(again.status(), 302);
    assert!(query_param(&location(&again), "code").is_some());

    // Revoked: the consent page is shown again.
    let username = Username::parse("dr.who").unwrap();
    app.app
        .db
        .store
        .delete_consents(&username, Some(&client_id))
        .await
        .unwrap();
    let after = browser.get(&format!("/oauth/authorize?{query}")).await;
    assert_eq!(after.status(), 200);
    assert!(after.text().await.unwrap().contains(r#"value="allow""#));
    app.shutdown().await;
}

#[tokio::test]
async fn pages_are_not_frameable_and_the_cookie_is_http_only_and_lax() {
    let app = app_with_users().await;
    let client_id = register_public(&app).await;
    let (_, challenge) = pkce();
    let response = get_authorize(&app, &authorize_params(&client_id, &challenge, None)).await;
    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http: no Secure flag");
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script"), "no script");
    assert!(!html.contains("src=\"http"), "nothing external");
    // The error page too.
    let error = http()
        .get(app.app.url("/oauth/authorize?client_id=nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(error.headers()["x-frame-options"], "DENY");
    app.shutdown().await;
}

#[tokio::test]
async fn a_disabled_users_live_token_and_refresh_token_stop() {
    let app = app_with_users().await;
    let client_id = register_public(&app).await;
    let (code, verifier) = code_for(&app, &client_id, "dr.who", None).await;
    let (_, body) = exchange(&app, &client_id, &code, &verifier).await;
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(call_get_patient(&app, &access, "MRN001").await.0, 200);
    let username = Username::parse("dr.who").unwrap();
    ehr_mcp::auth::users::set_active(&app.app.db.store, &username, false)
        .await
        .unwrap();
    // Another process (the CLI) disabled the user: the server notices within its status refresh.
    let mut refused = false;
    for _ in 0..50 {
        if call_get_patient(&app, &access, "MRN001").await.0 == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "the disabled user's token still works");
    let (status, _) = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ],
        None,
    )
    .await;
    assert_eq!(status, 400);
    app.shutdown().await;
}

#[tokio::test]
async fn metadata_advertises_the_code_flow_registration_and_cimd() {
    let app = spawn_mcp_app(&[]).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let body: Value = http()
            .get(app.app.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let base = &app.app.base_url;
        assert_eq!(
            body["authorization_endpoint"],
            format!("{base}/oauth/authorize")
        );
        assert_eq!(
            body["registration_endpoint"],
            format!("{base}/oauth/register")
        );
        assert_eq!(body["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(body["response_types_supported"], json!(["code"]));
        assert_eq!(body["client_id_metadata_document_supported"], true);
        assert_eq!(body["authorization_response_iss_parameter_supported"], true);
        let grants = body["grant_types_supported"].as_array().unwrap();
        for grant in ["authorization_code", "refresh_token", "client_credentials"] {
            assert!(grants.contains(&json!(grant)));
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_confidential_client_must_authenticate_and_gets_refresh_tokens() {
    let app = app_with_users().await;
    let registered = http()
        .post(app.app.url("/oauth/register"))
        .json(&json!({"redirect_uris": [REDIRECT], "client_name": "Confidential agent"}))
        .send()
        .await
        .unwrap();
    let registered: Value = registered.json().await.unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    let (code, verifier) = code_for(&app, &client_id, "dr.who", None).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client_id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, body) = token(&app, &form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "no secret"
    );
    let (status, body) = token(&app, &form, Some((&client_id, "wrong secret"))).await;
    assert_eq!(status, 401, "{body}");
    // The two failures above did not spend the code (client authentication comes first).
    let (status, body) = token(&app, &form, Some((&client_id, &secret))).await;
    assert_eq!(status, 200, "{body}");
    let (status, refreshed) = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ],
        Some((&client_id, &secret)),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["sub"],
        "dr.who"
    );
    app.shutdown().await;
}
