//! How the control panel takes a reader's replies: the Secure Channel check of each
//! reply, then what the reply means in the reader's phase (discovery, the Secure
//! Channel set-up, the poll loop) and the NAK codes.

use std::time::{Duration, Instant};

use super::{next_sequence, BusController, Effect, InFlight, Phase};
use crate::event::{InputEvent, ReaderStatus, Timestamp};
use crate::osdp::message::{self, nak, Command, Reply};
use crate::osdp::packet::{scs, Packet};
use crate::osdp::secure::{self, Direction, SecureSession, SessionKeys, SCBK_DEFAULT};
use crate::wiegand::WiegandFrame;

impl BusController {
    pub(super) fn on_packet(&mut self, now: Instant, p: Packet, effects: &mut Vec<Effect>) {
        if !p.is_reply() {
            // Our own command echoed by a transceiver that hears itself.
            return;
        }
        let Some(f) = &self.in_flight else {
            log::debug!(
                "OSDP {}: reply from address {} when none was due; dropped",
                self.name,
                p.address()
            );
            return;
        };
        let i = f.reader;
        if p.address() != self.readers[i].setup.address {
            log::debug!(
                "OSDP {}: reply from address {} while waiting for {}; dropped",
                self.name,
                p.address(),
                self.readers[i].setup.address
            );
            return;
        }
        if p.code() == message::reply::BUSY {
            // The reader is busy; the command stands and is asked again shortly.
            if let Some(f) = self.in_flight.as_mut() {
                f.deadline = now + self.timing.poll_interval.max(Duration::from_millis(20));
                f.attempts = f.attempts.saturating_sub(1);
            }
            return;
        }
        if p.sequence() != f.sequence {
            log::debug!(
                "OSDP {}: reply with sequence {} to command {}; a late answer, dropped",
                self.name,
                p.sequence(),
                f.sequence
            );
            return;
        }
        let Some(data) = self.open_reply(i, now, &p) else {
            self.in_flight = None;
            return;
        };
        if p.code() == message::reply::RMAC_I
            && p.security().and_then(|(_, d)| d.first().copied()) != Some(1)
        {
            self.in_flight = None;
            self.refuse_reader(i, now, "did not accept lintel's server cryptogram");
            return;
        }
        let reply = match Reply::decode(p.code(), &data) {
            Ok(r) => r,
            Err(e) => {
                log::warn!(
                    "OSDP {}: reader {}: {e}; the command is asked again",
                    self.name,
                    self.readers[i].setup.number
                );
                self.retry_or_fail(now, "malformed replies", effects);
                return;
            }
        };
        let Some(f) = self.in_flight.take() else {
            return;
        };
        let r = &mut self.readers[i];
        r.sequence = next_sequence(f.sequence);
        if reply.is_credential() && r.setup.scbk.is_some() && !encrypted(&p) {
            r.counters.refused_plain += 1;
            log::warn!(
                "OSDP {}: reader {}: card or keypad data without encryption from a reader that has a key; refused, restarting its Secure Channel",
                self.name,
                r.setup.number
            );
            self.restart(i, now);
            return;
        }
        self.on_reply(i, &f, reply, now, effects);
    }

