//! OSDP Secure Channel (SIA OSDP 2.2 Annex D): session keys, cryptograms, the MAC chain
//! and data encryption, on AES-128 from the `aes` crate and CBC from `cbc`.
//!
//! - Session keys from the base key SCBK and the CP's random RND.A:
//!   S-ENC = AES(SCBK, 01 82 RND.A[0..6] 00..), S-MAC1 = AES(SCBK, 01 01 ..),
//!   S-MAC2 = AES(SCBK, 01 02 ..).
//! - Client cryptogram (PD → CP, osdp_CCRYPT) = AES(S-ENC, RND.A ‖ RND.B); server
//!   cryptogram (CP → PD, osdp_SCRYPT) = AES(S-ENC, RND.B ‖ RND.A); initial R-MAC
//!   (osdp_RMAC_I) = AES(S-MAC2, AES(S-MAC1, server cryptogram)).
//! - MAC of a message (SOM to the end of the data, padded with 0x80 00.. to whole blocks
//!   unless already whole): AES-CBC under S-MAC1 over all blocks but the last, the last
//!   block under S-MAC2; the IV of a command is the last reply's MAC (R-MAC), the IV of a
//!   reply the MAC of its command (C-MAC). The first 4 bytes go on the wire.
//! - Data blocks: AES-CBC under S-ENC with 0x80 00.. padding (always at least the 0x80),
//!   IV = the complement of the R-MAC (commands) or of the C-MAC (replies).

use aes::cipher::{BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit};
use aes::Aes128;
use subtle::ConstantTimeEq;

const BLOCK: usize = 16;
/// The end-of-message marker that starts the padding.
const PAD_MARKER: u8 = 0x80;

/// SCBK-D, the default base key of peripherals in install mode (0x30, 0x31, ... 0x3F).
pub const SCBK_DEFAULT: [u8; 16] = [
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F,
];

/// Why a Secure Channel message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecureError {
    #[error("the MAC does not match")]
    BadMac,
    #[error("the encrypted data is not whole 16-byte blocks ({0} bytes)")]
    BadBlockLength(usize),
    #[error("the decrypted data has no end-of-message marker")]
    BadPadding,
}

/// Which way a message goes: it decides the MAC's IV and which MAC it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// CP → PD.
    Command,
    /// PD → CP.
    Reply,
}

fn aes_block(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
    let cipher = Aes128::new(key.into());
    let mut b = aes::Block::clone_from_slice(block);
    cipher.encrypt_block(&mut b);
    b.into()
}

fn cbc_encrypt(key: &[u8; 16], iv: &[u8; 16], data: &mut [u8]) {
    let mut enc = cbc::Encryptor::<Aes128>::new(key.into(), iv.into());
    for chunk in data.chunks_exact_mut(BLOCK) {
        enc.encrypt_block_mut(aes::Block::from_mut_slice(chunk));
    }
}

fn cbc_decrypt(key: &[u8; 16], iv: &[u8; 16], data: &mut [u8]) {
    let mut dec = cbc::Decryptor::<Aes128>::new(key.into(), iv.into());
    for chunk in data.chunks_exact_mut(BLOCK) {
        dec.decrypt_block_mut(aes::Block::from_mut_slice(chunk));
    }
}

fn not(b: &[u8; 16]) -> [u8; 16] {
    let mut out = *b;
    for x in &mut out {
        *x = !*x;
    }
    out
}

/// Constant-time equality of two byte strings of equal length.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The three session keys of one Secure Channel session.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    enc: [u8; 16],
    mac1: [u8; 16],
    mac2: [u8; 16],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl SessionKeys {
    pub fn derive(scbk: &[u8; 16], rnd_a: &[u8; 8]) -> SessionKeys {
        let key = |second: u8| {
            let mut b = [0u8; 16];
            b[0] = 0x01;
            b[1] = second;
            b[2..8].copy_from_slice(&rnd_a[..6]);
            aes_block(scbk, &b)
        };
        SessionKeys {
            enc: key(0x82),
            mac1: key(0x01),
            mac2: key(0x02),
        }
    }

    fn cryptogram(&self, first: &[u8; 8], second: &[u8; 8]) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(first);
        b[8..].copy_from_slice(second);
        aes_block(&self.enc, &b)
    }

    /// What the PD sends in osdp_CCRYPT.
    pub fn client_cryptogram(&self, rnd_a: &[u8; 8], rnd_b: &[u8; 8]) -> [u8; 16] {
        self.cryptogram(rnd_a, rnd_b)
    }

    /// What the CP sends in osdp_SCRYPT.
    pub fn server_cryptogram(&self, rnd_a: &[u8; 8], rnd_b: &[u8; 8]) -> [u8; 16] {
        self.cryptogram(rnd_b, rnd_a)
    }

    /// What the PD sends in osdp_RMAC_I.
    pub fn initial_rmac(&self, server_cryptogram: &[u8; 16]) -> [u8; 16] {
        aes_block(&self.mac2, &aes_block(&self.mac1, server_cryptogram))
    }
}

