//! An in-memory OSDP peripheral (PD) bus, sans-IO, for tests and benchmarks: readers at
//! several addresses that answer the control panel as the specification says (identity,
//! capabilities, polls with queued card/keypad/status events, LED and buzzer commands,
//! the Secure Channel with its key or, in install mode, SCBK-D, osdp_KEYSET), with faults
//! on demand (silence, damaged replies, wrong MACs, plain-text card data).
//!
//! It is built on the same [`super::packet`] and [`super::secure`] code as the CP, so it
//! cannot catch a mistake both share: the LibOSDP interop tests (`hal/tests/`) do that.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::message::{byte_of_key, command, nak, reply};
use super::packet::{self, scs, FrameReader, Outgoing, Packet};
use super::secure::{Direction, SecureSession, SessionKeys, SCBK_DEFAULT};
use crate::serial::SerialPort;
use crate::wiegand::WiegandBits;

/// Something a fake reader reports in answer to a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdEvent {
    Raw(WiegandBits),
    Formatted(String),
    Keys(String),
    /// osdp_LSTATR with the reader's current tamper and power state.
    Status,
}

/// Faults a fake reader injects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PdFaults {
    /// Answers nothing.
    pub silent: bool,
    /// The next N replies get a flipped byte (their CRC no longer matches).
    pub corrupt_replies: u32,
    /// The next N Secure Channel replies get a wrong MAC (with a valid CRC).
    pub bad_macs: u32,
    /// Card data goes out in plain text even inside a Secure Channel.
    pub plain_cards: bool,
}

/// One fake reader.
#[derive(Debug, Clone)]
pub struct FakeReader {
    pub address: u8,
    /// Offers the Secure Channel.
    pub secure_capable: bool,
    /// Its base key (None: it has none).
    pub scbk: Option<[u8; 16]>,
    /// Accepts SCBK-D (a new reader).
    pub install_mode: bool,
    pub tamper: bool,
    pub power_failure: bool,
    pub faults: PdFaults,
    pub events: VecDeque<PdEvent>,
    /// osdp_LED and osdp_BUZ records received, as (code, data).
    pub received: Vec<(u8, Vec<u8>)>,
    /// Polls answered.
    pub polls: u64,
    /// Command codes it answers with "unknown command" (NAK 3).
    pub rejects: Vec<u8>,
    session: Option<SecureSession>,
    handshake: Option<([u8; 8], [u8; 8], SessionKeys)>,
    last: Option<(u8, Vec<u8>)>,
    counter: u8,
}

impl FakeReader {
    pub fn new(address: u8) -> FakeReader {
        FakeReader {
            address,
            secure_capable: true,
            scbk: None,
            install_mode: false,
            tamper: false,
            power_failure: false,
            faults: PdFaults::default(),
            events: VecDeque::new(),
            received: Vec::new(),
            polls: 0,
            rejects: Vec::new(),
            session: None,
            handshake: None,
            last: None,
            counter: 0,
        }
    }

    pub fn with_key(mut self, scbk: [u8; 16]) -> FakeReader {
        self.scbk = Some(scbk);
        self
    }

    /// Whether a Secure Channel session is up.
    pub fn secure(&self) -> bool {
        self.session.is_some()
    }

    /// Answers one command addressed to this reader.
    fn answer(&mut self, p: &Packet) -> Option<Vec<u8>> {
        if self.faults.silent {
            return None;
        }
        let seq = p.sequence();
        if seq == 0 {
            self.session = None;
            self.handshake = None;
        } else if let Some((last_seq, bytes)) = &self.last {
            // The CP asks again: the reply was lost; send the same one.
            if *last_seq == seq {
                return Some(bytes.clone());
            }
        }
        let kind = p.security().map(|(k, _)| k);
        let mut data = p.data().to_vec();
        match (self.session.as_mut(), kind) {
            (Some(s), Some(k)) if scs::has_mac(k) => {
                if s.verify(Direction::Command, p.mac_input(), p.mac().unwrap_or(&[]))
                    .is_err()
                {
                    self.session = None;
                    return Some(self.reply(seq, reply::NAK, &[nak::SECURITY_CONDITIONS], None));
                }
                if k == scs::COMMAND_ENCRYPTED {
                    match s.decrypt(Direction::Command, &data) {
                        Ok(d) => data = d,
                        Err(_) => {
                            self.session = None;
                            return Some(self.reply(
                                seq,
                                reply::NAK,
                                &[nak::SECURITY_CONDITIONS],
                                None,
                            ));
                        }
                    }
                }
            }
            (Some(_), _) if !matches!(p.code(), command::CHLNG | command::SCRYPT) => {
                self.session = None;
                return Some(self.reply(seq, reply::NAK, &[nak::SECURITY_CONDITIONS], None));
            }
            (None, Some(k)) if scs::has_mac(k) => {
                return Some(self.reply(seq, reply::NAK, &[nak::SECURITY_CONDITIONS], None));
            }
            _ => {}
        }
        let mut out = self.execute(p, seq, &data);
        self.last = Some((seq, out.clone()));
        if self.faults.corrupt_replies > 0 {
            // Damaged on the line: the kept copy (for a resend) is intact.
            self.faults.corrupt_replies -= 1;
            out[5] ^= 0x01;
        }
        Some(out)
    }

