//! Hooks into the operating system that the firmware must not do itself in
//! tests or on the simulator: network settings, restart, and similar. The
//! Linux implementation acts; the recording one (simulator, tests) remembers.

use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{action} is not available on this platform")]
    Unsupported { action: &'static str },
    #[error("{action} failed: {message}")]
    Failed {
        action: &'static str,
        message: String,
    },
}

/// One action the firmware asked of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformAction {
    /// Network options from SET OPTIONS (IPAddress, NetMask, GATEIPAddress, DNS, ...).
    ConfigureNetwork(Vec<(String, String)>),
    /// Restart the device (CONTROL DEVICE 03, after an upgrade).
    Restart,
    /// Switch the active network interface (CONTROL DEVICE 0B).
    SwitchNetwork(u8),
    /// Start identity-card registration (CONTROL DEVICE 0C).
    RegisterIdentityCard,
}

pub trait Platform: Send + Sync {
    fn perform(&self, action: PlatformAction) -> Result<(), PlatformError>;
}

/// Remembers every action; used by the simulator and tests.
#[derive(Debug, Default, Clone)]
pub struct RecordingPlatform {
    actions: Arc<Mutex<Vec<PlatformAction>>>,
}

impl RecordingPlatform {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn actions(&self) -> Vec<PlatformAction> {
        self.actions.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl Platform for RecordingPlatform {
    fn perform(&self, action: PlatformAction) -> Result<(), PlatformError> {
        log::info!("platform action (recorded, not performed): {action:?}");
        if let Ok(mut a) = self.actions.lock() {
            a.push(action);
        }
        Ok(())
    }
}

/// The platform of a real controller: a restart ends the process so that the
/// service manager starts the binary the `current` slot link points at
/// (packaging/lintel.service restarts always). Network changes need the
/// board integrator's tooling and are refused until configured.
#[derive(Debug, Default, Clone)]
pub struct SystemPlatform;

impl Platform for SystemPlatform {
    fn perform(&self, action: PlatformAction) -> Result<(), PlatformError> {
        match action {
            PlatformAction::Restart => {
                log::warn!(
                    "restarting: exiting for the service manager to start the current firmware"
                );
                std::process::exit(0);
            }
            PlatformAction::ConfigureNetwork(_) => Err(PlatformError::Unsupported {
                action: "network configuration",
            }),
            PlatformAction::SwitchNetwork(_) => Err(PlatformError::Unsupported {
                action: "network switch",
            }),
            PlatformAction::RegisterIdentityCard => Err(PlatformError::Unsupported {
                action: "identity-card registration",
            }),
        }
    }
}
