//! The authorization endpoint `/oauth/authorize` for people: GET shows the login page (or, once signed
//! in, the consent page, or redirects at once when consent is remembered); POST takes the login form
//! (`username`, `password`) or the consent form (`decision=allow|deny`). The rules live in
//! `auth::signin`; this module is HTTP only: parsing, the session cookie, pages and redirects.
//!
//! Every POST needs the session cookie and its CSRF token; an approval also needs the consent page's
//! ticket, which binds it to the session and to exactly the request the page showed. Errors found
//! before the client and redirect URI are trusted are shown on a page, never redirected.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;

use crate::audit::{AuditEvent, Outcome, Transport};
use crate::auth::signin::{
    AuthorizationRequest, AuthorizeError, AuthorizeParams, SESSION_TTL_SECONDS, SigninSession,
    describe_scope,
};
use crate::auth::users::SignedInUser;
use crate::auth::{AuthError, AuthService};
use crate::domain::origin::Origin;

mod pages;

use pages::{ConsentPage, LoginPage, error_page, page, redirect, with_query};

/// Largest accepted form body of the sign-in pages.
const MAX_FORM_BYTES: usize = 16 * 1024;

#[derive(Clone)]
struct SigninState {
    auth: AuthService,
    /// The public URL is https: the cookie is `Secure` (and `__Host-`).
    secure: bool,
}

/// The `/oauth/authorize` routes.
pub fn router(auth: AuthService) -> Router {
    let secure = auth.issuer().starts_with("https://");
    Router::new()
        .route("/oauth/authorize", get(authorize_get).post(authorize_post))
        .with_state(SigninState { auth, secure })
}

/// The form or query as name/value pairs.
fn pairs(raw: &[u8]) -> Result<Vec<(String, String)>, AuthError> {
    serde_urlencoded::from_bytes(raw)
        .map_err(|_| AuthError::InvalidRequest("the request parameters are malformed".to_owned()))
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, value)| key == name && !value.is_empty())
        .map(|(_, value)| value.as_str())
}

