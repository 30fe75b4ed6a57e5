//! People who sign in: Argon2id password hashes, user management (the `user` CLI and demo users), the
//! login check with throttling, and what each role may be granted.
//!
//! Throttling: failed logins count per source address and per username. The per-username allowance is
//! skipped for an address that has signed in as that user before (on this instance), so an attacker
//! hammering one account cannot lock its owner out of the place they usually sign in from.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Serialize;

use crate::domain::access::Role;
use crate::domain::ids::Mrn;
use crate::domain::user::{Username, check_user_role};
use crate::store::users::UserRecord;
use crate::store::{Store, StoreError, now_text};

use super::policy;
use super::scope::{Scope, ScopeSet};
use super::secret::ClientSecret;
use super::{AuthError, AuthService};

/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password (bounds the hashing work a peer can ask for).
pub const MAX_PASSWORD_BYTES: usize = 256;

/// Argon2id with the OWASP-recommended minimum (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password` (fresh salt).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    check_password(password)?;
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| AuthError::Internal("cannot hash the password".to_owned()))
}

/// Whether `password` matches the stored PHC string (constant-time inside argon2).
pub fn verify_password(stored: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(stored).is_ok_and(|parsed| {
        hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends one verification's time for an unknown user, so timing does not reveal who exists.
fn verify_against_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored =
        DUMMY.get_or_init(|| hash_password("not-a-password-of-anyone").unwrap_or_default());
    let _ = verify_password(stored, password);
}

fn check_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::InvalidRequest(format!(
            "a password needs {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_BYTES} characters"
        )));
    }
    Ok(())
}

/// A generated password: 256 random bits, base64url.
pub fn generate_password() -> String {
    ClientSecret::generate().expose().to_owned()
}

/// The scopes a person of `role` may ever be granted: the scopes of the tools the policy lets that role
/// call (a patient reads with `read:own_records`).
pub fn scopes_for_role(role: Role) -> ScopeSet {
    Scope::ALL
        .iter()
        .copied()
        .filter(|scope| policy::role_may_use_scope(role, *scope))
        .fold(ScopeSet::empty(), ScopeSet::with)
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub role: Role,
    pub patient_mrn: Option<Mrn>,
    pub display_name: Option<String>,
}

/// A user as listed (no hash).
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub username: String,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_mrn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub is_active: bool,
    pub created_at: String,
}

impl From<UserRecord> for UserInfo {
    fn from(record: UserRecord) -> Self {
        Self {
            username: record.username.to_string(),
            role: record.role,
            patient_mrn: record.patient_mrn.map(|mrn| mrn.as_str().to_owned()),
            display_name: record.display_name,
            is_active: record.is_active,
            created_at: record.created_at,
        }
    }
}

/// A user who signed in.
#[derive(Debug, Clone)]
pub struct SignedInUser {
    pub username: Username,
    pub role: Role,
    pub patient_mrn: Option<Mrn>,
    pub display_name: Option<String>,
}

impl From<UserRecord> for SignedInUser {
    fn from(record: UserRecord) -> Self {
        Self {
            username: record.username,
            role: record.role,
            patient_mrn: record.patient_mrn,
            display_name: record.display_name,
        }
    }
}

/// Creates a user with this password.
pub async fn add(store: &Store, user: NewUser, password: &str) -> Result<UserInfo, AuthError> {
    check_user_role(user.role, user.patient_mrn.as_ref())
        .map_err(|error| AuthError::InvalidRequest(error.to_string()))?;
    let display_name = match user.display_name.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) if name.chars().count() > 200 || name.chars().any(char::is_control) => {
            return Err(AuthError::InvalidRequest(
                "display name must be 1-200 printable characters".to_owned(),
            ));
        }
        Some(name) => Some(name.to_owned()),
    };
    let now = now_text();
    let record = UserRecord {
        username: user.username,
        password_hash: hash_password(password)?,
        role: user.role,
        patient_mrn: user.patient_mrn,
        display_name,
        is_active: true,
        created_at: now.clone(),
        updated_at: now,
    };
    store
        .insert_user(&record)
        .await
        .map_err(|error| match error {
            StoreError::Conflict { .. } => {
                AuthError::InvalidRequest("a user with this username already exists".to_owned())
            }
            other => AuthError::from(other),
        })?;
    Ok(UserInfo::from(record))
}

