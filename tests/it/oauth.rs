//! The OAuth endpoints over HTTP on both engines: issuance with every client authentication method,
//! every RFC 6749 §5.2 error case, introspection, revocation, discovery documents and the JWKS.

use ehr_mcp::domain::access::Role;
use serde_json::Value;

use crate::auth_support::{post_form, register, token_via_http};
use crate::support::{TestDb, spawn_app_on};

fn assert_no_store(response: &reqwest::Response) {
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn token_endpoint_issues_tokens_by_basic_and_post_with_requested_scopes() {
    for db in TestDb::all().await {
        let client = register(
            &db.store,
            Role::System,
            "read:patients read:labs write:labs",
        )
        .await;
        let app = spawn_app_on(db, &[]).await;
        let (id, secret) = (client.client_id.as_str(), client.client_secret.expose());

        let basic = post_form(
            &app,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((id, secret)),
        )
        .await;
        assert_eq!(basic.status(), 200);
        assert_no_store(&basic);
        let body: Value = basic.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["scope"], "read:patients read:labs write:labs");
        assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);

        let post = post_form(
            &app,
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
                ("scope", "system/Patient.rs read:labs"),
                ("app_id", &client.app_id),
                ("resource", &app.url("/mcp")),
            ],
            None,
        )
        .await;
        assert_eq!(post.status(), 200);
        let body: Value = post.json().await.unwrap();
        assert_eq!(
            body["scope"], "read:patients read:labs",
            "granted = requested ∩ allowed"
        );

        let wildcard = post_form(
            &app,
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "system/*.read"),
            ],
            Some((id, secret)),
        )
        .await;
        let body: Value = wildcard.json().await.unwrap();
        assert_eq!(body["scope"], "read:patients read:labs");
        app.shutdown().await;
    }
}

