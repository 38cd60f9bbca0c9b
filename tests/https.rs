//! HTTPS with a test CA made in the test: a trusted server, an untrusted
//! one, a pinned key that matches and one that does not, and HTTPS
//! combined with encrypted PUSH. A refused certificate is an error in the
//! log and never a retry over plain HTTP.

mod common;

use common::*;
use lintel_refserver::{Encryption, RefServer, ServerConfig, TlsIdentity};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, PublicKeyData, SanType,
};
use std::path::Path;

struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    fn write_pem(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.issuer.pem()).unwrap();
        path
    }

    /// A server certificate for 127.0.0.1 and its key's pin (computed here
    /// from the key, independently of the firmware's code).
    fn server_identity(&self) -> (TlsIdentity, String) {
        use base64::Engine as _;
        use sha2::Digest;
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let pin = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(key.subject_public_key_info()));
        (
            TlsIdentity {
                cert_chain: vec![cert.der().to_vec()],
                key_pkcs8: key.serialize_der(),
            },
            pin,
        )
    }
}

fn tls_server(ca: &TestCa, cfg: ServerConfig) -> (RefServer, String) {
    let (identity, pin) = ca.server_identity();
    (RefServer::start_tls(cfg, &identity).unwrap(), pin)
}

/// Starts the firmware against `server` with `extra` server keys, its
/// data in `dir`.
fn runs(server: &RefServer, dir: &Path, ca_file: &Path, extra: &str) -> lintel::app::Firmware {
    let extra = format!("ca_file = \"{}\"\n{extra}", ca_file.display());
    start_firmware(&config(&server.url(), &dir.join("data"), &extra))
}

#[test]
fn a_server_signed_by_the_configured_ca_is_trusted() {
    let ca = TestCa::new("lintel test CA");
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = tls_server(&ca, quick_server_config());
    assert!(server.url().starts_with("https://"));
    let fw = runs(&server, dir.path(), &ca.write_pem(dir.path()), "");
    assert!(wait_online(&server));
    fw.stop();
}

#[test]
fn an_untrusted_certificate_is_a_clear_error_and_no_plain_retry() {
    let logs = captured_logs();
    let ca = TestCa::new("lintel test CA");
    let other = TestCa::new("someone else");
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = tls_server(&ca, quick_server_config());
    let fw = runs(&server, dir.path(), &other.write_pem(dir.path()), "");
    let url = server.url();
    assert!(logs.wait_for(&[
        &url,
        "HTTPS with",
        "not signed by a trusted CA",
        "reconnecting"
    ]));
    // The first retry fails the same way.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    fw.stop();
    // Not one request reached the server: nothing went out unprotected.
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn a_pinned_key_that_matches_connects() {
    let ca = TestCa::new("lintel test CA");
    let dir = tempfile::tempdir().unwrap();
    let (server, pin) = tls_server(&ca, quick_server_config());
    let fw = runs(
        &server,
        dir.path(),
        &ca.write_pem(dir.path()),
        &format!("pin_sha256 = \"{pin}\""),
    );
    assert!(wait_online(&server));
    fw.stop();
}

#[test]
fn a_pinned_key_that_does_not_match_is_refused() {
    let logs = captured_logs();
    let ca = TestCa::new("lintel test CA");
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = tls_server(&ca, quick_server_config());
    // A certificate from the same trusted CA, but another key.
    let (_, other_pin) = ca.server_identity();
    let fw = runs(
        &server,
        dir.path(),
        &ca.write_pem(dir.path()),
        &format!("pin_sha256 = \"{other_pin}\""),
    );
    let url = server.url();
    assert!(logs.wait_for(&[&url, "HTTPS with", "not server.pin_sha256"]));
    fw.stop();
    assert!(server.requests().is_empty());
}

#[test]
fn https_and_encrypted_push_combine() {
    let ca = TestCa::new("lintel test CA");
    let dir = tempfile::tempdir().unwrap();
    let (server, pin) = tls_server(
        &ca,
        ServerConfig {
            encryption: Encryption::Supported,
            ..quick_server_config()
        },
    );
    let fw = runs(
        &server,
        dir.path(),
        &ca.write_pem(dir.path()),
        &format!("pin_sha256 = \"{pin}\"\nencryption = \"required\""),
    );
    assert!(wait_online(&server));
    fw.stop();
    server.with_state(|s| assert!(s.exchanges(SN) >= 1));
    assert!(server
        .requests()
        .iter()
        .any(|r| r.path == "/iclock/getrequest" && r.sealed));
}
