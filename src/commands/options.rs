//! `SET OPTIONS` and `GET OPTIONS` (12.5): device parameters of 7.4, 12.5
//! and Appendices 10-12 and 18, persisted in the options table.
//!
//! SET checks every pair before acting, so a bad list changes nothing:
//! network settings go through the platform hook, `DateTime` sets the
//! clock (then the device asks rtdata for the GMT time and zone),
//! `MachineTZ` becomes the local zone (`server_time`), everything else is
//! stored. GET answers through
//! `/iclock/querydata?type=options` as a comma-separated list.

use super::{codes, server_time, CommandContext, CommandExecutor, CommandOutcome};
use crate::clock::TimeSource;
use crate::platform::{NetworkSettings, PlatformAction};
use crate::protocol::command::{Command, Verb};
use crate::protocol::kv::KeyValues;
use crate::protocol::time::old_decode;
use std::net::Ipv4Addr;

/// Facts of the device a server cannot change.
const READ_ONLY_KEYS: &[&str] = &[
    "~SerialNumber",
    "FirmVer",
    "LockCount",
    "ReaderCount",
    "AuxInCount",
    "AuxOutCount",
    "MachineType",
    "~MaxUserCount",
    "~MaxAttLogCount",
    "~MaxFingerCount",
    "~MaxUserFingerCount",
    "~ZKFPVersion",
    "PushVersion",
    "MaxMultiBioDataCount",
    "MaxMultiBioPhotoCount",
    "MultiBioVersion",
];

/// What a parameter's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    /// An IPv4 address of a host (not 0.0.0.0, broadcast or multicast).
    HostAddress,
    /// An IPv4 address that may be 0.0.0.0 ("none": gateway, DNS).
    OptionalAddress,
    /// A contiguous IPv4 net mask.
    NetMask,
    /// The server's address: IPv4 or IPv6, of a host.
    ServerAddress,
    /// A TCP port, 1..=65535.
    Port,
    /// 0 or 1.
    Flag,
    /// A whole number within the range.
    Number(i64, i64),
}

/// Seconds of door timing: bounded so no timer can overflow.
const SECONDS: ValueKind = ValueKind::Number(0, 65_535);
/// An index into a table of the server's (time zones, formats, modes).
const INDEX: ValueKind = ValueKind::Number(0, u32::MAX as i64);
/// Appendix 8/9 codes and similar one-byte modes.
const CODE: ValueKind = ValueKind::Number(0, 255);

