//! A/B firmware slots with a trial period and automatic rollback.
//!
//! ```text
//! <root>/slots/a/  <root>/slots/b/     binary `lintel`, manifest.toml, board-configs/
//! <root>/current  -> slots/a           the slot the service manager starts
//! <root>/previous -> slots/b           the slot a rollback returns to
//! <root>/trial.toml                    a new version on trial (see TrialRecord)
//! <root>/rollback.toml                 a rollback not yet reported to the server
//! ```
//!
//! Life of an upgrade: [`Slots::install_to_inactive`] copies the staging directory
//! into the slot `current` does not point at and fsyncs it; [`Slots::activate`]
//! writes the trial record and swaps `current` atomically (a new symlink renamed
//! over the old one); the process then restarts. Every start calls
//! [`Slots::on_start`], which counts the attempt and decides: run normally, run on
//! trial, or roll back (too many starts without a confirmation means the new
//! version crashes). While on trial, [`Slots::registration_overdue`] tells the
//! session loop when the new version has failed to register in time. A successful
//! registration calls [`Slots::confirm`]. [`Slots::roll_back`] swaps back and
//! leaves a [`RollbackReport`] that the old version uploads as an error log
//! (Appendix 17) once it is connected, then clears with
//! [`Slots::clear_rollback_report`].
//!
//! Time is injected as Unix seconds. The trial deadline is measured from the start
//! of each attempt, not from the activation, so a board without a real-time clock
//! whose clock jumps at boot cannot expire (or extend) a trial by accident.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::package::{BINARY_NAME, MANIFEST_PATH};
use super::return_code;

/// Appendix 17 error code reported after a rollback: D(evice), 01 (PUSH
/// communication module, which runs the upgrade), E(rror), 0720 (mirroring
/// Appendix 1's -720 "Failed to upgrade the firmware").
pub const ROLLBACK_ERROR_CODE: &str = "D01E0720";

const CURRENT: &str = "current";
const PREVIOUS: &str = "previous";
const TRIAL: &str = "trial.toml";
const ROLLBACK: &str = "rollback.toml";

/// Errors of slot handling.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path} is not a slot link (expected a symlink to slots/a or slots/b)")]
    BadLink { path: PathBuf },
    #[error("cannot parse {path}: {message}")]
    BadRecord { path: PathBuf, message: String },
    #[error("staging directory {0} holds no firmware binary")]
    NoBinary(PathBuf),
    #[error("no previous slot to roll back to")]
    NoPrevious,
}

impl SlotError {
    /// The `Return=` value of Appendix 1 (any failure to install is -720).
    pub fn return_code(&self) -> i32 {
        return_code::UPGRADE_FAILED
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SlotError + 'a {
    move |source| SlotError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// One of the two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotName {
    A,
    B,
}

impl SlotName {
    pub fn other(self) -> SlotName {
        match self {
            SlotName::A => SlotName::B,
            SlotName::B => SlotName::A,
        }
    }

    pub fn dir_name(self) -> &'static str {
        match self {
            SlotName::A => "a",
            SlotName::B => "b",
        }
    }

    /// Target of the `current`/`previous` links, relative to the root so that the
    /// tree can be moved or inspected under another mount point.
    fn link_target(self) -> PathBuf {
        Path::new("slots").join(self.dir_name())
    }
}

/// How long a new version may try before it is rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialPolicy {
    /// Starts allowed without a confirmation (each crash means a restart).
    pub max_attempts: u32,
    /// Seconds after a start within which the new version must register.
    pub register_timeout_secs: u64,
}

impl Default for TrialPolicy {
    fn default() -> Self {
        TrialPolicy {
            max_attempts: 3,
            register_timeout_secs: 300,
        }
    }
}

/// The trial record (`trial.toml`): present from activation until confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialRecord {
    pub slot: SlotName,
    pub version: String,
    pub previous_version: String,
    pub policy: TrialPolicy,
    /// Starts so far (incremented by every `on_start`).
    pub attempts: u32,
    /// Unix seconds by which the current attempt must register.
    pub deadline: u64,
    pub activated_at: u64,
}

