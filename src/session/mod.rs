//! The PUSH session (sections 7, 9, 10, 11): connect, register, download the
//! configuration, then upload the outbox, poll for commands and report their
//! results, reconnecting after ErrorDelay on any failure.
//!
//! The session thread owns the HTTP agent and its own database connection.
//! It is a loop over [`SessionState`]; everything it waits for arrives on one
//! channel of [`SessionInput`] or is a deadline.

pub mod backoff;
mod command_queue;
mod connect;
pub mod limits;
pub mod link;
pub mod origin;
pub mod params;
pub mod registry;
pub mod resolve;
pub mod sealed;
pub mod tls;
pub mod transport;
mod upload;

use crate::clock::Clock;
use crate::commands::Dispatcher;
use crate::platform::{Platform, PlatformAction};
use crate::protocol::token;
use crate::store::{Logged, NewEvent, Store, StoreError};
use crate::upgrade::lifecycle::{LifecycleAction, UpgradeLifecycle};
use link::{Connection, LinkError, ServerLink};
use params::ServerParams;
use registry::DeviceDescription;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use transport::{Transport, TransportError};

/// What other threads tell the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionInput {
    /// New rows are in the outbox: upload now if real-time.
    OutboxChanged,
    /// Stop after the current request.
    Shutdown,
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Not connected; the next attempt is at `retry_at`.
    Offline { retry_at: Instant },
    /// Connected and configured.
    Online,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the server does not know serial {serial} (401): approve or add serial {serial} on the server")]
    Unauthorized { serial: String },
    #[error("the server refused serial {serial} at {endpoint} (406): approve serial {serial} on the server")]
    Refused { serial: String, endpoint: String },
    #[error("the server has no {endpoint} (404): check server.url and the server's PUSH support")]
    NotFound { endpoint: String },
    #[error("server answered {status} to {endpoint}")]
    Status { status: u16, endpoint: String },
    #[error("server's answer to {endpoint} is not understood: {detail}")]
    BadReply { endpoint: String, detail: String },
    #[error("server did not accept the upload to {endpoint}: {detail}")]
    UploadRejected { endpoint: String, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("server.encryption is \"required\" but {0}; not connecting in plain text")]
    EncryptionRequired(String),
    #[error("key exchange failed: {source}")]
    Exchange { source: crate::crypto::CryptoError },
    #[error("shutting down")]
    Shutdown,
}

impl From<LinkError> for SessionError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Transport(t) => SessionError::Transport(t),
            LinkError::Status { status, endpoint } => SessionError::Status { status, endpoint },
            LinkError::Refused(refused) => SessionError::BadReply {
                endpoint: "a redirect".into(),
                detail: refused.to_string(),
            },
        }
    }
}

/// The fixed settings of a session.
#[derive(Debug, Clone)]
pub struct SessionSetup {
    pub serial: String,
    pub server_url: String,
    pub device: DeviceDescription,
    /// Post several results per devicecmd request (interop.md: off by default).
    pub batch_results: bool,
    /// Post several events per rtlog request (interop.md: off by default).
    pub batch_rtlog: bool,
    /// Push device parameters after connecting (7.6).
    pub push_options: bool,
    pub error_delay: Duration,
    pub request_delay: Duration,
    pub timeout: Duration,
    /// Other hosts downloads may come from (config `allowed_download_hosts`).
    pub allowed_download_hosts: Vec<String>,
    /// `server.encryption`.
    pub encryption: crate::crypto::EncryptionPolicy,
    /// The encrypted channel, shared with remote identification (which
    /// seals under it too).
    pub channel: sealed::SharedChannel,
}

/// `now + wait`, or a year from now when that is past what `Instant` holds:
/// delays come from the config and the server, and adding one must never
/// panic ("overflow when adding duration to instant").
fn later(now: Instant, wait: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 86_400);
    now.checked_add(wait)
        .or_else(|| now.checked_add(YEAR))
        .unwrap_or(now)
}

