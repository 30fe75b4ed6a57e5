//! Checks made when the database is opened, so a wrong `DATABASE_URL` fails at once with a message
//! naming what is wrong: the SQLite file's directory, or the PostgreSQL host and port (never the
//! password), instead of a driver code or a pool timeout.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Connection};

use super::StoreError;

/// How long one connection attempt to PostgreSQL may take before the host is reported unreachable.
pub const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The file of a `sqlite://` URL (`None` for in-memory databases).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Refuses a SQLite URL whose directory does not exist (SQLite would say "unable to open database file").
pub fn check_sqlite_directory(url: &str) -> Result<(), StoreError> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => return Ok(()),
    };
    if directory.is_dir() {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "the directory of the SQLite database {} does not exist; create it (mkdir -p {}) or set \
             DATABASE_URL / --database-url to a file in an existing directory",
            path.display(),
            directory.display()
        )))
    }
}

/// `host:port` of a PostgreSQL URL, without user or password.
pub fn postgres_address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match host {
        "" => "localhost:5432".to_owned(),
        host if host.contains(':') && !host.ends_with(']') => host.to_owned(),
        host => format!("{host}:5432"),
    }
}

/// One connection attempt, bounded by [`POSTGRES_CONNECT_TIMEOUT`]: an unreachable or refusing server
/// is reported with its address now, not after the pool's acquire timeout.
pub async fn probe_postgres(url: &str, options: &AnyConnectOptions) -> Result<(), StoreError> {
    let address = postgres_address(url);
    let attempt = tokio::time::timeout(POSTGRES_CONNECT_TIMEOUT, options.connect()).await;
    let reason = match attempt {
        Ok(Ok(connection)) => {
            let _ = AnyConnection::close(connection).await;
            return Ok(());
        }
        Ok(Err(sqlx::Error::Database(error))) => error.message().to_owned(),
        Ok(Err(sqlx::Error::Io(error))) => error.to_string(),
        Ok(Err(sqlx::Error::Tls(error))) => format!("TLS: {error}"),
        Ok(Err(_)) => "the connection failed".to_owned(),
        Err(_) => format!("no answer within {} s", POSTGRES_CONNECT_TIMEOUT.as_secs()),
    };
    Err(StoreError::Unreachable(format!(
        "cannot connect to PostgreSQL at {address}: {reason}; check that the server runs and \
         DATABASE_URL / --database-url"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_never_include_credentials() {
        assert_eq!(
            postgres_address("postgres://user:secret@db.example:6543/ehr?sslmode=require"),
            "db.example:6543"
        );
        assert_eq!(postgres_address("postgresql://db/ehr"), "db:5432");
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://a/b.db?mode=rwc"),
            Some(PathBuf::from("a/b.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("sqlite://:memory:"), None);
    }
}
