//! The control panel (CP) of one OSDP bus, sans-IO: it takes `now` and the bytes that
//! arrived, and returns [`Effect`]s (a packet to send, an input event for the engine). The
//! thread that owns the serial port ([`super::bus`]) only moves bytes and time.
//!
//! One command is outstanding on the bus at a time (RS-485 is half duplex); the readers
//! take turns. Each reader goes through
//!
//! ```text
//! Probe (osdp_ID, sequence 0) → Capabilities (osdp_CAP)
//!   → [keyed: Challenge (osdp_CHLNG) → Cryptogram (osdp_SCRYPT) → [install: KeySet]]
//!   → LocalStatus (osdp_LSTAT) → Polling (osdp_POLL, queued osdp_LED / osdp_BUZ)
//! ```
//!
//! A command that gets no valid reply is sent again with the same sequence number
//! (`Timing::retries` times); then the reader drops back to Probe, which is tried every
//! `Timing::probe_interval` while the reader stays silent. A reader that has not been
//! polled successfully for `Timing::offline_after` is reported offline (event 110); it
//! is reported online again (237) when it reaches Polling.

mod replies;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::message::{BuzzerCommand, Command, LedCommand, PdIdentity};
use super::packet::{self, scs, FrameError, FrameReader, Outgoing};
use super::secure::{Direction, SecureSession, SessionKeys};
use crate::event::{InputEvent, ReaderStatus, Timestamp};

/// One reader on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderSetup {
    /// lintel's reader number (what the engine sees).
    pub number: u8,
    /// The reader's OSDP address, 0-126.
    pub address: u8,
    /// Its Secure Channel base key; with one, the Secure Channel is required.
    pub scbk: Option<[u8; 16]>,
    /// Whether the default key SCBK-D may be used to install `scbk` in a reader that
    /// refuses it (a new reader in install mode).
    pub install_mode: bool,
}

/// The CP's timing. [`Timing::default`] is what the firmware runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a reply may take after the command left (OSDP's 200 ms), plus the wire
    /// time of the command at the bus's baud rate.
    pub reply_timeout: Duration,
    /// Resends of a command before the reader is taken for lost.
    pub retries: u8,
    /// Shortest time between the starts of two polls of one reader.
    pub poll_interval: Duration,
    /// A reader not polled successfully for this long is reported offline.
    pub offline_after: Duration,
    /// How often a silent reader is probed.
    pub probe_interval: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            reply_timeout: Duration::from_millis(200),
            retries: 2,
            poll_interval: Duration::from_millis(10),
            offline_after: Duration::from_secs(3),
            probe_interval: Duration::from_secs(2),
        }
    }
}

/// What the CP wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send these bytes on the bus.
    Send(Vec<u8>),
    /// Hand this to the engine.
    Input(InputEvent),
}

/// Counters of what a reader's link refused (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkCounters {
    /// Replies whose check character did not match.
    pub corrupt: u32,
    /// Secure Channel replies whose MAC or encryption did not verify.
    pub bad_mac: u32,
    /// Card or keypad data from a keyed reader that was not encrypted.
    pub refused_plain: u32,
    /// Commands sent again after a timeout or a damaged reply.
    pub resent: u32,
}

/// A reader's state as the CP sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderSnapshot {
    pub number: u8,
    pub address: u8,
    /// In the poll loop.
    pub online: bool,
    /// In a Secure Channel session.
    pub secure: bool,
    pub identity: Option<PdIdentity>,
    pub tamper: bool,
    pub power_failure: bool,
    pub counters: LinkCounters,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Probe,
    Capabilities,
    Challenge,
    Cryptogram,
    InstallKey,
    LocalStatus,
    Polling,
}

#[derive(Debug, Clone)]
struct Handshake {
    rnd_a: [u8; 8],
    default_key: bool,
    keys: Option<SessionKeys>,
    server_cryptogram: [u8; 16],
}

/// Feedback commands waiting for a reader's turn; more are dropped oldest first (a
/// person at the door needs the latest state, not a backlog).
const QUEUE_LIMIT: usize = 8;