/// Why a version was rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackReason {
    /// Started `max_attempts` times without confirming: it crashes.
    CrashLoop,
    /// Did not register with its server within the timeout.
    RegistrationTimeout,
}

/// A rollback waiting to be reported as an error log (Appendix 17).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackReport {
    /// Appendix 17 error code ([`ROLLBACK_ERROR_CODE`]).
    pub errcode: String,
    pub reason: RollbackReason,
    pub failed_version: String,
    pub restored_version: String,
    pub at: u64,
}

impl RollbackReport {
    /// Text for the `errmsg` field of the error log.
    pub fn message(&self) -> String {
        let why = match self.reason {
            RollbackReason::CrashLoop => "crashed repeatedly",
            RollbackReason::RegistrationTimeout => "did not register with the server in time",
        };
        format!(
            "firmware {} {why}; rolled back to {}",
            self.failed_version, self.restored_version
        )
    }
}

/// What the process should do after [`Slots::on_start`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartDecision {
    /// No upgrade in progress.
    Normal,
    /// A new version on trial: register by `deadline` and then call `confirm`.
    Trial {
        version: String,
        attempt: u32,
        deadline: u64,
    },
    /// The slots were switched back; restart into the previous version now.
    RolledBack(RollbackReport),
}

/// The slot tree under one root directory.
#[derive(Debug, Clone)]
pub struct Slots {
    root: PathBuf,
}

impl Slots {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Slots { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn slot_dir(&self, slot: SlotName) -> PathBuf {
        self.root.join(slot.link_target())
    }

    /// The binary the service manager starts (through the `current` link).
    pub fn current_binary(&self) -> PathBuf {
        self.root.join(CURRENT).join(BINARY_NAME)
    }

