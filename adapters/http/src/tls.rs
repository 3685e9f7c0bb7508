//! HTTPS (`--http.tls-cert`, `--http.tls-key`, `docs/security.md`): rustls with the *ring*
//! provider (no OpenSSL, no C toolchain beyond what *ring* needs), HTTP/1.1 over TLS 1.2 and
//! 1.3. A handshake must finish within the header timeout, like a plain request's headers.

use crate::error::HttpError;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A server's TLS setup, built once from its certificate and key.
pub type TlsConfig = Arc<rustls::ServerConfig>;

fn unreadable(what: &str, path: &Path, e: impl std::fmt::Display) -> HttpError {
    HttpError::Unavailable(format!(
        "cannot read the TLS {what} {}: {e}",
        path.display()
    ))
}

/// Reads a PEM certificate chain (leaf first) and its PEM private key.
pub fn tls_config(cert: &Path, key: &Path) -> Result<TlsConfig, HttpError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| unreadable("certificate", cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable("certificate", cert, e))?;
    if chain.is_empty() {
        return Err(unreadable("certificate", cert, "no certificate in it"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable("key", key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Unavailable(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| HttpError::Unavailable(format!("TLS certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