/// The kind of every parameter whose value is checked, by name (doors'
/// without their number: `Door3Drivertime` is `DoorDrivertime`). Bounds
/// follow Appendices 8-12 where they say, and are generous where they do
/// not: a value refused here is one no door could use.
const VALUE_KINDS: &[(&str, ValueKind)] = &[
    // Appendix 12 and 12.5.1: the network and the server.
    ("IPAddress", ValueKind::HostAddress),
    ("NetMask", ValueKind::NetMask),
    ("GATEIPAddress", ValueKind::OptionalAddress),
    ("DNS", ValueKind::OptionalAddress),
    ("DNS2", ValueKind::OptionalAddress),
    ("DHCP", ValueKind::Flag),
    ("WebServerIP", ValueKind::ServerAddress),
    ("WebServerPort", ValueKind::Port),
    // Appendix 10: doors.
    ("DoorAutoMatch", ValueKind::Flag),
    ("DoorDrivertime", SECONDS),
    ("DoorKeepOpenTimeZone", INDEX),
    // (linux year) * 10000 + month * 100 + day.
    ("DoorCancelKeepOpenDelay", ValueKind::Number(0, 99_991_231)),
    ("DoorValidTZ", INDEX),
    ("DoorIntertime", SECONDS),
    ("DoorSensorType", ValueKind::Number(0, 2)),
    ("DoorDetectortime", SECONDS),
    ("DoorCloseAndLock", ValueKind::Flag),
    ("DoorReaderType", CODE),
    ("DoorInTimeAPB", ValueKind::Number(0, 86_400)),
    ("DoorREXInput", ValueKind::Flag),
    ("DoorREXTimeOut", SECONDS),
    ("DoorDelayOpenTime", SECONDS),
    ("DoorMultiCardInterTime", SECONDS),
    ("DoorFirstCardOpenDoor", ValueKind::Number(0, 2)),
    ("DoorMultiCardOpenDoor", ValueKind::Flag),
    ("DoorDisable", ValueKind::Flag),
    ("DoorInOutAntiPassback", ValueKind::Number(0, 3)),
    ("DoorMaskFlag", ValueKind::Flag),
    ("ExtDoorDelayDrivertime", SECONDS),
    ("WiegandIDIn", INDEX),
    ("WiegandID", INDEX),
    // Appendix 11: readers.
    ("IdentityCardVerifyMode", ValueKind::Flag),
    // Appendix 12 and the 7.4 switches.
    ("AntiPassback", CODE),
    ("InterLock", CODE),
    ("BackupTime", ValueKind::Number(0, 8_760)),
    ("DelRecord", INDEX),
    ("DSTOn", ValueKind::Flag),
    ("CurTimeMode", ValueKind::Number(0, 2)),
    ("DLSTMode", CODE),
    ("DateFmtFunOn", ValueKind::Flag),
    ("MulCardUserFunOn", ValueKind::Flag),
    ("AutoServerFunOn", ValueKind::Flag),
    ("AutoServerMode", CODE),
    ("RS232BaudRate", ValueKind::Number(0, 4_000_000)),
    ("QRCodeDecryptType", CODE),
    ("ComPwd", ValueKind::Number(0, i64::MAX)),
    ("IRTempUnitTrans", ValueKind::Flag),
];

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("empty parameter list")]
    Empty,
    #[error("parameter {0:?} is not a valid name")]
    BadName(String),
    #[error("parameter {0} cannot be set")]
    ReadOnly(String),
    /// The value is not of the key's form (Return=-620).
    #[error("{key}={value:?}: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: &'static str,
    },
    /// The value has the key's form but not a value the key can take (-11).
    #[error("{key}={value:?}: {reason}")]
    OutOfRange {
        key: String,
        value: String,
        reason: String,
    },
    #[error("platform refused the network settings: {0}")]
    Platform(#[from] crate::platform::PlatformError),
    #[error("cannot save the parameters: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("uploading the parameters failed: {0}")]
    Upload(String),
}

impl OptionsError {
    pub fn code(&self) -> i64 {
        match self {
            OptionsError::Empty => codes::BAD_PARAMETER,
            OptionsError::BadName(_) | OptionsError::ReadOnly(_) => codes::INVALID_OPTIONS,
            OptionsError::BadValue { .. } => codes::BAD_DATA_FORMAT,
            OptionsError::OutOfRange { .. } => codes::BAD_PARAMETER,
            OptionsError::Platform(_) | OptionsError::Store(_) => codes::SAVE_PARAMETER_FAILED,
            OptionsError::Upload(_) => codes::UPLOAD_OPTIONS_FAILED,
        }
    }
}

fn valid_name(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '~' | '_' | '.'))
}

fn is_one_of(list: &[&str], key: &str) -> bool {
    list.iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// `Door3Drivertime` → `DoorDrivertime`.
fn without_door_number(key: &str) -> String {
    let lower = key.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("door") {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            return format!("Door{}", &key[4 + digits..]);
        }
    }
    key.to_owned()
}

/// The kind of `key`'s value, if it is checked.
fn value_kind(key: &str) -> Option<ValueKind> {
    let name = without_door_number(key);
    let reader_state = key.len() > 6
        && key[..6].eq_ignore_ascii_case("Reader")
        && key.to_ascii_lowercase().ends_with("iostate");
    if reader_state {
        return Some(CODE);
    }
    VALUE_KINDS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&name))
        .map(|(_, kind)| *kind)
}

/// A checked value, typed where the platform takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checked {
    Address(Ipv4Addr),
    Flag(bool),
    Other,
}

