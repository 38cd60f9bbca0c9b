//! The symmetric half of encrypted PUSH (Appendix 16, "all the data
//! transmitted later"): bodies sealed with AES-256-GCM under one key per
//! direction, a counter per direction that is the nonce and must arrive in
//! order, and the CRC32 of the plaintext inside the sealed text.
//!
//! Wire layout (docs/encrypted-push.md, "Sealed bodies"):
//!
//! ```text
//! sealed  = version(1 byte, 0x01) || counter(8 bytes, big-endian) || ciphertext || tag(16 bytes)
//! plain   = crc32(body) (4 bytes, big-endian) || body
//! nonce   = 0x00000000 || counter(8 bytes, big-endian)
//! aad     = "lintel-push/1 request "  || METHOD || " " || request-target   (device to server)
//!           "lintel-push/1 response " || METHOD || " " || request-target   (server to device)
//! ```

//!
//! AES-256-GCM is ring's, which rustls links already for TLS: the
//! `aes-gcm` crate would add 22 KB to the binary for the same cipher (its
//! output is checked against ring's in the tests below).

use super::CryptoError;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};

/// First byte of every sealed body.
pub const SEALED_VERSION: u8 = 1;
/// version + counter.
pub const HEADER_LEN: usize = 1 + 8;
pub const TAG_LEN: usize = 16;
pub const CRC_LEN: usize = 4;
/// The smallest sealed body: an empty plaintext still carries its CRC and tag.
pub const MIN_SEALED_LEN: usize = HEADER_LEN + CRC_LEN + TAG_LEN;
/// Bytes a sealed body adds to its plaintext.
pub const OVERHEAD: usize = MIN_SEALED_LEN;

/// Which way a body travels; each direction has its own key and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    DeviceToServer,
    ServerToDevice,
}

impl Direction {
    /// The HKDF `info` label of this direction's key.
    pub fn label(self) -> &'static str {
        match self {
            Direction::DeviceToServer => "device-to-server",
            Direction::ServerToDevice => "server-to-device",
        }
    }

    fn aad_prefix(self) -> &'static [u8] {
        match self {
            Direction::DeviceToServer => b"lintel-push/1 request ",
            Direction::ServerToDevice => b"lintel-push/1 response ",
        }
    }
}

/// The additional authenticated data: the body is bound to its request
/// line, so a sealed upload cannot be replayed under another query string.
pub fn aad(direction: Direction, method: &str, target: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + method.len() + target.len());
    aad.extend_from_slice(direction.aad_prefix());
    aad.extend_from_slice(method.as_bytes());
    aad.push(b' ');
    aad.extend_from_slice(target.as_bytes());
    aad
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    // Unique: each counter value is used once under its key.
    Nonce::assume_unique_for_key(n)
}

fn cipher(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("AES-256 takes a 32-byte key"))
}

/// One direction's sealing side: the next counter never goes back, so no
/// nonce is ever used twice under its key.
pub struct Sealer {
    cipher: LessSafeKey,
    next: u64,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Sealer {
            cipher: cipher(key),
            next: 0,
        }
    }

    /// The counter the next sealed body will carry.
    pub fn next_counter(&self) -> u64 {
        self.next
    }

    /// Seals `body` for the request `METHOD target` travelling `direction`.
    pub fn seal(
        &mut self,
        direction: Direction,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let counter = self.next;
        // u64::MAX is never used, so the counter cannot wrap to a used nonce.
        self.next = counter
            .checked_add(1)
            .ok_or(CryptoError::CounterExhausted)?;
        if self.next == u64::MAX {
            return Err(CryptoError::CounterExhausted);
        }
        let mut out = Vec::with_capacity(body.len() + OVERHEAD);
        out.push(SEALED_VERSION);
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(body).to_be_bytes());
        out.extend_from_slice(body);
        let tag = self
            .cipher
            .seal_in_place_separate_tag(
                nonce(counter),
                Aad::from(aad(direction, method, target)),
                &mut out[HEADER_LEN..],
            )
            .map_err(|_| CryptoError::BodyTooLarge { len: body.len() })?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }
}

/// One direction's opening side: it accepts exactly the next counter.
pub struct Opener {
    cipher: LessSafeKey,
    expected: u64,
}

impl Opener {
    pub fn new(key: &[u8; 32]) -> Self {
        Opener {
            cipher: cipher(key),
            expected: 0,
        }
    }

    /// The counter the next body must carry.
    pub fn expected_counter(&self) -> u64 {
        self.expected
    }

    /// Opens a sealed body; the counter advances only when it opened.
    pub fn open(
        &mut self,
        direction: Direction,
        method: &str,
        target: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut buffer = sealed.to_vec();
        self.open_in_place(direction, method, target, &mut buffer)?;
        Ok(buffer)
    }