    /// Create the tree if it does not exist: both slot dirs and `current -> slots/a`.
    /// `scripts/install.sh` lays out the same tree on a device.
    pub fn ensure_layout(&self) -> Result<(), SlotError> {
        for slot in [SlotName::A, SlotName::B] {
            let dir = self.slot_dir(slot);
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        let current = self.root.join(CURRENT);
        if fs::symlink_metadata(&current).is_err() {
            self.switch_link(CURRENT, SlotName::A)?;
        }
        Ok(())
    }

    fn read_link(&self, name: &str) -> Result<Option<SlotName>, SlotError> {
        let path = self.root.join(name);
        let target = match fs::read_link(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(_) => return Err(SlotError::BadLink { path }),
        };
        let a = SlotName::A.link_target();
        let b = SlotName::B.link_target();
        let abs_a = self.root.join(&a);
        let abs_b = self.root.join(&b);
        if target == a || target == abs_a {
            Ok(Some(SlotName::A))
        } else if target == b || target == abs_b {
            Ok(Some(SlotName::B))
        } else {
            Err(SlotError::BadLink { path })
        }
    }

    /// The slot `current` points at.
    pub fn active(&self) -> Result<SlotName, SlotError> {
        self.read_link(CURRENT)?.ok_or_else(|| SlotError::BadLink {
            path: self.root.join(CURRENT),
        })
    }

    /// The slot an upgrade installs into.
    pub fn inactive(&self) -> Result<SlotName, SlotError> {
        self.active().map(SlotName::other)
    }

    /// The version recorded in a slot's manifest copy, if any.
    pub fn slot_version(&self, slot: SlotName) -> Option<String> {
        let text = fs::read_to_string(self.slot_dir(slot).join(MANIFEST_PATH)).ok()?;
        let manifest = super::package::Manifest::parse(text.as_bytes()).ok()?;
        Some(manifest.version)
    }

    /// Point link `name` at `slot` atomically: a temporary symlink renamed over it,
    /// then an fsync of the root directory so the switch survives a power cut.
    fn switch_link(&self, name: &str, slot: SlotName) -> Result<(), SlotError> {
        let link = self.root.join(name);
        let tmp = self.root.join(format!(".{name}.tmp"));
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &tmp)(e)),
        }
        symlink(slot.link_target(), &tmp).map_err(io_err("symlink", &tmp))?;
        fs::rename(&tmp, &link).map_err(io_err("rename onto", &link))?;
        sync_dir(&self.root)
    }

    /// Copy the verified staging directory into the inactive slot (emptied first)
    /// and fsync every file and directory. Returns the slot written.
    pub fn install_to_inactive(&self, staging: &Path) -> Result<SlotName, SlotError> {
        if !staging.join(BINARY_NAME).is_file() {
            return Err(SlotError::NoBinary(staging.to_owned()));
        }
        let slot = self.inactive()?;
        let dir = self.slot_dir(slot);
        if fs::symlink_metadata(&dir).is_ok() {
            fs::remove_dir_all(&dir).map_err(io_err("empty", &dir))?;
        }
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        copy_tree(staging, &dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        Ok(slot)
    }

    /// Make the inactive slot current and start its trial. `previous` records
    /// the slot that was running, which a rollback returns to.
    pub fn activate(&self, policy: TrialPolicy, now: u64) -> Result<TrialRecord, SlotError> {
        let old = self.active()?;
        let new = old.other();
        if !self.slot_dir(new).join(BINARY_NAME).is_file() {
            return Err(SlotError::NoBinary(self.slot_dir(new)));
        }
        let record = TrialRecord {
            slot: new,
            version: self.slot_version(new).unwrap_or_default(),
            previous_version: self.slot_version(old).unwrap_or_default(),
            policy,
            attempts: 0,
            deadline: now.saturating_add(policy.register_timeout_secs),
            activated_at: now,
        };
        // The trial record goes first: a power cut between the two steps leaves a
        // record whose slot is not current, which on_start discards.
        self.write_record(TRIAL, &record)?;
        self.switch_link(PREVIOUS, old)?;
        self.switch_link(CURRENT, new)?;
        Ok(record)
    }

    /// Call once at every process start, before connecting.
    pub fn on_start(&self, now: u64) -> Result<StartDecision, SlotError> {
        let Some(mut record) = self.read_record::<TrialRecord>(TRIAL)? else {
            return Ok(StartDecision::Normal);
        };
        if self.active()? != record.slot {
            // Activation never completed (or a rollback already happened).
            self.remove_record(TRIAL)?;
            return Ok(StartDecision::Normal);
        }
        record.attempts = record.attempts.saturating_add(1);
        if record.attempts > record.policy.max_attempts {
            return self
                .roll_back(RollbackReason::CrashLoop, now)
                .map(StartDecision::RolledBack);
        }
        record.deadline = now.saturating_add(record.policy.register_timeout_secs);
        self.write_record(TRIAL, &record)?;
        Ok(StartDecision::Trial {
            version: record.version,
            attempt: record.attempts,
            deadline: record.deadline,
        })
    }

    /// While on trial: whether the current attempt has missed its deadline to
    /// register (the caller then rolls back and restarts).
    pub fn registration_overdue(&self, now: u64) -> Result<bool, SlotError> {
        Ok(self
            .read_record::<TrialRecord>(TRIAL)?
            .is_some_and(|r| now > r.deadline))
    }

    /// The trial record, if a version is on trial.
    pub fn trial(&self) -> Result<Option<TrialRecord>, SlotError> {
        self.read_record(TRIAL)
    }

    /// The new version registered with its server: it stays.
    pub fn confirm(&self) -> Result<(), SlotError> {
        self.remove_record(TRIAL)
    }

    /// Switch back to the previous slot and leave a report for the server.
    pub fn roll_back(&self, reason: RollbackReason, now: u64) -> Result<RollbackReport, SlotError> {
        let previous = self.read_link(PREVIOUS)?.ok_or(SlotError::NoPrevious)?;
        let failed = self.active()?;
        if previous == failed || !self.slot_dir(previous).join(BINARY_NAME).is_file() {
            return Err(SlotError::NoPrevious);
        }
        let record = self.read_record::<TrialRecord>(TRIAL)?;
        let report = RollbackReport {
            errcode: ROLLBACK_ERROR_CODE.to_owned(),
            reason,
            failed_version: record
                .as_ref()
                .map(|r| r.version.clone())
                .or_else(|| self.slot_version(failed))
                .unwrap_or_default(),
            restored_version: self.slot_version(previous).unwrap_or_default(),
            at: now,
        };
        self.write_record(ROLLBACK, &report)?;
        self.switch_link(CURRENT, previous)?;
        self.switch_link(PREVIOUS, failed)?;
        self.remove_record(TRIAL)?;
        Ok(report)
    }

    /// A rollback not yet reported to the server.
    pub fn pending_rollback_report(&self) -> Result<Option<RollbackReport>, SlotError> {
        self.read_record(ROLLBACK)
    }

    /// The report was accepted by the server.
    pub fn clear_rollback_report(&self) -> Result<(), SlotError> {
        self.remove_record(ROLLBACK)
    }

    fn read_record<T: for<'de> Deserialize<'de>>(
        &self,
        name: &str,
    ) -> Result<Option<T>, SlotError> {
        let path = self.root.join(name);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| SlotError::BadRecord {
                path,
                message: e.to_string(),
            })
    }

    /// Write a record atomically: temp file, fsync, rename, fsync of the directory.
    fn write_record<T: Serialize>(&self, name: &str, value: &T) -> Result<(), SlotError> {
        let path = self.root.join(name);
        let tmp = self.root.join(format!(".{name}.tmp"));
        let text = toml::to_string(value).map_err(|e| SlotError::BadRecord {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(text.as_bytes())
            .map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename onto", &path))?;
        sync_dir(&self.root)
    }

    fn remove_record(&self, name: &str) -> Result<(), SlotError> {
        let path = self.root.join(name);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.root),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), SlotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

/// Copy regular files and directories (the staging tree holds nothing else),
/// preserving permissions, fsyncing each file and directory.
fn copy_tree(from: &Path, to: &Path) -> Result<(), SlotError> {
    let entries = fs::read_dir(from).map_err(io_err("list", from))?;
    for entry in entries {
        let entry = entry.map_err(io_err("list", from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&src).map_err(io_err("stat", &src))?;
        if meta.is_dir() {
            fs::create_dir_all(&dst).map_err(io_err("create", &dst))?;
            copy_tree(&src, &dst)?;
        } else if meta.is_file() {
            fs::copy(&src, &dst).map_err(io_err("copy to", &dst))?;
            File::open(&dst)
                .and_then(|f| f.sync_all())
                .map_err(io_err("fsync", &dst))?;
        }
        // Anything else cannot come out of verify_and_unpack; skip it.
    }
    sync_dir(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn manifest_for(version: &str) -> String {
        format!(
            "format = 1\nversion = \"{version}\"\ntarget = \"x\"\nbinary = \"lintel\"\n\n\
             [[files]]\npath = \"lintel\"\nsize = 1\nsha256 = \"{}\"\n",
            "0".repeat(64)
        )
    }

    /// A root with version 1.0.0 installed and active in slot A.
    fn installed(dir: &Path) -> Slots {
        let slots = Slots::new(dir.join("opt"));
        slots.ensure_layout().unwrap();
        let a = slots.slot_dir(SlotName::A);
        fs::write(a.join(BINARY_NAME), b"old binary").unwrap();
        fs::write(a.join(MANIFEST_PATH), manifest_for("1.0.0")).unwrap();
        slots
    }

    fn staging(dir: &Path, version: &str) -> PathBuf {
        let s = dir.join("staging");
        fs::create_dir_all(s.join("board-configs")).unwrap();
        fs::write(s.join(BINARY_NAME), b"new binary").unwrap();
        fs::set_permissions(s.join(BINARY_NAME), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(s.join("board-configs/pi.toml"), b"board = 1").unwrap();
        fs::write(s.join(MANIFEST_PATH), manifest_for(version)).unwrap();
        s
    }

    const POLICY: TrialPolicy = TrialPolicy {
        max_attempts: 3,
        register_timeout_secs: 60,
    };

    fn upgraded(dir: &Path) -> Slots {
        let slots = installed(dir);
        let s = staging(dir, "1.1.0");
        assert_eq!(slots.install_to_inactive(&s).unwrap(), SlotName::B);
        slots.activate(POLICY, 1000).unwrap();
        slots
    }

    #[test]
    fn ensure_layout_points_current_at_a_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let slots = installed(dir.path());
        slots.ensure_layout().unwrap();
        assert_eq!(slots.active().unwrap(), SlotName::A);
        assert_eq!(slots.inactive().unwrap(), SlotName::B);
        assert_eq!(fs::read(slots.current_binary()).unwrap(), b"old binary");
        assert_eq!(slots.on_start(0).unwrap(), StartDecision::Normal);
    }

    #[test]
    fn install_copies_tree_with_modes_into_inactive_slot() {
        let dir = tempfile::tempdir().unwrap();
        let slots = installed(dir.path());
        fs::write(slots.slot_dir(SlotName::B).join("stale"), b"x").unwrap();
        let s = staging(dir.path(), "1.1.0");
        let slot = slots.install_to_inactive(&s).unwrap();
        let b = slots.slot_dir(slot);
        assert_eq!(fs::read(b.join(BINARY_NAME)).unwrap(), b"new binary");
        let mode = fs::metadata(b.join(BINARY_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs::read(b.join("board-configs/pi.toml")).unwrap(),
            b"board = 1"
        );
        assert!(!b.join("stale").exists(), "slot is emptied before install");
        assert_eq!(slots.slot_version(slot).as_deref(), Some("1.1.0"));
        // Nothing switched yet.
        assert_eq!(slots.active().unwrap(), SlotName::A);
    }

    #[test]
    fn install_refuses_staging_without_binary() {
        let dir = tempfile::tempdir().unwrap();
        let slots = installed(dir.path());
        let empty = dir.path().join("empty");
        fs::create_dir_all(&empty).unwrap();
        let err = slots.install_to_inactive(&empty).unwrap_err();
        assert!(matches!(err, SlotError::NoBinary(_)));
        assert_eq!(err.return_code(), -720);
    }

    #[test]
    fn activate_switches_links_and_starts_a_trial() {
        let dir = tempfile::tempdir().unwrap();
        let slots = upgraded(dir.path());
        assert_eq!(slots.active().unwrap(), SlotName::B);
        assert_eq!(fs::read(slots.current_binary()).unwrap(), b"new binary");
        assert_eq!(
            fs::read_link(slots.root().join("current")).unwrap(),
            Path::new("slots/b")
        );
        assert_eq!(
            fs::read_link(slots.root().join("previous")).unwrap(),
            Path::new("slots/a")
        );
        let trial = slots.trial().unwrap().unwrap();
        assert_eq!(trial.version, "1.1.0");
        assert_eq!(trial.previous_version, "1.0.0");
        assert_eq!(trial.attempts, 0);
        assert!(!slots.root().join(".current.tmp").exists());
    }

    #[test]
    fn confirmed_after_registration() {
        let dir = tempfile::tempdir().unwrap();
        let slots = upgraded(dir.path());
        assert_eq!(
            slots.on_start(2000).unwrap(),
            StartDecision::Trial {
                version: "1.1.0".into(),
                attempt: 1,
                deadline: 2060
            }
        );
        assert!(!slots.registration_overdue(2060).unwrap());
        slots.confirm().unwrap();
        assert_eq!(slots.trial().unwrap(), None);
        assert_eq!(slots.on_start(3000).unwrap(), StartDecision::Normal);
        assert_eq!(slots.active().unwrap(), SlotName::B);
        assert_eq!(slots.pending_rollback_report().unwrap(), None);
    }

    #[test]
    fn crash_loop_rolls_back_after_max_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let slots = upgraded(dir.path());
        for attempt in 1..=3 {
            match slots.on_start(2000 + u64::from(attempt)).unwrap() {
                StartDecision::Trial { attempt: a, .. } => assert_eq!(a, attempt),
                other => panic!("attempt {attempt}: {other:?}"),
            }
        }
        let StartDecision::RolledBack(report) = slots.on_start(2010).unwrap() else {
            panic!("fourth start must roll back");
        };
        assert_eq!(report.reason, RollbackReason::CrashLoop);
        assert_eq!(report.errcode, "D01E0720");
        assert_eq!(report.failed_version, "1.1.0");
        assert_eq!(report.restored_version, "1.0.0");
        assert!(report.message().contains("crashed repeatedly"));
        assert_eq!(slots.active().unwrap(), SlotName::A);
        assert_eq!(fs::read(slots.current_binary()).unwrap(), b"old binary");
        // The old version starts normally and finds the report to send.
        assert_eq!(slots.on_start(2020).unwrap(), StartDecision::Normal);
        assert_eq!(slots.pending_rollback_report().unwrap(), Some(report));
        slots.clear_rollback_report().unwrap();
        assert_eq!(slots.pending_rollback_report().unwrap(), None);
    }

    #[test]
    fn registration_timeout_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let slots = upgraded(dir.path());
        let StartDecision::Trial { deadline, .. } = slots.on_start(5000).unwrap() else {
            panic!("expected trial");
        };
        assert_eq!(deadline, 5060);
        assert!(!slots.registration_overdue(5060).unwrap());
        assert!(slots.registration_overdue(5061).unwrap());
        let report = slots
            .roll_back(RollbackReason::RegistrationTimeout, 5061)
            .unwrap();
        assert_eq!(report.reason, RollbackReason::RegistrationTimeout);
        assert_eq!(slots.active().unwrap(), SlotName::A);
        assert_eq!(slots.trial().unwrap(), None);
        assert!(!slots.registration_overdue(9999).unwrap());
        // The failed slot is now the inactive one, ready for the next upgrade.
        assert_eq!(slots.inactive().unwrap(), SlotName::B);
    }

    #[test]
    fn deadline_restarts_with_each_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let slots = upgraded(dir.path());
        slots.on_start(100).unwrap();
        // Clock jumped forward at the next boot (no RTC): measured from this start.
        let StartDecision::Trial { deadline, .. } = slots.on_start(1_000_000).unwrap() else {
            panic!("expected trial");
        };
        assert_eq!(deadline, 1_000_060);
    }

    #[test]
    fn interrupted_activation_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let slots = upgraded(dir.path());
        // Simulate a power cut after the record was written but before the switch.
        slots.switch_link(CURRENT, SlotName::A).unwrap();
        assert_eq!(slots.on_start(10).unwrap(), StartDecision::Normal);
        assert_eq!(slots.trial().unwrap(), None);
    }

    #[test]
    fn roll_back_without_previous_fails() {
        let dir = tempfile::tempdir().unwrap();
        let slots = installed(dir.path());
        let err = slots.roll_back(RollbackReason::CrashLoop, 1).unwrap_err();
        assert!(matches!(err, SlotError::NoPrevious));
        assert_eq!(slots.active().unwrap(), SlotName::A);
    }

    #[test]
    fn a_foreign_link_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        let slots = installed(dir.path());
        fs::remove_file(slots.root().join(CURRENT)).unwrap();
        symlink("/usr/bin", slots.root().join(CURRENT)).unwrap();
        assert!(matches!(slots.active(), Err(SlotError::BadLink { .. })));
    }

    #[test]
    fn second_upgrade_uses_slot_a_again() {
        let dir = tempfile::tempdir().unwrap();
        let slots = upgraded(dir.path());
        slots.on_start(1).unwrap();
        slots.confirm().unwrap();
        let s = staging(dir.path(), "1.2.0");
        assert_eq!(slots.install_to_inactive(&s).unwrap(), SlotName::A);
        let record = slots.activate(POLICY, 50).unwrap();
        assert_eq!(record.previous_version, "1.1.0");
        assert_eq!(record.version, "1.2.0");
        assert_eq!(slots.active().unwrap(), SlotName::A);
    }
}
