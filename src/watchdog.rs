//! Liveness of the firmware's threads, and systemd's service watchdog.
//!
//! Each long-lived thread promises, before it blocks, when it will report
//! again: the session before every HTTP exchange (its timeout) and before
//! waiting for its next poll, the engine before waiting for its next
//! deadline. The main thread sends `WATCHDOG=1` to systemd only while every
//! promise holds, so a thread stuck in a lock, a loop or a device call gets
//! the process restarted by systemd (`WatchdogSec=` in
//! packaging/lintel.service) instead of leaving a door controller that
//! answers nothing. `READY=1` is sent once the firmware has started.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) nothing is sent; the promises are
//! still kept and a broken one is logged.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Added to every promise: work between two reports (applying a large DATA
/// command, verifying an upgrade) is bounded, but not by the wait itself.
pub const GRACE: Duration = Duration::from_secs(60);

/// The threads' promises, shared by every thread of one firmware.
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    promises: Arc<Mutex<BTreeMap<&'static str, Instant>>>,
}

impl Liveness {
    pub fn new() -> Self {
        Self::default()
    }

    /// `thread` will report again within `wait` (plus [`GRACE`]).
    pub fn promise(&self, thread: &'static str, wait: Duration) {
        let until = Instant::now()
            .checked_add(wait.saturating_add(GRACE))
            .unwrap_or_else(far_future);
        if let Ok(mut p) = self.promises.lock() {
            p.insert(thread, until);
        }
    }

    /// `thread` has ended on purpose (shutdown): it is no longer watched.
    pub fn release(&self, thread: &'static str) {
        if let Ok(mut p) = self.promises.lock() {
            p.remove(thread);
        }
    }

    /// Threads whose promise ran out before `now`.
    pub fn overdue(&self, now: Instant) -> Vec<&'static str> {
        match self.promises.lock() {
            Ok(p) => p
                .iter()
                .filter(|(_, until)| now > **until)
                .map(|(name, _)| *name)
                .collect(),
            // A thread panicked while holding the lock: that is not alive.
            Err(_) => vec!["liveness"],
        }
    }

    /// The threads that have promised something.
    pub fn watched(&self) -> Vec<&'static str> {
        self.promises
            .lock()
            .map(|p| p.keys().copied().collect())
            .unwrap_or_default()
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 86_400)
}

/// The systemd notification socket (`sd_notify(3)` protocol).
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    target: NotifyTarget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NotifyTarget {
    Path(std::path::PathBuf),
    Abstract(Vec<u8>),
}

impl Notifier {
    /// From `NOTIFY_SOCKET`; `None` when not started by systemd with
    /// `Type=notify` (or the variable names no usable socket).
    pub fn from_env() -> Option<Notifier> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        match Notifier::for_address(value.to_str()?) {
            Ok(n) => Some(n),
            Err(e) => {
                log::warn!("NOTIFY_SOCKET {value:?} unusable: {e}; systemd is not notified");
                None
            }
        }
    }

    /// A socket path, or `@name` for the abstract namespace.
    pub fn for_address(address: &str) -> io::Result<Notifier> {
        let target = match address.strip_prefix('@') {
            Some(name) => NotifyTarget::Abstract(name.as_bytes().to_vec()),
            None if address.starts_with('/') => NotifyTarget::Path(address.into()),
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "neither an absolute path nor @abstract",
                ))
            }
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            target,
        })
    }

    /// Sends one notification (`READY=1`, `WATCHDOG=1`, `STATUS=...`).
    pub fn notify(&self, message: &str) -> io::Result<()> {
        match &self.target {
            NotifyTarget::Path(path) => self.socket.send_to(message.as_bytes(), path)?,
            NotifyTarget::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                self.socket.send_to_addr(message.as_bytes(), &addr)?
            }
        };
        Ok(())
    }
}

/// systemd's watchdog period for this process (`WATCHDOG_USEC`, honouring
/// `WATCHDOG_PID`); `None` when the watchdog is off.
pub fn watchdog_period() -> Option<Duration> {
    period_from(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

fn period_from(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// What one supervision tick found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Every promise holds; the watchdog was fed.
    Alive,
    /// These threads are overdue; the watchdog was not fed.
    Stuck(Vec<&'static str>),
}

/// Checks the promises and feeds systemd's watchdog when they all hold.
pub fn tick(liveness: &Liveness, notifier: Option<&Notifier>) -> Health {
    let overdue = liveness.overdue(Instant::now());
    if !overdue.is_empty() {
        return Health::Stuck(overdue);
    }
    if let Some(n) = notifier {
        if let Err(e) = n.notify("WATCHDOG=1") {
            log::warn!("cannot notify systemd's watchdog: {e}");
        }
    }
    Health::Alive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_promise_holds_until_its_wait_and_grace_have_passed() {
        let l = Liveness::new();
        assert!(l.overdue(Instant::now()).is_empty());
        l.promise("session", Duration::from_secs(5));
        l.promise("engine", Duration::ZERO);
        let now = Instant::now();
        assert!(l.overdue(now).is_empty());
        assert_eq!(
            l.overdue(now + GRACE + Duration::from_secs(1)),
            vec!["engine"]
        );
        assert_eq!(
            l.overdue(now + GRACE + Duration::from_secs(6)),
            vec!["engine", "session"]
        );
        l.release("engine");
        assert_eq!(
            l.overdue(now + GRACE + Duration::from_secs(6)),
            vec!["session"]
        );
        assert_eq!(l.watched(), vec!["session"]);
    }

    #[test]
    fn the_period_is_systemds_and_only_for_the_named_process() {
        assert_eq!(
            period_from(Some("30000000"), None, 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            period_from(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(period_from(Some("30000000"), Some("8"), 7), None);
        assert_eq!(period_from(Some("0"), None, 7), None);
        assert_eq!(period_from(Some("soon"), None, 7), None);
        assert_eq!(period_from(None, None, 7), None);
    }

    #[test]
    fn an_endless_wait_never_expires_and_never_overflows() {
        let l = Liveness::new();
        l.promise("engine", Duration::MAX);
        assert!(l
            .overdue(Instant::now() + Duration::from_secs(10 * 365 * 86_400))
            .is_empty());
    }

    #[test]
    fn notifications_reach_a_path_socket_and_an_abstract_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::for_address(path.to_str().unwrap()).unwrap();
        n.notify("READY=1").unwrap();
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("lintel-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::for_address(&format!("@{name}")).unwrap();
        n.notify("WATCHDOG=1").unwrap();
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");

        assert!(Notifier::for_address("relative/path").is_err());
    }

    #[test]
    fn the_watchdog_is_fed_only_while_every_promise_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        server.set_nonblocking(true).unwrap();
        let n = Notifier::for_address(path.to_str().unwrap()).unwrap();
        let l = Liveness::new();
        l.promise("session", Duration::from_secs(1));
        assert_eq!(tick(&l, Some(&n)), Health::Alive);
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        // A promise already broken: nothing is sent.
        if let Ok(mut p) = l.promises.lock() {
            p.insert("engine", Instant::now() - Duration::from_secs(1));
        }
        assert_eq!(tick(&l, Some(&n)), Health::Stuck(vec!["engine"]));
        assert!(server.recv(&mut buf).is_err(), "no WATCHDOG=1 while stuck");
    }
}