/// One RFC 6749 error case: the request, then the status, `error` and whether `WWW-Authenticate: Basic`.
struct ErrorCase {
    name: &'static str,
    form: Vec<(&'static str, String)>,
    basic: Option<(String, String)>,
    content_type: Option<&'static str>,
    status: u16,
    error: &'static str,
    www_authenticate: bool,
}

#[tokio::test]
async fn token_endpoint_answers_every_error_case_as_rfc_6749_section_5_2() {
    for db in TestDb::all().await {
        let client = register(&db.store, Role::Nurse, "read:patients read:vitals").await;
        let disabled = register(&db.store, Role::Nurse, "read:patients").await;
        ehr_mcp::auth::clients::set_active(&db.store, &disabled.client_id, false)
            .await
            .unwrap();
        let app = spawn_app_on(db, &[]).await;
        let id = client.client_id.as_str().to_owned();
        let secret = client.client_secret.expose().to_owned();
        let grant = || ("grant_type", "client_credentials".to_owned());
        let post = |id: &str, secret: &str| {
            vec![
                grant(),
                ("client_id", id.to_owned()),
                ("client_secret", secret.to_owned()),
            ]
        };
        let with = |mut form: Vec<(&'static str, String)>, name: &'static str, value: &str| {
            form.push((name, value.to_owned()));
            form
        };
        let cases = vec![
            ErrorCase {
                name: "wrong secret (basic)",
                form: vec![grant()],
                basic: Some((id.clone(), "wrong".into())),
                content_type: None,
                status: 401,
                error: "invalid_client",
                www_authenticate: true,
            },
            ErrorCase {
                name: "wrong secret (post)",
                form: post(&id, "wrong"),
                basic: None,
                content_type: None,
                status: 401,
                error: "invalid_client",
                www_authenticate: false,
            },
            ErrorCase {
                name: "unknown client",
                form: post("no-such-client", &secret),
                basic: None,
                content_type: None,
                status: 401,
                error: "invalid_client",
                www_authenticate: false,
            },
            ErrorCase {
                name: "disabled client",
                form: post(disabled.client_id.as_str(), disabled.client_secret.expose()),
                basic: None,
                content_type: None,
                status: 401,
                error: "invalid_client",
                www_authenticate: false,
            },
            ErrorCase {
                name: "unsupported grant",
                form: vec![
                    ("grant_type", "password".into()),
                    ("client_id", id.clone()),
                    ("client_secret", secret.clone()),
                ],
                basic: None,
                content_type: None,
                status: 400,
                error: "unsupported_grant_type",
                www_authenticate: false,
            },
            ErrorCase {
                name: "missing grant_type",
                form: vec![("client_id", id.clone()), ("client_secret", secret.clone())],
                basic: None,
                content_type: None,
                status: 400,
                error: "invalid_request",
                www_authenticate: false,
            },
            ErrorCase {
                name: "scope beyond the allowed",
                form: with(
                    post(&id, &secret),
                    "scope",
                    "read:patients write:medications",
                ),
                basic: None,
                content_type: None,
                status: 400,
                error: "invalid_scope",
                www_authenticate: false,
            },
            ErrorCase {
                name: "unknown scope",
                form: with(post(&id, &secret), "scope", "read:everything"),
                basic: None,
                content_type: None,
                status: 400,
                error: "invalid_scope",
                www_authenticate: false,
            },
            ErrorCase {
                name: "malformed body (JSON)",
                form: post(&id, &secret),
                basic: None,
                content_type: Some("application/json"),
                status: 400,
                error: "invalid_request",
                www_authenticate: false,
            },
            ErrorCase {
                name: "repeated parameter",
                form: with(post(&id, &secret), "grant_type", "client_credentials"),
                basic: None,
                content_type: None,
                status: 400,
                error: "invalid_request",
                www_authenticate: false,
            },
            ErrorCase {
                name: "missing credentials",
                form: vec![grant()],
                basic: None,
                content_type: None,
                status: 401,
                error: "invalid_client",
                www_authenticate: true,
            },
            ErrorCase {
                name: "two authentication methods",
                form: post(&id, &secret),
                basic: Some((id.clone(), secret.clone())),
                content_type: None,
                status: 400,
                error: "invalid_request",
                www_authenticate: false,
            },
            ErrorCase {
                name: "app_id of another app",
                form: with(post(&id, &secret), "app_id", "another-app"),
                basic: None,
                content_type: None,
                status: 401,
                error: "invalid_client",
                www_authenticate: false,
            },
            ErrorCase {
                name: "foreign resource",
                form: with(
                    post(&id, &secret),
                    "resource",
                    "https://elsewhere.example/mcp",
                ),
                basic: None,
                content_type: None,
                status: 400,
                error: "invalid_target",
                www_authenticate: false,
            },
        ];
        for case in cases {
            let mut request = reqwest::Client::new().post(app.url("/oauth/token"));
            request = match case.content_type {
                Some(content_type) => request.header("content-type", content_type).body(
                    serde_json::to_string(
                        &case
                            .form
                            .iter()
                            .cloned()
                            .collect::<std::collections::HashMap<_, _>>(),
                    )
                    .unwrap(),
                ),
                None => request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(
                        case.form
                            .iter()
                            .map(|(name, value)| format!("{name}={}", urlencode(value)))
                            .collect::<Vec<_>>()
                            .join("&"),
                    ),
            };
            if let Some((id, secret)) = &case.basic {
                request = request.basic_auth(id, Some(secret));
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), case.status, "{}", case.name);
            assert_no_store(&response);
            assert_eq!(
                response.headers().get("www-authenticate").is_some(),
                case.www_authenticate,
                "{}: WWW-Authenticate",
                case.name
            );
            if case.www_authenticate {
                assert!(
                    response.headers()["www-authenticate"]
                        .to_str()
                        .unwrap()
                        .starts_with("Basic")
                );
            }
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], case.error, "{}", case.name);
            assert!(body["error_description"].is_string(), "{}", case.name);
            assert!(
                !body.to_string().contains(&secret),
                "{}: no secret echoed",
                case.name
            );
        }
        // Each refusal was audited.
        let refused = app
            .db
            .store
            .query_audit(&ehr_mcp::store::audit::AuditFilter {
                action: Some("token.issue".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            refused.iter().filter(|row| row.outcome == "denied").count(),
            14
        );
        app.shutdown().await;
    }
}

fn urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)]).unwrap()[2..].to_owned()
}

