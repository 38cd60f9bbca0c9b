//! `SET OPTIONS` and `GET OPTIONS` (12.5): device parameters of 7.4, 12.5
//! and Appendices 10-12 and 18, persisted in the options table.
//!
//! SET checks every pair before acting, so a bad list changes nothing:
//! network settings go through the platform hook, `DateTime` sets the
//! clock, everything else is stored. GET answers through
//! `/iclock/querydata?type=options` as a comma-separated list.

use super::{codes, CommandContext, CommandExecutor, CommandOutcome};
use crate::platform::PlatformAction;
use crate::protocol::command::{Command, Verb};
use crate::protocol::kv::KeyValues;
use crate::protocol::time::old_decode;
use std::net::Ipv4Addr;

/// Network settings handed to the platform (Appendix 12, 12.5.1).
const NETWORK_KEYS: &[&str] = &[
    "IPAddress",
    "NetMask",
    "GATEIPAddress",
    "DNS",
    "DNS2",
    "DHCP",
];

/// Of those, the ones that must be IPv4 addresses.
const ADDRESS_KEYS: &[&str] = &["IPAddress", "NetMask", "GATEIPAddress", "DNS", "DNS2"];

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

/// Appendix 10 door parameters that are numbers (with or without the door
/// number after `Door`: `Door1Drivertime`).
const NUMERIC_DOOR_KEYS: &[&str] = &[
    "DoorAutoMatch",
    "DoorDrivertime",
    "DoorKeepOpenTimeZone",
    "DoorCancelKeepOpenDelay",
    "DoorValidTZ",
    "DoorIntertime",
    "DoorSensorType",
    "DoorDetectortime",
    "DoorCloseAndLock",
    "DoorReaderType",
    "DoorInTimeAPB",
    "DoorREXInput",
    "DoorREXTimeOut",
    "DoorDelayOpenTime",
    "DoorMultiCardInterTime",
    "DoorFirstCardOpenDoor",
    "DoorMultiCardOpenDoor",
    "DoorDisable",
    "DoorInOutAntiPassback",
    "DoorMaskFlag",
    "ExtDoorDelayDrivertime",
];

/// Other parameters that are numbers (Appendix 12, 7.4 switches).
const NUMERIC_KEYS: &[&str] = &[
    "AntiPassback",
    "InterLock",
    "BackupTime",
    "DelRecord",
    "DSTOn",
    "CurTimeMode",
    "DLSTMode",
    "DateFmtFunOn",
    "MulCardUserFunOn",
    "AutoServerFunOn",
    "AutoServerMode",
    "RS232BaudRate",
    "QRCodeDecryptType",
    "ComPwd",
    "WiegandIDIn",
    "WiegandID",
    "IdentityCardVerifyMode",
    "IRTempUnitTrans",
];

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("empty parameter list")]
    Empty,
    #[error("parameter {0:?} is not a valid name")]
    BadName(String),
    #[error("parameter {0} cannot be set")]
    ReadOnly(String),
    #[error("{key}={value:?}: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: &'static str,
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

fn check_value(key: &str, value: &str) -> Result<(), OptionsError> {
    let bad = |reason| OptionsError::BadValue {
        key: key.to_owned(),
        value: value.chars().take(40).collect(),
        reason,
    };
    if value.len() > 1024 || value.contains(['\0', '\n', '\r']) {
        return Err(bad("value too long or with control characters"));
    }
    if is_one_of(ADDRESS_KEYS, key) && value.parse::<Ipv4Addr>().is_err() {
        return Err(bad("not an IPv4 address"));
    }
    let numeric = is_one_of(NUMERIC_KEYS, key)
        || is_one_of(NUMERIC_DOOR_KEYS, &without_door_number(key))
        || (key.len() > 6
            && key[..6].eq_ignore_ascii_case("Reader")
            && key.to_ascii_lowercase().ends_with("iostate"));
    if numeric && !value.is_empty() && value.trim().parse::<i64>().is_err() {
        return Err(bad("not a number"));
    }
    Ok(())
}

/// Applies a SET OPTIONS list.
pub fn set_options(rest: &str, ctx: &mut CommandContext<'_>) -> Result<(), OptionsError> {
    let kv = KeyValues::parse_comma(&rest.replace(['\n', '\r'], ""));
    if kv.0.is_empty() {
        return Err(OptionsError::Empty);
    }
    let mut date_time = None;
    let mut network = Vec::new();
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
            date_time = Some(t);
            continue;
        }
        check_value(k, v)?;
        if is_one_of(NETWORK_KEYS, k) {
            network.push((k.to_owned(), v.to_owned()));
        }
        persist.push((k, v));
    }
    if !network.is_empty() {
        ctx.platform
            .perform(PlatformAction::ConfigureNetwork(network))?;
    }
    if !persist.is_empty() {
        ctx.store.set_options(persist)?;
    }
    if let Some(local) = date_time {
        // 12.5.1: "the current time of the server" - its local time, which
        // the device shares; the clock keeps UTC plus the device's offset.
        let offset = chrono::Duration::minutes(i64::from(ctx.clock.utc_offset_minutes()));
        ctx.clock.set_utc((local - offset).and_utc());
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

/// Answers a GET OPTIONS list. Names the device knows nothing about are
/// left out rather than answered empty, which a server would store.
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
    let mut out = KeyValues::default();
    for name in names {
        if !valid_name(name) {
            return Err(OptionsError::BadName(name.chars().take(40).collect()));
        }
        let value = match device_fact(name, &serial) {
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
}
