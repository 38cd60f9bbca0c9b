//! HTTPS for the reference server (tests of certificate checks and pinning).

use std::io;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The certificate chain (leaf first, DER) and its PKCS#8 DER key.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    pub cert_chain: Vec<Vec<u8>>,
    pub key_pkcs8: Vec<u8>,
}

impl TlsIdentity {
    /// Reads a PEM certificate chain and a PEM PKCS#8 private key.
    pub fn from_pem_files(cert: &std::path::Path, key: &std::path::Path) -> io::Result<Self> {
        use rustls::pki_types::pem::PemObject;
        let bad = |e: rustls::pki_types::pem::Error| io::Error::other(e.to_string());
        let cert_chain = CertificateDer::pem_file_iter(cert)
            .map_err(bad)?
            .map(|c| c.map(|c| c.to_vec()).map_err(bad))
            .collect::<io::Result<Vec<_>>>()?;
        let key_pkcs8 = PrivatePkcs8KeyDer::from_pem_file(key)
            .map_err(bad)?
            .secret_pkcs8_der()
            .to_vec();
        Ok(TlsIdentity {
            cert_chain,
            key_pkcs8,
        })
    }
}

pub(crate) fn server_config(identity: &TlsIdentity) -> io::Result<Arc<rustls::ServerConfig>> {
    let chain = identity
        .cert_chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_pkcs8.clone()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(io::Error::other)?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(io::Error::other)?;
    Ok(Arc::new(config))
}
