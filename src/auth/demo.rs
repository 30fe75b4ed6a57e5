//! The demo OAuth clients (PRODUCT §5) and their credentials file `oauth_clients_credentials.json`
//! (mode 0600), created only when the database has no clients; the demo users (a doctor, a nurse, a
//! patient bound to MRN001, an admin) and `demo_users.json` beside it (mode 0600), created only when
//! the database has no users.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::domain::access::Role;
use crate::domain::ids::{ClientId, Mrn};
use crate::store::Store;

use super::AuthError;
use super::clients::{NewClient, register};
use super::scope::ScopeSet;

/// Requests per hour for each demo client.
pub const DEMO_RATE_LIMIT: i64 = 10_000;

struct DemoClient {
    app_id: &'static str,
    app_name: &'static str,
    role: Role,
    /// `None`: every clinical scope.
    scopes: Option<&'static str>,
    patient_mrn: Option<&'static str>,
}

const DEMO_CLIENTS: &[DemoClient] = &[
    DemoClient {
        app_id: "copilot-studio",
        app_name: "Microsoft Copilot Studio",
        role: Role::Doctor,
        scopes: None,
        patient_mrn: None,
    },
    DemoClient {
        app_id: "hospital-ehr-app",
        app_name: "Hospital EHR Application",
        role: Role::Doctor,
        scopes: None,
        patient_mrn: None,
    },
    DemoClient {
        app_id: "patient-portal",
        app_name: "Patient Portal",
        role: Role::Patient,
        scopes: Some("read:own_records write:appointments"),
        patient_mrn: Some("MRN001"),
    },
    DemoClient {
        app_id: "lab-integration",
        app_name: "Lab Integration System",
        role: Role::System,
        scopes: Some("read:patients read:labs write:labs"),
        patient_mrn: None,
    },
    DemoClient {
        app_id: "pharmacy-system",
        app_name: "Pharmacy System",
        role: Role::System,
        scopes: Some("read:patients read:medications write:medications"),
        patient_mrn: None,
    },
    DemoClient {
        app_id: "nurse-station",
        app_name: "Nurse Station",
        role: Role::Nurse,
        scopes: Some(
            "read:patients read:appointments read:medications read:vitals write:vitals read:allergies",
        ),
        patient_mrn: None,
    },
    DemoClient {
        app_id: "admin-console",
        app_name: "Admin Console",
        role: Role::Admin,
        scopes: Some("admin:clients read:audit"),
        patient_mrn: None,
    },
];

/// One entry of the credentials file (the earlier system's format).
#[derive(Debug, Serialize)]
pub struct DemoCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub app_id: String,
    pub app_name: String,
    pub role: String,
    pub scopes: String,
}

/// What [`ensure_demo_clients`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoClientsOutcome {
    /// The database had no clients: the demo clients were created and their credentials written.
    Created { count: usize, path: PathBuf },
    /// Clients already exist; the credentials file is there.
    AlreadyPresent { path: PathBuf },
    /// Clients exist but the credentials file is missing: secrets are stored only as hashes, so it
    /// cannot be rewritten. Nothing was changed.
    CredentialsFileMissing { path: PathBuf },
}

impl DemoClientsOutcome {
    /// A one-line note for the operator.
    pub fn message(&self) -> String {
        match self {
            Self::Created { count, path } => format!(
                "created {count} demo OAuth clients; credentials written to {} (mode 0600)",
                path.display()
            ),
            Self::AlreadyPresent { path } => format!(
                "OAuth clients already exist; demo credentials are in {}",
                path.display()
            ),
            Self::CredentialsFileMissing { path } => format!(
                "note: OAuth clients already exist but {} is missing; secrets are stored only as hashes \
                 and cannot be shown again. Use `ehr-mcp client rotate-secret ID` for a new secret, or \
                 `ehr-mcp client list` to see the clients.",
                path.display()
            ),
        }
    }
}

