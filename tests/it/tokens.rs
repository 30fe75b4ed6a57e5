//! Token validation against forged, tampered, expired, misdirected and revoked tokens; HS256 mode; key
//! rotation; disabling a client; `private_key_jwt` with every accepted algorithm, replay and wrong `aud`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ehr_mcp::auth::{AuthError, AuthService, ClientCredentials, TokenRequest};
use ehr_mcp::domain::access::Role;
use ehr_mcp::store::Store;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::auth_support::{TEST_ISSUER, low_s, register, register_with, service, test_kek};
use crate::support::TestDb;

async fn issue(auth: &AuthService, client: &ehr_mcp::auth::RegisteredClient) -> String {
    auth.issue_for_client_secret(
        client.client_id.as_str(),
        client.client_secret.expose(),
        None,
        None,
        crate::auth_support::http_origin("10.1.1.1"),
    )
    .await
    .expect("issue")
    .access_token
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Our active signing key, read from the database as an attacker with a database copy could not use
/// to forge *other* servers' tokens, but as a test needs to craft claims.
async fn our_signing_key(store: &Store) -> (String, EncodingKey) {
    let key = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .rfind(|key| key.retired_at.is_none())
        .unwrap();
    (
        key.kid.clone(),
        EncodingKey::from_ec_pem(
            test_kek()
                .open(&key.kid, &key.private_pem)
                .unwrap()
                .as_bytes(),
        )
        .unwrap(),
    )
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.typ = Some("at+jwt".to_owned());
    header.kid = kid.map(str::to_owned);
    let token = jsonwebtoken::encode(&header, claims, key).unwrap();
    if alg == Algorithm::ES256 {
        low_s(token)
    } else {
        token
    }
}

fn assert_refused(result: Result<ehr_mcp::auth::Principal, AuthError>, why: &str) {
    match result {
        Err(AuthError::Unauthenticated(message)) => {
            assert!(
                message.starts_with("invalid access token"),
                "{why}: {message}"
            );
        }
        other => panic!("{why}: expected Unauthenticated, got {other:?}"),
    }
}

#[tokio::test]
async fn forged_tampered_and_misdirected_tokens_are_refused() {
    let db = TestDb::sqlite().await;
    let client = register(&db.store, Role::Nurse, "read:patients").await;
    let auth = service(&db.store, None).await;
    let token = issue(&auth, &client).await;
    let principal = auth.validate(&token).await.unwrap();
    assert_eq!(principal.role, Role::Nurse);
    assert_eq!(principal.scopes.to_string(), "read:patients");

    let (kid, our_key) = our_signing_key(&db.store).await;
    let good = claims_of(&token);
    let now = chrono::Utc::now().timestamp();
    let altered = |field: &str, value: Value| {
        let mut claims = good.clone();
        claims[field] = value;
        claims
    };
    // Control: a token we sign with the real key and unchanged claims is accepted.
    assert!(
        auth.validate(&sign(
            Algorithm::ES256,
            Some(&kid),
            &altered("jti", json!("fresh-jti")),
            &our_key
        ))
        .await
        .is_ok()
    );

    let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let payload = URL_SAFE_NO_PAD.encode(good.to_string());
    assert_refused(
        auth.validate(&format!("{header_none}.{payload}.")).await,
        "alg none",
    );

    let stranger = EncodingKey::from_ec_pem(
        ehr_mcp::auth::keys::generate_es256(None)
            .unwrap()
            .private_pem
            .as_bytes(),
    )
    .unwrap();
    assert_refused(
        auth.validate(&sign(Algorithm::ES256, Some(&kid), &good, &stranger))
            .await,
        "wrong key",
    );

    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] =
        URL_SAFE_NO_PAD.encode(altered("scope", json!("read:patients admin:clients")).to_string());
    assert_refused(auth.validate(&parts.join(".")).await, "tampered payload");

    let expired = altered("exp", json!(now - 120));
    assert_refused(
        auth.validate(&sign(Algorithm::ES256, Some(&kid), &expired, &our_key))
            .await,
        "expired",
    );
    let future = altered("nbf", json!(now + 600));
    assert_refused(
        auth.validate(&sign(Algorithm::ES256, Some(&kid), &future, &our_key))
            .await,
        "not yet valid",
    );
    let wrong_aud = altered("aud", json!("https://other.example/mcp"));
    assert_refused(
        auth.validate(&sign(Algorithm::ES256, Some(&kid), &wrong_aud, &our_key))
            .await,
        "wrong aud",
    );
    let wrong_iss = altered("iss", json!("https://evil.example"));
    assert_refused(
        auth.validate(&sign(Algorithm::ES256, Some(&kid), &wrong_iss, &our_key))
            .await,
        "wrong iss",
    );

    // HS256 signed with our public key (as JWK text and as its raw coordinates) must not verify.
    let jwk = auth.jwks()["keys"][0].to_string();
    for secret in [jwk.as_bytes(), kid.as_bytes()] {
        let forged = sign(
            Algorithm::HS256,
            Some(&kid),
            &good,
            &EncodingKey::from_secret(secret),
        );
        assert_refused(auth.validate(&forged).await, "HS256 with the public key");
    }
    assert_refused(auth.validate("garbage").await, "garbage");
    assert_refused(auth.validate("").await, "empty");
}