fn check_value(key: &str, value: &str) -> Result<Checked, OptionsError> {
    let shown = || value.chars().take(40).collect::<String>();
    let bad = |reason| OptionsError::BadValue {
        key: key.to_owned(),
        value: shown(),
        reason,
    };
    let out_of_range = |reason: String| OptionsError::OutOfRange {
        key: key.to_owned(),
        value: shown(),
        reason,
    };
    if value.len() > 1024 || value.contains(['\0', '\n', '\r']) {
        return Err(bad("value too long or with control characters"));
    }
    let Some(kind) = value_kind(key) else {
        return Ok(Checked::Other);
    };
    let text = value.trim();
    // An empty number leaves the door's default (Appendix 10's examples
    // send `Door1SupperPassWord=` and similar); an empty address is no address.
    let number = |min: i64, max: i64| -> Result<i64, OptionsError> {
        let n = text.parse::<i64>().map_err(|e| {
            if matches!(
                e.kind(),
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
            ) {
                out_of_range(format!("not within {min}..={max}"))
            } else {
                bad("not a number")
            }
        })?;
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(out_of_range(format!("not within {min}..={max}")))
        }
    };
    let address = || {
        text.parse::<Ipv4Addr>()
            .map_err(|_| bad("not an IPv4 address"))
    };
    match kind {
        ValueKind::Number(..) | ValueKind::Flag if text.is_empty() => Ok(Checked::Other),
        ValueKind::Number(min, max) => number(min, max).map(|_| Checked::Other),
        ValueKind::Flag => number(0, 1).map(|n| Checked::Flag(n == 1)),
        ValueKind::Port => number(1, 65_535).map(|_| Checked::Other),
        ValueKind::HostAddress => {
            let a = address()?;
            if a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
                return Err(out_of_range("not the address of a host".into()));
            }
            Ok(Checked::Address(a))
        }
        ValueKind::OptionalAddress => {
            let a = address()?;
            if a.is_broadcast() || a.is_multicast() {
                return Err(out_of_range("not the address of a host".into()));
            }
            Ok(Checked::Address(a))
        }
        ValueKind::NetMask => {
            let a = address()?;
            let bits = u32::from(a);
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                return Err(out_of_range("not a contiguous net mask".into()));
            }
            Ok(Checked::Address(a))
        }
        ValueKind::ServerAddress => {
            let a = text
                .parse::<std::net::IpAddr>()
                .map_err(|_| bad("not an IP address"))?;
            if a.is_unspecified() || a.is_multicast() {
                return Err(out_of_range("not the address of a host".into()));
            }
            Ok(Checked::Other)
        }
    }
}

/// Puts a checked network value where the platform hook takes it; `false`
/// for keys that are not network settings.
fn network_setting(settings: &mut NetworkSettings, key: &str, value: Checked) -> bool {
    let slot = match (key.to_ascii_lowercase().as_str(), value) {
        ("dhcp", Checked::Flag(on)) => {
            settings.dhcp = Some(on);
            return true;
        }
        ("ipaddress", Checked::Address(_)) => &mut settings.ip_address,
        ("netmask", Checked::Address(_)) => &mut settings.net_mask,
        ("gateipaddress", Checked::Address(_)) => &mut settings.gateway,
        ("dns", Checked::Address(_)) => &mut settings.dns,
        ("dns2", Checked::Address(_)) => &mut settings.dns2,
        _ => return false,
    };
    if let Checked::Address(a) = value {
        *slot = Some(a);
    }
    true
}

