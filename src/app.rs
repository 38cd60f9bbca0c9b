//! Assembly of the running firmware: config → board → store → threads.
//!
//! `lintel run` calls [`Firmware::start`] and waits; integration tests start
//! it in-process the same way, with their own clock and transport.

use crate::clock::{Clock, DeviceClock};
use crate::commands::executors::UpgradeEnv;
use crate::commands::executors::{self, ExecutorEnv};
use crate::commands::{CommandExecutor, Dispatcher};
use crate::config::Config;
use crate::platform::{Platform, PlatformAction, RecordingPlatform, SystemPlatform};
use crate::session::registry::DeviceDescription;
use crate::session::transport::{Transport, UreqTransport};
use crate::session::{Session, SessionInput, SessionSetup};
use crate::store::Store;
use crate::upgrade::lifecycle::{LifecycleAction, UpgradeLifecycle};
use crate::upgrade::package::parse_public_key_pem;
use crate::upgrade::slots::{Slots, TrialPolicy};
use crate::watchdog::{self, Liveness, Notifier};
use lintel_hal::board::BoardConfig;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Board(#[from] lintel_hal::board::BoardError),
    #[error(transparent)]
    Hal(#[from] lintel_hal::HalError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    #[error("upgrade.public_key {path}: {message}")]
    UpgradeKey { path: PathBuf, message: String },
    #[error("device.data_dir {path}: {message}")]
    DataDir { path: PathBuf, message: String },
    #[error("board file: {key} {path}: {message}")]
    Device {
        key: String,
        path: PathBuf,
        message: String,
    },
    #[error("cannot start thread {name}: {source}")]
    Thread {
        name: &'static str,
        source: std::io::Error,
    },
}

/// What a caller may replace when starting the firmware (tests).
pub struct StartOptions {
    pub clock: Arc<dyn Clock>,
    pub transport: Box<dyn Transport>,
    pub platform: Arc<dyn Platform>,
    /// Executors registered before the built-in ones (tests).
    pub extra_executors: Vec<Box<dyn CommandExecutor>>,
    /// Monotonic time of the engine's relay and alarm timers (tests move it).
    pub monotonic: Arc<dyn crate::engine::Monotonic>,
    /// Where the system's zone is read while the server has given none
    /// (tests give theirs, so the machine's zone does not leak in).
    pub system_zone: crate::clock::zone::SystemZoneSource,
}

impl StartOptions {
    /// The real clock and transport; the system platform on real hardware,
    /// the recording one on the simulated board (a demo must not exit).
    pub fn for_config(config: &Config) -> Self {
        let simulated = BoardConfig::load(&config.device.board)
            .map(|b| b.backend() == lintel_hal::Backend::Sim)
            .unwrap_or(true);
        let platform: Arc<dyn Platform> = if simulated {
            Arc::new(RecordingPlatform::new())
        } else {
            Arc::new(SystemPlatform::new(
                config.platform.clone(),
                config.server_base(),
            ))
        };
        StartOptions {
            clock: Arc::new(DeviceClock::new(config.device.utc_offset_minutes)),
            transport: Box::new(UreqTransport::with_tls(&config.tls())),
            platform,
            extra_executors: Vec::new(),
            monotonic: Arc::new(crate::engine::SystemMonotonic),
            system_zone: crate::clock::zone::SystemZoneSource::from_env(),
        }
    }
}

/// The running firmware.
pub struct Firmware {
    session_tx: Sender<SessionInput>,
    session: Option<JoinHandle<()>>,
    /// The hardware: outputs, input threads and (sim backend) the control socket.
    hal: Option<lintel_hal::Hal>,
    engine: Option<crate::engine::EngineHandle>,
    engine_thread: Option<JoinHandle<()>>,
    pub clock: Arc<dyn Clock>,
    pub board: BoardConfig,
    /// The threads' promises to report again (see [`crate::watchdog`]).
    liveness: Liveness,
}

/// Root of the A/B slot layout: the configured one; else the layout the
/// running binary sits in (`<root>/slots/<a|b>/lintel`, as scripts/install.sh
/// lays it out); else `<data_dir>/firmware`.
pub fn upgrade_root(config: &Config) -> PathBuf {
    if let Some(root) = &config.upgrade.root {
        return root.clone();
    }
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let slot = exe.parent()?;
        let slots = slot.parent()?;
        let is_slot = matches!(slot.file_name()?.to_str()?, "a" | "b");
        (is_slot && slots.file_name()? == "slots").then(|| slots.parent().map(Path::to_path_buf))?
    });
    from_exe.unwrap_or_else(|| config.device.data_dir.join("firmware"))
}