#[tokio::test]
async fn revocation_and_disabling_act_at_once_even_for_cached_tokens() {
    for db in TestDb::all().await {
        let client = register(&db.store, Role::Doctor, "read:patients").await;
        let auth = service(&db.store, None).await;
        let token = issue(&auth, &client).await;
        let caller = auth
            .authenticate_caller(
                &ehr_mcp::auth::ClientCredentials::Secret {
                    client_id: client.client_id.as_str().to_owned(),
                    client_secret: client.client_secret.expose().to_owned(),
                },
                crate::auth_support::http_origin("10.1.1.1"),
            )
            .await
            .unwrap();
        let principal = auth.validate(&token).await.unwrap();
        assert!(auth.validate(&token).await.is_ok(), "cached");
        assert!(auth.recheck(principal.clone()).await.is_ok(), "rechecked");
        auth.revoke(&token, &caller).await.unwrap();
        assert_refused(auth.validate(&token).await, "revoked");
        assert_refused(auth.recheck(principal).await, "revoked principal");

        // Disabled here: immediately.
        let second = issue(&auth, &client).await;
        let principal = auth.validate(&second).await.unwrap();
        auth.disable_client(&client.client_id).await.unwrap();
        assert_refused(auth.validate(&second).await, "client disabled");
        assert_refused(
            auth.recheck(principal).await,
            "principal of a disabled client",
        );
        auth.enable_client(&client.client_id).await.unwrap();

        // Revoked and disabled by another instance (another service over the same database).
        let other_instance = service(&db.store, None).await;
        let third = issue(&auth, &client).await;
        assert!(auth.validate(&third).await.is_ok());
        other_instance.revoke(&third, &caller).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_refused(auth.validate(&third).await, "revoked elsewhere");
        let fourth = issue(&auth, &client).await;
        assert!(auth.validate(&fourth).await.is_ok());
        ehr_mcp::auth::clients::set_active(&db.store, &client.client_id, false)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_refused(
            auth.validate(&fourth).await,
            "disabled from the command line",
        );
    }
}

#[tokio::test]
async fn rotated_keys_keep_old_tokens_valid_and_both_keys_published() {
    for db in TestDb::all().await {
        let client = register(&db.store, Role::System, "read:labs").await;
        let auth = service(&db.store, None).await;
        let before = issue(&auth, &client).await;
        let new_kid = ehr_mcp::auth::keys::rotate(&db.store, Some(&test_kek()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let after = issue(&auth, &client).await;
        let kid_of = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
        assert_eq!(kid_of(&after), new_kid);
        assert_ne!(kid_of(&before), new_kid);
        assert!(
            auth.validate(&before).await.is_ok(),
            "old token still valid"
        );
        assert!(auth.validate(&after).await.is_ok());
        let kids: Vec<String> = auth.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect();
        assert!(kids.contains(&kid_of(&before)) && kids.contains(&new_kid));
        // A fresh instance sees the same keys.
        let other = service(&db.store, None).await;
        assert!(other.validate(&before).await.is_ok());
    }
}

#[tokio::test]
async fn hs256_mode_signs_with_the_shared_key_only_when_set() {
    let db = TestDb::sqlite().await;
    let client = register(&db.store, Role::Doctor, "read:patients").await;
    let shared = "an-operator-chosen-shared-key-of-32-bytes-or-more";
    let auth = service(&db.store, Some(shared)).await;
    let token = issue(&auth, &client).await;
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().alg,
        Algorithm::HS256
    );
    assert!(auth.validate(&token).await.is_ok());
    let forged = sign(
        Algorithm::HS256,
        None,
        &claims_of(&token),
        &EncodingKey::from_secret(b"another-key-another-key-another-key"),
    );
    assert_refused(auth.validate(&forged).await, "HS256 with another key");
    let es_only = service(&db.store, None).await;
    assert_refused(
        es_only.validate(&token).await,
        "HS256 without JWT_SECRET_KEY",
    );
    let args = ehr_mcp::config::AuthArgs {
        public_url: None,
        token_ttl_seconds: 3600,
        jwt_secret_key: Some("short".to_owned().into()),
        redirect_hosts: vec!["claude.ai".to_owned()],
        cimd_allow_private: false,
        refresh_ttl_days: 30,
        key_encryption: ehr_mcp::config::KeyEncryptionArgs::default(),
    };
    assert!(matches!(
        args.auth_settings(TEST_ISSUER, true),
        Err(AuthError::Config(_))
    ));
}

/// A client key pair for `private_key_jwt`: the private key and its public JWK.
struct ClientKey {
    alg: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

fn rsa_key(alg: Algorithm, kid: &str) -> ClientKey {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    let pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
    ClientKey {
        alg,
        key: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        jwk: json!({"kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()), "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be())}),
    }
}

fn ec_key(alg: Algorithm, kid: &str) -> ClientKey {
    let (algorithm, curve, size) = match alg {
        Algorithm::ES256 => (&rcgen::PKCS_ECDSA_P256_SHA256, "P-256", 32),
        _ => (&rcgen::PKCS_ECDSA_P384_SHA384, "P-384", 48),
    };
    let pair = rcgen::KeyPair::generate_for(algorithm).unwrap();
    let point = pair.public_key_raw();
    ClientKey {
        alg,
        key: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
        jwk: json!({"kty": "EC", "crv": curve, "kid": kid, "x": URL_SAFE_NO_PAD.encode(&point[1..=size]), "y": URL_SAFE_NO_PAD.encode(&point[size + 1..])}),
    }
}

fn assertion(
    key: &ClientKey,
    kid: &str,
    client_id: &str,
    aud: &str,
    jti: &str,
    exp: Option<i64>,
) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(kid.to_owned());
    let now = chrono::Utc::now().timestamp();
    let mut claims =
        json!({"iss": client_id, "sub": client_id, "aud": aud, "jti": jti, "iat": now});
    if let Some(exp) = exp {
        claims["exp"] = json!(exp);
    }
    jsonwebtoken::encode(&header, &claims, &key.key).unwrap()
}

