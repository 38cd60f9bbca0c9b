//! The server side of encrypted PUSH, written from docs/encrypted-push.md
//! alone (it shares no code with the firmware, so the document is what
//! both sides agree on): the 7.2/7.3 exchange and sealed bodies.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine as _;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::rand_core::{OsRng, RngCore};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The server's key pair, made once per process (RSA generation is slow).
pub struct ServerKey {
    pub private: RsaPrivateKey,
    pub spki: Vec<u8>,
}

pub fn server_key() -> &'static ServerKey {
    static KEY: OnceLock<ServerKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let private = RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA key generation");
        let spki = private
            .to_public_key()
            .to_public_key_der()
            .expect("SPKI")
            .as_bytes()
            .to_vec();
        ServerKey { private, spki }
    })
}

/// The base64 value of `name=` in an exchange body: the rest of its line
/// plus following lines of pure base64 (wrapped values), whitespace dropped.
pub fn field(body: &str, name: &str) -> Option<String> {
    let mut lines = body.lines();
    let first = lines.by_ref().find_map(|l| {
        let (k, v) = l.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.to_string())
    })?;
    let mut out: String = first.split_whitespace().collect();
    for l in lines {
        let t = l.trim();
        let ok = !t.is_empty()
            && t.trim_end_matches('=')
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        if !ok {
            break;
        }
        out.push_str(t);
    }
    Some(out)
}

/// A device's key from its 7.2 body.
pub fn device_public_key(body: &str) -> Result<(RsaPublicKey, Vec<u8>), String> {
    let text = field(body, "PublicKey").ok_or("no PublicKey=")?;
    let der = B64
        .decode(text)
        .map_err(|e| format!("PublicKey not base64: {e}"))?;
    let key = RsaPublicKey::from_public_key_der(&der).map_err(|e| format!("PublicKey: {e}"))?;
    if !(2048..=4096).contains(&key.n().bits()) {
        return Err(format!("{}-bit device key", key.n().bits()));
    }
    Ok((key, der))
}

pub fn public_key_answer(spki: &[u8]) -> String {
    format!("PublicKey={}", B64.encode(spki))
}

/// A key the device must refuse: well-formed base64, not an RSA key.
pub fn bad_public_key_answer() -> String {
    format!(
        "PublicKey={}",
        B64.encode(b"this is not a SubjectPublicKeyInfo")
    )
}

/// R1 from the device's 7.3 body.
pub fn device_factor(body: &str) -> Result<[u8; 32], String> {
    let text = field(body, "Factors").ok_or("no Factors=")?;
    let sealed = B64
        .decode(text)
        .map_err(|e| format!("Factors not base64: {e}"))?;
    let plain = server_key()
        .private
        .decrypt(Oaep::new::<Sha256>(), &sealed)
        .map_err(|_| "Factors do not decrypt with the server key".to_string())?;
    plain
        .try_into()
        .map_err(|p: Vec<u8>| format!("R1 has {} bytes", p.len()))
}

/// A fresh R2 and the `Factors=` answer carrying it to the device.
pub fn server_factor(device: &RsaPublicKey) -> Result<([u8; 32], String), String> {
    let mut r2 = [0u8; 32];
    OsRng.fill_bytes(&mut r2);
    let sealed = device
        .encrypt(&mut OsRng, Oaep::new::<Sha256>(), &r2)
        .map_err(|e| e.to_string())?;
    Ok((r2, format!("Factors={}", B64.encode(sealed))))
}

/// How the next sealed answer is to be spoiled (faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spoil {
    /// Flip a ciphertext bit after sealing.
    Tamper,
    /// Seal a CRC32 that does not match the body.
    WrongCrc,
    /// Send the previous sealed answer again, byte for byte.
    Replay,
    /// Seal under the previous answer's counter (a nonce used twice).
    ReuseNonce,
}

/// One device's channel: opens its requests, seals the answers.
pub struct Channel {
    from_device: Aes256Gcm,
    to_device: Aes256Gcm,
    expected: u64,
    next: u64,
    last_sealed: Option<Vec<u8>>,
}

fn nonce(counter: u64) -> Nonce<aes_gcm::aes::cipher::consts::U12> {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::from(n)
}

fn aad(kind: &str, method: &str, target: &str) -> Vec<u8> {
    format!("lintel-push/1 {kind} {method} {target}").into_bytes()
}

