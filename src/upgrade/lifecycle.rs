//! The life cycle of an installed upgrade as the running firmware sees it:
//! at start (trial, or roll back a crash loop), after registering with the
//! server (confirm, report an earlier rollback), and while unable to reach it
//! (roll back when the trial's deadline passes).

use super::slots::{RollbackReason, Slots, StartDecision};
use crate::clock::Clock;
use crate::commands::data::uploads::{log_error, ErrorEntry};
use crate::protocol::ProtocolVersion;
use crate::store::Store;

pub struct UpgradeLifecycle {
    slots: Slots,
}

/// What the process must do after a life-cycle step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleAction {
    Continue,
    /// The slots were switched back: restart into the previous version.
    Restart,
}

impl UpgradeLifecycle {
    pub fn new(slots: Slots) -> Self {
        UpgradeLifecycle { slots }
    }

    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// Call once at process start, before connecting.
    pub fn on_start(&self, now: u64) -> LifecycleAction {
        match self.slots.on_start(now) {
            Ok(StartDecision::Normal) => LifecycleAction::Continue,
            Ok(StartDecision::Trial {
                version,
                attempt,
                deadline,
            }) => {
                log::info!(
                    "firmware {version} is on trial (start {attempt}); it must register with its server within {}s",
                    deadline.saturating_sub(now)
                );
                LifecycleAction::Continue
            }
            Ok(StartDecision::RolledBack(report)) => {
                log::error!("{}; restarting into it", report.message());
                LifecycleAction::Restart
            }
            Err(e) => {
                log::warn!(
                    "upgrade slots under {}: {e}; continuing without upgrade state",
                    self.slots.root().display()
                );
                LifecycleAction::Continue
            }
        }
    }

    /// Call after each successful registration: a version on trial is
    /// confirmed, and a rollback not yet reported goes to the error log
    /// (uploaded when the protocol in use is 3.1.2 or later, 10.12).
    pub fn on_registered(&self, store: &mut Store, version: ProtocolVersion, clock: &dyn Clock) {
        match self.slots.trial() {
            Ok(Some(trial)) => match self.slots.confirm() {
                Ok(()) => log::info!(
                    "firmware {} registered with its server: upgrade confirmed",
                    trial.version
                ),
                Err(e) => log::error!("cannot confirm firmware {}: {e}", trial.version),
            },
            Ok(None) => {}
            Err(e) => log::warn!("cannot read the upgrade trial record: {e}"),
        }
        if let Ok(Some(report)) = self.slots.pending_rollback_report() {
            let json = serde_json::json!({
                "reason": format!("{:?}", report.reason),
                "failed_version": report.failed_version,
                "restored_version": report.restored_version,
                "at": report.at,
            })
            .to_string();
            let mut entry = ErrorEntry::from_command(&report.errcode, &report.message(), "", &json);
            entry.dataorigin = "dev".into();
            match log_error(store, version, clock, &entry) {
                Ok(()) => {
                    if let Err(e) = self.slots.clear_rollback_report() {
                        log::warn!("rollback reported but its record stays: {e}");
                    }
                }
                Err(e) => log::error!("cannot log the rollback report: {e}"),
            }
        }
    }

    /// Call while the server cannot be reached: a trial past its deadline
    /// is rolled back.
    pub fn check_deadline(&self, now: u64) -> LifecycleAction {
        match self.slots.registration_overdue(now) {
            Ok(true) => {
                match self
                    .slots
                    .roll_back(RollbackReason::RegistrationTimeout, now)
                {
                    Ok(report) => {
                        log::error!("{}; restarting into it", report.message());
                        LifecycleAction::Restart
                    }
                    Err(e) => {
                        log::error!("new firmware missed its registration deadline but cannot roll back: {e}");
                        LifecycleAction::Continue
                    }
                }
            }
            Ok(false) => LifecycleAction::Continue,
            Err(e) => {
                log::warn!("cannot read the upgrade trial record: {e}");
                LifecycleAction::Continue
            }
        }
    }
}
