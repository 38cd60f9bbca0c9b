//! OSDP packet framing, sans-IO: one packet to bytes, and a byte stream back to packets.
//!
//! A packet (IEC 60839-11-5 / SIA OSDP 2.2, "packet structure") is
//!
//! ```text
//! SOM 0x53 | ADDR | LEN_LSB | LEN_MSB | CTRL | [SEC_BLK_LEN SEC_BLK_TYPE SEC_BLK_DATA..]
//!          | CMND/REPLY | DATA.. | [MAC 4 bytes] | CKSUM 1 byte or CRC-16 LSB MSB
//! ```
//!
//! `ADDR` is the peripheral's address (0-126, 0x7F broadcast) with bit 7 set on replies.
//! `LEN` counts every byte from SOM to the check character(s). `CTRL` holds the sequence
//! number (bits 0-1), "CRC-16 follows" (bit 2) and "security block present" (bit 3). OSDP
//! 2.2 lets a sender put a 0xFF mark byte before SOM; the reader skips anything before SOM.
//! The MAC is present on security block types 0x15-0x18 (Secure Channel established).

/// Start of message.
pub const SOM: u8 = 0x53;
/// Bit 7 of the address byte: the packet is a reply from a peripheral.
pub const REPLY_FLAG: u8 = 0x80;
/// The broadcast address.
pub const BROADCAST: u8 = 0x7F;
const CTRL_SEQUENCE: u8 = 0x03;
const CTRL_CRC: u8 = 0x04;
const CTRL_SECURITY: u8 = 0x08;
/// SOM, ADDR, LEN (2), CTRL.
const HEADER_LEN: usize = 5;
/// The largest packet accepted; longer length fields are taken for noise (OSDP's own
/// recommended receive buffer is 128 bytes; no reply lintel asks for comes near this).
pub const MAX_PACKET: usize = 1024;
/// Length of the MAC carried by Secure Channel packets.
pub const MAC_LEN: usize = 4;

/// Security block types (SEC_BLK_TYPE).
pub mod scs {
    /// CP → PD osdp_CHLNG.
    pub const CHALLENGE: u8 = 0x11;
    /// PD → CP osdp_CCRYPT.
    pub const CLIENT_CRYPTOGRAM: u8 = 0x12;
    /// CP → PD osdp_SCRYPT.
    pub const SERVER_CRYPTOGRAM: u8 = 0x13;
    /// PD → CP osdp_RMAC_I.
    pub const INITIAL_RMAC: u8 = 0x14;
    /// CP → PD, MAC, data in clear (or no data).
    pub const COMMAND_MAC: u8 = 0x15;
    /// PD → CP, MAC, data in clear (or no data).
    pub const REPLY_MAC: u8 = 0x16;
    /// CP → PD, MAC, data encrypted.
    pub const COMMAND_ENCRYPTED: u8 = 0x17;
    /// PD → CP, MAC, data encrypted.
    pub const REPLY_ENCRYPTED: u8 = 0x18;

    /// Whether packets of this type end with a MAC.
    pub fn has_mac(kind: u8) -> bool {
        (COMMAND_MAC..=REPLY_ENCRYPTED).contains(&kind)
    }
}

/// Why bytes did not make a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("length field {0} is out of range")]
    BadLength(usize),
    #[error("{kind} does not match (got {got:#06x}, computed {computed:#06x})")]
    BadCheck {
        kind: &'static str,
        got: u16,
        computed: u16,
    },
    #[error("security block is malformed")]
    BadSecurityBlock,
}

/// Short classification of [`FrameError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameErrorKind {
    /// The bytes were damaged on the line (check character, length).
    Corrupt,
    /// The packet was intact but its structure is wrong.
    Malformed,
}

impl FrameError {
    pub fn kind(&self) -> FrameErrorKind {
        match self {
            FrameError::BadLength(_) | FrameError::BadCheck { .. } => FrameErrorKind::Corrupt,
            FrameError::BadSecurityBlock => FrameErrorKind::Malformed,
        }
    }
}

/// CRC-16 of OSDP: polynomial 0x1021, initial value 0x1D0F, not reflected, no final XOR
/// (the catalogue's CRC-16/AUG-CCITT; its check value for "123456789" is 0xE5CC).
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0x1D0F;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The 8-bit checksum: the two's complement of the byte sum.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, &b| sum.wrapping_add(b))
        .wrapping_neg()
}

