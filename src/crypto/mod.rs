//! Encrypted PUSH (7.2, 7.3, Appendix 16), sans I/O: the device's key
//! store, the exchange messages and key schedule, and the sealing of bodies
//! with per-direction counters. The wire format is docs/encrypted-push.md;
//! `session::sealed` puts it on the HTTP transport.

pub mod channel;
pub mod exchange;
pub mod keystore;

pub use channel::Channel;
pub use exchange::{DeviceKey, Handshake};
pub use keystore::{FileKeyStore, FixedKey, KeySource, KeyState};

use crate::protocol::ProtocolVersion;
use std::path::PathBuf;

/// The first protocol version that encrypts (Appendix 13).
pub const ENCRYPTING_VERSION: ProtocolVersion = ProtocolVersion::new(3, 1, 1);

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("device key {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("device key {path} is unusable: {why}")]
    BadKeyFile { path: PathBuf, why: String },
    #[error("RSA: {0}")]
    Rsa(String),
    #[error("the server's answer has no {0}= line")]
    MissingField(&'static str),
    #[error("the server's public key is unusable: {0}")]
    BadPublicKey(String),
    #[error("the server's factors are unusable: {0}")]
    BadFactors(String),
    #[error("sealed body of {len} bytes is too short")]
    Truncated { len: usize },
    #[error("sealed body has unknown version {0}")]
    UnknownVersion(u8),
    #[error("sealed body replayed: counter {counter} was already used (expected {expected})")]
    Replayed { counter: u64, expected: u64 },
    #[error("sealed body out of order: counter {counter}, expected {expected}")]
    OutOfOrder { counter: u64, expected: u64 },
    #[error("sealed body {counter} failed authentication (tampered, or sealed under another key)")]
    Authentication { counter: u64 },
    #[error("sealed body CRC32 {sent:08x} does not match its plaintext ({actual:08x})")]
    CrcMismatch { sent: u32, actual: u32 },
    #[error("a plain answer arrived where a sealed one was due")]
    Unsealed,
    #[error("the message counter is exhausted; a new exchange is needed")]
    CounterExhausted,
    #[error("body of {len} bytes is too large to seal")]
    BodyTooLarge { len: usize },
}

/// `server.encryption`: whether bodies are encrypted (Appendix 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionPolicy {
    /// Never exchange keys; plain bodies (HTTPS may still protect them).
    Off,
    /// Encrypt when the server's version supports it and it answers the
    /// exchange; plain text otherwise (Appendix 16 Case 1).
    #[default]
    Auto,
    /// Encrypt or do not connect.
    Required,
}

impl EncryptionPolicy {
    pub fn name(self) -> &'static str {
        match self {
            EncryptionPolicy::Off => "off",
            EncryptionPolicy::Auto => "auto",
            EncryptionPolicy::Required => "required",
        }
    }
}

/// Whether to try the exchange with a server announcing `server` (None: it
/// announced no version at all). Appendix 13: the lower of both versions
/// counts, and a server that names none is 3.0.1; `required` tries anyway,
/// since only the exchange's answer can tell.
pub fn should_exchange(policy: EncryptionPolicy, server: Option<ProtocolVersion>) -> bool {
    let negotiated = server
        .unwrap_or(ProtocolVersion::DEFAULT_SERVER)
        .min(crate::protocol::DEVICE_PUSH_VERSION);
    match policy {
        EncryptionPolicy::Off => false,
        EncryptionPolicy::Auto => negotiated >= ENCRYPTING_VERSION,
        EncryptionPolicy::Required => server.is_none() || negotiated >= ENCRYPTING_VERSION,
    }
}

/// Fixed 2048-bit test keys: RSA generation is slow in debug builds and
/// under emulation (only the key store's own test generates one).
#[cfg(test)]
pub(crate) mod test_keys {
    use super::DeviceKey;
    use rsa::pkcs8::DecodePrivateKey;
    use std::sync::{Arc, OnceLock};

    pub fn device_pem() -> &'static str {
        include_str!("testdata/device_key.pem")
    }

    fn parse(pem: &str) -> Arc<DeviceKey> {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap();
        Arc::new(DeviceKey::new(key).unwrap())
    }

    pub fn device() -> Arc<DeviceKey> {
        static KEY: OnceLock<Arc<DeviceKey>> = OnceLock::new();
        KEY.get_or_init(|| parse(device_pem())).clone()
    }

    /// A "server" key: the upgrade tests' second key, reused.
    pub fn server() -> Arc<DeviceKey> {
        static KEY: OnceLock<Arc<DeviceKey>> = OnceLock::new();
        KEY.get_or_init(|| parse(include_str!("../upgrade/testdata/other_key.pem")))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exchange_follows_appendix_13_and_the_policy() {
        let v = |s| ProtocolVersion::parse(s);
        use EncryptionPolicy::*;
        assert!(!should_exchange(Off, v("3.1.2")));
        assert!(should_exchange(Auto, v("3.1.2")));
        assert!(should_exchange(Auto, v("3.1.1")));
        assert!(should_exchange(Auto, v("4.0")));
        assert!(!should_exchange(Auto, v("3.0.1")));
        assert!(!should_exchange(Auto, None));
        assert!(should_exchange(Required, None));
        assert!(should_exchange(Required, v("3.1.1")));
        assert!(!should_exchange(Required, v("3.0.1")));
    }
}
