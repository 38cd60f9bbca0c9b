//! Network settings carried out through the system's own network manager,
//! as `[platform] network` chooses: systemd-networkd (a `.network` file of
//! lintel's for the configured interface, then `networkctl reload` and
//! `reconfigure`) or NetworkManager (`nmcli` on the configured connection).
//! Programs run from argument vectors ([`Runner`]), never through a shell.
//!
//! Every change is guarded: until the server answers a TCP connection again
//! ([`Reachability`]) within the rollback window, the settings that held
//! before are kept, and they are put back when the window passes without it,
//! so a wrong address from the server cannot cut the controller off for good.
//! A change made while another is still unconfirmed keeps the first one's
//! restore point (the last settings known to reach the server).

use super::netconf::{self, Ipv4Setup};
use super::{NetworkSettings, PlatformError};
use crate::config::{NetworkBackend, PlatformConfig};
use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs one program from its argument vector and returns what it printed.
pub trait Runner: Send + Sync {
    fn run(&self, argv: &[String]) -> Result<String, String>;
}

/// Runs programs for real, each bounded by a timeout.
pub struct SystemRunner {
    pub timeout: Duration,
}

/// What a program may print that lintel reads (nmcli's four fields).
const MAX_OUTPUT: u64 = 64 * 1024;

impl Runner for SystemRunner {
    fn run(&self, argv: &[String]) -> Result<String, String> {
        let (program, args) = argv.split_first().ok_or("no program")?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{program}: {e}"))?;
        let end = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{program}: no answer within {:?}", self.timeout));
                }
                Err(e) => return Err(format!("{program}: {e}")),
            }
        };
        let mut out = String::new();
        if let Some(o) = child.stdout.take() {
            let _ = o.take(MAX_OUTPUT).read_to_string(&mut out);
        }
        if status.success() {
            return Ok(out);
        }
        let mut err = String::new();
        if let Some(e) = child.stderr.take() {
            let _ = e.take(MAX_OUTPUT).read_to_string(&mut err);
        }
        let first: String = err.lines().next().unwrap_or("").chars().take(200).collect();
        Err(format!("{program}: {status}: {first}"))
    }
}

/// Whether the server can be reached now.
pub trait Reachability: Send + Sync {
    fn reachable(&self) -> bool;
}

/// A TCP connection to the server's host and port, bounded by a timeout.
pub struct TcpReachability {
    pub server_url: String,
    pub timeout: Duration,
}

impl Reachability for TcpReachability {
    fn reachable(&self) -> bool {
        let Ok(uri) = self.server_url.parse::<ureq::http::Uri>() else {
            return false;
        };
        let Some(host) = uri.host() else { return false };
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let Ok(addrs) = (host, port).to_socket_addrs() else {
            return false;
        };
        addrs
            .into_iter()
            .any(|a| TcpStream::connect_timeout(&a, self.timeout).is_ok())
    }
}

/// How a change is undone.
enum RestorePoint {
    /// The networkd file lintel had before (None: it had none).
    NetworkdFile(Option<String>),
    /// The NetworkManager connection's set-up before.
    NmSetup(Ipv4Setup),
    /// The NetworkManager connection that was active before a switch-over.
    NmConnection(String),
}

#[derive(Default)]
struct Guard {
    generation: u64,
    restore_to: Option<RestorePoint>,
}

/// Carries out network settings and switch-overs for the configured backend.
pub struct NetworkSetup {
    config: PlatformConfig,
    runner: Arc<dyn Runner>,
    reach: Arc<dyn Reachability>,
    /// Pause after a change before the first reachability probe, and between probes.
    probe_every: Duration,
    guard: Arc<Mutex<Guard>>,
}

fn failed(action: &'static str) -> impl Fn(String) -> PlatformError {
    move |message| PlatformError::Failed { action, message }
}

impl NetworkSetup {
    pub fn new(
        config: PlatformConfig,
        runner: Arc<dyn Runner>,
        reach: Arc<dyn Reachability>,
        probe_every: Duration,
    ) -> NetworkSetup {
        NetworkSetup {
            config,
            runner,
            reach,
            probe_every,
            guard: Arc::default(),
        }
    }

    fn networkd_path(&self) -> PathBuf {
        self.config
            .networkd_dir
            .join(format!("10-lintel-{}.network", self.config.interface))
    }