/// Largest public key file read (a 8192-bit key in PEM is under 2 KB).
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

/// Everything `run` checks before it starts anything, and `check-config`
/// checks too: the board file, the devices it names, the data directory
/// and the upgrade key. One function, so the two cannot disagree.
pub struct Checked {
    pub board: BoardConfig,
    pub upgrade: UpgradeEnv,
}

/// See [`Checked`]. Leaves nothing behind (the writability probe is removed).
pub fn check(config: &Config) -> Result<Checked, AppError> {
    let board = BoardConfig::load(&config.device.board)?;
    check_devices(&board)?;
    check_data_dir(&config.device.data_dir)?;
    let upgrade = upgrade_env(config)?;
    Ok(Checked { board, upgrade })
}

/// The GPIO chips and ttys of a Linux board must be character devices.
fn check_devices(board: &BoardConfig) -> Result<(), AppError> {
    use std::os::unix::fs::FileTypeExt;
    for (key, path) in board.device_paths() {
        let problem = match std::fs::metadata(&path) {
            Ok(meta) if meta.file_type().is_char_device() => continue,
            Ok(_) => "is not a character device".to_owned(),
            Err(e) => e.to_string(),
        };
        return Err(AppError::Device {
            key,
            path,
            message: problem,
        });
    }
    Ok(())
}