/// A packet to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    /// 0-126, or [`BROADCAST`].
    pub address: u8,
    /// Set bit 7 of the address (a peripheral's reply).
    pub reply: bool,
    /// 0-3.
    pub sequence: u8,
    /// Security block type and its data bytes, if any.
    pub security: Option<(u8, &'a [u8])>,
    pub code: u8,
    /// The data as it goes on the wire (already encrypted where it must be).
    pub data: &'a [u8],
}

/// Computes a packet's MAC from its bytes (SOM to the end of the data).
pub type MacFn<'a> = &'a mut dyn FnMut(&[u8]) -> [u8; MAC_LEN];

/// Encodes a packet with a CRC-16. When the security block type carries a MAC, `mac` is
/// called with the bytes from SOM to the end of the data (length field final) and returns
/// the 4 bytes to append.
pub fn encode(out: &Outgoing<'_>, mac: Option<MacFn<'_>>) -> Vec<u8> {
    let with_mac = out.security.is_some_and(|(kind, _)| scs::has_mac(kind));
    let security_len = out.security.map_or(0, |(_, d)| 2 + d.len());
    let len =
        HEADER_LEN + security_len + 1 + out.data.len() + if with_mac { MAC_LEN } else { 0 } + 2;
    let mut p = Vec::with_capacity(len);
    p.push(SOM);
    p.push((out.address & 0x7F) | if out.reply { REPLY_FLAG } else { 0 });
    // Packets are built by lintel from bounded parts; the cast cannot truncate below
    // MAX_PACKET, and a longer one would be refused by the peer, not misread.
    let len16 = u16::try_from(len).unwrap_or(u16::MAX);
    p.extend_from_slice(&len16.to_le_bytes());
    let mut ctrl = (out.sequence & CTRL_SEQUENCE) | CTRL_CRC;
    if out.security.is_some() {
        ctrl |= CTRL_SECURITY;
    }
    p.push(ctrl);
    if let Some((kind, data)) = out.security {
        p.push(u8::try_from(2 + data.len()).unwrap_or(u8::MAX));
        p.push(kind);
        p.extend_from_slice(data);
    }
    p.push(out.code);
    p.extend_from_slice(out.data);
    if with_mac {
        let m = match mac {
            Some(f) => f(&p),
            None => [0; MAC_LEN],
        };
        p.extend_from_slice(&m);
    }
    let crc = crc16(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

/// A received, check-verified packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The packet from SOM to its check character(s).
    bytes: Vec<u8>,
    /// Offset of the command/reply code.
    code_at: usize,
    /// Offset just past the data (the MAC or the check characters start here).
    data_end: usize,
}

impl Packet {
    /// Checks a whole packet (SOM first, exactly `LEN` bytes) and finds its parts.
    pub fn parse(bytes: Vec<u8>) -> Result<Packet, FrameError> {
        if bytes.len() < HEADER_LEN + 2 || bytes[0] != SOM {
            return Err(FrameError::BadLength(bytes.len()));
        }
        let declared = usize::from(u16::from_le_bytes([bytes[2], bytes[3]]));
        if declared != bytes.len() {
            return Err(FrameError::BadLength(declared));
        }
        let ctrl = bytes[4];
        let check_len = if ctrl & CTRL_CRC != 0 { 2 } else { 1 };
        let body = bytes.len() - check_len;
        if ctrl & CTRL_CRC != 0 {
            let got = u16::from_le_bytes([bytes[body], bytes[body + 1]]);
            let computed = crc16(&bytes[..body]);
            if got != computed {
                return Err(FrameError::BadCheck {
                    kind: "CRC-16",
                    got,
                    computed,
                });
            }
        } else {
            let got = bytes[body];
            let computed = checksum(&bytes[..body]);
            if got != computed {
                return Err(FrameError::BadCheck {
                    kind: "checksum",
                    got: u16::from(got),
                    computed: u16::from(computed),
                });
            }
        }
        let mut code_at = HEADER_LEN;
        let mut data_end = body;
        if ctrl & CTRL_SECURITY != 0 {
            let sb_len = usize::from(*bytes.get(HEADER_LEN).ok_or(FrameError::BadSecurityBlock)?);
            if sb_len < 2 || HEADER_LEN + sb_len >= body {
                return Err(FrameError::BadSecurityBlock);
            }
            code_at += sb_len;
            if scs::has_mac(bytes[HEADER_LEN + 1]) {
                if data_end < code_at + 1 + MAC_LEN {
                    return Err(FrameError::BadSecurityBlock);
                }
                data_end -= MAC_LEN;
            }
        }
        if code_at >= data_end {
            return Err(FrameError::BadLength(declared));
        }
        Ok(Packet {
            bytes,
            code_at,
            data_end,
        })
    }

    /// The address without the reply flag.
    pub fn address(&self) -> u8 {
        self.bytes[1] & 0x7F
    }
    /// Whether bit 7 of the address is set (a peripheral's reply).
    pub fn is_reply(&self) -> bool {
        self.bytes[1] & REPLY_FLAG != 0
    }
    pub fn sequence(&self) -> u8 {
        self.bytes[4] & CTRL_SEQUENCE
    }
    /// The security block's type and data, if the packet has one.
    pub fn security(&self) -> Option<(u8, &[u8])> {
        if self.bytes[4] & CTRL_SECURITY == 0 {
            return None;
        }
        Some((
            self.bytes[HEADER_LEN + 1],
            &self.bytes[HEADER_LEN + 2..self.code_at],
        ))
    }
    pub fn code(&self) -> u8 {
        self.bytes[self.code_at]
    }
    /// The data after the code, as received (still encrypted under SCS 0x17/0x18).
    pub fn data(&self) -> &[u8] {
        &self.bytes[self.code_at + 1..self.data_end]
    }
    /// The MAC, on Secure Channel packets.
    pub fn mac(&self) -> Option<&[u8]> {
        self.security()
            .filter(|(kind, _)| scs::has_mac(*kind))
            .map(|_| &self.bytes[self.data_end..self.data_end + MAC_LEN])
    }
    /// The bytes the MAC covers: SOM to the end of the data.
    pub fn mac_input(&self) -> &[u8] {
        &self.bytes[..self.data_end]
    }
    /// The whole packet as received.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Reassembles packets from a byte stream: skips to SOM, waits for `LEN` bytes, checks
/// them. A damaged packet costs its SOM byte only: the search resumes right after it, so
/// a good packet that follows noise is still found.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        // Bound the buffer even against a stream of SOM bytes with huge lengths.
        if self.buf.len() > 4 * MAX_PACKET {
            let cut = self.buf.len() - MAX_PACKET;
            self.buf.drain(..cut);
        }
    }

    /// Forgets partial data (after the bus was turned around).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Bytes held that do not make a whole packet yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next packet or damaged packet, if the bytes so far hold one.
    pub fn next_packet(&mut self) -> Option<Result<Packet, FrameError>> {
        match self.buf.iter().position(|&b| b == SOM) {
            Some(0) => {}
            Some(i) => {
                self.buf.drain(..i);
            }
            None => {
                self.buf.clear();
                return None;
            }
        }
        if self.buf.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_le_bytes([self.buf[2], self.buf[3]]));
        if !(HEADER_LEN + 2..=MAX_PACKET).contains(&len) {
            self.buf.drain(..1);
            return Some(Err(FrameError::BadLength(len)));
        }
        if self.buf.len() < len {
            return None;
        }
        let candidate: Vec<u8> = self.buf[..len].to_vec();
        match Packet::parse(candidate) {
            Ok(p) => {
                self.buf.drain(..len);
                Some(Ok(p))
            }
            Err(e) => {
                self.buf.drain(..1);
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_aug_ccitt() {
        assert_eq!(crc16(b"123456789"), 0xE5CC);
        assert_eq!(crc16(&[]), 0x1D0F);
    }

    #[test]
    fn checksum_makes_the_sum_zero() {
        let bytes = [0x53, 0x00, 0x07, 0x00, 0x00, 0x60];
        let sum = bytes
            .iter()
            .fold(checksum(&bytes), |s: u8, &b| s.wrapping_add(b));
        assert_eq!(sum, 0);
    }

    #[test]
    fn a_poll_encodes_as_the_spec_lays_it_out() {
        let p = encode(
            &Outgoing {
                address: 101,
                reply: false,
                sequence: 1,
                security: None,
                code: 0x60,
                data: &[],
            },
            None,
        );
        assert_eq!(&p[..6], &[0x53, 101, 8, 0, 0x05, 0x60]);
        let crc = crc16(&p[..6]).to_le_bytes();
        assert_eq!(&p[6..], &crc);
        let parsed = Packet::parse(p).unwrap();
        assert_eq!(
            (
                parsed.address(),
                parsed.is_reply(),
                parsed.sequence(),
                parsed.code()
            ),
            (101, false, 1, 0x60)
        );
        assert!(parsed.data().is_empty() && parsed.security().is_none() && parsed.mac().is_none());
    }

    #[test]
    fn security_block_and_mac_are_found() {
        let mut seen = Vec::new();
        let mut mac = |b: &[u8]| {
            seen = b.to_vec();
            [1, 2, 3, 4]
        };
        let p = encode(
            &Outgoing {
                address: 3,
                reply: true,
                sequence: 2,
                security: Some((scs::REPLY_ENCRYPTED, &[])),
                code: 0x50,
                data: &[9; 16],
            },
            Some(&mut mac),
        );
        // LEN counts the MAC and CRC; the MAC input ends after the data.
        assert_eq!(usize::from(p[2]), p.len());
        assert_eq!(seen.len(), p.len() - 6);
        let parsed = Packet::parse(p).unwrap();
        assert_eq!(parsed.security(), Some((scs::REPLY_ENCRYPTED, &[][..])));
        assert_eq!(parsed.code(), 0x50);
        assert_eq!(parsed.data(), &[9; 16]);
        assert_eq!(parsed.mac(), Some(&[1, 2, 3, 4][..]));
        assert_eq!(parsed.mac_input(), &seen[..]);
        assert!(parsed.is_reply());
    }

    #[test]
    fn checksum_packets_are_accepted() {
        let mut p = vec![0x53, 0x81, 7, 0, 0x01, 0x40];
        p.push(checksum(&p));
        let parsed = Packet::parse(p).unwrap();
        assert_eq!((parsed.code(), parsed.sequence()), (0x40, 1));
    }

    #[test]
    fn reader_resyncs_after_noise_and_damage() {
        let good = encode(
            &Outgoing {
                address: 1,
                reply: true,
                sequence: 1,
                security: None,
                code: 0x40,
                data: &[],
            },
            None,
        );
        let mut damaged = good.clone();
        damaged[5] ^= 0x01;
        let mut r = FrameReader::new();
        r.push(&[0xFF, 0x00, 0x12]);
        r.push(&damaged);
        r.push(&[0xFF]);
        r.push(&good[..3]);
        assert!(matches!(
            r.next_packet(),
            Some(Err(FrameError::BadCheck { .. }))
        ));
        // The damaged packet's remaining bytes hold no SOM; the good one is incomplete.
        assert_eq!(r.next_packet(), None);
        r.push(&good[3..]);
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.bytes(), &good[..]);
        assert_eq!(r.next_packet(), None);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn absurd_lengths_are_skipped_not_waited_for() {
        let mut r = FrameReader::new();
        r.push(&[0x53, 0x80, 0xFF, 0xFF, 0x00]);
        assert!(matches!(
            r.next_packet(),
            Some(Err(FrameError::BadLength(65535)))
        ));
        assert_eq!(r.next_packet(), None);
        // A huge stream never grows the buffer without bound.
        for _ in 0..10_000 {
            r.push(&[0x53, 0x00, 0x00, 0x04]);
        }
        assert!(r.pending() <= 4 * MAX_PACKET);
    }

    #[test]
    fn malformed_security_blocks_are_errors() {
        // SCB length 9 runs past the packet.
        let mut p = vec![0x53, 0x81, 0, 0, 0x0C, 9, 0x16, 0x40];
        p[2] = u8::try_from(p.len() + 2).unwrap();
        let crc = crc16(&p).to_le_bytes();
        p.extend_from_slice(&crc);
        assert_eq!(Packet::parse(p), Err(FrameError::BadSecurityBlock));
    }
}