async fn issue_with_assertion(
    auth: &AuthService,
    source: &str,
    assertion: String,
) -> Result<ehr_mcp::auth::IssuedToken, AuthError> {
    auth.issue(TokenRequest {
        credentials: ClientCredentials::Assertion {
            client_id: None,
            assertion,
        },
        app_id: None,
        scope: None,
        resource: None,
        origin: crate::auth_support::http_origin(source),
        request_id: "test".to_owned(),
    })
    .await
}

#[tokio::test]
async fn private_key_jwt_accepts_each_algorithm_and_refuses_replay_and_wrong_audience() {
    // RS256 and RS384 share one RSA key pair (its JWK has no `alg`, so both algorithms may use it).
    let rsa = rsa_key(Algorithm::RS256, "rsa-1");
    let rs384 = ClientKey {
        alg: Algorithm::RS384,
        key: rsa.key.clone(),
        jwk: rsa.jwk.clone(),
    };
    let keys = [
        (rsa, "rsa-1"),
        (rs384, "rsa-1"),
        (ec_key(Algorithm::ES256, "ec-256"), "ec-256"),
        (ec_key(Algorithm::ES384, "ec-384"), "ec-384"),
    ];
    for db in TestDb::all().await {
        let auth = service(&db.store, None).await;
        let token_endpoint = format!("{TEST_ISSUER}/oauth/token");
        for (index, (signer, kid)) in keys.iter().enumerate() {
            let source = format!("10.2.2.{index}");
            let jwks = json!({"keys": [signer.jwk]}).to_string();
            let client =
                register_with(&db.store, Role::System, "read:labs", Some(jwks), None).await;
            let id = client.client_id.as_str();
            let exp = Some(chrono::Utc::now().timestamp() + 120);
            let first = assertion(signer, kid, id, &token_endpoint, "jti-1", exp);
            let issued = issue_with_assertion(&auth, &source, first.clone()).await;
            assert!(issued.is_ok(), "{:?}: {issued:?}", signer.alg);
            assert!(
                matches!(
                    issue_with_assertion(&auth, &source, first).await,
                    Err(AuthError::InvalidClient(_))
                ),
                "{:?}: replay",
                signer.alg
            );
            let to_issuer = assertion(signer, kid, id, TEST_ISSUER, "jti-2", exp);
            assert!(
                issue_with_assertion(&auth, &source, to_issuer)
                    .await
                    .is_ok(),
                "aud = issuer is accepted"
            );
            let wrong_aud = assertion(signer, kid, id, "https://other.example/token", "jti-3", exp);
            assert!(
                matches!(
                    issue_with_assertion(&auth, &source, wrong_aud).await,
                    Err(AuthError::InvalidClient(_))
                ),
                "wrong aud"
            );
            let no_exp = assertion(signer, kid, id, &token_endpoint, "jti-4", None);
            assert!(
                matches!(
                    issue_with_assertion(&auth, &source, no_exp).await,
                    Err(AuthError::InvalidClient(_))
                ),
                "exp required"
            );
        }
        // Signed with a key the client did not register.
        let registered = ec_key(Algorithm::ES256, "mine");
        let client = register_with(
            &db.store,
            Role::System,
            "read:labs",
            Some(json!({"keys": [registered.jwk]}).to_string()),
            None,
        )
        .await;
        let intruder = ec_key(Algorithm::ES256, "mine");
        let forged = assertion(
            &intruder,
            "mine",
            client.client_id.as_str(),
            &token_endpoint,
            "jti-x",
            Some(chrono::Utc::now().timestamp() + 60),
        );
        assert!(matches!(
            issue_with_assertion(&auth, "10.2.3.1", forged).await,
            Err(AuthError::InvalidClient(_))
        ));
    }
}