/// The data directory must be a directory the firmware can write, or be
/// creatable (its nearest existing ancestor is a writable directory).
fn check_data_dir(dir: &Path) -> Result<(), AppError> {
    let bad = |message: String| AppError::DataDir {
        path: dir.to_owned(),
        message,
    };
    let mut existing = dir;
    loop {
        match std::fs::metadata(existing) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => return Err(bad(format!("{} is not a directory", existing.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                existing = existing
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .ok_or_else(|| bad("no part of the path exists".into()))?;
            }
            Err(e) => return Err(bad(format!("{}: {e}", existing.display()))),
        }
    }
    let probe = existing.join(format!(".lintel-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| bad(format!("{} is not writable: {e}", existing.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn upgrade_env(config: &Config) -> Result<UpgradeEnv, AppError> {
    let public_key = match &config.upgrade.public_key {
        None => None,
        Some(path) => {
            let bad = |message: String| AppError::UpgradeKey {
                path: path.clone(),
                message,
            };
            let pem = lintel_hal::textfile::read_capped(path, MAX_KEY_FILE_BYTES)
                .map_err(|e| bad(e.to_string()))?;
            Some(parse_public_key_pem(&pem).map_err(|e| bad(e.to_string()))?)
        }
    };
    if config.upgrade.allow_unsigned {
        log::warn!(
            "[upgrade] allow_unsigned is set: UPGRADE installs packages nobody signed; \
             remove it and set public_key on a device in service"
        );
    } else if public_key.is_none() {
        log::info!("no [upgrade] public_key: UPGRADE commands are refused (-24)");
    }
    let mut trial = TrialPolicy::default();
    if let Some(secs) = config.upgrade.trial_seconds {
        trial.register_timeout_secs = secs;
    }
    Ok(UpgradeEnv {
        slots_root: upgrade_root(config),
        public_key,
        allow_unsigned: config.upgrade.allow_unsigned,
        trial,
    })
}

/// The description registration reports, from config and board.
pub fn device_description(config: &Config, board: &BoardConfig) -> DeviceDescription {
    DeviceDescription {
        name: config.device.name.clone(),
        firmware_version: env!("CARGO_PKG_VERSION").to_owned(),
        mac: config.device.mac.clone(),
        lock_count: board.lock_count(),
        reader_count: board.reader_count(),
        aux_in_count: board.aux_in_count(),
        aux_out_count: board.aux_out_count(),
        max_package_size: config.server.max_package_size,
        cmd_format: config.server.cmd_format,
        rs485_readers: board.has_osdp_readers(),
    }
}

impl Firmware {
    pub fn start(config: &Config, options: StartOptions) -> Result<Firmware, AppError> {
        let Checked {
            board,
            upgrade: upgrade_env,
        } = check(config)?;
        let store = Store::open(&config.device.data_dir)?;
        let zone = crate::clock::zone::startup_zone(
            store.option(crate::store::SERVER_ZONE_KEY)?.as_deref(),
            &options.system_zone,
            config.device.utc_offset_minutes,
        );
        log::info!("local time is read in the {}", zone.describe());
        options.clock.set_zone(zone);
        let (input_tx, input_rx) = channel::<lintel_hal::InputEvent>();
        let mut hal = lintel_hal::open(&board, &config.device.data_dir, input_tx)?;
        let (session_tx, session_rx) = channel();
        // The encrypted channel: established by the session, used by
        // remote identification too.
        let sealed_channel = crate::session::sealed::SharedChannel::default();
        let liveness = Liveness::new();
        // The access-control engine owns the doors: the HAL's inputs and the
        // lock and aux outputs, with its own database connection.
        let (engine, engine_thread) = crate::engine::start(
            crate::engine::EngineSetup {
                board: board.clone(),
                serial: config.device.serial.clone(),
                clock: options.clock.clone(),
                monotonic: options.monotonic.clone(),
                session: Some(session_tx.clone()),
                rtstate_period: Duration::from_secs(60),
                grant_probe: None,
                // Used only while the server sets AutoServerFunOn=1.
                remote: Some(Arc::new(
                    crate::engine::remote::HttpRemote::new(
                        config.server_base(),
                        &config.device.serial,
                        config.tls(),
                    )
                    .sealed_by(config.server.encryption, sealed_channel.clone()),
                )),
                liveness: Some(liveness.clone()),
                indicator: Some(Arc::new(hal.start_indicators()?)),
            },
            Store::open(&config.device.data_dir)?,
            crate::engine::Outputs {
                locks: std::mem::take(&mut hal.locks),
                aux_out: std::mem::take(&mut hal.aux_out),
            },
            input_rx,
        )
        .map_err(
            |crate::engine::EngineError::Thread(source)| AppError::Thread {
                name: "engine",
                source,
            },
        )?;
        let setup = SessionSetup {
            serial: config.device.serial.clone(),
            server_url: config.server_base().to_owned(),
            device: device_description(config, &board),
            batch_results: config.server.batch_results,
            batch_rtlog: config.server.batch_rtlog,
            push_options: config.server.push_options,
            error_delay: Duration::from_secs(config.server.error_delay_sec),
            request_delay: Duration::from_secs(config.server.request_delay_sec),
            timeout: Duration::from_secs(config.server.timeout_sec),
            allowed_download_hosts: config.server.download_hosts(),
            encryption: config.server.encryption,
            channel: sealed_channel,
        };
        let mut dispatcher = Dispatcher::new();
        for executor in options.extra_executors {
            dispatcher.register(executor);
        }
        let lifecycle = UpgradeLifecycle::new(Slots::new(&upgrade_env.slots_root));
        let now = u64::try_from(options.clock.now_utc().timestamp()).unwrap_or(0);
        if lifecycle.on_start(now) == LifecycleAction::Restart {
            if let Err(e) = options.platform.perform(PlatformAction::Restart) {
                log::error!("restart into the previous firmware failed: {e}");
            }
        }
        executors::install(
            &mut dispatcher,
            &ExecutorEnv {
                data_dir: config.device.data_dir.clone(),
                serial: config.device.serial.clone(),
                upgrade: Some(upgrade_env),
            },
        );
        executors::install_engine(&mut dispatcher, engine.clone());
        let mut session = Session::new(
            setup,
            store,
            options.transport,
            options.clock.clone(),
            options.platform.clone(),
            dispatcher,
            session_rx,
        )?;
        session.set_upgrade_lifecycle(lifecycle);
        session.set_liveness(liveness.clone());
        let handle = std::thread::Builder::new()
            .name("session".into())
            .spawn(move || session.run())
            .map_err(|source| AppError::Thread {
                name: "session",
                source,
            })?;
        log::info!(
            "lintel {} started: serial {}, board {} ({} doors), data in {}",
            env!("CARGO_PKG_VERSION"),
            config.device.serial,
            config.device.board.display(),
            board.lock_count(),
            config.device.data_dir.display()
        );
        Ok(Firmware {
            session_tx,
            session: Some(handle),
            hal: Some(hal),
            engine: Some(engine),
            engine_thread: Some(engine_thread),
            clock: options.clock,
            board,
            liveness,
        })
    }

    /// The access-control engine (tests wake it after moving the clock).
    pub fn engine(&self) -> Option<&crate::engine::EngineHandle> {
        self.engine.as_ref()
    }

    /// Tells the session new uploads are waiting.
    pub fn notify_outbox(&self) {
        let _ = self.session_tx.send(SessionInput::OutboxChanged);
    }

    /// A sender other threads use to wake the session.
    pub fn session_sender(&self) -> Sender<SessionInput> {
        self.session_tx.clone()
    }

    /// Stops all threads and waits for them.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.session_tx.send(SessionInput::Shutdown);
        if let Some(h) = self.session.take() {
            let _ = h.join();
        }
        // Dropping the HAL stops the sim's input threads, which ends the
        // engine's input forwarder; kernel line reads cannot be interrupted
        // and end with the process, so the forwarder is not joined.
        drop(self.hal.take());
        if let Some(engine) = self.engine.take() {
            engine.shutdown();
        }
        if let Some(h) = self.engine_thread.take() {
            let _ = h.join();
        }
    }

    /// Blocks until the session thread ends (it runs until shut down).
    pub fn wait(mut self) {
        if let Some(h) = self.session.take() {
            let _ = h.join();
        }
    }

    /// The threads' liveness promises.
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    /// Runs until the session thread ends, telling systemd (when it started
    /// us with `Type=notify`) that the firmware is ready and, while every
    /// thread keeps its promise, feeding its watchdog. A stuck thread is
    /// logged and the watchdog left hungry: systemd restarts the process.
    pub fn supervise(mut self, notifier: Option<Notifier>, period: Option<Duration>) {
        if let Some(n) = &notifier {
            if let Err(e) = n.notify("READY=1") {
                log::warn!("cannot tell systemd the firmware is ready: {e}");
            }
        }
        // systemd asks for a ping at least every period; half leaves margin.
        let tick = period.map_or(Duration::from_secs(10), |p| {
            (p / 2).max(Duration::from_millis(100))
        });
        let mut stuck_reported = false;
        while self.session.as_ref().is_some_and(|h| !h.is_finished()) {
            std::thread::sleep(tick);
            match watchdog::tick(
                &self.liveness,
                notifier.as_ref().filter(|_| period.is_some()),
            ) {
                watchdog::Health::Alive => stuck_reported = false,
                watchdog::Health::Stuck(threads) => {
                    if !stuck_reported {
                        log::error!(
                            "thread(s) {} stopped responding; {}",
                            threads.join(", "),
                            if period.is_some() {
                                "systemd's watchdog will restart the firmware"
                            } else {
                                "no watchdog is configured to restart the firmware"
                            }
                        );
                        stuck_reported = true;
                    }
                }
            }
        }
        if let Some(h) = self.session.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Firmware {
    fn drop(&mut self) {
        self.shutdown();
    }
}