    /// Applies a SET OPTIONS network change (nothing of it when it fails).
    pub fn configure(&self, change: &NetworkSettings) -> Result<(), PlatformError> {
        const ACTION: &str = "network configuration";
        match self.config.network {
            NetworkBackend::None => Err(refused(ACTION)),
            NetworkBackend::Networkd => {
                let path = self.networkd_path();
                let before = match std::fs::read_to_string(&path) {
                    Ok(t) => Some(t),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(failed(ACTION)(format!("{}: {e}", path.display()))),
                };
                let base = before
                    .as_deref()
                    .and_then(netconf::parse_networkd_file)
                    .unwrap_or_default();
                let next = netconf::merge(&base, change).map_err(failed(ACTION))?;
                self.write_networkd(Some(&netconf::networkd_file(&self.config.interface, &next)))
                    .map_err(failed(ACTION))?;
                self.guard_change(RestorePoint::NetworkdFile(before));
                Ok(())
            }
            NetworkBackend::NetworkManager => {
                let conn = &self.config.wired_connection;
                let shown = self
                    .runner
                    .run(&netconf::nmcli_show(conn))
                    .map_err(failed(ACTION))?;
                let base = netconf::parse_nmcli_show(&shown)
                    .ok_or_else(|| failed(ACTION)(format!("nmcli said nothing of {conn}")))?;
                let next = netconf::merge(&base, change).map_err(failed(ACTION))?;
                self.apply_nm(&next).map_err(failed(ACTION))?;
                self.guard_change(RestorePoint::NmSetup(base));
                Ok(())
            }
        }
    }

    /// CONTROL DEVICE 0B: 1 wired→4G, 2 wired→Wi-Fi, 3 4G→wired, 4 Wi-Fi→wired.
    /// Needs NetworkManager and the target connection named in the config.
    pub fn switch(&self, code: u8) -> Result<(), PlatformError> {
        const ACTION: &str = "network switch";
        if self.config.network != NetworkBackend::NetworkManager {
            return Err(refused(ACTION));
        }
        let wired = Some(self.config.wired_connection.clone());
        let (from, to) = match code {
            1 => (wired, self.config.cellular_connection.clone()),
            2 => (wired, self.config.wifi_connection.clone()),
            3 => (self.config.cellular_connection.clone(), wired),
            4 => (self.config.wifi_connection.clone(), wired),
            _ => (None, None),
        };
        let (Some(from), Some(to)) = (from, to) else {
            log::warn!(
                "CONTROL DEVICE 0B{code:02X}: the board has no such network connection \
                 ([platform] wifi_connection / cellular_connection)"
            );
            return Err(PlatformError::Unsupported { action: ACTION });
        };
        self.runner
            .run(&netconf::nmcli_up(&to))
            .map_err(failed(ACTION))?;
        self.guard_change(RestorePoint::NmConnection(from));
        Ok(())
    }

    fn write_networkd(&self, text: Option<&str>) -> Result<(), String> {
        let path = self.networkd_path();
        match text {
            Some(text) => {
                let tmp = path.with_extension("network.tmp");
                std::fs::write(&tmp, text)
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            None => match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", path.display())),
            },
        }
        let iface = self.config.interface.clone();
        self.runner
            .run(&["networkctl".into(), "reload".into()])
            .and_then(|_| {
                self.runner
                    .run(&["networkctl".into(), "reconfigure".into(), iface])
            })
            .map(|_| ())
    }

    fn apply_nm(&self, setup: &Ipv4Setup) -> Result<(), String> {
        let conn = &self.config.wired_connection;
        self.runner.run(&netconf::nmcli_modify(conn, setup))?;
        self.runner.run(&netconf::nmcli_up(conn)).map(|_| ())
    }

    fn restore(&self, point: RestorePoint) -> Result<(), String> {
        match point {
            RestorePoint::NetworkdFile(text) => self.write_networkd(text.as_deref()),
            RestorePoint::NmSetup(setup) => self.apply_nm(&setup),
            RestorePoint::NmConnection(conn) => {
                self.runner.run(&netconf::nmcli_up(&conn)).map(|_| ())
            }
        }
    }

    /// Keeps `point` (unless an unconfirmed change already holds an older one)
    /// and watches, on a thread of its own, whether the server answers.
    fn guard_change(&self, point: RestorePoint) {
        let generation = {
            let mut g = self.guard.lock().unwrap_or_else(|p| p.into_inner());
            g.generation += 1;
            if g.restore_to.is_none() {
                g.restore_to = Some(point);
            }
            g.generation
        };
        let this = NetworkSetup {
            config: self.config.clone(),
            runner: self.runner.clone(),
            reach: self.reach.clone(),
            probe_every: self.probe_every,
            guard: self.guard.clone(),
        };
        let window = Duration::from_secs(self.config.rollback_sec);
        let spawned = std::thread::Builder::new()
            .name("network guard".into())
            .spawn(move || this.watch(generation, window));
        if let Err(e) = spawned {
            log::error!("cannot start the network guard ({e}): the change stays unguarded");
        }
    }