/// Request bytes kept free for the request line and headers in a batch.
const BATCH_HEADROOM: usize = 1024;
/// Results reported per round.
const RESULT_BATCH: usize = 100;
/// Accepted upload records between writes of the outbox watermark (and
/// checks whether a compaction is due): a crash re-sends at most these,
/// with their indexes.
const ACK_WRITE_EVERY: usize = 64;
/// Upload batches read from the outbox in one query.
const READ_AHEAD: usize = 64;

pub struct Session {
    setup: SessionSetup,
    params: ServerParams,
    conn: Connection,
    store: Store,
    clock: Arc<dyn Clock>,
    platform: Arc<dyn Platform>,
    dispatcher: Dispatcher,
    inputs: Receiver<SessionInput>,
    state: SessionState,
    next_poll: Instant,
    last_upload: Instant,
    /// Whether a connection was up before the current outage (for event 105).
    was_online: bool,
    /// Init said `registry=ok`: the server may not expect /iclock/registry or /iclock/push.
    init_registered: bool,
    /// The upgrade life cycle: confirm a trial, roll back a silent one.
    upgrade: Option<UpgradeLifecycle>,
    /// A command asked for a restart once its result is reported.
    restart_requested: bool,
    /// Failures of the device's own database, which reconnecting sooner
    /// does not cure.
    local_failures: backoff::LocalFailures,
    /// Encrypted PUSH: the policy, the device key, the channel.
    encryption: sealed::Encryption,
}

impl Session {
    pub fn new(
        setup: SessionSetup,
        store: Store,
        transport: Box<dyn Transport>,
        clock: Arc<dyn Clock>,
        platform: Arc<dyn Platform>,
        dispatcher: Dispatcher,
        inputs: Receiver<SessionInput>,
    ) -> Result<Session, SessionError> {
        let mut params =
            ServerParams::defaults(setup.error_delay, setup.request_delay, setup.timeout);
        params.load(&store)?;
        let data_dir = store.path().parent().unwrap_or(std::path::Path::new("."));
        let encryption = sealed::Encryption::new(
            setup.encryption,
            Arc::new(crate::crypto::FileKeyStore::new(data_dir)),
            setup.channel.clone(),
        );
        let transport = Box::new(sealed::SealingTransport::new(
            transport,
            encryption.channel(),
        ));
        let mut conn = Connection::new(
            transport,
            &setup.server_url,
            &setup.serial,
            clock.clone(),
            params.timeout,
            setup.device.max_package_size,
        );
        conn.set_allowed_download_hosts(&setup.allowed_download_hosts);
        let now = Instant::now();
        Ok(Session {
            setup,
            params,
            conn,
            store,
            clock,
            platform,
            dispatcher,
            inputs,
            state: SessionState::Offline { retry_at: now },
            next_poll: now,
            last_upload: now,
            was_online: false,
            init_registered: false,
            upgrade: None,
            restart_requested: false,
            local_failures: backoff::LocalFailures::default(),
            encryption,
        })
    }

    /// Where the device key comes from (default: `<data_dir>/push-key.pem`).
    pub fn set_key_source(&mut self, keys: Arc<dyn crate::crypto::KeySource>) {
        self.encryption.set_key_source(keys);
    }

    /// Makes the session promise, before each wait and exchange, when it
    /// will report again (the watchdog, see [`crate::watchdog`]).
    pub fn set_liveness(&mut self, liveness: crate::watchdog::Liveness) {
        self.conn.liveness = Some(liveness);
    }

