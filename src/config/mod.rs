//! The firmware's configuration file (`lintel run --config FILE`, TOML).
//!
//! Only `[device] serial` and `[server] url` are required; every other key
//! has the default documented beside it. Unknown keys are errors, so a typo
//! is reported instead of silently ignored.

use serde::Deserialize;
use std::path::{Path, PathBuf};

mod platform;
pub use platform::{NetworkBackend, PlatformConfig};

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
    #[serde(default)]
    pub platform: PlatformConfig,
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
    /// Offset of local time from UTC in minutes, for record times and time
    /// rules when nothing better is known. Default 0. Precedence: the zone
    /// the server gives (rtdata ServerTZ, MachineTZ; kept across restarts),
    /// else the system's zone (TZ, else /etc/localtime, with its DST
    /// rules), else this offset.
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
    /// Network timeout in seconds until the server sends TimeoutSec, 1 to
    /// 600. Default 10.
    #[serde(default = "default_timeout_sec")]
    pub timeout_sec: u64,
    /// Reconnect delay in seconds until the server sends ErrorDelay, 1 to
    /// 3600. Default 30.
    #[serde(default = "default_error_delay")]
    pub error_delay_sec: u64,
    /// Poll interval in seconds until the server sends RequestDelay, 1 to
    /// 3600. Default 30.
    #[serde(default = "default_request_delay")]
    pub request_delay_sec: u64,
    /// Post several command results in one `/iclock/devicecmd` request, joined by
    /// LF. Only for servers known to accept it (interop.md). Default false.
    #[serde(default)]
    pub batch_results: bool,
    /// Post several real-time events in one rtlog request, joined by LF. 10.2
    /// describes the body as one record and some servers read only its first
    /// line, so by default each event goes in its own request. Only for
    /// servers known to take several (interop.md). Default false.
    #[serde(default)]
    pub batch_rtlog: bool,
    /// CmdFormat announced at registration (Appendix 14); both formats are
    /// always understood. Default 0.
    #[serde(default)]
    pub cmd_format: u8,
    /// MaxPackageSize announced at registration and the upper bound of one
    /// upload request, in bytes, 1024 to 16 MiB. Default 2048000 (the
    /// spec's example).
    #[serde(default = "default_max_package_size")]
    pub max_package_size: usize,
    /// Push the device parameters after connecting (7.6, PushOptionsFlag). Default false.
    #[serde(default)]
    pub push_options: bool,
    /// PEM bundle of the CAs an `https://` server is verified against.
    /// Default `/etc/ssl/certs/ca-certificates.crt` (the system bundle).
    #[serde(default = "default_ca_file")]
    pub ca_file: PathBuf,
    /// Hosts other than the server's that photo and upgrade URLs may point
    /// to, separated by commas or spaces, each `host` (any port) or
    /// `host:port`, e.g. `"cdn.example.com, 10.0.0.5:8080"`. They get no
    /// token cookie and their `Date` never sets the clock; a URL to any
    /// other host is refused with -618. Default: none (only the server's own
    /// scheme, host and port). A string, not an array: one less TOML
    /// deserializer in a binary that must stay under 4 MB.
    #[serde(default)]
    pub allowed_download_hosts: String,
    /// Encrypted PUSH (7.2, 7.3, Appendix 16; docs/encrypted-push.md):
    /// `auto` encrypts when the server supports it, `required` never sends
    /// plain text, `off` never exchanges keys. Default `auto`.
    #[serde(default)]
    pub encryption: crate::crypto::EncryptionPolicy,
    /// Pin of an `https://` server's public key: the SHA-256 of its
    /// certificate's DER SubjectPublicKeyInfo, as 64 hex digits or base64
    /// (`openssl x509 -pubkey -noout | openssl pkey -pubin -outform der |
    /// openssl dgst -sha256 -binary | base64`). The certificate must still
    /// chain to `ca_file`. Default: no pin.
    #[serde(default)]
    pub pin_sha256: Option<String>,
}