    fn watch(&self, generation: u64, window: Duration) {
        let end = Instant::now() + window;
        loop {
            std::thread::sleep(self.probe_every);
            if self
                .guard
                .lock()
                .map_or(true, |g| g.generation != generation)
            {
                return; // a later change watches now
            }
            if self.reach.reachable() {
                let mut g = self.guard.lock().unwrap_or_else(|p| p.into_inner());
                if g.generation == generation {
                    g.restore_to = None;
                    log::info!("network change confirmed: the server answers");
                }
                return;
            }
            if Instant::now() >= end {
                break;
            }
        }
        let point = {
            let mut g = self.guard.lock().unwrap_or_else(|p| p.into_inner());
            if g.generation != generation {
                return;
            }
            g.restore_to.take()
        };
        if let Some(point) = point {
            log::error!(
                "the server did not answer within {} s of a network change: \
                 restoring the settings that reached it",
                window.as_secs()
            );
            if let Err(e) = self.restore(point) {
                log::error!("restoring the previous network settings failed: {e}");
            }
        }
    }
}

fn refused(action: &'static str) -> PlatformError {
    log::warn!(
        "{action} refused: [platform] network = \"none\" (choose \"networkd\" or \
         \"networkmanager\" to let the server change it)"
    );
    PlatformError::Unsupported { action }
}

/// A [`Runner`] that records each argument vector and answers from a script (tests).
#[derive(Default)]
pub struct RecordingRunner {
    pub calls: Mutex<Vec<Vec<String>>>,
    /// Answers by program sub-command (`argv[1..3]` joined by a space), else `Ok("")`.
    pub answers: Mutex<Vec<(String, Result<String, String>)>>,
}