    fn execute(&mut self, p: &Packet, seq: u8, data: &[u8]) -> Vec<u8> {
        if self.rejects.contains(&p.code()) {
            return self.reply(seq, reply::NAK, &[nak::UNKNOWN_COMMAND], None);
        }
        match p.code() {
            command::ID => self.reply(
                seq,
                reply::PDID,
                &[0x5C, 0x26, 0x23, 7, 1, self.address, 0, 0, 0, 2, 0, 1],
                None,
            ),
            command::CAP => {
                let caps = [
                    9,
                    u8::from(self.secure_capable),
                    0,
                    4,
                    1,
                    1,
                    5,
                    1,
                    1,
                    8,
                    1,
                    0,
                ];
                self.reply(seq, reply::PDCAP, &caps, None)
            }
            command::LSTAT => {
                let d = [u8::from(self.tamper), u8::from(self.power_failure)];
                self.reply(seq, reply::LSTATR, &d, None)
            }
            command::POLL => {
                self.polls += 1;
                match self.events.pop_front() {
                    None => self.reply(seq, reply::ACK, &[], None),
                    Some(PdEvent::Status) => {
                        let d = [u8::from(self.tamper), u8::from(self.power_failure)];
                        self.reply(seq, reply::LSTATR, &d, None)
                    }
                    Some(PdEvent::Raw(bits)) => {
                        let n = u16::try_from(bits.len()).unwrap_or(0);
                        let mut d = vec![0, 1];
                        d.extend_from_slice(&n.to_le_bytes());
                        let mut bytes = vec![0u8; bits.len().div_ceil(8)];
                        for (i, b) in bits.iter().enumerate() {
                            if b {
                                bytes[i / 8] |= 0x80 >> (i % 8);
                            }
                        }
                        d.extend_from_slice(&bytes);
                        self.card_reply(seq, reply::RAW, &d)
                    }
                    Some(PdEvent::Formatted(text)) => {
                        let mut d = vec![0, 0, u8::try_from(text.len()).unwrap_or(0)];
                        d.extend_from_slice(text.as_bytes());
                        self.card_reply(seq, reply::FMT, &d)
                    }
                    Some(PdEvent::Keys(keys)) => {
                        let k: Vec<u8> = keys.chars().filter_map(byte_of_key).collect();
                        let mut d = vec![0, u8::try_from(k.len()).unwrap_or(0)];
                        d.extend_from_slice(&k);
                        self.card_reply(seq, reply::KEYPAD, &d)
                    }
                }
            }
            command::LED | command::BUZ => {
                self.received.push((p.code(), data.to_vec()));
                self.reply(seq, reply::ACK, &[], None)
            }
            command::CHLNG if data.len() == 8 => {
                if !self.secure_capable {
                    return self.reply(seq, reply::NAK, &[nak::SECURITY_UNSUPPORTED], None);
                }
                let wants_default = p.security().and_then(|(_, d)| d.first().copied()) == Some(0);
                let (base, indicator) = if wants_default && self.install_mode {
                    (SCBK_DEFAULT, 0)
                } else {
                    (self.scbk.unwrap_or([0; 16]), 1)
                };
                let mut rnd_a = [0u8; 8];
                rnd_a.copy_from_slice(data);
                self.counter = self.counter.wrapping_add(1);
                let rnd_b = [
                    self.counter,
                    0xB1,
                    0xB2,
                    0xB3,
                    0xB4,
                    0xB5,
                    0xB6,
                    self.address,
                ];
                let keys = SessionKeys::derive(&base, &rnd_a);
                let mut d = vec![0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, self.address];
                d.extend_from_slice(&rnd_b);
                d.extend_from_slice(&keys.client_cryptogram(&rnd_a, &rnd_b));
                self.handshake = Some((rnd_a, rnd_b, keys));
                self.session = None;
                self.reply(
                    seq,
                    reply::CCRYPT,
                    &d,
                    Some((scs::CLIENT_CRYPTOGRAM, indicator)),
                )
            }
            command::SCRYPT if data.len() == 16 => {
                let Some((rnd_a, rnd_b, keys)) = self.handshake.take() else {
                    return self.reply(seq, reply::NAK, &[nak::SECURITY_CONDITIONS], None);
                };
                let expected = keys.server_cryptogram(&rnd_a, &rnd_b);
                let ok = expected[..] == data[..];
                let rmac = keys.initial_rmac(&expected);
                let out = self.reply(
                    seq,
                    reply::RMAC_I,
                    &rmac,
                    Some((scs::INITIAL_RMAC, u8::from(ok))),
                );
                if ok {
                    self.session = Some(SecureSession::new(keys, rmac));
                }
                out
            }
            command::KEYSET if data.len() == 18 && self.session.is_some() => {
                let mut key = [0u8; 16];
                key.copy_from_slice(&data[2..]);
                let out = self.reply(seq, reply::ACK, &[], None);
                self.scbk = Some(key);
                self.install_mode = false;
                self.session = None;
                out
            }
            command::KEYSET => self.reply(seq, reply::NAK, &[nak::SECURITY_CONDITIONS], None),
            _ => self.reply(seq, reply::NAK, &[nak::UNKNOWN_COMMAND], None),
        }
    }