struct Reader {
    setup: ReaderSetup,
    phase: Phase,
    /// Sequence number of the next command.
    sequence: u8,
    secure: Option<SecureSession>,
    handshake: Option<Handshake>,
    /// Try SCBK-D in the next handshake (install mode, after SCBK was refused).
    use_default_key: bool,
    /// When the reader last answered in the poll loop (or the CP started).
    last_usable: Instant,
    offline_reported: bool,
    /// When it may next be sent a command.
    due: Instant,
    tamper: bool,
    power_failure: bool,
    identity: Option<PdIdentity>,
    queue: VecDeque<Command>,
    /// Commands the reader answered with "unknown command" (not sent again).
    unsupported: Vec<u8>,
    /// A problem already logged for this episode offline (so a silent or misconfigured
    /// reader does not fill the log every probe).
    complained: bool,
    counters: LinkCounters,
}

#[derive(Clone)]
struct InFlight {
    reader: usize,
    command: Command,
    bytes: Vec<u8>,
    sequence: u8,
    first_sent: Instant,
    deadline: Instant,
    attempts: u8,
}

/// The CP of one bus.
pub struct BusController {
    /// The bus's name for logs (shared: reply handlers hold it while they change state).
    name: std::sync::Arc<str>,
    baud: u32,
    timing: Timing,
    readers: Vec<Reader>,
    in_flight: Option<InFlight>,
    frames: FrameReader,
    cursor: usize,
    random: RandomSource,
}

/// Fills a buffer with unpredictable bytes (the Secure Channel's RND.A), or says why not.
pub type RandomSource = Box<dyn FnMut(&mut [u8]) -> Result<(), String> + Send>;

fn next_sequence(s: u8) -> u8 {
    if s >= 3 {
        1
    } else {
        s + 1
    }
}

impl BusController {
    /// A CP for the readers of bus `name` at `baud`. `random` fills the Secure Channel's
    /// challenges (the firmware passes the OS's random source).
    pub fn new(
        name: &str,
        baud: u32,
        readers: Vec<ReaderSetup>,
        timing: Timing,
        random: RandomSource,
        now: Instant,
    ) -> BusController {
        BusController {
            name: std::sync::Arc::from(name),
            baud: baud.max(1),
            timing,
            readers: readers
                .into_iter()
                .map(|setup| Reader {
                    setup,
                    phase: Phase::Probe,
                    sequence: 0,
                    secure: None,
                    handshake: None,
                    use_default_key: false,
                    last_usable: now,
                    offline_reported: false,
                    due: now,
                    tamper: false,
                    power_failure: false,
                    identity: None,
                    queue: VecDeque::new(),
                    unsupported: Vec::new(),
                    complained: false,
                    counters: LinkCounters::default(),
                })
                .collect(),
            in_flight: None,
            frames: FrameReader::new(),
            cursor: 0,
            random,
        }
    }

    /// The readers' states.
    pub fn snapshot(&self) -> Vec<ReaderSnapshot> {
        self.readers
            .iter()
            .map(|r| ReaderSnapshot {
                number: r.setup.number,
                address: r.setup.address,
                online: r.phase == Phase::Polling,
                secure: r.secure.is_some(),
                identity: r.identity,
                tamper: r.tamper,
                power_failure: r.power_failure,
                counters: r.counters,
            })
            .collect()
    }

    /// Queues an LED command for reader `number`; false if it is not on this bus.
    pub fn led(&mut self, number: u8, command: LedCommand) -> bool {
        self.enqueue(number, Command::Led(command))
    }

    /// Queues a buzzer command for reader `number`; false if it is not on this bus.
    pub fn buzzer(&mut self, number: u8, command: BuzzerCommand) -> bool {
        self.enqueue(number, Command::Buzzer(command))
    }

    fn enqueue(&mut self, number: u8, command: Command) -> bool {
        let Some(r) = self.readers.iter_mut().find(|r| r.setup.number == number) else {
            return false;
        };
        if r.unsupported.contains(&command.code()) {
            log::debug!(
                "OSDP {}: reader {number} does not support {}; not sent",
                self.name,
                command.name()
            );
            return true;
        }
        if r.queue.len() >= QUEUE_LIMIT {
            r.queue.pop_front();
        }
        r.queue.push_back(command);
        true
    }

