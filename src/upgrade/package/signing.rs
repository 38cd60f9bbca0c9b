//! The package signature: an RSA PKCS#1 v1.5 signature with SHA-256 over
//! the exact manifest bytes, and the PEM keys it is made and checked with.
//! It never reads a package: callers hand it the manifest bytes.

use super::PackageError;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

/// DER prefix of the DigestInfo for SHA-256 (RFC 8017, 9.2 note 1). Spelled out
/// because the `oid` feature of sha2 that rsa's `Pkcs1v15Sign::new` needs is not
/// enabled in this workspace.
const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

fn pkcs1v15_sha256() -> Pkcs1v15Sign {
    Pkcs1v15Sign {
        hash_len: Some(32),
        prefix: Box::new(SHA256_DIGEST_INFO_PREFIX),
    }
}

/// Parse a PEM public key as found in the firmware config: SPKI (`BEGIN PUBLIC KEY`)
/// or PKCS#1 (`BEGIN RSA PUBLIC KEY`).
pub fn parse_public_key_pem(pem: &str) -> Result<RsaPublicKey, PackageError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    RsaPublicKey::from_public_key_pem(pem.trim())
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem.trim()))
        .map_err(|e| PackageError::Signature(format!("public key is not a PEM RSA key: {e}")))
}

/// Parse a PEM private key (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`).
pub fn parse_private_key_pem(pem: &str) -> Result<RsaPrivateKey, PackageError> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    RsaPrivateKey::from_pkcs8_pem(pem.trim())
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem.trim()))
        .map_err(|e| PackageError::Signing(format!("private key is not a PEM RSA key: {e}")))
}

/// Sign manifest bytes (PKCS#1 v1.5, SHA-256).
pub fn sign_manifest(key: &RsaPrivateKey, manifest: &[u8]) -> Result<Vec<u8>, PackageError> {
    let digest = Sha256::digest(manifest);
    key.sign(pkcs1v15_sha256(), &digest)
        .map_err(|e| PackageError::Signing(e.to_string()))
}

/// Verify a manifest signature (PKCS#1 v1.5, SHA-256).
pub fn verify_manifest_signature(
    key: &RsaPublicKey,
    manifest: &[u8],
    signature: &[u8],
) -> Result<(), PackageError> {
    let digest = Sha256::digest(manifest);
    key.verify(pkcs1v15_sha256(), &digest, signature)
        .map_err(|_| PackageError::Signature("manifest signature does not verify".to_owned()))
}