pub async fn list(store: &Store) -> Result<Vec<UserInfo>, AuthError> {
    Ok(store
        .list_users()
        .await?
        .into_iter()
        .map(UserInfo::from)
        .collect())
}

/// Disables or enables a user in the store; a disabled user's refresh tokens are revoked, and every
/// server instance stops the user's access tokens within its status refresh interval.
pub async fn set_active(store: &Store, username: &Username, active: bool) -> Result<(), AuthError> {
    store
        .set_user_active(username, active)
        .await
        .map_err(not_found_user)?;
    if !active {
        store
            .revoke_user_refresh_tokens(username.as_str(), None)
            .await?;
    }
    Ok(())
}

pub async fn set_password(
    store: &Store,
    username: &Username,
    password: &str,
) -> Result<(), AuthError> {
    let hash = hash_password(password)?;
    store
        .set_user_password_hash(username, &hash)
        .await
        .map_err(not_found_user)
}

impl AuthService {
    /// Disables or enables a user. Disabling stops the user's access tokens at once (and within the
    /// status refresh interval on other instances) and revokes their refresh tokens.
    pub async fn set_user_active(
        &self,
        username: &Username,
        active: bool,
    ) -> Result<(), AuthError> {
        set_active(self.store(), username, active).await?;
        self.inner
            .users
            .insert(username.as_str().to_owned(), active);
        if !active {
            self.inner.cache.forget_user(username.as_str());
        }
        Ok(())
    }

    /// Checks a login. Refused while throttled; every failure counts. The error never says whether the
    /// user exists.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        source: &str,
    ) -> Result<SignedInUser, AuthError> {
        let limits = &self.inner.login_limits;
        let pair = format!("{username}\u{0}{source}");
        let known_address = self.inner.known_logins.contains_key(&pair);
        let user_key = (!known_address).then_some(username);
        limits
            .check_not_throttled(user_key, source)
            .map_err(|retry_after| AuthError::RateLimited { retry_after })?;
        let failed = || {
            limits.record_failure(user_key, source).err().map_or_else(
                || AuthError::Unauthenticated("wrong username or password".to_owned()),
                |retry_after| AuthError::RateLimited { retry_after },
            )
        };
        let Ok(parsed) = Username::parse(username) else {
            verify_against_nothing(password);
            return Err(failed());
        };
        let Some(user) = self.store().find_user(&parsed).await? else {
            verify_against_nothing(password);
            return Err(failed());
        };
        let hash = user.password_hash.clone();
        let candidate = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &candidate))
            .await
            .unwrap_or(false);
        if !matches || !user.is_active {
            return Err(failed());
        }
        if self.inner.known_logins.len() > 100_000 {
            self.inner.known_logins.clear();
        }
        self.inner.known_logins.insert(pair, ());
        Ok(SignedInUser::from(user))
    }

    /// The user behind a session or token, if they still exist and are active.
    pub async fn active_user(
        &self,
        username: &Username,
    ) -> Result<Option<SignedInUser>, AuthError> {
        let user = self.store().find_user(username).await?;
        if let Some(user) = &user {
            self.inner
                .users
                .insert(user.username.as_str().to_owned(), user.is_active);
        }
        Ok(user.filter(|user| user.is_active).map(SignedInUser::from))
    }
}

fn not_found_user(error: StoreError) -> AuthError {
    match error {
        StoreError::NotFound { .. } => AuthError::NotFound("no such user".to_owned()),
        other => AuthError::from(other),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse batterY"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn roles_are_granted_only_their_scopes() {
        let doctor = scopes_for_role(Role::Doctor);
        assert!(doctor.contains(Scope::WriteMedications));
        assert!(!doctor.contains(Scope::AdminClients));
        let nurse = scopes_for_role(Role::Nurse);
        assert!(!nurse.contains(Scope::WriteMedications));
        let patient = scopes_for_role(Role::Patient);
        assert!(patient.contains(Scope::ReadOwnRecords));
        assert!(!patient.contains(Scope::ReadPatients));
        let admin = scopes_for_role(Role::Admin);
        assert!(admin.contains(Scope::AdminClients) && admin.contains(Scope::ReadAudit));
        assert!(!admin.contains(Scope::ReadLabs));
    }
}