impl Channel {
    /// Keys from R1, R2 and both public keys (the document's key schedule).
    pub fn new(r1: &[u8; 32], r2: &[u8; 32], device_spki: &[u8], sn: &str) -> Channel {
        let salt = Sha256::new()
            .chain_update(device_spki)
            .chain_update(&server_key().spki)
            .finalize();
        let mut ikm = [0u8; 64];
        ikm[..32].copy_from_slice(r1);
        ikm[32..].copy_from_slice(r2);
        let hk = hkdf::Hkdf::<Sha256>::new(Some(&salt), &ikm);
        let key = |dir: &str| {
            let mut k = [0u8; 32];
            hk.expand(format!("lintel-push/1 {dir} SN={sn}").as_bytes(), &mut k)
                .expect("HKDF length");
            Aes256Gcm::new(&k.into())
        };
        Channel {
            from_device: key("device-to-server"),
            to_device: key("server-to-device"),
            expected: 0,
            next: 0,
            last_sealed: None,
        }
    }

    /// The plaintext of a sealed request body, or why it is refused.
    pub fn open(&mut self, method: &str, target: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < 29 {
            return Err(format!(
                "sealed body of {} bytes is too short",
                sealed.len()
            ));
        }
        if sealed[0] != 1 {
            return Err(format!("sealed body version {}", sealed[0]));
        }
        let counter = u64::from_be_bytes(sealed[1..9].try_into().expect("8 bytes"));
        if counter != self.expected {
            return Err(format!(
                "counter {counter}, expected {} (replayed or reordered)",
                self.expected
            ));
        }
        let (text, tag) = sealed[9..].split_at(sealed.len() - 9 - 16);
        let mut plain = text.to_vec();
        self.from_device
            .decrypt_in_place_detached(
                &nonce(counter),
                &aad("request", method, target),
                &mut plain,
                Tag::from_slice(tag),
            )
            .map_err(|_| format!("sealed body {counter} failed authentication"))?;
        let body = plain.split_off(4);
        let crc = u32::from_be_bytes(plain[..4].try_into().expect("4 bytes"));
        if crc != crc32fast::hash(&body) {
            return Err(format!("sealed body {counter}: CRC32 mismatch"));
        }
        self.expected += 1;
        Ok(body)
    }

    /// Seals an answer body, spoiled as asked.
    pub fn seal(
        &mut self,
        method: &str,
        target: &str,
        body: &[u8],
        spoil: Option<Spoil>,
    ) -> Vec<u8> {
        if spoil == Some(Spoil::Replay) {
            if let Some(last) = &self.last_sealed {
                return last.clone();
            }
        }
        let counter = match spoil {
            Some(Spoil::ReuseNonce) if self.next > 0 => self.next - 1,
            _ => {
                self.next += 1;
                self.next - 1
            }
        };
        let mut crc = crc32fast::hash(body);
        if spoil == Some(Spoil::WrongCrc) {
            crc ^= 0xDEAD_BEEF;
        }
        let mut out = vec![1u8];
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(body);
        let tag = self
            .to_device
            .encrypt_in_place_detached(
                &nonce(counter),
                &aad("response", method, target),
                &mut out[9..],
            )
            .expect("AES-GCM seals bodies below 64 GiB");
        out.extend_from_slice(&tag);
        if spoil == Some(Spoil::Tamper) {
            let at = out.len() / 2;
            out[at] ^= 0x40;
        }
        self.last_sealed = Some(out.clone());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_fields_and_spoiled_seals() {
        assert_eq!(
            field("Factors=AB\n CD=\nX=1", "factors").as_deref(),
            Some("ABCD=")
        );
        let mut c = Channel::new(&[1; 32], &[2; 32], b"dev", "SN");
        let first = c.seal("GET", "/x", b"hi", None);
        assert_eq!(c.seal("GET", "/x", b"again", Some(Spoil::Replay)), first);
        let reused = c.seal("GET", "/x", b"other", Some(Spoil::ReuseNonce));
        assert_eq!(reused[1..9], first[1..9]);
        let next = c.seal("GET", "/x", b"hi", None);
        assert_eq!(next[1..9], 1u64.to_be_bytes());
        // A request sealed by nobody with these keys is refused with a reason.
        assert!(c.open("POST", "/x", &next).unwrap_err().contains("counter"));
    }
}
