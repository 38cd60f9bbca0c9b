//! How the rest of the firmware reaches the engine: the inputs its loop
//! consumes ([`EngineInput`]), the door commands of the session
//! ([`DoorCommand`]), the [`EngineHandle`] other threads hold, what the
//! engine needs at start ([`EngineSetup`], [`Outputs`]) and the injected
//! [`Monotonic`] time of its timers. Owns no engine state and NEVER
//! decides anything: it only carries requests in and answers out.

use super::remote;
use crate::clock::Clock;
use crate::protocol::codes;
use crate::session::SessionInput;
use crate::watchdog::Liveness;
use lintel_hal::board::BoardConfig;
use lintel_hal::{InputEvent, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Monotonic time for relay and alarm timers. Injected so tests can move it.
pub trait Monotonic: Send + Sync {
    fn now(&self) -> Instant;
}

/// The host's monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemMonotonic;

impl Monotonic for SystemMonotonic {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Monotonic time that only moves when told (tests). After moving it, wake
/// the engine ([`EngineHandle::wake`]) so it looks at its timers.
#[derive(Debug, Clone)]
pub struct ManualMonotonic {
    base: Instant,
    offset: Arc<Mutex<Duration>>,
}

impl ManualMonotonic {
    pub fn new() -> Self {
        ManualMonotonic {
            base: Instant::now(),
            offset: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }

    pub fn advance(&self, by: Duration) {
        if let Ok(mut o) = self.offset.lock() {
            *o += by;
        }
    }
}

impl Default for ManualMonotonic {
    fn default() -> Self {
        Self::new()
    }
}

impl Monotonic for ManualMonotonic {
    fn now(&self) -> Instant {
        self.base + self.offset.lock().map(|o| *o).unwrap_or_default()
    }
}

/// What the engine's loop consumes.
#[derive(Debug)]
pub enum EngineInput {
    /// A HAL event and when the forwarder took it off the HAL's channel.
    Hal(InputEvent, Instant),
    /// A door command from the session, answered with an Appendix 1 code.
    Command(DoorCommand, Sender<i64>),
    /// Look at the timers now (after a test moved the monotonic clock).
    Tick,
    /// Only recompute the wait: a step on the `engine-inputs` thread may
    /// have moved the next deadline.
    Rearm,
    /// The server's answer to remote identification `id`.
    Remote {
        id: u64,
        verdict: Result<remote::RemoteVerdict, String>,
    },
    /// Like `Tick`, then answer once the step is finished (tests wait on it).
    Sync(Sender<()>),
    Shutdown,
}

/// Which output a CONTROL DEVICE 01 drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputTarget {
    Lock,
    Aux,
}

/// How it is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputAction {
    Off,
    For(Duration),
    NormalOpen,
}

/// Commands the session hands the engine (12.4). `door`/`index` 0 = all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoorCommand {
    Output {
        target: OutputTarget,
        index: u8,
        action: OutputAction,
    },
    CancelAlarm {
        door: u8,
    },
    /// 04: enable (true) or disable the normal-open state.
    NormalOpen {
        door: u8,
        enable: bool,
    },
    /// 06: lock (true) or unlock.
    Lock {
        door: u8,
        locked: bool,
    },
    /// 07: emergency dual-on (true) or dual-off.
    Emergency {
        all_open: bool,
    },
    /// AC_UNLOCK: release the door for its own DoorDrivertime, as a granted
    /// card does (logged as a remote opening, 8).
    Unlock {
        door: u8,
    },
    /// 09: start (true) or stop uploading read frames as `testdata`.
    WiegandTest {
        start: bool,
    },
}

/// When a grant drove its relay (benchmarks measure card-to-relay latency).
#[derive(Debug, Clone, Copy)]
pub struct GrantTiming {
    /// The frame's last edge as the HAL stamped it.
    pub last_edge: Instant,
    /// When the `engine-inputs` thread took the frame off the HAL's channel.
    pub forwarded: Instant,
    /// When the engine received the frame.
    pub received: Instant,
    /// When the lock relay was set.
    pub relay_set: Instant,
}

/// How other threads reach the engine.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    pub(super) tx: Sender<EngineInput>,
    /// HAL events the engine has finished handling.
    pub(super) hal_handled: Arc<AtomicU64>,
}

