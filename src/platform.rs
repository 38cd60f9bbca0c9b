//! Hooks into the operating system that the firmware must not do itself in
//! tests or on the simulator: network settings, restart, and similar. The
//! Linux implementation acts; the recording one (simulator, tests) remembers.
//! Both also say which addresses reach the server (`network`: read from
//! /proc and /sys on Linux, fixed test values on the simulator).

pub mod netapply;
pub mod netconf;
mod network;

use std::net::Ipv4Addr;
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

/// The network settings one SET OPTIONS changes (Appendix 12, 12.5.1):
/// the keys it named, already checked, typed; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSettings {
    /// `IPAddress`: a unicast address.
    pub ip_address: Option<Ipv4Addr>,
    /// `NetMask`: a contiguous mask.
    pub net_mask: Option<Ipv4Addr>,
    /// `GATEIPAddress` (0.0.0.0: none).
    pub gateway: Option<Ipv4Addr>,
    /// `DNS`, `DNS2` (0.0.0.0: none).
    pub dns: Option<Ipv4Addr>,
    pub dns2: Option<Ipv4Addr>,
    /// `DHCP`: 1 on, 0 off.
    pub dhcp: Option<bool>,
}

impl NetworkSettings {
    pub fn is_empty(&self) -> bool {
        *self == NetworkSettings::default()
    }
}

/// One action the firmware asked of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformAction {
    /// Network settings from SET OPTIONS, checked and typed: the hook never
    /// sees the server's text.
    ConfigureNetwork(NetworkSettings),
    /// Restart the device (CONTROL DEVICE 03, after an upgrade).
    Restart,
    /// Switch the active network interface (CONTROL DEVICE 0B).
    SwitchNetwork(u8),
    /// Start identity-card registration (CONTROL DEVICE 0C).
    RegisterIdentityCard,
}

/// The addresses GET OPTIONS answers for the interface that reaches the
/// server (`IPAddress`, `NetMask`, `GATEIPAddress`, `MAC`); a part the
/// platform cannot tell is `None` and left out of the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkIdentity {
    pub ip: Option<Ipv4Addr>,
    pub netmask: Option<Ipv4Addr>,
    pub gateway: Option<Ipv4Addr>,
    /// `00:17:61:11:ad:4f`, as 7.6's example writes it.
    pub mac: Option<String>,
}

pub trait Platform: Send + Sync {
    fn perform(&self, action: PlatformAction) -> Result<(), PlatformError>;

    /// The addresses of the interface through which `server_url` (the
    /// server's base URL) is reached. Never fails: what cannot be found is
    /// `None`. The default knows nothing.
    fn network_identity(&self, server_url: &str) -> NetworkIdentity {
        let _ = server_url;
        NetworkIdentity::default()
    }
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

impl RecordingPlatform {
    /// What the simulated board answers for its network interface (the
    /// documentation range of RFC 5737, a locally administered MAC).
    pub fn sim_network_identity() -> NetworkIdentity {
        NetworkIdentity {
            ip: Some(Ipv4Addr::new(192, 0, 2, 10)),
            netmask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
            mac: Some("02:00:00:00:00:01".into()),
        }
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

    fn network_identity(&self, _server_url: &str) -> NetworkIdentity {
        Self::sim_network_identity()
    }
}

/// The platform of a real controller: a restart ends the process so that the
/// service manager starts the binary the `current` slot link points at
/// (packaging/lintel.service restarts always). Network settings and
/// switch-overs go to the network manager `[platform] network` names
/// (`netapply`), guarded by a rollback; with `none` they are refused.
pub struct SystemPlatform {
    network: netapply::NetworkSetup,
}

impl SystemPlatform {
    /// `server_url` is what the network guard must reach after a change.
    pub fn new(config: crate::config::PlatformConfig, server_url: &str) -> SystemPlatform {
        SystemPlatform {
            network: netapply::NetworkSetup::new(
                config,
                Arc::new(netapply::SystemRunner {
                    timeout: std::time::Duration::from_secs(30),
                }),
                Arc::new(netapply::TcpReachability {
                    server_url: server_url.to_owned(),
                    timeout: std::time::Duration::from_secs(5),
                }),
                std::time::Duration::from_secs(10),
            ),
        }
    }
}

impl Default for SystemPlatform {
    /// With `[platform] network = "none"`: network settings are refused.
    fn default() -> Self {
        SystemPlatform::new(crate::config::PlatformConfig::default(), "")
    }
}

impl Platform for SystemPlatform {
    fn perform(&self, action: PlatformAction) -> Result<(), PlatformError> {
        match action {
            PlatformAction::Restart => {
                log::warn!(
                    "restarting: exiting for the service manager to start the current firmware"
                );
                std::process::exit(0);
            }
            PlatformAction::ConfigureNetwork(settings) => self.network.configure(&settings),
            PlatformAction::SwitchNetwork(code) => self.network.switch(code),
            PlatformAction::RegisterIdentityCard => Err(PlatformError::Unsupported {
                action: "identity-card registration",
            }),
        }
    }

    fn network_identity(&self, server_url: &str) -> NetworkIdentity {
        network::lookup(server_url)
    }
}