async fn authorize_get(
    State(state): State<SigninState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params =
        match pairs(query.unwrap_or_default().as_bytes()).and_then(AuthorizeParams::from_pairs) {
            Ok(params) => params,
            Err(error) => return error_page(StatusCode::BAD_REQUEST, &error.to_string()),
        };
    let request = match state.auth.check_authorization(&params).await {
        Ok(request) => request,
        Err(error) => return authorize_error(&state, error, StatusCode::FOUND),
    };
    let session = match session_of(&state, &headers).await {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let (session, cookie) = match session {
        Some(session) => (session, None),
        None => match state.auth.start_signin_session().await {
            Ok(session) => {
                let cookie =
                    pages::session_cookie(&session.cookie, state.secure, SESSION_TTL_SECONDS);
                (session, cookie)
            }
            Err(_) => return internal(),
        },
    };
    let user = match &session.user {
        Some(username) if !request.force_login => match state.auth.active_user(username).await {
            Ok(user) => user,
            Err(_) => return internal(),
        },
        _ => None,
    };
    let Some(user) = user else {
        return login_page(
            &request,
            &params,
            &session,
            "",
            None,
            StatusCode::OK,
            cookie,
        );
    };
    let scopes = request.scopes_for(&user);
    if scopes.is_empty() {
        return redirect_error(
            &state,
            &request,
            "access_denied",
            "your role allows none of the requested access",
            StatusCode::FOUND,
        );
    }
    if !request.force_consent {
        match state.auth.consent_covers(&user, &request, scopes).await {
            Ok(true) => {
                return issue_code(&state, &request, &user, StatusCode::FOUND, None).await;
            }
            Ok(false) => {}
            Err(_) => return internal(),
        }
    }
    consent_page(&request, &params, &session, &user, cookie)
}

async fn authorize_post(State(state): State<SigninState>, request: Request) -> Response {
    let source = source_of(&request);
    let (parts, body) = request.into_parts();
    let form = match read_form(&parts.headers, body).await {
        Ok(form) => form,
        Err(error) => return error_page(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let session = match session_of(&state, &parts.headers).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return error_page(
                StatusCode::FORBIDDEN,
                "your sign-in session has expired or cookies are blocked",
            );
        }
        Err(response) => return *response,
    };
    if !session.csrf_matches(field(&form, "csrf_token")) {
        return error_page(
            StatusCode::FORBIDDEN,
            "the form did not come from this server's sign-in page (CSRF check failed)",
        );
    }
    let params = match AuthorizeParams::from_pairs(form.clone()) {
        Ok(params) => params,
        Err(error) => return error_page(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let authorization = match state.auth.check_authorization(&params).await {
        Ok(authorization) => authorization,
        Err(error) => return authorize_error(&state, error, StatusCode::SEE_OTHER),
    };
    if let Some(decision) = field(&form, "decision") {
        return decide(&state, &authorization, &params, &session, &form, decision).await;
    }
    let (Some(username), Some(password)) = (field(&form, "username"), field(&form, "password"))
    else {
        return login_page(
            &authorization,
            &params,
            &session,
            field(&form, "username").unwrap_or(""),
            Some("Enter your username and password."),
            StatusCode::BAD_REQUEST,
            None,
        );
    };
    match state.auth.login(username, password, &source).await {
        Ok(user) => {
            audit(
                &state,
                &authorization,
                Some(&user),
                "user.login",
                Outcome::Success,
            )
            .await;
            let Ok(signed_in) = state.auth.sign_in_session(&session, &user).await else {
                return internal();
            };
            let cookie =
                pages::session_cookie(&signed_in.cookie, state.secure, SESSION_TTL_SECONDS);
            // Back to GET, which shows the consent page or redirects at once (PRG); a `prompt=login`
            // has been satisfied.
            let mut params = params;
            params.prompt = params.prompt.as_deref().and_then(|prompt| {
                let rest: Vec<&str> = prompt
                    .split_whitespace()
                    .filter(|p| *p != "login")
                    .collect();
                (!rest.is_empty()).then(|| rest.join(" "))
            });
            redirect(
                StatusCode::SEE_OTHER,
                &with_query("/oauth/authorize", &params.pairs()),
                cookie,
            )
        }
        Err(error) => {
            audit(&state, &authorization, None, "user.login", Outcome::Denied).await;
            let (message, status) = match error {
                AuthError::RateLimited { .. } => (error.to_string(), StatusCode::TOO_MANY_REQUESTS),
                AuthError::Internal(_) => return internal(),
                _ => (
                    "Wrong username or password.".to_owned(),
                    StatusCode::UNAUTHORIZED,
                ),
            };
            login_page(
                &authorization,
                &params,
                &session,
                username,
                Some(&message),
                status,
                None,
            )
        }
    }
}

/// The consent form's answer.
async fn decide(
    state: &SigninState,
    request: &AuthorizationRequest,
    params: &AuthorizeParams,
    session: &SigninSession,
    form: &[(String, String)],
    decision: &str,
) -> Response {
    let user = match &session.user {
        Some(username) => match state.auth.active_user(username).await {
            Ok(user) => user,
            Err(_) => return internal(),
        },
        None => None,
    };
    let Some(user) = user else {
        return error_page(StatusCode::FORBIDDEN, "sign in before approving access");
    };
    if !session.consent_ticket_matches(params, field(form, "consent_ticket")) {
        return error_page(
            StatusCode::FORBIDDEN,
            "this approval was not given on the consent page for this request",
        );
    }
    match decision {
        "allow" => {
            let scopes = request.scopes_for(&user);
            if scopes.is_empty() {
                return redirect_error(
                    state,
                    request,
                    "access_denied",
                    "your role allows none of the requested access",
                    StatusCode::SEE_OTHER,
                );
            }
            if state
                .auth
                .remember_consent(&user, request, scopes)
                .await
                .is_err()
            {
                return internal();
            }
            audit(
                state,
                request,
                Some(&user),
                "consent.grant",
                Outcome::Success,
            )
            .await;
            issue_code(state, request, &user, StatusCode::SEE_OTHER, None).await
        }
        "deny" => {
            audit(state, request, Some(&user), "consent.deny", Outcome::Denied).await;
            redirect_error(
                state,
                request,
                "access_denied",
                "the user denied access",
                StatusCode::SEE_OTHER,
            )
        }
        _ => error_page(StatusCode::BAD_REQUEST, "decision must be allow or deny"),
    }
}

async fn issue_code(
    state: &SigninState,
    request: &AuthorizationRequest,
    user: &SignedInUser,
    status: StatusCode,
    cookie: Option<axum::http::HeaderValue>,
) -> Response {
    let scopes = request.scopes_for(user);
    let Ok(code) = state.auth.issue_code(user, request, scopes).await else {
        return internal();
    };
    let mut query = vec![("code", code.as_str())];
    if let Some(state_param) = &request.state {
        query.push(("state", state_param));
    }
    query.push(("iss", state.auth.issuer()));
    redirect(status, &with_query(&request.redirect_uri, &query), cookie)
}

fn authorize_error(state: &SigninState, error: AuthorizeError, status: StatusCode) -> Response {
    match error {
        AuthorizeError::Page(message) => error_page(StatusCode::BAD_REQUEST, &message),
        AuthorizeError::Internal => internal(),
        AuthorizeError::Redirect(error) => {
            let mut query = vec![
                ("error", error.error),
                ("error_description", error.description.as_str()),
            ];
            if let Some(state_param) = &error.state {
                query.push(("state", state_param));
            }
            query.push(("iss", state.auth.issuer()));
            redirect(status, &with_query(&error.redirect_uri, &query), None)
        }
    }
}

fn redirect_error(
    state: &SigninState,
    request: &AuthorizationRequest,
    error: &'static str,
    description: &str,
    status: StatusCode,
) -> Response {
    authorize_error(state, request.error(error, description), status)
}

fn login_page(
    request: &AuthorizationRequest,
    params: &AuthorizeParams,
    session: &SigninSession,
    username: &str,
    message: Option<&str>,
    status: StatusCode,
    cookie: Option<axum::http::HeaderValue>,
) -> Response {
    page(
        status,
        "login.html",
        LoginPage {
            app_name: &request.client.app_name,
            redirect_host: request.redirect_host(),
            params: params.pairs(),
            csrf_token: &session.csrf_token,
            username,
            message,
        },
        Some(&request.redirect_uri),
        cookie,
    )
}

fn consent_page(
    request: &AuthorizationRequest,
    params: &AuthorizeParams,
    session: &SigninSession,
    user: &SignedInUser,
    cookie: Option<axum::http::HeaderValue>,
) -> Response {
    let ticket = session.consent_ticket(params);
    page(
        StatusCode::OK,
        "consent.html",
        ConsentPage {
            app_name: &request.client.app_name,
            redirect_host: request.redirect_host(),
            user_name: user
                .display_name
                .as_deref()
                .unwrap_or(user.username.as_str()),
            role: user.role.as_str(),
            patient: user.patient_mrn.is_some(),
            scopes: request
                .scopes_for(user)
                .iter()
                .map(describe_scope)
                .collect(),
            params: params.pairs(),
            csrf_token: &session.csrf_token,
            consent_ticket: &ticket,
        },
        Some(&request.redirect_uri),
        cookie,
    )
}

fn internal() -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the server could not complete the request",
    )
}

async fn session_of(
    state: &SigninState,
    headers: &HeaderMap,
) -> Result<Option<SigninSession>, Box<Response>> {
    let Some(cookie) = pages::session_cookie_value(headers, state.secure) else {
        return Ok(None);
    };
    state
        .auth
        .find_signin_session(&cookie)
        .await
        .map_err(|_| Box::new(internal()))
}

async fn read_form(headers: &HeaderMap, body: Body) -> Result<Vec<(String, String)>, AuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    {
        return Err(AuthError::InvalidRequest(
            "the form must be application/x-www-form-urlencoded".to_owned(),
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| AuthError::InvalidRequest("the form is too large".to_owned()))?;
    pairs(&bytes)
}

/// The peer address: the key of login throttling (forwarded headers are not trusted).
fn source_of(request: &Request) -> String {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    Origin::new(Transport::Http, peer).budget_key()
}

/// One audit row for a login or consent decision: the client, and the user when known.
async fn audit(
    state: &SigninState,
    request: &AuthorizationRequest,
    user: Option<&SignedInUser>,
    action: &str,
    outcome: Outcome,
) {
    let event = AuditEvent {
        client_id: Some(request.client.client_id.as_str().to_owned()),
        app_id: Some(request.client.app_id.clone()),
        role: user.map(|user| user.role.as_str().to_owned()),
        detail: user.map(|user| format!("user={}", user.username)),
        ..AuditEvent::new(Transport::Http, action, outcome)
    };
    if let Err(error) = state.auth.audit().record(event).await {
        tracing::error!(%error, "cannot audit a sign-in step");
    }
}