impl EngineHandle {
    /// Sends a command and waits for its code; [`codes::WAIT_TIMEOUT`]
    /// when the engine does not answer in time, -12 when it is gone.
    pub fn command(&self, cmd: DoorCommand, timeout: Duration) -> i64 {
        let (reply_tx, reply_rx) = channel();
        if self.tx.send(EngineInput::Command(cmd, reply_tx)).is_err() {
            return codes::EXECUTION_ERROR;
        }
        match reply_rx.recv_timeout(timeout) {
            Ok(code) => code,
            Err(RecvTimeoutError::Timeout) => codes::WAIT_TIMEOUT,
            Err(RecvTimeoutError::Disconnected) => codes::EXECUTION_ERROR,
        }
    }

    /// How many HAL events (frames, input changes) the engine has fully
    /// handled; tests wait on it instead of guessing how long a frame takes.
    pub fn hal_events_handled(&self) -> u64 {
        self.hal_handled.load(Ordering::Acquire)
    }

    pub fn wake(&self) {
        let _ = self.tx.send(EngineInput::Tick);
    }

    /// Wakes the engine and waits until it has handled everything sent
    /// before (tests). False when it did not answer within `timeout`.
    pub fn sync(&self, timeout: Duration) -> bool {
        let (tx, rx) = channel();
        self.tx.send(EngineInput::Sync(tx)).is_ok() && rx.recv_timeout(timeout).is_ok()
    }

    pub fn shutdown(&self) {
        let _ = self.tx.send(EngineInput::Shutdown);
    }

    /// Feeds a HAL event directly (tests, benchmarks).
    pub fn send_input(&self, ev: InputEvent) {
        let _ = self.tx.send(EngineInput::Hal(ev, Instant::now()));
    }
}

/// The outputs the engine drives (taken from `lintel_hal::Hal`).
pub struct Outputs {
    pub locks: Vec<Box<dyn Output>>,
    pub aux_out: Vec<Box<dyn Output>>,
}

/// Everything the engine needs at start.
pub struct EngineSetup {
    pub board: BoardConfig,
    pub serial: String,
    pub clock: Arc<dyn Clock>,
    pub monotonic: Arc<dyn Monotonic>,
    /// Woken after events or a state change are queued.
    pub session: Option<Sender<SessionInput>>,
    /// rtstate is queued on every change and at least this often.
    pub rtstate_period: Duration,
    pub grant_probe: Option<Sender<GrantTiming>>,
    /// Remote identification (section 13), used while `AutoServerFunOn` is 1.
    pub remote: Option<Arc<dyn remote::RemoteIdentifier>>,
    /// Where the engine's threads promise to report again (the watchdog).
    pub liveness: Option<Liveness>,
    /// The readers' LEDs and buzzers (`lintel_hal::Hal::start_indicators`):
    /// told every identification's outcome, after the lock is driven.
    pub indicator: Option<Arc<dyn lintel_hal::ReaderIndicator>>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start the engine thread: {0}")]
    Thread(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_time_moves_only_when_told_and_its_clones_share_it() {
        let m = ManualMonotonic::new();
        let other = m.clone();
        let t0 = m.now();
        assert_eq!(m.now(), t0);
        other.advance(Duration::from_secs(3));
        assert_eq!(m.now(), t0 + Duration::from_secs(3));
    }

    fn handle() -> (EngineHandle, std::sync::mpsc::Receiver<EngineInput>) {
        let (tx, rx) = channel();
        let handle = EngineHandle {
            tx,
            hal_handled: Arc::new(AtomicU64::new(0)),
        };
        (handle, rx)
    }

    #[test]
    fn a_command_gets_the_engines_code_a_timeout_or_an_execution_error() {
        let cmd = DoorCommand::WiegandTest { start: true };
        let (h, rx) = handle();
        let engine = std::thread::spawn(move || match rx.recv() {
            Ok(EngineInput::Command(DoorCommand::WiegandTest { start: true }, reply)) => {
                let _ = reply.send(7);
                rx
            }
            other => panic!("unexpected {other:?}"),
        });
        assert_eq!(h.command(cmd.clone(), Duration::from_secs(5)), 7);
        let rx = engine.join().unwrap();
        // Received but never answered in time.
        assert_eq!(
            h.command(cmd.clone(), Duration::from_millis(10)),
            codes::WAIT_TIMEOUT
        );
        drop(rx);
        assert_eq!(
            h.command(cmd, Duration::from_secs(5)),
            codes::EXECUTION_ERROR,
            "the engine is gone"
        );
    }
}