    /// Opens `buffer` where it lies, leaving the body in it: a bulk
    /// getrequest answer of megabytes is not held twice.
    pub fn open_in_place(
        &mut self,
        direction: Direction,
        method: &str,
        target: &str,
        buffer: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        if buffer.len() < MIN_SEALED_LEN {
            return Err(CryptoError::Truncated { len: buffer.len() });
        }
        if buffer[0] != SEALED_VERSION {
            return Err(CryptoError::UnknownVersion(buffer[0]));
        }
        let mut counter_bytes = [0u8; 8];
        counter_bytes.copy_from_slice(&buffer[1..HEADER_LEN]);
        let counter = u64::from_be_bytes(counter_bytes);
        if counter < self.expected {
            return Err(CryptoError::Replayed {
                counter,
                expected: self.expected,
            });
        }
        if counter > self.expected {
            return Err(CryptoError::OutOfOrder {
                counter,
                expected: self.expected,
            });
        }
        let text_end = buffer.len() - TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&buffer[text_end..]);
        self.cipher
            .open_in_place_separate_tag(
                nonce(counter),
                Aad::from(aad(direction, method, target)),
                Tag::from(tag),
                &mut buffer[HEADER_LEN..text_end],
                0..,
            )
            .map_err(|_| CryptoError::Authentication { counter })?;
        let mut crc_bytes = [0u8; CRC_LEN];
        crc_bytes.copy_from_slice(&buffer[HEADER_LEN..HEADER_LEN + CRC_LEN]);
        let sent = u32::from_be_bytes(crc_bytes);
        let actual = crc32fast::hash(&buffer[HEADER_LEN + CRC_LEN..text_end]);
        if sent != actual {
            return Err(CryptoError::CrcMismatch { sent, actual });
        }
        buffer.truncate(text_end);
        buffer.drain(..HEADER_LEN + CRC_LEN);
        self.expected = counter + 1;
        Ok(())
    }
}

/// The device's end of an established channel: it seals requests and
/// opens responses.
pub struct Channel {
    requests: Sealer,
    responses: Opener,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The counters only: never the keys.
        f.debug_struct("Channel")
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// A channel from the two directions' keys (see `exchange::derive_keys`).
    pub fn new(device_to_server: &[u8; 32], server_to_device: &[u8; 32]) -> Self {
        Channel {
            requests: Sealer::new(device_to_server),
            responses: Opener::new(server_to_device),
        }
    }

    pub fn seal_request(
        &mut self,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.requests
            .seal(Direction::DeviceToServer, method, target, body)
    }

    pub fn open_response(
        &mut self,
        method: &str,
        target: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.responses
            .open(Direction::ServerToDevice, method, target, sealed)
    }

    /// [`Channel::open_response`] in the answer's own buffer.
    pub fn open_response_in_place(
        &mut self,
        method: &str,
        target: &str,
        body: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.responses
            .open_in_place(Direction::ServerToDevice, method, target, body)
    }

