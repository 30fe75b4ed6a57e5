//! Logs and metrics: the tracing subscriber (stderr, pretty or JSON), the keyed hash that stands in for MRNs
//! in logs, the HTTP request-id and trace layers, and the Prometheus metrics API the other layers call.
//!
//! Invariants: logs go to stderr only (stdout belongs to the stdio transport); nothing logged at INFO or above
//! carries PHI, secrets or tokens — an MRN appears only as [`mrn_tag`], request lines carry method, path,
//! status and latency, never query strings, bodies or headers.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tracing_subscriber::EnvFilter;

use crate::config::{CommonArgs, LogFormat};
use crate::domain::ids::Mrn;

pub mod http;
pub mod metrics;

/// A failure to set up logging.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{setting} is not a valid log filter: {reason}")]
    InvalidFilter {
        setting: &'static str,
        reason: String,
    },
}

/// Where the log level came from, which decides whether `RUST_LOG` may override it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevelSource {
    /// `--log-level` or `LOG_LEVEL` was given: it wins.
    Explicit,
    /// Neither was given: `RUST_LOG` applies when set, else the default.
    Default,
}

/// Installs the process-wide subscriber: filter from `--log-level`/`LOG_LEVEL` (or `RUST_LOG` when neither is
/// given), pretty or JSON lines on stderr, and the MRN hashing key. A second call leaves the first in place.
pub fn init(common: &CommonArgs, source: LogLevelSource) -> Result<(), TelemetryError> {
    set_log_hash_key(
        common
            .log_hash_key
            .as_ref()
            .map(|key| key.expose_secret().as_bytes()),
    );
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty());
    let (setting, directives) = match (source, rust_log) {
        (LogLevelSource::Default, Some(rust_log)) => ("RUST_LOG", rust_log),
        _ => ("LOG_LEVEL", common.log_level.clone()),
    };
    let directives = with_quiet_dependencies(&directives);
    let filter =
        EnvFilter::try_new(&directives).map_err(|error| TelemetryError::InvalidFilter {
            setting,
            reason: error.to_string(),
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only when a subscriber is already installed (tests); keeping the first is intended.
    let _ = match common.log_format {
        LogFormat::Pretty => builder.with_ansi(stderr_is_terminal()).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}

/// Dependencies that echo client input in their own log lines, kept at ERROR unless the filter names them:
/// rmcp (the MCP SDK) writes a WARN with the message of every JSON-RPC error it answers (an unknown method
/// name, say), and logs each stateless session's start and end at INFO.
const QUIETED_DEPENDENCIES: &[&str] = &["rmcp"];

fn with_quiet_dependencies(directives: &str) -> String {
    let mut filter = directives.trim().to_owned();
    for dependency in QUIETED_DEPENDENCIES {
        if !filter.contains(dependency) {
            if !filter.is_empty() {
                filter.push(',');
            }
            filter.push_str(dependency);
            filter.push_str("=error");
        }
    }
    filter
}

fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

type HmacSha256 = Hmac<Sha256>;

static LOG_HASH_KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// Sets the key of [`mrn_tag`]: SHA-256 of the configured key, or a random key when `None`.
/// Only the first call has an effect (the key must not change while the process logs).
pub fn set_log_hash_key(configured: Option<&[u8]>) {
    let _ = LOG_HASH_KEY.get_or_init(|| match configured {
        Some(material) => Sha256::digest(material).into(),
        None => rand::random(),
    });
}

/// The stand-in for an MRN in logs: the first 12 hex digits of HMAC-SHA256(key, MRN). The same MRN gives the
/// same tag for the life of the process (and across processes sharing `EHR_MCP_LOG_HASH_KEY`), so an operator
/// can follow one patient's requests without the log revealing who the patient is.
pub fn mrn_tag(mrn: &Mrn) -> String {
    let key = LOG_HASH_KEY.get_or_init(rand::random);
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        // HMAC accepts keys of any length; this branch cannot run.
        return "mrn-unhashable".to_owned();
    };
    mac.update(mrn.as_str().as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut tag = hex::encode(digest);
    tag.truncate(12);
    tag
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn mrn_tag_is_stable_short_hex_and_hides_the_mrn() {
        let mrn = Mrn::parse("MRN001").unwrap();
        let tag = mrn_tag(&mrn);
        assert_eq!(tag.len(), 12);
        assert!(tag.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!tag.contains("MRN001"));
        assert_eq!(tag, mrn_tag(&Mrn::parse("mrn001").unwrap()));
        assert_ne!(tag, mrn_tag(&Mrn::parse("MRN002").unwrap()));
    }

    #[test]
    fn chatty_dependencies_are_quieted_unless_named() {
        assert_eq!(with_quiet_dependencies("info"), "info,rmcp=error");
        assert_eq!(
            with_quiet_dependencies("debug,rmcp=debug"),
            "debug,rmcp=debug"
        );
        assert_eq!(with_quiet_dependencies(""), "rmcp=error");
    }

    #[test]
    fn mrn_tag_is_keyed_not_a_plain_hash() {
        let mrn = Mrn::parse("MRN001").unwrap();
        let plain = hex::encode(Sha256::digest(b"MRN001"));
        assert_ne!(mrn_tag(&mrn), plain[..12]);
    }
}
