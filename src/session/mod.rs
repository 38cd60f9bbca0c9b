//! The PUSH session (sections 7, 9, 10, 11): connect, register, download the
//! configuration, then upload the outbox, poll for commands and report their
//! results, reconnecting after ErrorDelay on any failure.
//!
//! The session thread owns the HTTP agent and its own database connection.
//! It is a loop over [`SessionState`]; everything it waits for arrives on one
//! channel of [`SessionInput`] or is a deadline.

pub mod backoff;
pub mod limits;
pub mod link;
pub mod origin;
pub mod params;
pub mod registry;
pub mod resolve;
pub mod sealed;
pub mod tls;
pub mod transport;

use crate::clock::Clock;
use crate::commands::{codes, CommandContext, CommandOutcome, Dispatcher, FollowUp};
use crate::platform::{Platform, PlatformAction};
use crate::protocol::command::{Command, Verb};
use crate::protocol::kv::KeyValues;
use crate::protocol::upload::{classify, UploadAck};
use crate::protocol::{parse_getrequest, token, CommandLine};
use crate::store::{Logged, NewEvent, OutboxBatch, Store, StoreError};
use crate::upgrade::lifecycle::{LifecycleAction, UpgradeLifecycle};
use link::{Connection, LinkError, ServerLink};
use params::ServerParams;
use registry::DeviceDescription;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use transport::{Method, Transport, TransportError};

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

    /// Initialisation (7.1), registration (7.4, on every connection), and the
    /// configuration download (7.5).
    pub fn connect(&mut self) -> Result<(), SessionError> {
        let sn = self.setup.serial.clone();
        self.conn.timeout = self.params.timeout;
        // 7.1: no token yet; the device introduces itself, in plain text.
        self.conn.set_token(None);
        self.encryption.drop_channel();
        let pq = format!(
            "/iclock/cdata?SN={sn}&options=all&pushver={}&DeviceType=acc",
            crate::protocol::DEVICE_PUSH_VERSION
        );
        let reply = self.conn.request(Method::Get, &pq, b"")?;
        if !reply.is_success() {
            return Err(self.status_error(reply.status, "/iclock/cdata"));
        }
        let init = KeyValues::parse_lines(&reply.text());
        params::check_answer(&init, "/iclock/cdata")?;
        self.init_registered = init
            .get("registry")
            .is_some_and(|v| v.eq_ignore_ascii_case("ok"));
        if self.init_registered {
            self.params.apply(&init);
            ServerParams::persist(&init, &mut self.store)?;
        } else if !init.contains("OK") {
            return Err(SessionError::BadReply {
                endpoint: "/iclock/cdata".into(),
                detail: "neither OK nor registry=ok".into(),
            });
        }

        // 7.2, 7.3: the exchange, decided by the version of the init answer
        // (or the one the server announced last time).
        let announced = crate::session::params::announced_version(&init).or_else(|| {
            self.store
                .option("PushProtVer")
                .ok()
                .flatten()
                .and_then(|v| crate::protocol::ProtocolVersion::parse(&v))
        });
        let url = self.setup.server_url.clone();
        let mode = self
            .encryption
            .establish(&mut self.conn, &sn, &url, announced)?;

        // 7.4: "the client needs to be registered for each connection".
        self.register()?;
        self.refresh_token();
        self.download_config()?;
        self.refresh_token();

        self.conn.timeout = self.params.timeout;
        self.conn.heartbeat = self.params.request_delay;
        self.conn.version = self.params.negotiated();
        self.ask_server_time();
        log::info!(
            "connected to {} ({} {}), protocol {}, {}, polling every {}s",
            self.setup.server_url,
            self.params.server_name.as_deref().unwrap_or("server"),
            self.params.server_version.as_deref().unwrap_or("?"),
            self.conn.version,
            match mode {
                sealed::ChannelMode::Encrypted => "encrypted",
                sealed::ChannelMode::Plain => "plain text",
            },
            self.params.request_delay.as_secs()
        );
        if self.setup.push_options {
            self.push_device_options()?;
        }
        self.state = SessionState::Online;
        self.was_online = true;
        self.next_poll = Instant::now();
        // Event 214: connected to the server.
        self.log_device_event(214);
        if let Some(upgrade) = &self.upgrade {
            upgrade.on_registered(&mut self.store, self.conn.version, &*self.clock);
        }
        Ok(())
    }

    /// After every connection the server is asked for its time and zone
    /// (12.5.1's rtdata; the spec has devices ask after SET OPTIONS
    /// DateTime, and a device that has just started needs both). A server
    /// without it keeps the connection: the Date header and SET OPTIONS
    /// remain, and the zone stays as it was.
    fn ask_server_time(&mut self) {
        if let Err(e) =
            crate::commands::server_time::ask_server_time(&mut self.conn, &self.store, &*self.clock)
        {
            log::info!("{e}; the local zone stays {}", self.clock.zone().describe());
        }
    }

    fn register(&mut self) -> Result<(), SessionError> {
        let store = &self.store;
        let line =
            registry::capability_line(&self.setup.device, &|k| store.option(k).ok().flatten());
        // The facts announced are what GET OPTIONS answers later (LockCount,
        // FirmVer, ...); negotiated biometrics keep the server's values, and
        // so does NewVFStyles: the engine reads the server's answer there (10.2).
        let facts = KeyValues::parse_comma(&line);
        self.store.set_options(
            facts
                .iter()
                .filter(|(k, _)| !k.starts_with("MultiBio") && *k != "NewVFStyles"),
        )?;
        let pq = format!("/iclock/registry?SN={}", self.setup.serial);
        let reply = self.conn.request(Method::Post, &pq, line.as_bytes())?;
        if reply.status == 404 && self.init_registered {
            log::debug!("server has no /iclock/registry; its init answer registered us");
            return Ok(());
        }
        if !reply.is_success() {
            return Err(self.status_error(reply.status, "/iclock/registry"));
        }
        let kv = KeyValues::parse_lines(&reply.text());
        params::check_answer(&kv, "/iclock/registry")?;
        match kv.get("RegistryCode") {
            Some(code) if !code.is_empty() => {
                if !kv.contains("SessionID") && self.params.registry_code.as_deref() != Some(code) {
                    // A new registration starts a new session whose SessionID
                    // comes with the push reply: an older one would make a
                    // wrong token.
                    self.params.session_id.clear();
                }
                self.params.apply(&kv);
                ServerParams::persist(&kv, &mut self.store)?;
                Ok(())
            }
            _ if self.init_registered && self.params.registry_code.is_some() => Ok(()),
            _ => Err(SessionError::BadReply {
                endpoint: "/iclock/registry".into(),
                detail: "no RegistryCode".into(),
            }),
        }
    }

    fn download_config(&mut self) -> Result<(), SessionError> {
        let pq = format!("/iclock/push?SN={}", self.setup.serial);
        let reply = self.conn.request(Method::Post, &pq, b"")?;
        if reply.status == 404 && self.init_registered {
            log::debug!("server has no /iclock/push; using the init answer's parameters");
            return Ok(());
        }
        if !reply.is_success() {
            return Err(self.status_error(reply.status, "/iclock/push"));
        }
        let kv = KeyValues::parse_lines(&reply.text());
        params::check_answer(&kv, "/iclock/push")?;
        self.params.apply(&kv);
        ServerParams::persist(&kv, &mut self.store)?;
        Ok(())
    }

    /// 7.6: the device's parameters, comma-separated.
    fn push_device_options(&mut self) -> Result<(), SessionError> {
        let d = &self.setup.device;
        let mut kv = KeyValues::default();
        kv.0.push(("~DeviceName".into(), d.name.clone()));
        if let Some(mac) = &d.mac {
            kv.0.push(("MAC".into(), mac.clone()));
        }
        kv.0.push((
            "TransactionCount".into(),
            self.store.event_count()?.to_string(),
        ));
        kv.0.push(("FWVersion".into(), d.firmware_version.clone()));
        kv.0.push((
            "PushVersion".into(),
            crate::protocol::DEVICE_PUSH_VERSION.to_string(),
        ));
        let pq = format!("/iclock/cdata?SN={}&table=options", self.setup.serial);
        let reply = self
            .conn
            .request(Method::Post, &pq, kv.to_comma_line().as_bytes())?;
        if !reply.is_success() {
            return Err(self.status_error(reply.status, "/iclock/cdata?table=options"));
        }
        Ok(())
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

    /// Real-time: whenever something is pending. Otherwise every
    /// TransInterval, and at the TransTimes of day.
    fn upload_due(&self, now: Instant) -> bool {
        if self.params.realtime {
            return true;
        }
        if !self.params.trans_interval.is_zero()
            && now.duration_since(self.last_upload) >= self.params.trans_interval
        {
            return true;
        }
        // Inside the first minute of a TransTimes point and not yet uploaded
        // in it. The wall clock (DST rules from the database) is read only
        // when a TransTimes point can be due.
        let since = now.duration_since(self.last_upload);
        if self.params.trans_times.is_empty() || since < Duration::from_secs(60) {
            return false;
        }
        use chrono::Timelike;
        let local = crate::engine::rules::wall_clock(self.store.conn(), &*self.clock);
        let t = local.hour() * 60 + local.minute();
        self.params
            .trans_times
            .iter()
            .any(|&(h, m)| t == u32::from(h) * 60 + u32::from(m))
    }

    /// Uploads the outbox oldest first; a batch leaves the outbox only after
    /// the server accepted it. An rtlog batch is one event unless batching
    /// is on: 10.2's body is one `${DataRecord}`, and servers that read only
    /// its first line lost the others (interop.md).
    pub fn flush_outbox(&mut self) -> Result<(), SessionError> {
        let limit = self
            .conn
            .max_package_size
            .saturating_sub(BATCH_HEADROOM)
            .max(1024);
        let batch_rtlog = self.setup.batch_rtlog;
        let max_records = move |channel: &str| {
            if channel == "rtlog" && !batch_rtlog {
                1
            } else {
                usize::MAX
            }
        };
        let mut unwritten = 0usize;
        // Batches are read READ_AHEAD at a time (Store::outbox_batches).
        let mut ahead = std::collections::VecDeque::new();
        loop {
            let t0 = Instant::now();
            if ahead.is_empty() {
                ahead.extend(self.store.outbox_batches(limit, &max_records, READ_AHEAD)?);
            }
            let Some(batch) = ahead.pop_front() else {
                break;
            };
            let t1 = Instant::now();
            self.drain_inputs()?;
            self.upload_batch(&batch)?;
            let t2 = Instant::now();
            // Accepted: in memory now, written every ACK_WRITE_EVERY records
            // and when the upload ends (Store::outbox_ack).
            self.store.outbox_ack(&batch)?;
            unwritten += batch.count;
            if unwritten >= ACK_WRITE_EVERY {
                unwritten = 0;
                self.store.outbox_compact(false)?;
            }
            log::debug!(
                "uploaded {} {} records: read {:?}, post {:?}, remove {:?}",
                batch.count,
                batch.channel,
                t1 - t0,
                t2 - t1,
                t2.elapsed()
            );
            self.last_upload = Instant::now();
            // 9: during a long upload the heartbeat is kept with ping.
            self.conn.keepalive();
        }
        self.last_upload = Instant::now();
        // Everything accepted: drop the acknowledged rows now that nothing waits.
        self.store.outbox_compact(true)?;
        // Within ~MaxAttLogCount, through acknowledged events only.
        match self.store.prune_event_log() {
            Ok(0) => {}
            Ok(n) => log::info!("event log at its cap: {n} uploaded event(s) pruned"),
            Err(e) => log::warn!("cannot prune the event log ({e}); it stays over its cap for now"),
        }
        Ok(())
    }

    fn upload_batch(&mut self, batch: &OutboxBatch) -> Result<(), SessionError> {
        let sn = &self.setup.serial;
        let count = batch.count;
        // `count=` wherever records are counted (interop.md: always send
        // it); 10.2 and 10.3 show none for rtlog and rtstate, and servers
        // that take the records alone ignore it.
        let pq = match batch.channel.split_once('/') {
            Some(("tabledata", name)) => {
                format!("/iclock/cdata?SN={sn}&table=tabledata&tablename={name}&count={count}")
            }
            _ if matches!(batch.channel.as_str(), "rtlog" | "rtstate") => {
                format!(
                    "/iclock/cdata?SN={sn}&table={}&count={count}",
                    batch.channel
                )
            }
            _ => format!("/iclock/cdata?SN={sn}&table={}", batch.channel),
        };
        let reply = self
            .conn
            .request(Method::Post, &pq, batch.body.as_bytes())?;
        if !reply.is_success() {
            return Err(self.status_error(reply.status, &link::endpoint_of(&pq)));
        }
        match classify(&reply.text()) {
            UploadAck::Accepted { count: Some(n) }
                if n != count as u64 && batch.channel.starts_with("tabledata") =>
            {
                log::warn!(
                    "server acknowledged {n} of {count} {} records; treating the 2xx as received",
                    batch.channel
                );
                Ok(())
            }
            UploadAck::Accepted { .. } => Ok(()),
            UploadAck::Rejected(detail) => Err(SessionError::UploadRejected {
                endpoint: format!("cdata table={}", batch.channel),
                detail,
            }),
        }
    }

    /// 11.1: fetch commands, run each (or re-send its stored result), report.
    /// Returns how many of them were new (not re-sent IDs).
    pub fn poll_commands(&mut self) -> Result<usize, SessionError> {
        let pq = format!("/iclock/getrequest?SN={}", self.setup.serial);
        let asked = Instant::now();
        let reply = self.conn.request(Method::Get, &pq, b"")?;
        log::debug!(
            "getrequest answered {} bytes in {:?}",
            reply.body.len(),
            asked.elapsed()
        );
        if !reply.is_success() {
            return Err(self.status_error(reply.status, "/iclock/getrequest"));
        }
        self.conn.mark_heartbeat();
        let (commands, issues) = {
            // The body is dropped as soon as it is parsed: a bulk sync can
            // carry megabytes of records.
            let text = reply.into_text();
            parse_getrequest(&text)
        };
        if !issues.is_empty() {
            // One line per answer, however many junk lines it had.
            log::warn!(
                "ignoring {} getrequest line(s) that are not commands; the first: {:?}",
                issues.len(),
                issues.first()
            );
        }
        let mut new = 0;
        let started = Instant::now();
        for line in commands {
            self.drain_inputs()?;
            if self.handle_command(&line)? {
                new += 1;
            }
            drop(line);
            if !self.setup.batch_results {
                // One result per request, right after its command ran, so a
                // restart (upgrade, CONTROL DEVICE 03) never swallows it.
                self.report_results()?;
            }
        }
        self.report_results()?;
        log::debug!(
            "{new} new commands run and reported in {:?}",
            started.elapsed()
        );
        if std::mem::take(&mut self.restart_requested) {
            // The result is with the server: now the restart may happen.
            self.restart();
        }
        Ok(new)
    }

    /// Runs one command; `false` when it had already run (same ID and
    /// text): its stored result is reported again instead, or, for a
    /// revocation, it is applied again. Either way it is no new work, so a
    /// server that keeps offering it is not polled again at once.
    fn handle_command(&mut self, line: &CommandLine) -> Result<bool, SessionError> {
        let digest = line.text_digest();
        let command = Command::classify(line);
        let mut repeated = false;
        match self.store.command_result(&line.id)? {
            Some(stored) if stored.answers(&digest) => {
                repeated = true;
                if !crate::commands::data::revocation::is_revocation(&command) {
                    log::info!(
                        "command {} was already executed; re-sending its result",
                        line.id
                    );
                    self.store.mark_result_unreported(&line.id)?;
                    return Ok(false);
                }
                // A revocation is never skipped: the same ID and text may
                // come from a server that renumbered its commands after
                // others re-granted the access (revocation.rs).
                log::info!(
                    "command {} was already executed but revokes access; applying it again",
                    line.id
                );
            }
            Some(_) => log::info!(
                "command ID {} was used before for another command; running this one as new",
                line.id
            ),
            None => {}
        }
        log::debug!(
            "executing command {}: {}",
            command.id,
            command.result_name()
        );
        // DATA commands are idempotent: running one again after a power cut
        // lost its result changes nothing, so their bookkeeping needs no
        // fsync of its own. Everything else (doors, upgrades) is synced.
        let idempotent = matches!(
            command.verb,
            Verb::DataUpdate
                | Verb::DataDelete
                | Verb::DataCount
                | Verb::DataQuery
                | Verb::GetOptions
        );
        // Should the process die while the command runs, its result is
        // -12 and is reported after the restart (invariants 2 and 4).
        self.store.begin_command(
            &command.id,
            &digest,
            &command.result_name(),
            codes::EXECUTION_ERROR,
            !idempotent,
        )?;
        let outcome = {
            let mut ctx = CommandContext {
                store: &mut self.store,
                link: &mut self.conn,
                clock: &*self.clock,
                platform: &*self.platform,
            };
            let dispatcher = &mut self.dispatcher;
            // A bug in an executor must not stop the queue (invariant 4).
            // Release builds abort on panic instead; the result begun above
            // answers for the command then.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                dispatcher.execute(&command, &mut ctx)
            }))
            .unwrap_or_else(|_| {
                log::error!(
                    "command {} crashed its executor; answering {}",
                    command.id,
                    codes::EXECUTION_ERROR
                );
                CommandOutcome::code(codes::EXECUTION_ERROR)
            })
        };
        self.store
            .finish_command(&command.id, outcome.ret, &outcome.extra, !idempotent)?;
        if outcome.follow_up == FollowUp::Restart {
            self.restart_requested = true;
        }
        Ok(!repeated)
    }

    /// 10.4: results not yet reported, one per request unless batching is on.
    pub fn report_results(&mut self) -> Result<(), SessionError> {
        loop {
            let pending = self.store.unreported_results(RESULT_BATCH)?;
            if pending.is_empty() {
                return Ok(());
            }
            let pq = format!("/iclock/devicecmd?SN={}", self.setup.serial);
            let groups: Vec<Vec<_>> = if self.setup.batch_results {
                vec![pending]
            } else {
                pending.into_iter().map(|r| vec![r]).collect()
            };
            for group in groups {
                let body = group
                    .iter()
                    .map(crate::store::StoredResult::to_line)
                    .collect::<Vec<_>>()
                    .join("\n");
                let reply = self.conn.request(Method::Post, &pq, body.as_bytes())?;
                if !reply.is_success() {
                    return Err(self.status_error(reply.status, "/iclock/devicecmd"));
                }
                let ids: Vec<String> = group.into_iter().map(|r| r.id).collect();
                self.store.mark_results_reported(&ids)?;
            }
        }
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
