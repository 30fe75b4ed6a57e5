//! Users (issue #10): Argon2id passwords, login throttling, disabling; dynamic registration under the
//! redirect policy. Runs on SQLite and, when configured, PostgreSQL.

use ehr_mcp::auth::AuthError;
use ehr_mcp::auth::registration::RegistrationRequest;
use ehr_mcp::auth::users::{self, NewUser};
use ehr_mcp::domain::access::Role;
use ehr_mcp::domain::ids::Mrn;
use ehr_mcp::domain::user::Username;

use crate::auth_support::service;
use crate::support::TestDb;

fn new_user(name: &str, role: Role, mrn: Option<&str>) -> NewUser {
    NewUser {
        username: Username::parse(name).expect("username"),
        role,
        patient_mrn: mrn.map(|mrn| Mrn::parse(mrn).expect("mrn")),
        display_name: Some("Dr. Test".to_owned()),
    }
}

#[tokio::test]
async fn users_sign_in_with_argon2id_passwords_and_disabled_users_cannot() {
    for db in TestDb::all().await {
        let auth = service(&db.store, None).await;
        let doctor = new_user("dr.test", Role::Doctor, None);
        users::add(&db.store, doctor.clone(), "a long enough password")
            .await
            .expect("add");
        let stored = db.store.find_user(&doctor.username).await.unwrap().unwrap();
        assert!(stored.password_hash.starts_with("$argon2id$"));
        assert!(matches!(
            users::add(&db.store, doctor.clone(), "a long enough password").await,
            Err(AuthError::InvalidRequest(_))
        ));
        assert!(
            users::add(
                &db.store,
                new_user("p1", Role::Patient, None),
                "a long enough password"
            )
            .await
            .is_err()
        );
        assert!(
            users::add(&db.store, new_user("n1", Role::Nurse, None), "short")
                .await
                .is_err()
        );

        let signed_in = auth
            .login("dr.test", "a long enough password", "10.0.0.1")
            .await
            .expect("login");
        assert_eq!(signed_in.role, Role::Doctor);
        assert!(matches!(
            auth.login("dr.test", "wrong password!!", "10.0.0.1").await,
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(matches!(
            auth.login("nobody", "wrong password!!", "10.0.0.1").await,
            Err(AuthError::Unauthenticated(_))
        ));

        users::set_password(&db.store, &doctor.username, "another long password")
            .await
            .unwrap();
        assert!(
            auth.login("dr.test", "a long enough password", "10.0.0.2")
                .await
                .is_err()
        );
        assert!(
            auth.login("dr.test", "another long password", "10.0.0.2")
                .await
                .is_ok()
        );

        auth.set_user_active(&doctor.username, false).await.unwrap();
        assert!(
            auth.login("dr.test", "another long password", "10.0.0.3")
                .await
                .is_err()
        );
        let listed = users::list(&db.store).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(!listed[0].is_active);
    }
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address_but_the_user_keeps_their_known_address() {
    let db = TestDb::sqlite().await;
    let auth = service(&db.store, None).await;
    users::add(
        &db.store,
        new_user("nurse.a", Role::Nurse, None),
        "nurse password 123",
    )
    .await
    .unwrap();
    assert!(
        auth.login("nurse.a", "nurse password 123", "10.1.1.1")
            .await
            .is_ok()
    );
    let mut throttled = false;
    for _ in 0..40 {
        if let Err(AuthError::RateLimited { .. }) =
            auth.login("nurse.a", "guess guess guess", "10.9.9.9").await
        {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "an attacker's address is throttled");
    // The attack does not lock the owner out where they signed in before.
    assert!(
        auth.login("nurse.a", "nurse password 123", "10.1.1.1")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn dynamic_registration_follows_the_redirect_policy() {
    let db = TestDb::sqlite().await;
    let auth = service(&db.store, None).await;
    let request = |uris: &[&str], method: &str| RegistrationRequest {
        redirect_uris: uris.iter().map(|uri| (*uri).to_owned()).collect(),
        client_name: Some("Test client".to_owned()),
        grant_types: None,
        response_types: None,
        token_endpoint_auth_method: Some(method.to_owned()),
        scope: None,
    };
    let public = auth
        .register_dynamic_client(
            request(&["http://127.0.0.1:9999/callback"], "none"),
            "10.0.0.1",
        )
        .await
        .expect("loopback public client");
    assert!(public.client_secret.is_none());
    let confidential = auth
        .register_dynamic_client(
            request(
                &["https://claude.ai/api/mcp/auth_callback"],
                "client_secret_basic",
            ),
            "10.0.0.1",
        )
        .await
        .expect("confidential client");
    assert!(confidential.client_secret.is_some());
    assert!(!confidential.scope.contains("admin:clients"));
    for refused in [
        "https://evil.example/cb",
        "http://evil.example/cb",
        "https://claude.ai@evil.example/cb",
    ] {
        assert!(matches!(
            auth.register_dynamic_client(request(&[refused], "none"), "10.0.0.1")
                .await,
            Err(AuthError::InvalidRedirectUri(_))
        ));
    }
    let stored = auth
        .redirect_client(&public.client_id)
        .await
        .unwrap()
        .expect("settings");
    assert!(stored.accepts_redirect("http://127.0.0.1:4444/callback"));
    assert!(!stored.accepts_redirect("https://evil.example/callback"));
}
