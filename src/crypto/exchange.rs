//! The key exchange of 7.2 and 7.3, sans I/O: the bodies the device sends,
//! the checks on the server's answers, and the session keys.
//!
//! - 7.2: the device posts `PublicKey=<base64 DER SubjectPublicKeyInfo>` of
//!   its RSA key; the server answers its own the same way.
//! - 7.3: the device posts `Factors=<base64 RSA-OAEP-SHA256(server key, R1)>`;
//!   the server answers `Factors=<base64 RSA-OAEP-SHA256(device key, R2)>`.
//! - Both sides derive one AES-256 key per direction with HKDF-SHA256:
//!   `ikm = R1 || R2`, `salt = SHA-256(device SPKI || server SPKI)`,
//!   `info = "lintel-push/1 <direction> SN=<serial>"`.

use super::channel::{Channel, Direction};
use super::CryptoError;
use base64::Engine as _;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::rand_core::{CryptoRng, RngCore};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Length of R1 and R2.
pub const FACTOR_LEN: usize = 32;
/// Peer keys outside this range are refused: smaller is weak, larger only
/// costs the device time.
pub const MIN_PEER_BITS: usize = 2048;
pub const MAX_PEER_BITS: usize = 4096;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn oaep() -> Oaep {
    Oaep::new::<Sha256>()
}

/// The value of `name=` in an exchange body. Deployed servers wrap long
/// base64 values over several lines (7.3's example), so lines that follow
/// and hold nothing but base64 text are part of the value; whitespace is
/// dropped. The key is matched without regard to case.
pub fn field(body: &str, name: &str) -> Option<String> {
    let mut lines = body.lines();
    let first = lines.by_ref().find_map(|line| {
        let (k, v) = line.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.to_owned())
    })?;
    let mut value: String = first.split_whitespace().collect();
    for line in lines {
        let t = line.trim();
        let body = t.trim_end_matches('=');
        let is_base64 = !t.is_empty()
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        if !is_base64 {
            break;
        }
        value.push_str(t);
    }
    Some(value)
}

/// `PublicKey=<base64>` of a key's DER SubjectPublicKeyInfo.
pub fn public_key_body(spki_der: &[u8]) -> String {
    format!("PublicKey={}", B64.encode(spki_der))
}

/// The server's key from its 7.2 answer, with its DER for the key schedule.
pub fn parse_public_key(body: &str) -> Result<(RsaPublicKey, Vec<u8>), CryptoError> {
    let text = field(body, "PublicKey").ok_or(CryptoError::MissingField("PublicKey"))?;
    let der = B64
        .decode(text.as_bytes())
        .map_err(|e| CryptoError::BadPublicKey(format!("not base64: {e}")))?;
    let key = RsaPublicKey::from_public_key_der(&der)
        .map_err(|e| CryptoError::BadPublicKey(format!("not an RSA SubjectPublicKeyInfo: {e}")))?;
    let bits = key.n().bits();
    if !(MIN_PEER_BITS..=MAX_PEER_BITS).contains(&bits) {
        return Err(CryptoError::BadPublicKey(format!(
            "{bits}-bit modulus, outside {MIN_PEER_BITS}..={MAX_PEER_BITS}"
        )));
    }
    Ok((key, der))
}

/// `Factors=<base64>` of `factor` encrypted to `peer`.
pub fn factors_body(
    peer: &RsaPublicKey,
    factor: &[u8; FACTOR_LEN],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<String, CryptoError> {
    let sealed = peer
        .encrypt(rng, oaep(), factor)
        .map_err(|e| CryptoError::Rsa(e.to_string()))?;
    Ok(format!("Factors={}", B64.encode(sealed)))
}

/// The factor the peer encrypted to `own` in its `Factors=` body.
pub fn parse_factors(
    body: &str,
    own: &RsaPrivateKey,
) -> Result<Zeroizing<[u8; FACTOR_LEN]>, CryptoError> {
    let text = field(body, "Factors").ok_or(CryptoError::MissingField("Factors"))?;
    let sealed = B64
        .decode(text.as_bytes())
        .map_err(|e| CryptoError::BadFactors(format!("not base64: {e}")))?;
    let plain = Zeroizing::new(
        own.decrypt(oaep(), &sealed)
            .map_err(|_| CryptoError::BadFactors("RSA-OAEP decryption failed".into()))?,
    );
    let mut factor = Zeroizing::new([0u8; FACTOR_LEN]);
    if plain.len() != FACTOR_LEN {
        return Err(CryptoError::BadFactors(format!(
            "{} bytes instead of {FACTOR_LEN}",
            plain.len()
        )));
    }
    factor.copy_from_slice(&plain);
    Ok(factor)
}

/// The two directions' keys: (device-to-server, server-to-device).
pub fn derive_keys(
    r1: &[u8; FACTOR_LEN],
    r2: &[u8; FACTOR_LEN],
    device_spki: &[u8],
    server_spki: &[u8],
    serial: &str,
) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut salt = Sha256::new();
    salt.update(device_spki);
    salt.update(server_spki);
    let salt = salt.finalize();
    let mut ikm = Zeroizing::new([0u8; 2 * FACTOR_LEN]);
    ikm[..FACTOR_LEN].copy_from_slice(r1);
    ikm[FACTOR_LEN..].copy_from_slice(r2);
    // ring's HKDF (linked for TLS already); the tests check it against
    // the `hkdf` crate.
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &salt).extract(&ikm[..]);
    let key = |direction: Direction| {
        let mut okm = Zeroizing::new([0u8; 32]);
        let info = format!("lintel-push/1 {} SN={serial}", direction.label());
        let info = [info.as_bytes()];
        // 32 bytes is far below HKDF-SHA256's limit of 8160.
        prk.expand(&info, KeyLen32)
            .and_then(|okm_ref| okm_ref.fill(&mut okm[..]))
            .expect("32 bytes is a valid HKDF-SHA256 length");
        okm
    };
    (
        key(Direction::DeviceToServer),
        key(Direction::ServerToDevice),
    )
}

