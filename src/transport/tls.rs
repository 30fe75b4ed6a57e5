//! TLS with rustls (ring): the server configuration from `--tls-cert`/`--tls-key` PEM files, so https:// and
//! wss:// share the one port.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate or key that cannot be used; the message names the setting and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("EHR_MCP_TLS_CERT: cannot read {path}: {source}")]
    ReadCertificate {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("EHR_MCP_TLS_CERT: {path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("EHR_MCP_TLS_KEY: cannot read {path}: {source}")]
    ReadKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("EHR_MCP_TLS_KEY: {path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: PathBuf },
    #[error(
        "EHR_MCP_TLS_CERT/EHR_MCP_TLS_KEY: the certificate and key cannot be used together: {0}"
    )]
    Unusable(#[from] rustls::Error),
}

/// Makes ring the process-wide rustls provider (other crates' TLS clients use it too). Idempotent.
pub fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want either way.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Reads the PEM certificate chain and key and builds the server configuration (ALPN h2 and http/1.1;
/// WebSocket clients negotiate http/1.1).
pub fn server_config(certificate: &Path, key: &Path) -> Result<RustlsConfig, TlsError> {
    let certificate_pem =
        std::fs::read(certificate).map_err(|source| TlsError::ReadCertificate {
            path: certificate.to_owned(),
            source,
        })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&certificate_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: certificate.to_owned(),
        });
    }
    let key_pem = std::fs::read(key).map_err(|source| TlsError::ReadKey {
        path: key.to_owned(),
        source,
    })?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
        path: key.to_owned(),
    })?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, private_key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}