    /// (next request counter, next expected response counter), for logs.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.requests.next_counter(),
            self.responses.expected_counter(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D2S: [u8; 32] = [7; 32];
    const S2D: [u8; 32] = [9; 32];
    const TARGET: &str = "/iclock/cdata?SN=X&table=rtlog";

    fn server_side() -> (Opener, Sealer) {
        (Opener::new(&D2S), Sealer::new(&S2D))
    }

    #[test]
    fn requests_and_responses_round_trip_in_order() {
        let mut device = Channel::new(&D2S, &S2D);
        let (mut from_device, mut to_device) = server_side();
        for i in 0..3u8 {
            let body = vec![i; usize::from(i) * 100];
            let sealed = device.seal_request("POST", TARGET, &body).unwrap();
            assert_eq!(sealed.len(), body.len() + OVERHEAD);
            assert_eq!(&sealed[1..9], &u64::from(i).to_be_bytes());
            let opened = from_device
                .open(Direction::DeviceToServer, "POST", TARGET, &sealed)
                .unwrap();
            assert_eq!(opened, body);
            let answer = to_device
                .seal(Direction::ServerToDevice, "POST", TARGET, b"OK")
                .unwrap();
            assert_eq!(
                device.open_response("POST", TARGET, &answer).unwrap(),
                b"OK"
            );
        }
        assert_eq!(device.counters(), (3, 3));
        // An empty body is sealed too: its CRC and tag still say "nothing".
        let empty = device.seal_request("POST", TARGET, b"").unwrap();
        assert_eq!(empty.len(), MIN_SEALED_LEN);
        assert!(from_device
            .open(Direction::DeviceToServer, "POST", TARGET, &empty)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn every_kind_of_damage_is_rejected_with_its_reason() {
        let (_, mut server) = server_side();
        let first = server
            .seal(Direction::ServerToDevice, "GET", TARGET, b"C:1:INFO")
            .unwrap();
        let second = server
            .seal(Direction::ServerToDevice, "GET", TARGET, b"C:2:INFO")
            .unwrap();
        let fresh = || Opener::new(&S2D);
        let open = |o: &mut Opener, b: &[u8]| o.open(Direction::ServerToDevice, "GET", TARGET, b);

        // Tampered ciphertext, tag and header.
        for at in [HEADER_LEN, first.len() - 1] {
            let mut bad = first.clone();
            bad[at] ^= 0x01;
            assert!(matches!(
                open(&mut fresh(), &bad),
                Err(CryptoError::Authentication { counter: 0 })
            ));
        }
        let mut bad = first.clone();
        bad[0] = 2;
        assert!(matches!(
            open(&mut fresh(), &bad),
            Err(CryptoError::UnknownVersion(2))
        ));
        // Truncated below the minimum and truncated inside the text.
        assert!(matches!(
            open(&mut fresh(), &first[..10]),
            Err(CryptoError::Truncated { len: 10 })
        ));
        assert!(matches!(
            open(&mut fresh(), &first[..first.len() - 3]),
            Err(CryptoError::Authentication { .. })
        ));
        // Reordered: the second before the first.
        assert!(matches!(
            open(&mut fresh(), &second),
            Err(CryptoError::OutOfOrder {
                counter: 1,
                expected: 0
            })
        ));
        // Replayed: the first twice.
        let mut o = fresh();
        assert_eq!(open(&mut o, &first).unwrap(), b"C:1:INFO");
        assert!(matches!(
            open(&mut o, &first),
            Err(CryptoError::Replayed {
                counter: 0,
                expected: 1
            })
        ));
        // A failed open does not advance: the right body still opens.
        assert_eq!(open(&mut o, &second).unwrap(), b"C:2:INFO");
        // Bound to the request line and the direction.
        let mut o = fresh();
        assert!(open_other(&mut o, &first, "GET", "/iclock/getrequest?SN=Y").is_err());
        assert!(matches!(
            o.open(Direction::DeviceToServer, "GET", TARGET, &first),
            Err(CryptoError::Authentication { .. })
        ));
    }

    fn open_other(
        o: &mut Opener,
        b: &[u8],
        method: &str,
        target: &str,
    ) -> Result<Vec<u8>, CryptoError> {
        o.open(Direction::ServerToDevice, method, target, b)
    }

    #[test]
    fn a_reused_nonce_is_caught_by_its_counter() {
        // A faulty server that seals two answers under the same counter.
        let mut a = Sealer::new(&S2D);
        let mut b = Sealer::new(&S2D);
        let one = a
            .seal(Direction::ServerToDevice, "GET", TARGET, b"one")
            .unwrap();
        let _ = b
            .seal(Direction::ServerToDevice, "GET", TARGET, b"x")
            .unwrap();
        let two = b
            .seal(Direction::ServerToDevice, "GET", TARGET, b"two")
            .unwrap();
        let three = a
            .seal(Direction::ServerToDevice, "GET", TARGET, b"3")
            .unwrap();
        let mut o = Opener::new(&S2D);
        o.open(Direction::ServerToDevice, "GET", TARGET, &one)
            .unwrap();
        o.open(Direction::ServerToDevice, "GET", TARGET, &two)
            .unwrap();
        assert!(matches!(
            o.open(Direction::ServerToDevice, "GET", TARGET, &three),
            Err(CryptoError::Replayed { counter: 1, .. })
        ));
    }

    /// Seals like a server would, with the `aes-gcm` crate (a second,
    /// independent AES-256-GCM) and the CRC given.
    fn seal_with_aes_gcm_crate(counter: u64, crc: u32, body: &[u8]) -> Vec<u8> {
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        let cipher = aes_gcm::Aes256Gcm::new((&S2D).into());
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&counter.to_be_bytes());
        let mut out = vec![SEALED_VERSION];
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(body);
        let tag = cipher
            .encrypt_in_place_detached(
                &n.into(),
                &aad(Direction::ServerToDevice, "GET", TARGET),
                &mut out[HEADER_LEN..],
            )
            .unwrap();
        out.extend_from_slice(&tag);
        out
    }

    #[test]
    fn the_cipher_is_standard_aes_256_gcm() {
        let body = b"C:1:DATA UPDATE user Pin=1";
        let theirs = seal_with_aes_gcm_crate(0, crc32fast::hash(body), body);
        let ours = Sealer::new(&S2D)
            .seal(Direction::ServerToDevice, "GET", TARGET, body)
            .unwrap();
        assert_eq!(ours, theirs);
        let mut o = Opener::new(&S2D);
        assert_eq!(
            o.open(Direction::ServerToDevice, "GET", TARGET, &theirs)
                .unwrap(),
            body
        );
    }

    #[test]
    fn a_wrong_crc_under_a_valid_tag_is_rejected() {
        let out = seal_with_aes_gcm_crate(0, crc32fast::hash(b"body") ^ 1, b"body");
        let mut o = Opener::new(&S2D);
        assert!(matches!(
            o.open(Direction::ServerToDevice, "GET", TARGET, &out),
            Err(CryptoError::CrcMismatch { .. })
        ));
        assert_eq!(o.expected_counter(), 0);
    }

    #[test]
    fn the_crc_is_appendix_16s_crc32() {
        // The IEEE CRC-32 check value.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }
}