/// Creates the demo clients when the database has none and writes their credentials to `path`.
pub async fn ensure_demo_clients(
    store: &Store,
    path: &Path,
) -> Result<DemoClientsOutcome, AuthError> {
    if store.count_clients().await? > 0 {
        return Ok(if path.exists() {
            DemoClientsOutcome::AlreadyPresent {
                path: path.to_owned(),
            }
        } else {
            DemoClientsOutcome::CredentialsFileMissing {
                path: path.to_owned(),
            }
        });
    }
    let mut credentials = Vec::with_capacity(DEMO_CLIENTS.len());
    for demo in DEMO_CLIENTS {
        let scopes = demo
            .scopes
            .map_or_else(|| ScopeSet::all_clinical().to_string(), str::to_owned);
        let registered =
            register(
                store,
                NewClient {
                    app_id: demo.app_id.to_owned(),
                    app_name: demo.app_name.to_owned(),
                    role: demo.role,
                    scopes,
                    patient_mrn: demo.patient_mrn.map(Mrn::parse).transpose().map_err(|_| {
                        AuthError::Internal("demo patient MRN is invalid".to_owned())
                    })?,
                    jwks: None,
                    rate_limit: Some(DEMO_RATE_LIMIT),
                    client_id: Some(ClientId::parse(demo.app_id).map_err(|_| {
                        AuthError::Internal("demo client id is invalid".to_owned())
                    })?),
                },
            )
            .await?;
        credentials.push(DemoCredentials {
            client_id: registered.client_id.into_string(),
            client_secret: registered.client_secret.expose().to_owned(),
            app_id: registered.app_id,
            app_name: registered.app_name,
            role: registered.role.as_str().to_owned(),
            scopes: registered.scopes,
        });
    }
    write_private_file(path, &credentials)?;
    Ok(DemoClientsOutcome::Created {
        count: credentials.len(),
        path: path.to_owned(),
    })
}

/// One entry of `demo_users.json`.
#[derive(Debug, Serialize)]
pub struct DemoUser {
    pub username: String,
    pub password: String,
    pub role: String,
    pub patient_mrn: Option<String>,
}

const DEMO_USERS: &[(&str, &str, Role, Option<&str>)] = &[
    ("demo.doctor", "Dr. Demo Doctor", Role::Doctor, None),
    ("demo.nurse", "Demo Nurse", Role::Nurse, None),
    (
        "demo.patient",
        "John Doe (demo patient)",
        Role::Patient,
        Some("MRN001"),
    ),
    ("demo.admin", "Demo Administrator", Role::Admin, None),
];

/// Where the demo users' file goes: `demo_users.json` beside the clients' credentials file.
pub fn demo_users_path(credentials_file: &Path) -> PathBuf {
    credentials_file.with_file_name("demo_users.json")
}

/// Creates the demo users when the database has none and writes their passwords to `path` (0600).
/// Returns a note for the operator.
pub async fn ensure_demo_users(store: &Store, path: &Path) -> Result<String, AuthError> {
    if store.count_users().await? > 0 {
        return Ok(format!(
            "users already exist; demo users are in {} if it was written before",
            path.display()
        ));
    }
    let mut created = Vec::with_capacity(DEMO_USERS.len());
    for (username, display_name, role, mrn) in DEMO_USERS {
        let invalid = || AuthError::Internal("a demo user is invalid".to_owned());
        let password = super::users::generate_password();
        let user = super::users::NewUser {
            username: crate::domain::user::Username::parse(username).map_err(|_| invalid())?,
            role: *role,
            patient_mrn: mrn.map(Mrn::parse).transpose().map_err(|_| invalid())?,
            display_name: Some((*display_name).to_owned()),
        };
        super::users::add(store, user, &password).await?;
        created.push(DemoUser {
            username: (*username).to_owned(),
            password,
            role: role.as_str().to_owned(),
            patient_mrn: mrn.map(str::to_owned),
        });
    }
    write_private_file(path, &created)?;
    Ok(format!(
        "created {} demo users (demo.doctor, demo.nurse, demo.patient, demo.admin); passwords written \
         to {} (mode 0600)",
        created.len(),
        path.display()
    ))
}

/// Writes JSON to `path` readable by the owner only (0600), replacing it atomically.
fn write_private_file(path: &Path, credentials: &impl Serialize) -> Result<(), AuthError> {
    let failed = |what: &str| {
        AuthError::Config(format!(
            "cannot write the private file {}: {what}",
            path.display()
        ))
    };
    let json = serde_json::to_vec_pretty(credentials).map_err(|_| failed("encoding"))?;
    let temporary = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&temporary)
        .map_err(|error| failed(&error.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|error| failed(&error.to_string()))?;
    }
    file.write_all(&json)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|error| failed(&error.to_string()))?;
    std::fs::rename(&temporary, path).map_err(|error| failed(&error.to_string()))?;
    Ok(())
}