struct KeyLen32;

impl ring::hkdf::KeyType for KeyLen32 {
    fn len(&self) -> usize {
        32
    }
}

/// The device's RSA key and its public half's DER, as the exchange uses them.
pub struct DeviceKey {
    pub private: RsaPrivateKey,
    pub spki_der: Vec<u8>,
}

impl DeviceKey {
    pub fn new(private: RsaPrivateKey) -> Result<DeviceKey, CryptoError> {
        let spki_der = private
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| CryptoError::Rsa(e.to_string()))?
            .as_bytes()
            .to_vec();
        Ok(DeviceKey { private, spki_der })
    }
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key, even in a debug print.
        f.debug_struct("DeviceKey")
            .field("bits", &self.private.n().bits())
            .finish_non_exhaustive()
    }
}

/// The device side of the exchange, step 7.2: what to post first.
pub struct Handshake {
    key: Arc<DeviceKey>,
    serial: String,
}

/// Step 7.3: the server's key is known; R1 is kept until R2 arrives.
pub struct AwaitingFactors {
    key: Arc<DeviceKey>,
    serial: String,
    server_spki: Vec<u8>,
    r1: Zeroizing<[u8; FACTOR_LEN]>,
}

impl Handshake {
    pub fn new(key: Arc<DeviceKey>, serial: &str) -> Handshake {
        Handshake {
            key,
            serial: serial.to_owned(),
        }
    }

    /// The 7.2 request body.
    pub fn public_key_body(&self) -> String {
        public_key_body(&self.key.spki_der)
    }

    /// Takes the server's 7.2 answer; returns the 7.3 request body.
    pub fn on_public_key(
        self,
        answer: &str,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(AwaitingFactors, String), CryptoError> {
        let (server, server_spki) = parse_public_key(answer)?;
        let mut r1 = Zeroizing::new([0u8; FACTOR_LEN]);
        rng.fill_bytes(&mut r1[..]);
        let body = factors_body(&server, &r1, rng)?;
        Ok((
            AwaitingFactors {
                key: self.key,
                serial: self.serial,
                server_spki,
                r1,
            },
            body,
        ))
    }
}

impl AwaitingFactors {
    /// Takes the server's 7.3 answer: the channel is established.
    pub fn on_factors(self, answer: &str) -> Result<Channel, CryptoError> {
        let r2 = parse_factors(answer, &self.key.private)?;
        let (d2s, s2d) = derive_keys(
            &self.r1,
            &r2,
            &self.key.spki_der,
            &self.server_spki,
            &self.serial,
        );
        Ok(Channel::new(&d2s, &s2d))
    }
}

#[cfg(test)]
mod tests {
    use super::super::channel::{Opener, Sealer};
    use super::super::test_keys;
    use super::*;
    use rsa::rand_core::OsRng;

