//! HTTPS for the session: the CAs of `server.ca_file` and, optionally, a
//! pin of the server's public key (`server.pin_sha256`).
//!
//! ureq 3's `TlsConfig` has no place for a certificate verifier of our own,
//! so the agent gets its own TLS connector ([`TlsConnector`], chained after
//! ureq's TCP connector as ureq's own rustls connector would be): a rustls
//! `ClientConfig` with the same ring provider, whose verifier is rustls's
//! WebPKI verifier followed by the pin check ([`PinningVerifier`]). An
//! untrusted or mismatching certificate fails the handshake; nothing falls
//! back to plain HTTP.

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};
use sha2::{Digest, Sha256};
use std::convert::TryFrom;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

/// What HTTPS trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM bundle of trusted CAs; empty for plain-HTTP servers.
    pub ca_file: PathBuf,
    /// SHA-256 of the server certificate's DER SubjectPublicKeyInfo.
    pub pin_sha256: Option<[u8; 32]>,
}

impl TlsSettings {
    pub fn with_ca_file(ca_file: &std::path::Path) -> TlsSettings {
        TlsSettings {
            ca_file: ca_file.to_owned(),
            pin_sha256: None,
        }
    }
}

/// Reads a pin written as 64 hex digits or as base64 (with or without its
/// `=`), the forms `openssl ... | sha256sum` and HPKP-style tools print.
pub fn parse_pin(text: &str) -> Result<[u8; 32], String> {
    let t = text.trim();
    let t = t.strip_prefix("sha256/").unwrap_or(t);
    let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|e| e.to_string()))
            .collect::<Result<Vec<u8>, String>>()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(t)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(t))
            .map_err(|_| "is neither 64 hex digits nor base64".to_string())?
    };
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("is {} bytes, a SHA-256 is 32", bytes.len()))
}

/// The pin of a DER certificate: SHA-256 of its SubjectPublicKeyInfo.
pub fn spki_sha256(cert: &CertificateDer<'_>) -> Result<[u8; 32], rustls::Error> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert)?;
    Ok(Sha256::digest(parsed.subject_public_key_info().as_ref()).into())
}

/// Why a pinned server was refused (inside rustls's certificate error).
#[derive(Debug)]
pub struct PinMismatch {
    pub actual: [u8; 32],
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server's public key has SHA-256 {}, not server.pin_sha256",
            base64::engine::general_purpose::STANDARD.encode(self.actual)
        )
    }
}

impl std::error::Error for PinMismatch {}

/// rustls's WebPKI verification (chain, name, dates), then the pin.
#[derive(Debug)]
pub struct PinningVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pin: Option<[u8; 32]>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        if let Some(pin) = self.pin {
            let actual = spki_sha256(end_entity)?;
            if actual != pin {
                return Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch {
                        actual,
                    }))),
                ));
            }
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The rustls client configuration for `settings`; `None` when no CA
/// could be loaded (an https request then fails with that reason).
pub fn client_config(
    roots: &[ureq::tls::Certificate<'static>],
    pin: Option<[u8; 32]>,
) -> Option<Arc<ClientConfig>> {
    let mut store = RootCertStore::empty();
    let (added, _ignored) =
        store.add_parsable_certificates(roots.iter().map(|c| CertificateDer::from(c.der())));
    if added == 0 {
        return None;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .build()
        .ok()?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinningVerifier { inner, pin }))
        .with_no_client_auth();
    Some(Arc::new(config))
}

/// Wraps the TCP connection of an https URL in TLS with our config.
#[derive(Debug)]
pub struct TlsConnector {
    pub config: Option<Arc<ClientConfig>>,
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let Some(config) = self.config.clone() else {
            return Err(ureq::Error::Tls(
                "no trusted CA certificate is loaded (server.ca_file)",
            ));
        };
        let host = details.uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| ureq::Error::Tls("the server's host is no valid TLS name"))?;
        let mut conn = ClientConnection::new(config, name).map_err(ureq::Error::Rustls)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        if let Err(e) = conn.complete_io(&mut sock) {
            // rustls reports handshake failures as io errors that carry the
            // rustls error: hand that on, so the session can say "untrusted".
            let tls = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .cloned();
            return Err(match tls {
                Some(tls) => ureq::Error::Rustls(tls),
                None => ureq::Error::Io(e),
            });
        }
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// An established TLS connection, as ureq's transports are.
pub struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_in_hex_and_base64() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let b64 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let want = parse_pin(hex).unwrap();
        assert_eq!(parse_pin(b64).unwrap(), want);
        assert_eq!(parse_pin(b64.trim_end_matches('=')).unwrap(), want);
        assert_eq!(parse_pin(&format!("sha256/{b64}")).unwrap(), want);
        assert_eq!(parse_pin(&hex.to_uppercase()).unwrap(), want);
        assert!(parse_pin("abc").unwrap_err().contains("bytes"));
        assert!(parse_pin("not a pin!").is_err());
    }
}