impl Runner for RecordingRunner {
    fn run(&self, argv: &[String]) -> Result<String, String> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(argv.to_vec());
        let answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        let joined = argv.join(" ");
        answers
            .iter()
            .find(|(prefix, _)| joined.starts_with(prefix.as_str()))
            .map_or(Ok(String::new()), |(_, a)| a.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Switch(AtomicBool);
    impl Reachability for Switch {
        fn reachable(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }

    struct Rig {
        setup: NetworkSetup,
        runner: Arc<RecordingRunner>,
        reach: Arc<Switch>,
        dir: tempfile::TempDir,
    }

    fn rig(network: NetworkBackend, reachable: bool) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let runner = Arc::new(RecordingRunner::default());
        let reach = Arc::new(Switch(AtomicBool::new(reachable)));
        let config = PlatformConfig {
            network,
            networkd_dir: dir.path().to_owned(),
            rollback_sec: 0,
            wifi_connection: Some("site-wifi".into()),
            ..PlatformConfig::default()
        };
        Rig {
            setup: NetworkSetup::new(
                config,
                runner.clone(),
                reach.clone(),
                Duration::from_millis(5),
            ),
            runner,
            reach,
            dir,
        }
    }

    impl Rig {
        fn calls(&self) -> Vec<String> {
            self.runner
                .calls
                .lock()
                .unwrap()
                .iter()
                .map(|c| c.join(" "))
                .collect()
        }
        fn file(&self) -> Option<String> {
            std::fs::read_to_string(self.dir.path().join("10-lintel-eth0.network")).ok()
        }
        fn settle(&self) {
            // The guard probes every 5 ms and its window is 0 s: one probe decides.
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn static_change() -> NetworkSettings {
        NetworkSettings {
            ip_address: Some("10.0.0.5".parse().unwrap()),
            net_mask: Some("255.255.255.0".parse().unwrap()),
            gateway: Some("10.0.0.1".parse().unwrap()),
            ..NetworkSettings::default()
        }
    }

    #[test]
    fn networkd_gets_a_file_and_a_reload_and_keeps_it_when_the_server_answers() {
        let r = rig(NetworkBackend::Networkd, true);
        r.setup.configure(&static_change()).unwrap();
        let file = r.file().unwrap();
        assert!(file.contains("Name=eth0\n") && file.contains("Address=10.0.0.5/24\n"));
        assert!(file.contains("Gateway=10.0.0.1\n") && file.contains("DHCP=no\n"));
        assert_eq!(
            r.calls(),
            ["networkctl reload", "networkctl reconfigure eth0"]
        );
        r.settle();
        assert_eq!(r.file(), Some(file), "confirmed: kept");
        assert_eq!(r.calls().len(), 2);
    }

    #[test]
    fn networkd_puts_back_what_was_there_when_the_server_stays_silent() {
        let r = rig(NetworkBackend::Networkd, false);
        r.setup.configure(&static_change()).unwrap();
        assert!(r.file().is_some());
        r.settle();
        assert_eq!(r.file(), None, "lintel had no file before: removed again");
        assert_eq!(r.calls().len(), 4, "{:?}", r.calls());
        // With a file of its own before, that file comes back.
        r.reach.0.store(true, Ordering::SeqCst);
        r.setup.configure(&static_change()).unwrap();
        r.settle();
        let kept = r.file().unwrap();
        r.reach.0.store(false, Ordering::SeqCst);
        let change = NetworkSettings {
            ip_address: Some("10.9.9.9".parse().unwrap()),
            ..NetworkSettings::default()
        };
        r.setup.configure(&change).unwrap();
        assert!(
            r.file().unwrap().contains("10.9.9.9/24"),
            "the mask was kept"
        );
        r.settle();
        assert_eq!(r.file(), Some(kept));
    }

    #[test]
    fn network_manager_reads_modifies_and_brings_up_the_connection_and_restores_it() {
        let r = rig(NetworkBackend::NetworkManager, false);
        r.runner
            .answers
            .lock()
            .unwrap()
            .push(("nmcli -g".into(), Ok("auto\n\n\n192.168.1.1\n".into())));
        r.setup.configure(&static_change()).unwrap();
        r.settle();
        let calls = r.calls();
        assert_eq!(
            calls[0],
            "nmcli -g ipv4.method,ipv4.addresses,ipv4.gateway,ipv4.dns connection show lintel-wired"
        );
        assert_eq!(
            calls[1],
            "nmcli connection modify lintel-wired ipv4.method manual ipv4.addresses 10.0.0.5/24 \
             ipv4.gateway 10.0.0.1 ipv4.dns 192.168.1.1"
        );
        assert_eq!(calls[2], "nmcli connection up lintel-wired");
        // The server stayed silent: DHCP again.
        assert!(calls[3].starts_with("nmcli connection modify lintel-wired ipv4.method auto"));
        assert_eq!(calls[4], "nmcli connection up lintel-wired");
    }

    #[test]
    fn none_refuses_and_a_failing_program_is_an_error_with_nothing_guarded() {
        let r = rig(NetworkBackend::None, true);
        assert!(matches!(
            r.setup.configure(&static_change()),
            Err(PlatformError::Unsupported { .. })
        ));
        assert!(r.calls().is_empty());
        let r = rig(NetworkBackend::NetworkManager, true);
        r.runner
            .answers
            .lock()
            .unwrap()
            .push(("nmcli -g".into(), Err("no such connection".into())));
        assert!(matches!(
            r.setup.configure(&static_change()),
            Err(PlatformError::Failed { .. })
        ));
        assert_eq!(r.calls().len(), 1);
    }

    #[test]
    fn switch_over_brings_up_the_named_connection_and_refuses_what_the_board_lacks() {
        let r = rig(NetworkBackend::NetworkManager, false);
        r.setup.switch(2).unwrap();
        r.settle();
        assert_eq!(
            r.calls(),
            [
                "nmcli connection up site-wifi",
                "nmcli connection up lintel-wired"
            ],
            "unanswered: back to the wired connection"
        );
        assert!(matches!(
            r.setup.switch(1),
            Err(PlatformError::Unsupported { .. })
        ));
        let r = rig(NetworkBackend::Networkd, true);
        assert!(r.setup.switch(2).is_err());
    }

    #[test]
    fn reachability_is_a_tcp_connection_to_the_servers_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let probe = |url: String| TcpReachability {
            server_url: url,
            timeout: Duration::from_secs(2),
        };
        assert!(probe(format!("http://127.0.0.1:{port}")).reachable());
        drop(listener);
        assert!(!probe(format!("http://127.0.0.1:{port}")).reachable());
        assert!(!probe("not a url".into()).reachable());
    }

    #[test]
    fn the_system_runner_passes_arguments_without_a_shell_and_bounds_the_wait() {
        let runner = SystemRunner {
            timeout: Duration::from_secs(5),
        };
        let out = runner.run(&["echo".into(), "a; echo b".into()]).unwrap();
        assert_eq!(out, "a; echo b\n");
        assert!(runner.run(&["false".into()]).is_err());
        let slow = SystemRunner {
            timeout: Duration::from_millis(100),
        };
        let err = slow.run(&["sleep".into(), "5".into()]).unwrap_err();
        assert!(err.contains("no answer"), "{err}");
    }
}