/// Applies a SET OPTIONS list.
pub fn set_options(rest: &str, ctx: &mut CommandContext<'_>) -> Result<(), OptionsError> {
    let kv = KeyValues::parse_comma(&rest.replace(['\n', '\r'], ""));
    if kv.0.is_empty() {
        return Err(OptionsError::Empty);
    }
    let mut date_time = None;
    let mut machine_tz = None;
    let mut network = NetworkSettings::default();
    let mut persist: Vec<(&str, &str)> = Vec::new();
    for (k, v) in kv.iter() {
        if !valid_name(k) {
            return Err(OptionsError::BadName(k.chars().take(40).collect()));
        }
        if is_one_of(READ_ONLY_KEYS, k) || crate::store::Store::is_internal_option(k) {
            return Err(OptionsError::ReadOnly(k.to_owned()));
        }
        if k.eq_ignore_ascii_case("DateTime") {
            let t = v
                .trim()
                .parse::<u32>()
                .ok()
                .and_then(old_decode)
                .ok_or_else(|| OptionsError::BadValue {
                    key: k.to_owned(),
                    value: v.chars().take(40).collect(),
                    reason: "not Appendix 5 seconds",
                })?;
            let utc = server_time::utc_of_wall_time(ctx.store, ctx.clock, t);
            if !crate::clock::sync::Bounds::of_build().contains(utc) {
                return Err(OptionsError::BadValue {
                    key: k.to_owned(),
                    value: v.chars().take(40).collect(),
                    reason: "before the firmware's build date or decades after it",
                });
            }
            date_time = Some(t);
            continue;
        }
        if k.eq_ignore_ascii_case("MachineTZ") {
            // Refused rather than stored and ignored: a zone that is not
            // one would shift every rule without anyone noticing.
            let zone = server_time::parse_machine_tz(v).map_err(|_| OptionsError::BadValue {
                key: k.to_owned(),
                value: v.chars().take(40).collect(),
                reason: "not a zone (+HHMM)",
            })?;
            machine_tz = Some(zone);
        }
        let checked = check_value(k, v)?;
        network_setting(&mut network, k, checked);
        persist.push((k, v));
    }
    if !network.is_empty() {
        ctx.platform
            .perform(PlatformAction::ConfigureNetwork(network))?;
    }
    if !persist.is_empty() {
        ctx.store.set_options(persist)?;
    }
    if let Some(zone) = machine_tz {
        server_time::adopt_zone(ctx.store, ctx.clock, zone, "SET OPTIONS MachineTZ")?;
    }
    if let Some(local) = date_time {
        // 12.5.1: "the current time of the server" - its local time, which
        // the device shares; the clock keeps UTC and the local zone.
        let utc = server_time::utc_of_wall_time(ctx.store, ctx.clock, local);
        ctx.clock.offer(utc, TimeSource::SetOptions);
        // 12.5.1: devices then ask for the time in GMT and the server's
        // zone. A server without rtdata leaves the time just set.
        if let Err(e) = server_time::ask_server_time(ctx.link, ctx.store, ctx.clock) {
            log::info!("{e}; the clock keeps SET OPTIONS DateTime");
        }
    }
    Ok(())
}

/// A value GET OPTIONS can give without the options table.
fn device_fact(key: &str, serial: &str) -> Option<String> {
    match key.to_ascii_lowercase().as_str() {
        "~serialnumber" => Some(serial.to_owned()),
        "firmver" => Some(env!("CARGO_PKG_VERSION").to_owned()),
        "pushversion" => Some(crate::protocol::DEVICE_PUSH_VERSION.to_string()),
        "multibiodatasupport" => {
            Some(crate::commands::data::bio::DEVICE_MULTI_BIO_DATA_SUPPORT.to_owned())
        }
        "multibiophotosupport" => {
            Some(crate::commands::data::bio::DEVICE_MULTI_BIO_PHOTO_SUPPORT.to_owned())
        }
        _ => None,
    }
}

/// GET OPTIONS names of the interface that reaches the server (servers
/// show them in their device view).
const INTERFACE_KEYS: &[&str] = &["IPAddress", "NetMask", "GATEIPAddress", "MAC"];

/// One of [`INTERFACE_KEYS`] from what the platform found.
fn interface_fact(key: &str, id: &crate::platform::NetworkIdentity) -> Option<String> {
    match key.to_ascii_lowercase().as_str() {
        "ipaddress" => id.ip.map(|a| a.to_string()),
        "netmask" => id.netmask.map(|a| a.to_string()),
        "gateipaddress" => id.gateway.map(|a| a.to_string()),
        "mac" => id.mac.clone(),
        _ => None,
    }
}