    #[test]
    fn device_and_a_server_end_with_the_same_keys() {
        let device = test_keys::device();
        let server = test_keys::server();
        let server_spki = server.spki_der.clone();

        let hs = Handshake::new(device.clone(), "SN1");
        let posted = hs.public_key_body();
        // The server reads the device's key and answers its own.
        let (device_pub, device_spki) = parse_public_key(&posted).unwrap();
        assert_eq!(device_spki, device.spki_der);
        let (waiting, factors) = hs
            .on_public_key(&public_key_body(&server_spki), &mut OsRng)
            .unwrap();
        let r1 = parse_factors(&factors, &server.private).unwrap();
        let mut r2 = [0u8; FACTOR_LEN];
        OsRng.fill_bytes(&mut r2);
        let answer = factors_body(&device_pub, &r2, &mut OsRng).unwrap();
        let mut channel = waiting.on_factors(&answer).unwrap();

        let (d2s, s2d) = derive_keys(&r1, &r2, &device_spki, &server_spki, "SN1");
        let sealed = channel
            .seal_request("POST", "/iclock/registry?SN=SN1", b"x")
            .unwrap();
        let mut from_device = Opener::new(&d2s);
        assert_eq!(
            from_device
                .open(
                    Direction::DeviceToServer,
                    "POST",
                    "/iclock/registry?SN=SN1",
                    &sealed
                )
                .unwrap(),
            b"x"
        );
        let reply = Sealer::new(&s2d)
            .seal(
                Direction::ServerToDevice,
                "POST",
                "/iclock/registry?SN=SN1",
                b"RegistryCode=1",
            )
            .unwrap();
        assert_eq!(
            channel
                .open_response("POST", "/iclock/registry?SN=SN1", &reply)
                .unwrap(),
            b"RegistryCode=1"
        );
    }

    #[test]
    fn the_key_schedule_is_standard_hkdf_sha256() {
        let (d2s, s2d) = derive_keys(&[1; 32], &[2; 32], b"dev", b"srv", "SN1");
        let salt = Sha256::new()
            .chain_update(b"dev")
            .chain_update(b"srv")
            .finalize();
        let mut ikm = [1u8; 64];
        ikm[32..].fill(2);
        let hk = hkdf::Hkdf::<Sha256>::new(Some(&salt), &ikm);
        let mut want = [0u8; 32];
        hk.expand(b"lintel-push/1 device-to-server SN=SN1", &mut want)
            .unwrap();
        assert_eq!(*d2s, want);
        hk.expand(b"lintel-push/1 server-to-device SN=SN1", &mut want)
            .unwrap();
        assert_eq!(*s2d, want);
    }

    #[test]
    fn keys_differ_per_direction_serial_and_factor() {
        let (a, b) = derive_keys(&[1; 32], &[2; 32], b"d", b"s", "SN1");
        assert_ne!(*a, *b);
        let (c, _) = derive_keys(&[1; 32], &[2; 32], b"d", b"s", "SN2");
        assert_ne!(*a, *c);
        let (d, _) = derive_keys(&[1; 32], &[3; 32], b"d", b"s", "SN1");
        assert_ne!(*a, *d);
        let (e, _) = derive_keys(&[1; 32], &[2; 32], b"d", b"t", "SN1");
        assert_ne!(*a, *e);
    }

    #[test]
    fn bad_public_keys_are_refused_with_a_reason() {
        let cases = [
            ("Nothing=1", "no PublicKey"),
            ("PublicKey=***", "not base64"),
            ("PublicKey=AAAA", "not an RSA"),
        ];
        for (body, why) in cases {
            let e = parse_public_key(body).unwrap_err().to_string();
            assert!(e.contains(why), "{body}: {e}");
        }
        // A 1024-bit key is well-formed but too small.
        let small = rsa::RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let der = small.to_public_key().to_public_key_der().unwrap();
        let e = parse_public_key(&public_key_body(der.as_bytes()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("1024-bit"), "{e}");
    }

    #[test]
    fn wrapped_and_cased_fields_are_read() {
        assert_eq!(
            field("publickey=AB+/\n  CD==  \nOther=1", "PublicKey").as_deref(),
            Some("AB+/CD==")
        );
        assert_eq!(
            field("Factors=A B\r\nC\r\n", "Factors").as_deref(),
            Some("ABC")
        );
        assert_eq!(field("X=1", "Factors"), None);
    }

    #[test]
    fn factors_for_another_key_or_of_the_wrong_size_are_refused() {
        let device = test_keys::device();
        let server = test_keys::server();
        let to_server =
            factors_body(&server.private.to_public_key(), &[5; 32], &mut OsRng).unwrap();
        let e = parse_factors(&to_server, &device.private).unwrap_err();
        assert!(matches!(e, CryptoError::BadFactors(_)), "{e}");
        let short = device
            .private
            .to_public_key()
            .encrypt(&mut OsRng, oaep(), &[1u8; 8])
            .unwrap();
        let e = parse_factors(&format!("Factors={}", B64.encode(short)), &device.private)
            .unwrap_err()
            .to_string();
        assert!(e.contains("8 bytes"), "{e}");
        assert!(matches!(
            parse_factors("Factors=", &device.private),
            Err(CryptoError::BadFactors(_))
        ));
    }
}
