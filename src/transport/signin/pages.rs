//! The sign-in pages: minijinja templates embedded in the binary (HTML auto-escaped), the security
//! headers every page carries, the session cookie and the redirects back to the client.
//!
//! Every page: `Content-Security-Policy` with `default-src 'none'`, the one inline stylesheet allowed by
//! its hash, `form-action` limited to this server (and the client's redirect origin, which a form's
//! redirect chain reaches), `frame-ancestors 'none'`; `X-Frame-Options: DENY`; `Cache-Control:
//! no-store`; no script, nothing loaded from elsewhere.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use minijinja::Environment;
use serde::Serialize;
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("signin.css");

/// The name of the session cookie: `__Host-` prefixed (Secure, Path=/) under TLS.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-ehr_signin"
    } else {
        "ehr_signin"
    }
}

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        for (name, source) in [
            ("layout.html", include_str!("templates/layout.html")),
            ("login.html", include_str!("templates/login.html")),
            ("consent.html", include_str!("templates/consent.html")),
            ("error.html", include_str!("templates/error.html")),
        ] {
            if let Err(error) = environment.add_template(name, source) {
                tracing::error!(%error, template = name, "a sign-in template does not compile");
            }
        }
        environment
    })
}

fn style_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let digest = Sha256::digest(CSS.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    })
}

/// `scheme://authority` of a URL (a CSP source), when it has one.
fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let origin = url.get(..scheme.len() + 3 + authority_end)?;
    origin
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, ';' | ',' | '\''))
        .then_some(origin)
}

/// The security headers of every page; `redirect_uri` is where the page's form may end up.
fn page_headers(redirect_uri: Option<&str>) -> HeaderMap {
    let mut form_action = "'self'".to_owned();
    if let Some(origin) = redirect_uri.and_then(origin_of) {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    let policy = format!(
        "default-src 'none'; style-src {}; img-src 'self'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'",
        style_hash()
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers
}

/// What the login page shows.
#[derive(Serialize)]
pub struct LoginPage<'a> {
    pub app_name: &'a str,
    pub redirect_host: &'a str,
    pub params: Vec<(&'static str, &'a str)>,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub message: Option<&'a str>,
}

/// What the consent page shows.
#[derive(Serialize)]
pub struct ConsentPage<'a> {
    pub app_name: &'a str,
    pub redirect_host: &'a str,
    pub user_name: &'a str,
    pub role: &'a str,
    pub patient: bool,
    pub scopes: Vec<&'static str>,
    pub params: Vec<(&'static str, &'a str)>,
    pub csrf_token: &'a str,
    pub consent_ticket: &'a str,
}

#[derive(Serialize)]
struct ErrorPage<'a> {
    message: &'a str,
}

fn render(template: &str, context: impl Serialize) -> Option<String> {
    #[derive(Serialize)]
    struct WithCss<T> {
        css: &'static str,
        #[serde(flatten)]
        page: T,
    }
    let page = WithCss {
        css: CSS,
        page: context,
    };
    environment()
        .get_template(template)
        .and_then(|template| template.render(page))
        .inspect_err(|error| tracing::error!(%error, "cannot render a sign-in page"))
        .ok()
}

/// A rendered page with its headers (and a cookie to set, if any).
pub fn page(
    status: StatusCode,
    template: &str,
    context: impl Serialize,
    redirect_uri: Option<&str>,
    cookie: Option<HeaderValue>,
) -> Response {
    let Some(body) = render(template, context) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            page_headers(None),
            "internal error",
        )
            .into_response();
    };
    let mut headers = page_headers(redirect_uri);
    if let Some(cookie) = cookie {
        headers.insert(header::SET_COOKIE, cookie);
    }
    (status, headers, body).into_response()
}

/// The error page: shown to the person, never redirected.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    page(status, "error.html", ErrorPage { message }, None, None)
}

/// `Set-Cookie` for a sign-in session: HttpOnly, SameSite=Lax, Secure (and `__Host-`) under TLS.
pub fn session_cookie(value: &str, secure: bool, max_age_seconds: i64) -> Option<HeaderValue> {
    let attributes = if secure {
        "Path=/; Secure"
    } else {
        "Path=/oauth"
    };
    HeaderValue::from_str(&format!(
        "{}={value}; {attributes}; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}",
        cookie_name(secure)
    ))
    .ok()
}

/// The session cookie's value in a request, if present.
pub fn session_cookie_value(headers: &HeaderMap, secure: bool) -> Option<String> {
    let name = cookie_name(secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A redirect (302 after a GET, 303 after a POST) to `target`, never cached.
pub fn redirect(status: StatusCode, target: &str, cookie: Option<HeaderValue>) -> Response {
    let Ok(location) = HeaderValue::from_str(target) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "the redirect URI cannot be used in a redirect",
        );
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, location);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(cookie) = cookie {
        headers.insert(header::SET_COOKIE, cookie);
    }
    (status, headers).into_response()
}

/// `uri` with `pairs` appended to its query.
pub fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let encoded = serde_urlencoded::to_string(pairs).unwrap_or_default();
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{encoded}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_and_escapes_html() {
        let html = render(
            "login.html",
            LoginPage {
                app_name: "<script>alert(1)</script>",
                redirect_host: "claude.ai",
                params: vec![("state", "\"><b>")],
                csrf_token: "t",
                username: "",
                message: None,
            },
        )
        .unwrap();
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains(r#"name="username""#) && html.contains(r#"name="password""#));
        assert!(render("error.html", ErrorPage { message: "x" }).is_some());
        let consent = render(
            "consent.html",
            ConsentPage {
                app_name: "A",
                redirect_host: "h",
                user_name: "u",
                role: "doctor",
                patient: false,
                scopes: vec!["See allergies"],
                params: vec![],
                csrf_token: "t",
                consent_ticket: "c",
            },
        )
        .unwrap();
        assert!(consent.contains(r#"name="decision" value="allow""#));
        assert!(consent.contains(r#"name="decision" value="deny""#));
    }

    #[test]
    fn redirect_origins_become_csp_sources() {
        assert_eq!(
            origin_of("http://127.0.0.1:5555/cb?x=1"),
            Some("http://127.0.0.1:5555")
        );
        assert_eq!(origin_of("https://claude.ai"), Some("https://claude.ai"));
        assert_eq!(origin_of("https://a.example;script-src/x"), None);
    }
}