/// Answers a GET OPTIONS list. Names the device knows nothing about are
/// left out rather than answered empty, which a server would store.
/// `IPAddress`, `NetMask`, `GATEIPAddress` and `MAC` are those of the
/// interface that reaches the server, asked of the platform; what it cannot
/// tell falls back to a stored value (SET OPTIONS, the configured MAC), else
/// is left out.
pub fn get_options(command: &Command, ctx: &mut CommandContext<'_>) -> Result<(), OptionsError> {
    let names: Vec<&str> = command
        .rest
        .split([',', '\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return Err(OptionsError::Empty);
    }
    let serial = ctx.link.serial().to_owned();
    let mut interface = None;
    let mut out = KeyValues::default();
    for name in names {
        if !valid_name(name) {
            return Err(OptionsError::BadName(name.chars().take(40).collect()));
        }
        // Looked up once per command, and only when asked for.
        let live = if is_one_of(INTERFACE_KEYS, name) {
            let id =
                interface.get_or_insert_with(|| ctx.platform.network_identity(ctx.link.base_url()));
            interface_fact(name, id)
        } else {
            None
        };
        let value = match live.or_else(|| device_fact(name, &serial)) {
            Some(v) => Some(v),
            None if crate::store::Store::is_internal_option(name) => None,
            None => ctx.store.option(name)?,
        };
        if let Some(v) = value {
            out.0.push((name.to_owned(), v));
        }
    }
    let pq = format!(
        "/iclock/querydata?SN={serial}&type=options&cmdid={}&tablename=options&count=1&packcnt=1&packidx=1",
        command.id
    );
    let reply = ctx
        .link
        .post(&pq, out.to_comma_line().as_bytes())
        .map_err(|e| OptionsError::Upload(e.to_string()))?;
    match crate::protocol::upload::classify(&reply.text()) {
        crate::protocol::upload::UploadAck::Rejected(text) => Err(OptionsError::Upload(text)),
        crate::protocol::upload::UploadAck::Accepted { .. } => Ok(()),
    }
}

/// The executor of SET OPTIONS and GET OPTIONS.
#[derive(Default)]
pub struct OptionsExecutor;

impl CommandExecutor for OptionsExecutor {
    fn handles(&self, verb: &Verb) -> bool {
        matches!(verb, Verb::SetOptions | Verb::GetOptions)
    }

    fn execute(&mut self, command: &Command, ctx: &mut CommandContext<'_>) -> CommandOutcome {
        let result = match command.verb {
            Verb::SetOptions => set_options(&command.rest, ctx),
            _ => get_options(command, ctx),
        };
        match result {
            Ok(()) => CommandOutcome::code(codes::OK),
            Err(e) => {
                log::warn!(
                    "command {} ({}) failed: {e}; answering {}",
                    command.id,
                    command.result_name(),
                    e.code()
                );
                CommandOutcome::code(e.code())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn door_numbers_are_ignored_for_checks() {
        assert_eq!(without_door_number("Door12Drivertime"), "DoorDrivertime");
        assert_eq!(without_door_number("DoorDrivertime"), "DoorDrivertime");
        assert!(check_value("Door1Drivertime", "5").is_ok());
        assert!(check_value("Door1Drivertime", "five").is_err());
        assert!(check_value("Reader1IOState", "x").is_err());
        assert!(check_value("IPAddress", "192.168.1.300").is_err());
        assert!(check_value("Door1SupperPassWord", "").is_ok());
        assert!(check_value("Door1VerifyType", "0000101000000011").is_ok());
    }

    #[test]
    fn values_get_the_code_of_what_is_wrong() {
        let code = |k: &str, v: &str| check_value(k, v).map_err(|e| e.code());
        assert_eq!(code("WebServerPort", "8088"), Ok(Checked::Other));
        assert_eq!(code("WebServerPort", "65536"), Err(codes::BAD_PARAMETER));
        assert_eq!(code("webserverport", "x"), Err(codes::BAD_DATA_FORMAT));
        assert_eq!(code("DHCP", "0"), Ok(Checked::Flag(false)));
        assert_eq!(code("DHCP", "1"), Ok(Checked::Flag(true)));
        assert_eq!(code("DHCP", "on"), Err(codes::BAD_DATA_FORMAT));
        assert_eq!(
            code("Door4Intertime", "99999999999999999999"),
            Err(codes::BAD_PARAMETER)
        );
        assert_eq!(code("NetMask", "255.255.240.0").map(|_| ()), Ok(()));
        assert_eq!(code("NetMask", "255.255.0.255"), Err(codes::BAD_PARAMETER));
        assert_eq!(code("GATEIPAddress", "0.0.0.0").map(|_| ()), Ok(()));
        assert_eq!(code("IPAddress", "0.0.0.0"), Err(codes::BAD_PARAMETER));
        assert_eq!(code("WebServerIP", "fe80::1"), Ok(Checked::Other));
        assert_eq!(
            code("WebServerIP", "evil.example"),
            Err(codes::BAD_DATA_FORMAT)
        );
        assert_eq!(code("Door1SensorType", "2"), Ok(Checked::Other));
        assert_eq!(code("Door1SensorType", "3"), Err(codes::BAD_PARAMETER));
        assert_eq!(code("FancyNewKey", "anything"), Ok(Checked::Other));
    }

    #[test]
    fn every_checked_key_is_settable_and_not_read_only() {
        for (key, _) in VALUE_KINDS {
            assert!(valid_name(key), "{key}");
            assert!(!is_one_of(READ_ONLY_KEYS, key), "{key}");
        }
    }
}