    /// Attaches the upgrade life cycle (slots of an A/B install).
    pub fn set_upgrade_lifecycle(&mut self, lifecycle: UpgradeLifecycle) {
        self.upgrade = Some(lifecycle);
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    /// Runs until [`SessionInput::Shutdown`] or the input channel closes.
    pub fn run(mut self) {
        self.run_until_shutdown();
        if let Err(e) = self.store.outbox_persist_ack() {
            log::warn!("cannot write the upload watermark: {e}; accepted events may be sent again");
        }
        if let Some(l) = &self.conn.liveness {
            l.release("session");
        }
    }

    fn run_until_shutdown(&mut self) {
        loop {
            let step = match self.state {
                SessionState::Offline { retry_at } => {
                    if self.wait_until(retry_at).is_err() {
                        return;
                    }
                    self.connect()
                }
                SessionState::Online => match self.online_step() {
                    Ok(next) => {
                        if let Some(back) = self.local_failures.on_success(Instant::now()) {
                            log::info!(
                                "the database takes writes again after {}s ({} failed rounds); uploads and commands resume",
                                back.lasted.as_secs(),
                                back.failures
                            );
                        }
                        if self.wait_until(next).is_err() {
                            return;
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
            };
            match step {
                Ok(()) => {}
                Err(SessionError::Shutdown) => return,
                Err(e) => self.go_offline(&e),
            }
        }
    }

    /// Waits for the deadline or an input. `Err` means shut down.
    fn wait_until(&mut self, deadline: Instant) -> Result<(), SessionError> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return self.drain_inputs();
            }
            if let Some(l) = &self.conn.liveness {
                l.promise("session", deadline - now);
            }
            match self.inputs.recv_timeout(deadline - now) {
                Ok(SessionInput::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(SessionError::Shutdown)
                }
                Ok(SessionInput::OutboxChanged) => {
                    if self.state == SessionState::Online && self.params.realtime {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Ok(()),
            }
        }
    }

    fn drain_inputs(&mut self) -> Result<(), SessionError> {
        loop {
            match self.inputs.try_recv() {
                Ok(SessionInput::Shutdown) => return Err(SessionError::Shutdown),
                Ok(SessionInput::OutboxChanged) => {}
                Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(()),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return Err(SessionError::Shutdown)
                }
            }
        }
    }

    fn go_offline(&mut self, e: &SessionError) {
        if let Err(e) = self.store.outbox_persist_ack() {
            log::warn!("cannot write the upload watermark: {e}; accepted events may be sent again");
        }
        let mut delay = self.params.error_delay;
        if let SessionError::Store(store_error) = e {
            // The server cannot cure this: back off, and say so once.
            let retry = self.local_failures.on_failure(Instant::now(), delay);
            delay = retry.delay;
            if retry.first {
                log::error!(
                    "the database cannot be written ({store_error}): no uploads or commands until it can; trying again in {}s, then less often",
                    delay.as_secs()
                );
            } else {
                log::debug!(
                    "the database still fails ({store_error}); next try in {}s",
                    delay.as_secs()
                );
            }
        } else {
            log::warn!(
                "session with {}: {e}; reconnecting in {}s",
                self.setup.server_url,
                delay.as_secs()
            );
        }
        if self.was_online {
            self.was_online = false;
            // Event 105: failed to connect to the server.
            self.log_device_event(105);
        }
        self.state = SessionState::Offline {
            retry_at: later(Instant::now(), delay),
        };
        let now = u64::try_from(self.clock.now_utc().timestamp()).unwrap_or(0);
        if let Some(upgrade) = &self.upgrade {
            if upgrade.check_deadline(now) == LifecycleAction::Restart {
                self.restart();
            }
        }
    }

    fn restart(&mut self) {
        if let Err(e) = self.platform.perform(PlatformAction::Restart) {
            log::error!("restart failed: {e}; continuing with the running firmware");
        }
    }

    fn log_device_event(&mut self, code: u32) {
        let time = crate::protocol::time::format_record_time(crate::engine::rules::wall_clock(
            self.store.conn(),
            &*self.clock,
        ));
        // A database that cannot take it keeps it in memory (store::held).
        if self.store.log_event(NewEvent::plain(time, code, 0)) == Logged::Lost {
            log::error!("event {code} lost: the database cannot take it");
        }
    }

    fn refresh_token(&mut self) {
        let t = self
            .params
            .registry_code
            .as_deref()
            .map(|code| token(code, &self.setup.serial, &self.params.session_id));
        self.conn.set_token(t);
    }

    fn status_error(&self, status: u16, endpoint: &str) -> SessionError {
        let serial = self.setup.serial.clone();
        match status {
            401 => SessionError::Unauthorized { serial },
            406 => SessionError::Refused {
                serial,
                endpoint: endpoint.to_owned(),
            },
            404 => SessionError::NotFound {
                endpoint: endpoint.to_owned(),
            },
            _ => SessionError::Status {
                status,
                endpoint: endpoint.to_owned(),
            },
        }
    }

    /// One round while online; returns when the next round is due.
    pub fn online_step(&mut self) -> Result<Instant, SessionError> {
        if self.encryption.key_became_ready() {
            log::info!("the device key is ready: reconnecting to encrypt");
            self.state = SessionState::Offline {
                retry_at: Instant::now(),
            };
            return Ok(Instant::now());
        }
        let version = Some(self.conn.version);
        crate::commands::data::uploads::flush_held_events(&mut self.store, version, &*self.clock);
        self.report_results()?;
        let now = Instant::now();
        if self.upload_due(now) {
            self.flush_outbox()?;
        }
        if Instant::now() >= self.next_poll {
            let commands = self.poll_commands()?;
            // A server with more queued (a bulk sync hands out a slice per
            // poll) is asked again at once; an answer with nothing new (a
            // server re-sending what already ran) waits RequestDelay.
            self.next_poll = if commands > 0 {
                Instant::now()
            } else {
                later(Instant::now(), self.params.request_delay)
            };
        }
        let mut next = self.next_poll;
        if !self.params.realtime && self.store.outbox_len()? > 0 {
            let interval = self.params.trans_interval.max(Duration::from_secs(1));
            next = next.min(later(self.last_upload, interval));
        }
        Ok(next)
    }

    /// The connection, for tests of the session's pieces.
    pub fn link(&mut self) -> &mut dyn ServerLink {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::platform::RecordingPlatform;
    use std::sync::mpsc::channel;

    /// A server that is never reachable.
    struct Unreachable;

    impl Transport for Unreachable {
        fn send(
            &mut self,
            request: &transport::HttpRequest,
            _timeout: Duration,
            _sink: Option<&mut dyn std::io::Write>,
        ) -> Result<transport::HttpReply, TransportError> {
            Err(TransportError::Connect {
                url: request.url.clone(),
                message: "refused".into(),
            })
        }
    }

    #[test]
    fn delays_beyond_any_clock_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let setup = SessionSetup {
            serial: "SN1".into(),
            server_url: "http://127.0.0.1:9".into(),
            device: DeviceDescription {
                name: "lintel".into(),
                firmware_version: "0".into(),
                mac: None,
                lock_count: 1,
                reader_count: 1,
                aux_in_count: 0,
                aux_out_count: 0,
                max_package_size: 2_048_000,
                cmd_format: 0,
                rs485_readers: false,
            },
            batch_results: false,
            push_options: false,
            batch_rtlog: false,
            allowed_download_hosts: Vec::new(),
            encryption: crate::crypto::EncryptionPolicy::Off,
            channel: sealed::SharedChannel::default(),
            error_delay: Duration::MAX,
            request_delay: Duration::MAX,
            timeout: Duration::from_secs(1),
        };
        let (tx, rx) = channel();
        let session = Session::new(
            setup,
            Store::open(dir.path()).unwrap(),
            Box::new(Unreachable),
            Arc::new(ManualClock::new(chrono::Utc::now())),
            Arc::new(RecordingPlatform::new()),
            Dispatcher::new(),
            rx,
        )
        .unwrap();
        let running = std::thread::spawn(move || session.run());
        // The first connection fails at once; the session then waits "for ever".
        std::thread::sleep(Duration::from_millis(300));
        tx.send(SessionInput::Shutdown).unwrap();
        running.join().expect("the session thread did not panic");
    }
}