    fn card_reply(&mut self, seq: u8, code: u8, data: &[u8]) -> Vec<u8> {
        if self.faults.plain_cards && self.session.is_some() {
            return plain(self.address, seq, code, data);
        }
        self.reply(seq, code, data, None)
    }

    /// A reply, inside the Secure Channel when there is one; `handshake` puts a set-up
    /// security block (type, key indicator) on it instead.
    fn reply(&mut self, seq: u8, code: u8, data: &[u8], handshake: Option<(u8, u8)>) -> Vec<u8> {
        let indicator;
        let mut out = Outgoing {
            address: self.address,
            reply: true,
            sequence: seq,
            security: None,
            code,
            data,
        };
        let bytes = match (handshake, self.session.as_mut()) {
            (Some((kind, ind)), _) => {
                indicator = [ind];
                out.security = Some((kind, &indicator));
                packet::encode(&out, None)
            }
            (None, Some(s)) => {
                let sealed;
                if data.is_empty() {
                    out.security = Some((scs::REPLY_MAC, &[]));
                } else {
                    sealed = s.encrypt(Direction::Reply, data);
                    out.security = Some((scs::REPLY_ENCRYPTED, &[]));
                    out.data = &sealed;
                }
                let mut sign = |b: &[u8]| s.sign(Direction::Reply, b);
                let mut bytes = packet::encode(&out, Some(&mut sign));
                if self.faults.bad_macs > 0 {
                    self.faults.bad_macs -= 1;
                    let mac_at = bytes.len() - 2 - packet::MAC_LEN;
                    bytes[mac_at] ^= 0x5A;
                    let crc = packet::crc16(&bytes[..bytes.len() - 2]).to_le_bytes();
                    let n = bytes.len();
                    bytes[n - 2..].copy_from_slice(&crc);
                }
                bytes
            }
            (None, None) => packet::encode(&out, None),
        };
        bytes
    }
}

fn plain(address: u8, seq: u8, code: u8, data: &[u8]) -> Vec<u8> {
    packet::encode(
        &Outgoing {
            address,
            reply: true,
            sequence: seq,
            security: None,
            code,
            data,
        },
        None,
    )
}

/// Fake readers sharing one bus.
#[derive(Debug, Default)]
pub struct FakeBus {
    pub readers: Vec<FakeReader>,
    frames: FrameReader,
}

impl FakeBus {
    pub fn new(readers: Vec<FakeReader>) -> FakeBus {
        FakeBus {
            readers,
            frames: FrameReader::new(),
        }
    }

    pub fn reader(&mut self, address: u8) -> &mut FakeReader {
        match self.readers.iter().position(|r| r.address == address) {
            Some(i) => &mut self.readers[i],
            None => {
                self.readers.push(FakeReader::new(address));
                let last = self.readers.len() - 1;
                &mut self.readers[last]
            }
        }
    }

    /// Bytes from the CP; returns the replies, each with the length of the command it
    /// answers (for wire-time pacing).
    pub fn on_bytes(&mut self, bytes: &[u8]) -> Vec<(usize, Vec<u8>)> {
        self.frames.push(bytes);
        let mut out = Vec::new();
        while let Some(next) = self.frames.next_packet() {
            let Ok(p) = next else {
                continue; // a damaged command: a real PD stays silent or NAKs; silence
            };
            if p.is_reply() {
                continue;
            }
            let len = p.bytes().len();
            if let Some(r) = self.readers.iter_mut().find(|r| r.address == p.address()) {
                if let Some(reply) = r.answer(&p) {
                    out.push((len, reply));
                }
            }
        }
        out
    }
}

/// Runs a fake bus on a serial port (e.g. the master side of a pty) until `stop`.
/// With `pace_baud`, each reply is held back for the time the command and the reply
/// would take on a wire at that rate (a pty moves bytes at no rate at all).
pub fn serve(
    mut port: Box<dyn SerialPort>,
    bus: Arc<Mutex<FakeBus>>,
    pace_baud: Option<u32>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("fake osdp pd".into())
        .spawn(move || {
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                let n = match port.receive(&mut buf, Duration::from_millis(20)) {
                    Ok(n) => n,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                };
                if n == 0 {
                    continue;
                }
                let received = Instant::now();
                let replies = bus
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .on_bytes(&buf[..n]);
                for (command_len, reply) in replies {
                    if let Some(baud) = pace_baud {
                        let bytes = u64::try_from(command_len + reply.len()).unwrap_or(0);
                        let wire =
                            Duration::from_micros(bytes * 10 * 1_000_000 / u64::from(baud.max(1)));
                        let due = received + wire;
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                    }
                    let _ = port.send(&reply);
                }
            }
        })
}