fn default_ca_file() -> PathBuf {
    PathBuf::from(crate::session::transport::SYSTEM_CA_FILE)
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpgradeConfig {
    /// PEM file of the RSA public key that must have signed upgrade packages
    /// (`lintel-mkupgrade keygen` makes the pair). Default: none, and then
    /// no package is installed unless `allow_unsigned` is set.
    #[serde(default)]
    pub public_key: Option<PathBuf>,
    /// Install packages without a signature. An explicit opt-in for
    /// development boards, warned about at every start. Default false.
    #[serde(default)]
    pub allow_unsigned: bool,
    /// Root of the A/B slot layout. Default: `<data_dir>/firmware`.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Seconds a new version has to register with its server before it is
    /// rolled back, 1 to 604800 (a week). Default 300.
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

impl ServerConfig {
    /// The entries of `allowed_download_hosts`.
    pub fn download_hosts(&self) -> Vec<String> {
        self.allowed_download_hosts
            .split([',', ' ', '\t'])
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Largest config file read: far above any real one, far below trouble.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// Longest piece of a bad value (or of a parser message) shown in an error.
const SHOWN_CHARS: usize = 80;

/// `value` as an error message may show it: at most [`SHOWN_CHARS`]
/// characters, quoted, with control characters escaped.
pub fn shown(value: &str) -> String {
    let mut out: String = value.chars().take(SHOWN_CHARS).collect();
    if value.chars().nth(SHOWN_CHARS).is_some() {
        out.push_str("...");
    }
    format!("{out:?}")
}

impl Config {
    /// Reads, parses and validates a config file; relative paths in it are
    /// made absolute against the file's directory. Only a regular file of at
    /// most [`MAX_CONFIG_BYTES`] is read.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = lintel_hal::textfile::read_capped(path, MAX_CONFIG_BYTES).map_err(|source| {
            ConfigError::Read {
                path: path.to_owned(),
                source,
            }
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
        config.platform.networkd_dir = resolve(base, &config.platform.networkd_dir);
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
                format!("{} must be 1 to 64 letters or digits", shown(sn)),
            ));
        }
        // Both go into the comma-separated registration line as they are.
        for (key, value, max) in [
            ("device.name", Some(self.device.name.as_str()), 64),
            ("device.mac", self.device.mac.as_deref(), 32),
        ] {
            let Some(value) = value else { continue };
            let printable = value.chars().all(|c| c.is_ascii_graphic() || c == ' ');
            if value.is_empty() || value.len() > max || !printable || value.contains([',', '=']) {
                return Err(bad(
                    key,
                    format!(
                        "{} must be 1 to {max} printable ASCII characters without , or =",
                        shown(value)
                    ),
                ));
            }
        }
        for host in self.server.download_hosts() {
            let url = format!("http://{host}/");
            let plain = !host.contains(['/', '@', '?', '#']);
            if !plain || crate::session::origin::Origin::of(&url).is_none() {
                return Err(bad(
                    "server.allowed_download_hosts",
                    format!(
                        "{} must be a host name or address, optionally with :port",
                        shown(&host)
                    ),
                ));
            }
        }
        if let Some(pin) = &self.server.pin_sha256 {
            crate::session::tls::parse_pin(pin)
                .map_err(|why| bad("server.pin_sha256", format!("{} {why}", shown(pin))))?;
            if !self.server.url.trim().starts_with("https://") {
                return Err(bad(
                    "server.pin_sha256",
                    "a pin needs an https:// server.url".into(),
                ));
            }
        }
        check_server_url(self.server.url.trim()).map_err(|why| bad("server.url", why))?;
        let ranges: [(&'static str, u64, u64, u64); 7] = [
            ("server.timeout_sec", self.server.timeout_sec, 1, 600),
            (
                "server.error_delay_sec",
                self.server.error_delay_sec,
                1,
                3600,
            ),
            (
                "server.request_delay_sec",
                self.server.request_delay_sec,
                1,
                3600,
            ),
            ("server.cmd_format", u64::from(self.server.cmd_format), 0, 1),
            (
                "server.max_package_size",
                u64::try_from(self.server.max_package_size).unwrap_or(u64::MAX),
                1024,
                16 * 1024 * 1024,
            ),
            (
                "upgrade.trial_seconds",
                self.upgrade.trial_seconds.unwrap_or(300),
                1,
                7 * 86_400,
            ),
            (
                "platform.rollback_sec",
                self.platform.rollback_sec,
                10,
                3600,
            ),
        ];
        for (key, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(bad(key, format!("{value} is not within {min}..={max}")));
            }
        }
        // Interface names as the kernel takes them (IFNAMSIZ); connection
        // names are one argument each, so only control characters are refused.
        let iface = &self.platform.interface;
        if iface.is_empty()
            || iface.len() > 15
            || !iface
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(bad(
                "platform.interface",
                format!("{} is not an interface name", shown(iface)),
            ));
        }
        for (key, name) in [
            (
                "platform.wired_connection",
                Some(&self.platform.wired_connection),
            ),
            (
                "platform.wifi_connection",
                self.platform.wifi_connection.as_ref(),
            ),
            (
                "platform.cellular_connection",
                self.platform.cellular_connection.as_ref(),
            ),
        ] {
            let Some(name) = name else { continue };
            if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
                return Err(bad(
                    key,
                    format!(
                        "{} must be 1 to 128 characters without control characters",
                        shown(name)
                    ),
                ));
            }
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
                    "{} is not one of error, warn, info, debug, trace",
                    shown(&self.log.level)
                ),
            ));
        }
        Ok(())
    }

    /// What HTTPS trusts: `ca_file` for an https server (none for http),
    /// and the pin.
    pub fn tls(&self) -> crate::session::tls::TlsSettings {
        let https = self.server.url.trim().starts_with("https://");
        crate::session::tls::TlsSettings {
            ca_file: if https {
                self.server.ca_file.clone()
            } else {
                PathBuf::new()
            },
            pin_sha256: self
                .server
                .pin_sha256
                .as_deref()
                .and_then(|p| crate::session::tls::parse_pin(p).ok()),
        }
    }

    /// Warnings `check-config` prints: settings that work but expose data.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.server.url.trim().starts_with("http://")
            && self.server.encryption == crate::crypto::EncryptionPolicy::Off
        {
            out.push(format!(
                "server.url {} is plain http:// and server.encryption is \"off\": users, cards, PINs and commands cross the network readable by anyone on it; use https:// or encryption = \"auto\"",
                self.server.url.trim()
            ));
        }
        out
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