#[tokio::test]
async fn introspection_and_revocation_follow_rfc_7662_and_7009() {
    for db in TestDb::all().await {
        let owner = register(&db.store, Role::Doctor, "read:patients").await;
        let other = register(&db.store, Role::Nurse, "read:patients").await;
        let app = spawn_app_on(db, &[]).await;
        let token = token_via_http(&app, &owner).await;
        let owner_auth = Some((owner.client_id.as_str(), owner.client_secret.expose()));
        let other_auth = Some((other.client_id.as_str(), other.client_secret.expose()));

        let response = post_form(&app, "/oauth/introspect", &[("token", &token)], owner_auth).await;
        assert_eq!(response.status(), 200);
        assert_no_store(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["active"], true);
        assert_eq!(body["client_id"], owner.client_id.as_str());
        assert_eq!(body["scope"], "read:patients");
        assert_eq!(body["aud"], app.url("/mcp"));
        assert_eq!(body["iss"], app.base_url);
        assert_eq!(body["token_type"], "Bearer");

        let foreign: Value = post_form(&app, "/oauth/introspect", &[("token", &token)], other_auth)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            foreign,
            serde_json::json!({"active": false}),
            "another client learns nothing"
        );
        let garbage: Value = post_form(
            &app,
            "/oauth/introspect",
            &[("token", "not.a.token")],
            owner_auth,
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(garbage, serde_json::json!({"active": false}));
        let unauthenticated =
            post_form(&app, "/oauth/introspect", &[("token", &token)], None).await;
        assert_eq!(unauthenticated.status(), 401);
        let missing = post_form(&app, "/oauth/introspect", &[], owner_auth).await;
        assert_eq!(missing.status(), 400);

        let refused = post_form(&app, "/oauth/revoke", &[("token", &token)], other_auth).await;
        assert_eq!(refused.status(), 400);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized_client");
        let unknown = post_form(&app, "/oauth/revoke", &[("token", "garbage")], owner_auth).await;
        assert_eq!(
            unknown.status(),
            200,
            "invalid tokens are not an error (RFC 7009 §2.2)"
        );
        let revoked = post_form(
            &app,
            "/oauth/revoke",
            &[("token", &token), ("token_type_hint", "access_token")],
            owner_auth,
        )
        .await;
        assert_eq!(revoked.status(), 200);
        let after: Value = post_form(&app, "/oauth/introspect", &[("token", &token)], owner_auth)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(after["active"], false);
        app.shutdown().await;
    }
}

#[tokio::test]
async fn discovery_documents_and_jwks_describe_this_server() {
    let app = spawn_app_on(TestDb::sqlite().await, &[]).await;
    let get = |path: &str| reqwest::get(app.url(path));
    let metadata: Value = get("/.well-known/oauth-authorization-server")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], app.base_url);
    assert_eq!(metadata["token_endpoint"], app.url("/oauth/token"));
    assert_eq!(
        metadata["authorization_endpoint"],
        app.url("/oauth/authorize")
    );
    assert_eq!(
        metadata["introspection_endpoint"],
        app.url("/oauth/introspect")
    );
    assert_eq!(metadata["revocation_endpoint"], app.url("/oauth/revoke"));
    assert_eq!(metadata["jwks_uri"], app.url("/.well-known/jwks.json"));
    assert!(metadata["response_types_supported"].is_array());
    assert_eq!(
        metadata["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    let methods = metadata["token_endpoint_auth_methods_supported"].to_string();
    for method in [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ] {
        assert!(methods.contains(method), "{method}");
    }
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let resource: Value = get(path).await.unwrap().json().await.unwrap();
        assert_eq!(resource["resource"], app.url("/mcp"), "{path}");
        assert_eq!(
            resource["authorization_servers"],
            serde_json::json!([app.base_url])
        );
    }
    let jwks: Value = get("/.well-known/jwks.json")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(key["kid"].is_string());
    assert!(key.get("d").is_none(), "no private key material");
    // An unknown client: an error page, never a redirect (the sign-in flow is tests/it/signin_flow.rs).
    let authorize = get("/oauth/authorize?response_type=code&client_id=x")
        .await
        .unwrap();
    assert_eq!(authorize.status(), 400);
    assert!(authorize.headers().get("location").is_none());
    assert!(authorize.text().await.unwrap().contains("not registered"));
    app.shutdown().await;
}

/// An independent client (Python PyJWT) fetches a token over HTTP and verifies it against our JWKS.
#[tokio::test]
async fn python_pyjwt_verifies_our_token_against_our_jwks() {
    // PyJWT comes from tests/clients/requirements.txt, installed into the test venv by setup.sh.
    let python = crate::mcp_sdk_clients::python();
    let db = TestDb::sqlite().await;
    let client = register(&db.store, Role::Doctor, "read:patients read:labs").await;
    let app = spawn_app_on(db, &[]).await;
    let script = r#"
import json, sys, urllib.parse, urllib.request
import jwt
base, client_id, secret = sys.argv[1:4]
form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}).encode()
token = json.load(urllib.request.urlopen(urllib.request.Request(base + "/oauth/token", data=form)))["access_token"]
jwks = jwt.PyJWKClient(base + "/.well-known/jwks.json")
key = jwks.get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=["ES256"], audience=base + "/mcp", issuer=base)
print(json.dumps(claims))
"#;
    let output = tokio::process::Command::new(&python)
        .args([
            "-c",
            script,
            &app.base_url,
            client.client_id.as_str(),
            client.client_secret.expose(),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "pyjwt failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let claims: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(claims["sub"], client.client_id.as_str());
    assert_eq!(claims["client_id"], client.client_id.as_str());
    assert_eq!(claims["role"], "doctor");
    assert_eq!(claims["scope"], "read:patients read:labs");
    assert_eq!(claims["app_id"], client.app_id);
    assert!(claims["jti"].is_string() && claims["iat"].is_number() && claims["exp"].is_number());
    app.shutdown().await;
}