/// An established session: its keys and the two ends of the MAC chain.
#[derive(Debug, Clone)]
pub struct SecureSession {
    keys: SessionKeys,
    /// The MAC of the last command.
    c_mac: [u8; 16],
    /// The MAC of the last reply (initially the initial R-MAC).
    r_mac: [u8; 16],
}

impl SecureSession {
    pub fn new(keys: SessionKeys, initial_rmac: [u8; 16]) -> SecureSession {
        SecureSession {
            keys,
            c_mac: [0; 16],
            r_mac: initial_rmac,
        }
    }

    fn compute_mac(&self, dir: Direction, message: &[u8]) -> [u8; 16] {
        let iv = match dir {
            Direction::Command => self.r_mac,
            Direction::Reply => self.c_mac,
        };
        let mut buf = message.to_vec();
        if buf.len() % BLOCK != 0 || buf.is_empty() {
            buf.push(PAD_MARKER);
            buf.resize(buf.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        let split = buf.len() - BLOCK;
        let (head, last) = buf.split_at_mut(split);
        let mut chain = iv;
        if !head.is_empty() {
            cbc_encrypt(&self.keys.mac1, &iv, head);
            chain.copy_from_slice(&head[head.len() - BLOCK..]);
        }
        cbc_encrypt(&self.keys.mac2, &chain, last);
        let mut mac = [0u8; 16];
        mac.copy_from_slice(last);
        mac
    }

    /// The MAC of an outgoing message; it becomes the chain's latest for its direction.
    pub fn sign(&mut self, dir: Direction, message: &[u8]) -> [u8; 4] {
        let mac = self.compute_mac(dir, message);
        match dir {
            Direction::Command => self.c_mac = mac,
            Direction::Reply => self.r_mac = mac,
        }
        let mut short = [0u8; 4];
        short.copy_from_slice(&mac[..4]);
        short
    }

    /// Checks a received message's MAC; only a matching one moves the chain on.
    pub fn verify(
        &mut self,
        dir: Direction,
        message: &[u8],
        mac: &[u8],
    ) -> Result<(), SecureError> {
        let full = self.compute_mac(dir, message);
        if !same(&full[..4], mac) {
            return Err(SecureError::BadMac);
        }
        match dir {
            Direction::Command => self.c_mac = full,
            Direction::Reply => self.r_mac = full,
        }
        Ok(())
    }

    fn data_iv(&self, dir: Direction) -> [u8; 16] {
        match dir {
            Direction::Command => not(&self.r_mac),
            Direction::Reply => not(&self.c_mac),
        }
    }

    /// Encrypts a message's data. Call before [`SecureSession::sign`] for the same message
    /// (the IV is the other direction's MAC, which signing does not change).
    pub fn encrypt(&self, dir: Direction, data: &[u8]) -> Vec<u8> {
        let mut buf = data.to_vec();
        buf.push(PAD_MARKER);
        buf.resize(buf.len().div_ceil(BLOCK) * BLOCK, 0);
        cbc_encrypt(&self.keys.enc, &self.data_iv(dir), &mut buf);
        buf
    }

    /// Decrypts a message's data (after its MAC was verified) and strips the padding.
    pub fn decrypt(&self, dir: Direction, data: &[u8]) -> Result<Vec<u8>, SecureError> {
        if data.len() % BLOCK != 0 {
            return Err(SecureError::BadBlockLength(data.len()));
        }
        let mut buf = data.to_vec();
        cbc_decrypt(&self.keys.enc, &self.data_iv(dir), &mut buf);
        while buf.last() == Some(&0) {
            buf.pop();
        }
        if buf.pop() != Some(PAD_MARKER) {
            return Err(SecureError::BadPadding);
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS-197 Appendix C.1: the AES-128 primitive behind everything here.
    #[test]
    fn aes_known_answer() {
        let key: [u8; 16] = core::array::from_fn(|i| u8::try_from(i).unwrap());
        let pt: [u8; 16] = core::array::from_fn(|i| u8::try_from(i * 0x11).unwrap());
        let ct = aes_block(&key, &pt);
        assert_eq!(
            ct,
            [
                0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
                0xc5, 0x5a
            ]
        );
    }

    fn pair() -> (SecureSession, SecureSession) {
        let keys = SessionKeys::derive(&SCBK_DEFAULT, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let rmac = keys.initial_rmac(&keys.server_cryptogram(&[1; 8], &[2; 8]));
        (
            SecureSession::new(keys.clone(), rmac),
            SecureSession::new(keys, rmac),
        )
    }

    #[test]
    fn cryptograms_are_order_sensitive_and_key_bound() {
        let a = [0xA0; 8];
        let b = [0xB0; 8];
        let k = SessionKeys::derive(&SCBK_DEFAULT, &a);
        assert_ne!(k.client_cryptogram(&a, &b), k.server_cryptogram(&a, &b));
        assert_eq!(k.client_cryptogram(&a, &b), k.server_cryptogram(&b, &a));
        let other = SessionKeys::derive(&[0; 16], &a);
        assert_ne!(k.client_cryptogram(&a, &b), other.client_cryptogram(&a, &b));
        // Only the first six bytes of RND.A enter the keys.
        let mut a2 = a;
        a2[7] = 0;
        assert_eq!(SessionKeys::derive(&SCBK_DEFAULT, &a2), k);
    }

    #[test]
    fn the_mac_chain_runs_both_ways_and_refuses_tampering() {
        let (mut cp, mut pd) = pair();
        for round in 0..3u8 {
            let cmd = vec![0x53, 0x01, 14, 0, 0x0D, 2, 0x15, 0x60 + round];
            let mac = cp.sign(Direction::Command, &cmd);
            pd.verify(Direction::Command, &cmd, &mac).unwrap();
            let reply = vec![
                0x53, 0x81, 40, 0, 0x0D, 2, 0x18, 0x50, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                14, 15, 16, 17,
            ];
            let mac = pd.sign(Direction::Reply, &reply);
            let mut bad = mac;
            bad[0] ^= 1;
            assert_eq!(
                cp.clone().verify(Direction::Reply, &reply, &bad),
                Err(SecureError::BadMac)
            );
            cp.verify(Direction::Reply, &reply, &mac).unwrap();
        }
        // A replayed command no longer verifies: the chain has moved on.
        let cmd = vec![0x53, 0x01, 14, 0, 0x0D, 2, 0x15, 0x60];
        let mac = cp.clone().sign(Direction::Command, &cmd);
        let mut stale = pd.clone();
        stale.r_mac = [0; 16];
        assert!(stale.verify(Direction::Command, &cmd, &mac).is_err());
    }

    #[test]
    fn data_round_trips_with_padding_in_both_directions() {
        let (mut cp, mut pd) = pair();
        for len in [0usize, 1, 15, 16, 17, 40] {
            let data: Vec<u8> = (0..len).map(|i| u8::try_from(i).unwrap()).collect();
            let sealed = cp.encrypt(Direction::Command, &data);
            assert_eq!(sealed.len() % 16, 0);
            assert!(sealed.len() > data.len());
            assert_eq!(pd.decrypt(Direction::Command, &sealed).unwrap(), data);
            let _ = cp.sign(Direction::Command, &sealed);
            let _ = pd.verify(Direction::Command, &sealed, &cp.c_mac[..4]);
            let sealed = pd.encrypt(Direction::Reply, &data);
            assert_eq!(cp.decrypt(Direction::Reply, &sealed).unwrap(), data);
        }
        assert_eq!(
            cp.decrypt(Direction::Reply, &[0; 15]),
            Err(SecureError::BadBlockLength(15))
        );
    }
}
