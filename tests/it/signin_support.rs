//! Helpers for the sign-in tests: a plain HTTP client that follows the login and consent pages the way
//! a browser would (cookies by hand, no redirects followed), PKCE pairs, and the demo-style users.

use base64::Engine as _;
use ehr_mcp::auth::users::{self, NewUser};
use ehr_mcp::domain::access::Role;
use ehr_mcp::domain::ids::Mrn;
use ehr_mcp::domain::user::Username;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::mcp_support::McpApp;

pub const PASSWORD: &str = "correct horse battery staple";
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// A client that never follows redirects (each step is asserted).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Adds a user with [`PASSWORD`].
pub async fn add_user(app: &McpApp, name: &str, role: Role, mrn: Option<&str>) {
    users::add(
        &app.app.db.store,
        NewUser {
            username: Username::parse(name).unwrap(),
            role,
            patient_mrn: mrn.map(|m| Mrn::parse(m).unwrap()),
            display_name: None,
        },
        PASSWORD,
    )
    .await
    .expect("add user");
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Registers a public client (RFC 7591) with [`REDIRECT`]; returns its client_id.
pub async fn register_public(app: &McpApp) -> String {
    let response = http()
        .post(app.app.url("/oauth/register"))
        .json(&json!({
            "redirect_uris": [REDIRECT],
            "client_name": "Test agent",
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("client_secret").is_none());
    body["client_id"].as_str().unwrap().to_owned()
}

/// The authorization request's query pairs.
pub fn authorize_params(
    client_id: &str,
    challenge: &str,
    scope: Option<&str>,
) -> Vec<(String, String)> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("state", "xyz-state"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    params
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `GET /oauth/authorize` with `params`, without a cookie.
pub async fn get_authorize(app: &McpApp, params: &[(String, String)]) -> reqwest::Response {
    let query = serde_urlencoded::to_string(params).unwrap();
    http()
        .get(app.app.url(&format!("/oauth/authorize?{query}")))
        .send()
        .await
        .unwrap()
}

/// The value of a hidden field in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// `name=value` of the response's `Set-Cookie`.
pub fn cookie_of(response: &reqwest::Response) -> Option<String> {
    let value = response.headers().get("set-cookie")?.to_str().ok()?;
    value.split(';').next().map(str::to_owned)
}

/// A query parameter of a `Location`.
pub fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a Location")
        .to_str()
        .unwrap()
        .to_owned()
}

/// A browser's view of one authorization: the cookie and the page it is on.
pub struct Browser {
    pub app_url: String,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new(app: &McpApp) -> Self {
        Self {
            app_url: app.app.base_url.clone(),
            cookie: None,
        }
    }

    pub async fn get(&mut self, path_and_query: &str) -> reqwest::Response {
        let mut request = http().get(format!("{}{path_and_query}", self.app_url));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        if let Some(cookie) = cookie_of(&response) {
            self.cookie = Some(cookie);
        }
        response
    }

    pub async fn post(&mut self, form: &[(String, String)]) -> reqwest::Response {
        let mut request = http()
            .post(format!("{}/oauth/authorize", self.app_url))
            .form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        if let Some(cookie) = cookie_of(&response) {
            self.cookie = Some(cookie);
        }
        response
    }

    /// Opens the authorization URL, signs in and returns the consent page's HTML.
    pub async fn sign_in(&mut self, params: &[(String, String)], username: &str) -> String {
        let query = serde_urlencoded::to_string(params).unwrap();
        let login = self.get(&format!("/oauth/authorize?{query}")).await;
        assert_eq!(login.status(), 200);
        let html = login.text().await.unwrap();
        assert!(html.contains(r#"name="username""#), "{html}");
        let mut form = params.to_vec();
        form.push(("csrf_token".into(), hidden(&html, "csrf_token").unwrap()));
        form.push(("username".into(), username.into()));
        form.push(("password".into(), PASSWORD.into()));
        let signed_in = self.post(&form).await;
        assert_eq!(signed_in.status(), 303);
        let next = location(&signed_in);
        assert!(next.starts_with("/oauth/authorize?"), "{next}");
        let consent = self.get(&next).await;
        assert_eq!(consent.status(), 200);
        consent.text().await.unwrap()
    }

    /// Answers the consent page; returns the redirect's `Location`.
    pub async fn decide(
        &mut self,
        params: &[(String, String)],
        consent_html: &str,
        decision: &str,
    ) -> String {
        let mut form = params.to_vec();
        form.push((
            "csrf_token".into(),
            hidden(consent_html, "csrf_token").unwrap(),
        ));
        form.push((
            "consent_ticket".into(),
            hidden(consent_html, "consent_ticket").unwrap(),
        ));
        form.push(("decision".into(), decision.into()));
        let response = self.post(&form).await;
        assert_eq!(response.status(), 303);
        location(&response)
    }
}

/// Signs `username` in for `client_id` and approves; returns (code, verifier).
pub async fn code_for(
    app: &McpApp,
    client_id: &str,
    username: &str,
    scope: Option<&str>,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let params = authorize_params(client_id, &challenge, scope);
    let mut browser = Browser::new(app);
    let consent = browser.sign_in(&params, username).await;
    let back = browser.decide(&params, &consent, "allow").await;
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("xyz-state"));
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(app.app.base_url.as_str())
    );
    (query_param(&back, "code").expect("code"), verifier)
}

/// POSTs to the token endpoint.
pub async fn token(
    app: &McpApp,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut request = http().post(app.app.url("/oauth/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Exchanges a code of a public client.
pub async fn exchange(app: &McpApp, client_id: &str, code: &str, verifier: &str) -> (u16, Value) {
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
        None,
    )
    .await
}

/// The claims of a JWT (unverified; the server verified it).
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Calls `get_patient` on /mcp with a bearer token; returns the HTTP status and the tool result.
pub async fn call_get_patient(app: &McpApp, token: &str, mrn: &str) -> (u16, Value) {
    let response = http()
        .post(app.mcp_url())
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "get_patient", "arguments": {"mrn": mrn}}}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