    /// Verifies and decrypts a reply per the reader's Secure Channel state; `None` when it
    /// must be refused (the reader is restarted then).
    fn open_reply(&mut self, i: usize, now: Instant, p: &Packet) -> Option<Vec<u8>> {
        let name = self.name.clone();
        let r = &mut self.readers[i];
        let kind = p.security().map(|(k, _)| k);
        match (r.secure.as_mut(), kind) {
            (Some(session), Some(k)) if scs::has_mac(k) => {
                let mac = p.mac().unwrap_or(&[]);
                if session
                    .verify(Direction::Reply, p.mac_input(), mac)
                    .is_err()
                {
                    r.counters.bad_mac += 1;
                    log::warn!(
                        "OSDP {name}: reader {}: reply with a wrong MAC refused; restarting its Secure Channel",
                        r.setup.number
                    );
                    self.restart(i, now);
                    return None;
                }
                if k != scs::REPLY_ENCRYPTED {
                    return Some(p.data().to_vec());
                }
                match session.decrypt(Direction::Reply, p.data()) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        r.counters.bad_mac += 1;
                        log::warn!(
                            "OSDP {name}: reader {}: encrypted reply refused ({e}); restarting its Secure Channel",
                            r.setup.number
                        );
                        self.restart(i, now);
                        None
                    }
                }
            }
            (Some(_), _) if p.code() == message::reply::NAK => {
                // A reader that dropped the session answers in plain text; only a NAK is
                // believed, and only to restart.
                Some(p.data().to_vec())
            }
            (Some(_), _) => {
                r.counters.refused_plain += 1;
                log::warn!(
                    "OSDP {name}: reader {}: plain-text reply inside the Secure Channel refused; restarting it",
                    r.setup.number
                );
                self.restart(i, now);
                None
            }
            (None, Some(k)) if scs::has_mac(k) => {
                log::warn!(
                    "OSDP {name}: reader {}: Secure Channel reply without a session; restarting it",
                    r.setup.number
                );
                self.restart(i, now);
                None
            }
            (None, _) => Some(p.data().to_vec()),
        }
    }

    fn on_reply(
        &mut self,
        i: usize,
        f: &InFlight,
        reply: Reply,
        now: Instant,
        effects: &mut Vec<Effect>,
    ) {
        let name = self.name.clone();
        let phase = self.readers[i].phase;
        if let Reply::Nak(code) = reply {
            self.on_nak(i, f, code, now, effects);
            return;
        }
        match (phase, reply) {
            (Phase::Probe, reply) => {
                let r = &mut self.readers[i];
                if let Reply::Identity(id) = reply {
                    log::info!(
                        "OSDP {name}: reader {} (address {}) answers: vendor {:02X}{:02X}{:02X} model {} version {} serial {:08X} firmware {}.{}.{}",
                        r.setup.number,
                        r.setup.address,
                        id.vendor[0], id.vendor[1], id.vendor[2],
                        id.model, id.version, id.serial,
                        id.firmware[0], id.firmware[1], id.firmware[2]
                    );
                    r.identity = Some(id);
                }
                r.phase = Phase::Capabilities;
                r.due = now;
            }
            (Phase::Capabilities, reply) => {
                let r = &mut self.readers[i];
                if let Reply::Capabilities(caps) = &reply {
                    let secure = caps.iter().any(|c| {
                        c.function == message::capability::COMMUNICATION_SECURITY
                            && c.compliance & 1 == 1
                    });
                    if r.setup.scbk.is_some() && !secure {
                        log::warn!(
                            "OSDP {name}: reader {} does not list the Secure Channel among its capabilities; trying it anyway",
                            r.setup.number
                        );
                    }
                }
                r.phase = if r.setup.scbk.is_some() {
                    Phase::Challenge
                } else {
                    Phase::LocalStatus
                };
                r.due = now;
            }
            (
                Phase::Challenge,
                Reply::ClientCryptogram {
                    rnd_b, cryptogram, ..
                },
            ) => self.on_client_cryptogram(i, rnd_b, cryptogram, now),
            (Phase::Cryptogram, Reply::InitialRmac(rmac)) => self.on_initial_rmac(i, rmac, now),
            (Phase::InstallKey, Reply::Ack) => {
                let r = &mut self.readers[i];
                log::warn!(
                    "OSDP {name}: reader {}: installed the board's scbk with the default key (install mode); set install_mode = false now",
                    r.setup.number
                );
                r.use_default_key = false;
                r.secure = None;
                r.phase = Phase::Challenge;
                r.due = now;
            }
            (Phase::LocalStatus, reply) => {
                if let Reply::LocalStatus {
                    tamper,
                    power_failure,
                } = reply
                {
                    self.on_local_status(i, tamper, power_failure, now, effects);
                }
                self.enter_polling(i, now, effects);
            }
            (Phase::Polling, reply) => {
                let r = &mut self.readers[i];
                r.last_usable = now;
                r.due = f.first_sent + self.timing.poll_interval;
                self.on_poll_reply(i, reply, now, effects);
            }
            (_, reply) => {
                log::info!(
                    "OSDP {name}: reader {}: unexpected reply {:#04x} during set-up; starting over",
                    self.readers[i].setup.number,
                    reply_code(&reply)
                );
                self.lose(i, now);
            }
        }
    }

    fn on_client_cryptogram(
        &mut self,
        i: usize,
        rnd_b: [u8; 8],
        cryptogram: [u8; 16],
        now: Instant,
    ) {
        let r = &mut self.readers[i];
        let Some(h) = r.handshake.as_mut() else {
            self.lose(i, now);
            return;
        };
        let base = if h.default_key {
            SCBK_DEFAULT
        } else {
            r.setup.scbk.unwrap_or(SCBK_DEFAULT)
        };
        let keys = SessionKeys::derive(&base, &h.rnd_a);
        if !secure::same(&keys.client_cryptogram(&h.rnd_a, &rnd_b), &cryptogram) {
            if !h.default_key && r.setup.install_mode {
                log::warn!(
                    "OSDP {}: reader {} refuses the board's scbk; install_mode is on, so trying the default key to install it",
                    self.name,
                    r.setup.number
                );
                r.use_default_key = true;
                r.phase = Phase::Challenge;
                r.due = now;
                return;
            }
            let why = if h.default_key {
                "does not accept the default key either (not in install mode?)"
            } else {
                "does not know the board's scbk (wrong key, or a new reader: set install_mode = true once)"
            };
            self.refuse_reader(i, now, why);
            return;
        }
        h.server_cryptogram = keys.server_cryptogram(&h.rnd_a, &rnd_b);
        h.keys = Some(keys);
        r.phase = Phase::Cryptogram;
        r.due = now;
    }

    fn on_initial_rmac(&mut self, i: usize, rmac: [u8; 16], now: Instant) {
        let r = &mut self.readers[i];
        let Some(h) = r.handshake.take() else {
            self.lose(i, now);
            return;
        };
        let Some(keys) = h.keys else {
            self.lose(i, now);
            return;
        };
        if !secure::same(&keys.initial_rmac(&h.server_cryptogram), &rmac) {
            self.refuse_reader(
                i,
                now,
                "answered the Secure Channel set-up with a wrong initial R-MAC",
            );
            return;
        }
        r.secure = Some(SecureSession::new(keys, rmac));
        r.phase = if h.default_key {
            Phase::InstallKey
        } else {
            Phase::LocalStatus
        };
        r.due = now;
    }

    fn enter_polling(&mut self, i: usize, now: Instant, effects: &mut Vec<Effect>) {
        let name = self.name.clone();
        let r = &mut self.readers[i];
        r.phase = Phase::Polling;
        r.last_usable = now;
        r.due = now;
        r.complained = false;
        log::info!(
            "OSDP {name}: reader {} (address {}) online, {}",
            r.setup.number,
            r.setup.address,
            if r.secure.is_some() {
                "Secure Channel"
            } else {
                "plain text (no scbk)"
            }
        );
        if r.offline_reported {
            r.offline_reported = false;
            effects.push(Effect::Input(InputEvent::Reader {
                reader: r.setup.number,
                status: ReaderStatus::Online,
                at: Timestamp::from_instant(now),
            }));
        }
    }

    fn on_local_status(
        &mut self,
        i: usize,
        tamper: bool,
        power_failure: bool,
        now: Instant,
        effects: &mut Vec<Effect>,
    ) {
        let r = &mut self.readers[i];
        let at = Timestamp::from_instant(now);
        if tamper != r.tamper {
            r.tamper = tamper;
            effects.push(Effect::Input(InputEvent::Reader {
                reader: r.setup.number,
                status: if tamper {
                    ReaderStatus::Tampered
                } else {
                    ReaderStatus::TamperCleared
                },
                at,
            }));
        }
        if power_failure != r.power_failure {
            r.power_failure = power_failure;
            effects.push(Effect::Input(InputEvent::Reader {
                reader: r.setup.number,
                status: if power_failure {
                    ReaderStatus::PowerFailed
                } else {
                    ReaderStatus::PowerRestored
                },
                at,
            }));
        }
    }

    fn on_poll_reply(&mut self, i: usize, reply: Reply, now: Instant, effects: &mut Vec<Effect>) {
        let number = self.readers[i].setup.number;
        let at = Timestamp::from_instant(now);
        match reply {
            Reply::Ack => {}
            Reply::RawCard { bits, .. } => effects.push(Effect::Input(InputEvent::Wiegand {
                reader: number,
                frame: WiegandFrame {
                    bits,
                    first_edge: at,
                    last_edge: at,
                    noise_pulses: 0,
                },
            })),
            Reply::FormattedCard { text } => {
                let digits = text.trim();
                match digits.parse::<u64>() {
                    Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) => {
                        effects.push(Effect::Input(InputEvent::CardNumber {
                            reader: number,
                            number: n,
                            at,
                        }))
                    }
                    _ => log::warn!(
                        "OSDP {}: reader {number}: osdp_FMT data is not a card number; ignored",
                        self.name
                    ),
                }
            }
            Reply::Keypad { keys } => {
                if !keys.is_empty() {
                    effects.push(Effect::Input(InputEvent::Keys {
                        reader: number,
                        keys,
                        at,
                    }));
                }
            }
            Reply::LocalStatus {
                tamper,
                power_failure,
            } => self.on_local_status(i, tamper, power_failure, now, effects),
            other => log::debug!(
                "OSDP {}: reader {number}: reply {:#04x} to a poll; ignored",
                self.name,
                reply_code(&other)
            ),
        }
    }

    fn on_nak(
        &mut self,
        i: usize,
        f: &InFlight,
        code: u8,
        now: Instant,
        effects: &mut Vec<Effect>,
    ) {
        let name = self.name.clone();
        let number = self.readers[i].setup.number;
        let phase = self.readers[i].phase;
        match code {
            nak::CHECK_CHARACTER => {
                // The reader got our packet damaged: send it again.
                self.in_flight = Some(f.clone());
                // The sequence was advanced on acceptance; the resend keeps the old one.
                self.readers[i].sequence = f.sequence;
                self.retry_or_fail(now, "damaged commands", effects);
            }
            nak::SEQUENCE => {
                log::info!("OSDP {name}: reader {number} lost the sequence; restarting it");
                self.restart(i, now);
            }
            nak::SECURITY_UNSUPPORTED if phase == Phase::Challenge => {
                self.refuse_reader(
                    i,
                    now,
                    "has an scbk on this board but refuses the Secure Channel",
                );
            }
            nak::SECURITY_CONDITIONS | nak::SECURITY_UNSUPPORTED => {
                if self.readers[i].setup.scbk.is_some() {
                    log::info!(
                        "OSDP {name}: reader {number} refused the Secure Channel state (NAK {code}); restarting it"
                    );
                    self.restart(i, now);
                } else {
                    self.refuse_reader(
                        i,
                        now,
                        "requires the Secure Channel: give it an scbk in the board file",
                    );
                }
            }
            nak::UNKNOWN_COMMAND if matches!(f.command, Command::Led(_) | Command::Buzzer(_)) => {
                let r = &mut self.readers[i];
                log::info!(
                    "OSDP {name}: reader {number} does not support {}; not sent to it again",
                    f.command.name()
                );
                r.unsupported.push(f.command.code());
                r.last_usable = now;
                r.due = f.first_sent + self.timing.poll_interval;
            }
            _ => match phase {
                // Identity, capabilities and local status are optional to lintel.
                Phase::Probe => {
                    self.readers[i].phase = Phase::Capabilities;
                    self.readers[i].due = now;
                }
                Phase::Capabilities => {
                    let r = &mut self.readers[i];
                    r.phase = if r.setup.scbk.is_some() {
                        Phase::Challenge
                    } else {
                        Phase::LocalStatus
                    };
                    r.due = now;
                }
                Phase::LocalStatus => self.enter_polling(i, now, effects),
                Phase::Polling => {
                    log::info!(
                        "OSDP {name}: reader {number} refused {} (NAK {code}); dropped",
                        f.command.name()
                    );
                    let r = &mut self.readers[i];
                    r.last_usable = now;
                    r.due = f.first_sent + self.timing.poll_interval;
                }
                _ => self.refuse_reader(
                    i,
                    now,
                    &format!("refused {} (NAK {code})", f.command.name()),
                ),
            },
        }
    }
}

fn encrypted(p: &Packet) -> bool {
    p.security().is_some_and(|(k, _)| k == scs::REPLY_ENCRYPTED)
}

/// A reply's code, for logs.
fn reply_code(reply: &Reply) -> u8 {
    use message::reply as r;
    match reply {
        Reply::Ack => r::ACK,
        Reply::Nak(_) => r::NAK,
        Reply::Identity(_) => r::PDID,
        Reply::Capabilities(_) => r::PDCAP,
        Reply::LocalStatus { .. } => r::LSTATR,
        Reply::RawCard { .. } => r::RAW,
        Reply::FormattedCard { .. } => r::FMT,
        Reply::Keypad { .. } => r::KEYPAD,
        Reply::ClientCryptogram { .. } => r::CCRYPT,
        Reply::InitialRmac(_) => r::RMAC_I,
        Reply::Busy => r::BUSY,
        Reply::Other { code, .. } => *code,
    }
}
