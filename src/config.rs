//! The firmware's configuration file (`lintel run --config FILE`, TOML).
//!
//! Only `[device] serial` and `[server] url` are required; every other key
//! has the default documented beside it. Unknown keys are errors, so a typo
//! is reported instead of silently ignored.

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub device: DeviceConfig,
    pub server: ServerConfig,
    #[serde(default)]
    pub upgrade: UpgradeConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// Directory of the config file; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// The serial number (SN) the device presents to the server. Required.
    pub serial: String,
    /// Where the SQLite database and state live. Default `/var/lib/lintel`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The board file. Default `board-configs/sim-4door.toml`.
    #[serde(default = "default_board")]
    pub board: PathBuf,
    /// `~DeviceName` in the registration line. Default `lintel`.
    #[serde(default = "default_device_name")]
    pub name: String,
    /// Offset of local time from UTC in minutes, used for record times and
    /// time zones. Default 0. The server can change it with SET OPTIONS.
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// MAC address reported at registration. Default: none reported.
    #[serde(default)]
    pub mac: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Base URL of the PUSH server, `http://` or `https://`. Required.
    pub url: String,
    /// Network timeout in seconds until the server sends TimeoutSec. Default 10.
    #[serde(default = "default_timeout_sec")]
    pub timeout_sec: u64,
    /// Reconnect delay in seconds until the server sends ErrorDelay. Default 30.
    #[serde(default = "default_error_delay")]
    pub error_delay_sec: u64,
    /// Poll interval in seconds until the server sends RequestDelay. Default 30.
    #[serde(default = "default_request_delay")]
    pub request_delay_sec: u64,
    /// Post several command results in one `/iclock/devicecmd` request, joined by
    /// LF. Only for servers known to accept it (interop.md). Default false.
    #[serde(default)]
    pub batch_results: bool,
    /// CmdFormat announced at registration (Appendix 14); both formats are
    /// always understood. Default 0.
    #[serde(default)]
    pub cmd_format: u8,
    /// MaxPackageSize announced at registration and the upper bound of one
    /// upload request, in bytes. Default 2048000 (the spec's example).
    #[serde(default = "default_max_package_size")]
    pub max_package_size: usize,
    /// Push the device parameters after connecting (7.6, PushOptionsFlag). Default false.
    #[serde(default)]
    pub push_options: bool,
    /// PEM bundle of the CAs an `https://` server is verified against.
    /// Default `/etc/ssl/certs/ca-certificates.crt` (the system bundle).
    #[serde(default = "default_ca_file")]
    pub ca_file: PathBuf,
}

fn default_ca_file() -> PathBuf {
    PathBuf::from(crate::session::transport::SYSTEM_CA_FILE)
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpgradeConfig {
    /// PEM file of the RSA public key that must have signed upgrade packages.
    /// Default: packages need no signature.
    #[serde(default)]
    pub public_key: Option<PathBuf>,
    /// Root of the A/B slot layout. Default: `<data_dir>/firmware`.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Seconds a new version has to register with its server before it is
    /// rolled back. Default 300.
    #[serde(default)]
    pub trial_seconds: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`. Default `info`; the
    /// RUST_LOG environment variable overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_log_level(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/lintel")
}
fn default_board() -> PathBuf {
    PathBuf::from("board-configs/sim-4door.toml")
}
fn default_device_name() -> String {
    "lintel".into()
}
fn default_timeout_sec() -> u64 {
    10
}
fn default_error_delay() -> u64 {
    30
}
fn default_request_delay() -> u64 {
    30
}
fn default_max_package_size() -> usize {
    2_048_000
}
fn default_log_level() -> String {
    "info".into()
}

impl Config {
    /// Reads, parses and validates a config file; relative paths in it are
    /// made absolute against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml_str(&text, path, &base)
    }

    /// Parses config text; `path` is only used in messages.
    pub fn from_toml_str(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: one_line(&e.to_string()),
        })?;
        config.base_dir = base.to_owned();
        config.device.data_dir = resolve(base, &config.device.data_dir);
        config.device.board = resolve(base, &config.device.board);
        config.server.ca_file = resolve(base, &config.server.ca_file);
        if let Some(k) = &config.upgrade.public_key {
            config.upgrade.public_key = Some(resolve(base, k));
        }
        if let Some(r) = &config.upgrade.root {
            config.upgrade.root = Some(resolve(base, r));
        }
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &'static str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };
        let sn = &self.device.serial;
        if sn.is_empty() || sn.len() > 64 || !sn.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad(
                "device.serial",
                format!("{sn:?} must be 1 to 64 letters or digits"),
            ));
        }
        let url = self.server.url.trim();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() && !host.starts_with('/') => {}
            _ => {
                return Err(bad(
                    "server.url",
                    format!("{url:?} must start with http:// or https:// and name a host"),
                ))
            }
        }
        if self.server.timeout_sec == 0 || self.server.timeout_sec > 600 {
            return Err(bad("server.timeout_sec", "must be 1 to 600".into()));
        }
        if self.server.error_delay_sec == 0 {
            return Err(bad("server.error_delay_sec", "must be at least 1".into()));
        }
        if self.server.request_delay_sec == 0 {
            return Err(bad("server.request_delay_sec", "must be at least 1".into()));
        }
        if self.server.cmd_format > 1 {
            return Err(bad("server.cmd_format", "must be 0 or 1".into()));
        }
        if self.server.max_package_size < 1024 {
            return Err(bad(
                "server.max_package_size",
                "must be at least 1024 bytes".into(),
            ));
        }
        if !(-14 * 60..=14 * 60).contains(&self.device.utc_offset_minutes) {
            return Err(bad(
                "device.utc_offset_minutes",
                "must be within -840..=840".into(),
            ));
        }
        if !matches!(
            self.log.level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return Err(bad(
                "log.level",
                format!(
                    "{:?} is not one of error, warn, info, debug, trace",
                    self.log.level
                ),
            ));
        }
        Ok(())
    }

    /// The server URL without a trailing slash.
    pub fn server_base(&self) -> &str {
        self.server.url.trim().trim_end_matches('/')
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, Path::new("test.toml"), Path::new("/etc/lintel"))
    }

    const MINIMAL: &str =
        "[device]\nserial = \"LNT0000001\"\n[server]\nurl = \"http://127.0.0.1:8088\"\n";

    #[test]
    fn minimal_file_gets_defaults_and_resolved_paths() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.device.data_dir, PathBuf::from("/var/lib/lintel"));
        assert_eq!(
            c.device.board,
            PathBuf::from("/etc/lintel/board-configs/sim-4door.toml")
        );
        assert_eq!(c.server.timeout_sec, 10);
        assert_eq!(c.server_base(), "http://127.0.0.1:8088");
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("[device]\nserial = \"bad serial!\"\n[server]\nurl = \"http://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("device.serial"), "{e}");
        let e = parse("[device]\nserial = \"A1\"\n[server]\nurl = \"ftp://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.url"), "{e}");
        let e = parse(&format!("{MINIMAL}tiemout_sec = 3\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("tiemout_sec"), "{e}");
        let e = parse("[device]\nserial = \"A1\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server"), "{e}");
        assert!(!e.contains('\n'));
    }
}