/// The server URL's shape: `http` or `https`, a host, a port within
/// 1..=65535 when one is given, nothing a request line could not carry.
fn check_server_url(url: &str) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("{} {why}", shown(url)));
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return refuse("must not hold spaces or control characters");
    }
    let uri: ureq::http::Uri = match url.parse() {
        Ok(uri) => uri,
        Err(_) => return refuse("is not a URL"),
    };
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return refuse("must start with http:// or https://");
    }
    let Some(authority) = uri.authority() else {
        return refuse("must name a host");
    };
    if uri.host().is_none_or(str::is_empty) {
        return refuse("must name a host");
    }
    if authority.as_str().contains('@') {
        return refuse("must not carry a user name or password");
    }
    // The part after the host (past an IPv6 literal's brackets) is the port.
    let after_host = authority
        .as_str()
        .rsplit_once(']')
        .map_or(authority.as_str(), |(_, rest)| rest);
    if after_host.contains(':') && uri.port_u16().is_none_or(|p| p == 0) {
        return refuse("has a port outside 1..=65535");
    }
    Ok(())
}

/// A parser's message on one line, cut short: it may quote the file.
fn one_line(s: &str) -> String {
    let joined = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut cut: String = joined.chars().take(4 * SHOWN_CHARS).collect();
    if joined.chars().nth(4 * SHOWN_CHARS).is_some() {
        cut.push_str("...");
    }
    cut
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
    fn encryption_and_pin_settings() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.server.encryption, crate::crypto::EncryptionPolicy::Auto);
        assert!(c.warnings().is_empty());
        let off = parse(&format!("{MINIMAL}encryption = \"off\"\n")).unwrap();
        assert!(
            off.warnings()[0].contains("http://"),
            "{:?}",
            off.warnings()
        );
        let e = parse(&format!("{MINIMAL}encryption = \"maybe\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("maybe"), "{e}");
        let https = MINIMAL.replace("http://", "https://");
        let pin = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let c = parse(&format!("{https}pin_sha256 = \"{pin}\"\n")).unwrap();
        assert!(c.tls().pin_sha256.is_some());
        assert_eq!(
            c.tls().ca_file,
            PathBuf::from(crate::session::transport::SYSTEM_CA_FILE)
        );
        let e = parse(&format!("{https}pin_sha256 = \"xyz\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.pin_sha256"), "{e}");
        let e = parse(&format!("{MINIMAL}pin_sha256 = \"{pin}\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("https://"), "{e}");
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
        for bad in [
            "http://cdn.example",
            "cdn.example/path",
            "a@b",
            "ok.example, :80",
        ] {
            let e = parse(&format!("{MINIMAL}allowed_download_hosts = {bad:?}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("server.allowed_download_hosts"), "{e}");
        }
        let c = parse(&format!(
            "{MINIMAL}allowed_download_hosts = \"cdn.example, 10.0.0.5:8080\"\n"
        ))
        .unwrap();
        assert_eq!(c.server.download_hosts(), ["cdn.example", "10.0.0.5:8080"]);
    }

    #[test]
    fn every_number_is_range_checked() {
        for (line, key) in [
            (
                "error_delay_sec = 18446744073709551615",
                "server.error_delay_sec",
            ),
            ("error_delay_sec = 0", "server.error_delay_sec"),
            ("request_delay_sec = 3601", "server.request_delay_sec"),
            ("timeout_sec = 601", "server.timeout_sec"),
            ("cmd_format = 2", "server.cmd_format"),
            ("max_package_size = 1000000000", "server.max_package_size"),
        ] {
            let e = parse(&format!("{MINIMAL}{line}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{line}: {e}");
        }
        // Beyond what the type holds: the parser names the key.
        let e = parse(&format!("{MINIMAL}error_delay_sec = -1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("error_delay_sec"), "{e}");
        let e = parse(&format!("{MINIMAL}[upgrade]\ntrial_seconds = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("upgrade.trial_seconds"), "{e}");
        assert!(parse(&format!("{MINIMAL}error_delay_sec = 3600\n")).is_ok());
    }

    #[test]
    fn the_server_url_is_checked_whole() {
        let url = |u: &str| {
            parse(&format!(
                "[device]\nserial = \"A1\"\n[server]\nurl = \"{u}\"\n"
            ))
        };
        for good in [
            "http://127.0.0.1:8088",
            "https://push.example.com/",
            "http://[::1]:8088/iclock/",
            "http://host",
        ] {
            assert!(url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://127.0.0.1:99999",
            "http://127.0.0.1:0",
            "http://host:port",
            "ftp://host",
            "http://",
            "http:///path",
            "http://user:pw@host",
            "http://ho st",
        ] {
            let e = url(bad).unwrap_err().to_string();
            assert!(e.contains("server.url"), "{bad}: {e}");
        }
    }

    #[test]
    fn echoed_values_are_cut_short() {
        let long = "x".repeat(100_000);
        let e = parse(&format!(
            "[device]\nserial = \"{long}\"\n[server]\nurl = \"http://h\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("device.serial") && e.len() < 400, "{}", e.len());
        let e = parse(&format!("[device]\nserial = \"A1\"\nbogus = \"{long}\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 600, "{}", e.len());
    }

    #[test]
    fn names_going_into_the_registration_line_are_checked() {
        let with = |extra: &str| {
            parse(&format!(
                "[device]\nserial = \"A1\"\n{extra}\n[server]\nurl = \"http://h\"\n"
            ))
        };
        assert!(with("name = \"Front door\"").is_ok());
        for bad in ["name = \"a,b\"", "name = \"\"", "mac = \"00:11=22\""] {
            assert!(with(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_platform_section_chooses_a_network_manager_and_is_checked() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.platform.network, NetworkBackend::None);
        let with = |extra: &str| parse(&format!("{MINIMAL}[platform]\n{extra}\n"));
        let nm = with("network = \"networkmanager\"\nwifi_connection = \"Site Wi-Fi\"").unwrap();
        assert_eq!(nm.platform.network, NetworkBackend::NetworkManager);
        assert_eq!(nm.platform.wifi_connection.as_deref(), Some("Site Wi-Fi"));
        let nd = with("network = \"networkd\"\nnetworkd_dir = \"net\"").unwrap();
        assert_eq!(nd.platform.networkd_dir, PathBuf::from("/etc/lintel/net"));
        for (bad, key) in [
            ("network = \"ifupdown\"", None),
            ("interface = \"eth0; reboot\"", Some("platform.interface")),
            (
                "interface = \"averyveryverylongname\"",
                Some("platform.interface"),
            ),
            ("wired_connection = \"\"", Some("platform.wired_connection")),
            ("rollback_sec = 5", Some("platform.rollback_sec")),
        ] {
            match (with(bad), key) {
                (Err(ConfigError::Invalid { key: k, .. }), Some(key)) => assert_eq!(k, key),
                (Err(ConfigError::Parse { .. }), None) => {}
                (other, _) => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_a_small_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let e = Config::load(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a device"), "{e}");
        let big = dir.path().join("big.toml");
        std::fs::write(&big, format!("# {}\n", "x".repeat(200_000))).unwrap();
        let e = Config::load(&big).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }
}
