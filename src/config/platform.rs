//! `[platform]`: who carries out what the server asks of the operating
//! system (network settings, switch-over), and how a change is guarded.

use serde::Deserialize;
use std::path::PathBuf;

/// Who carries out network settings from the server (SET OPTIONS IPAddress,
/// NetMask, GATEIPAddress, DNS, DHCP; CONTROL DEVICE 0B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkBackend {
    /// Nobody: such commands are refused, with a log line saying why.
    #[default]
    None,
    /// systemd-networkd: lintel writes `<networkd_dir>/10-lintel-<interface>.network`.
    Networkd,
    /// NetworkManager: `nmcli` on `wired_connection` (and the switch-over ones).
    NetworkManager,
}

/// `[platform]`: the controller's operating system. Ignored on the sim board.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// `none` (default), `networkd` or `networkmanager`.
    #[serde(default)]
    pub network: NetworkBackend,
    /// The wired interface the server's settings are for. Default `eth0`.
    #[serde(default = "default_interface")]
    pub interface: String,
    /// Where networkd reads `.network` files. Default `/etc/systemd/network`.
    #[serde(default = "default_networkd_dir")]
    pub networkd_dir: PathBuf,
    /// The NetworkManager connection of the wired interface. Default `lintel-wired`.
    #[serde(default = "default_wired_connection")]
    pub wired_connection: String,
    /// NetworkManager connections CONTROL DEVICE 0B may switch to; without
    /// one, that switch is refused. Default: none.
    #[serde(default)]
    pub wifi_connection: Option<String>,
    #[serde(default)]
    pub cellular_connection: Option<String>,
    /// Seconds the server has to answer after a network change before the
    /// settings that reached it are put back, 10 to 3600. Default 120.
    #[serde(default = "default_rollback_sec")]
    pub rollback_sec: u64,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        PlatformConfig {
            network: NetworkBackend::None,
            interface: default_interface(),
            networkd_dir: default_networkd_dir(),
            wired_connection: default_wired_connection(),
            wifi_connection: None,
            cellular_connection: None,
            rollback_sec: default_rollback_sec(),
        }
    }
}

fn default_interface() -> String {
    "eth0".into()
}
fn default_networkd_dir() -> PathBuf {
    PathBuf::from("/etc/systemd/network")
}
fn default_wired_connection() -> String {
    "lintel-wired".into()
}
fn default_rollback_sec() -> u64 {
    120
}