    /// When [`BusController::poll`] must run next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        match &self.in_flight {
            Some(f) => consider(f.deadline),
            None => self.readers.iter().for_each(|r| consider(r.due)),
        }
        for r in &self.readers {
            if r.phase != Phase::Polling && !r.offline_reported {
                consider(r.last_usable + self.timing.offline_after);
            }
        }
        next
    }

    fn wire_time(&self, bytes: usize) -> Duration {
        // 8N1: ten bit times per byte.
        let bits = u64::try_from(bytes).unwrap_or(u64::MAX).saturating_mul(10);
        Duration::from_micros(bits.saturating_mul(1_000_000) / u64::from(self.baud))
    }

    /// Timeouts, offline reports, and the next command when the bus is free.
    pub fn poll(&mut self, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some(f) = &self.in_flight {
            if now >= f.deadline {
                self.retry_or_fail(now, "no reply", &mut effects);
            }
        }
        for r in &mut self.readers {
            if r.phase != Phase::Polling
                && !r.offline_reported
                && now.saturating_duration_since(r.last_usable) >= self.timing.offline_after
            {
                r.offline_reported = true;
                log::warn!(
                    "OSDP {}: reader {} (address {}) is offline: no poll answered for {} s; probing it every {} s",
                    self.name,
                    r.setup.number,
                    r.setup.address,
                    self.timing.offline_after.as_secs(),
                    self.timing.probe_interval.as_secs()
                );
                effects.push(Effect::Input(InputEvent::Reader {
                    reader: r.setup.number,
                    status: ReaderStatus::Offline,
                    at: Timestamp::from_instant(now),
                }));
            }
        }
        if self.in_flight.is_none() {
            self.start_next(now, &mut effects);
        }
        effects
    }

    /// Bytes from the bus.
    pub fn on_bytes(&mut self, now: Instant, bytes: &[u8]) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.frames.push(bytes);
        while let Some(next) = self.frames.next_packet() {
            match next {
                Ok(p) => self.on_packet(now, p, &mut effects),
                Err(e) => self.on_damaged(now, e, &mut effects),
            }
        }
        if self.in_flight.is_none() {
            self.start_next(now, &mut effects);
        }
        effects
    }

    fn on_damaged(&mut self, now: Instant, e: FrameError, effects: &mut Vec<Effect>) {
        let Some(f) = &self.in_flight else {
            log::debug!(
                "OSDP {}: damaged bytes while idle ({e}); dropped",
                self.name
            );
            return;
        };
        if let FrameError::BadCheck { .. } = e {
            // A whole packet arrived damaged: the reader answered, the line garbled it.
            // Ask again now rather than after the timeout.
            let r = &mut self.readers[f.reader];
            r.counters.corrupt += 1;
            log::info!(
                "OSDP {}: reader {}: damaged reply ({e}); asking again",
                self.name,
                r.setup.number
            );
            self.retry_or_fail(now, "damaged replies", effects);
        } else {
            log::debug!("OSDP {}: noise on the bus ({e}); skipped", self.name);
        }
    }

    fn start_next(&mut self, now: Instant, effects: &mut Vec<Effect>) {
        let n = self.readers.len();
        for k in 0..n {
            let i = (self.cursor + k) % n;
            if self.readers[i].due > now {
                continue;
            }
            self.cursor = i + 1;
            let Some(command) = self.command_for(i, now) else {
                continue;
            };
            let r = &mut self.readers[i];
            if r.phase == Phase::Probe {
                // Sequence 0 restarts the reader's side (and any Secure Channel it held).
                r.sequence = 0;
                r.secure = None;
                r.handshake = None;
            }
            let sequence = r.sequence;
            let bytes = self.encode(i, &command, sequence);
            let deadline = now + self.timing.reply_timeout + self.wire_time(bytes.len());
            effects.push(Effect::Send(bytes.clone()));
            self.in_flight = Some(InFlight {
                reader: i,
                command,
                bytes,
                sequence,
                first_sent: now,
                deadline,
                attempts: 1,
            });
            return;
        }
    }

    fn command_for(&mut self, i: usize, now: Instant) -> Option<Command> {
        let phase = self.readers[i].phase;
        Some(match phase {
            Phase::Probe => Command::Id,
            Phase::Capabilities => Command::Capabilities,
            Phase::Challenge => {
                let mut rnd_a = [0u8; 8];
                if let Err(e) = (self.random)(&mut rnd_a) {
                    let why = format!("no random numbers for its Secure Channel ({e})");
                    self.refuse_reader(i, now, &why);
                    return None;
                }
                let r = &mut self.readers[i];
                r.handshake = Some(Handshake {
                    rnd_a,
                    default_key: r.use_default_key,
                    keys: None,
                    server_cryptogram: [0; 16],
                });
                Command::Challenge(rnd_a)
            }
            Phase::Cryptogram => Command::ServerCryptogram(
                self.readers[i]
                    .handshake
                    .as_ref()
                    .map_or([0; 16], |h| h.server_cryptogram),
            ),
            Phase::InstallKey => Command::KeySet(self.readers[i].setup.scbk.unwrap_or([0; 16])),
            Phase::LocalStatus => Command::LocalStatus,
            Phase::Polling => self.readers[i].queue.pop_front().unwrap_or(Command::Poll),
        })
    }

    fn encode(&mut self, i: usize, command: &Command, sequence: u8) -> Vec<u8> {
        let r = &mut self.readers[i];
        let data = command.data();
        let key_indicator = [u8::from(
            !r.handshake.as_ref().is_some_and(|h| h.default_key),
        )];
        let mut out = Outgoing {
            address: r.setup.address,
            reply: false,
            sequence,
            security: None,
            code: command.code(),
            data: &data,
        };
        match (command, r.secure.as_mut()) {
            (Command::Challenge(_), _) => {
                out.security = Some((scs::CHALLENGE, &key_indicator));
                packet::encode(&out, None)
            }
            (Command::ServerCryptogram(_), _) => {
                out.security = Some((scs::SERVER_CRYPTOGRAM, &key_indicator));
                packet::encode(&out, None)
            }
            (_, Some(session)) => {
                let sealed;
                if data.is_empty() {
                    out.security = Some((scs::COMMAND_MAC, &[]));
                } else {
                    sealed = session.encrypt(Direction::Command, &data);
                    out.security = Some((scs::COMMAND_ENCRYPTED, &[]));
                    out.data = &sealed;
                }
                let mut sign = |b: &[u8]| session.sign(Direction::Command, b);
                packet::encode(&out, Some(&mut sign))
            }
            (_, None) => packet::encode(&out, None),
        }
    }

    /// Resends the outstanding command, or gives the reader up when it had its tries.
    fn retry_or_fail(&mut self, now: Instant, what: &str, effects: &mut Vec<Effect>) {
        let Some(mut f) = self.in_flight.take() else {
            return;
        };
        let probing = self.readers[f.reader].phase == Phase::Probe;
        if !probing && f.attempts <= self.timing.retries {
            f.attempts += 1;
            f.deadline = now + self.timing.reply_timeout + self.wire_time(f.bytes.len());
            self.readers[f.reader].counters.resent += 1;
            effects.push(Effect::Send(f.bytes.clone()));
            self.in_flight = Some(f);
            return;
        }
        let r = &self.readers[f.reader];
        if r.phase == Phase::Polling || !r.complained {
            log::warn!(
                "OSDP {}: reader {} (address {}): {what} to {} after {} tries; probing it again",
                self.name,
                r.setup.number,
                r.setup.address,
                f.command.name(),
                f.attempts
            );
        }
        self.lose(f.reader, now);
    }

    /// Back to Probe: immediately if it was in the poll loop, else after the interval.
    fn lose(&mut self, i: usize, now: Instant) {
        let interval = self.timing.probe_interval;
        let r = &mut self.readers[i];
        r.due = if r.phase == Phase::Polling {
            now
        } else {
            now + interval
        };
        if r.phase != Phase::Probe {
            r.complained = true;
        }
        r.phase = Phase::Probe;
        r.secure = None;
        r.handshake = None;
        r.queue.clear();
    }

    /// Restarts the reader's session at once (sequence and Secure Channel out of step).
    fn restart(&mut self, i: usize, now: Instant) {
        let r = &mut self.readers[i];
        r.phase = Phase::Probe;
        r.secure = None;
        r.handshake = None;
        r.due = now;
    }

    /// A reader that answers but cannot be used as configured: logged once per episode,
    /// tried again after the probe interval.
    fn refuse_reader(&mut self, i: usize, now: Instant, why: &str) {
        let r = &mut self.readers[i];
        if !r.complained {
            log::error!(
                "OSDP {}: reader {} (address {}): {why}; it is not used, trying again every {} s",
                self.name,
                r.setup.number,
                r.setup.address,
                self.timing.probe_interval.as_secs()
            );
        }
        r.complained = true;
        r.phase = Phase::Probe;
        r.secure = None;
        r.handshake = None;
        r.use_default_key = false;
        r.due = now + self.timing.probe_interval;
    }
}
