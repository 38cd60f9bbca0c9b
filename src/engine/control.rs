//! `CONTROL DEVICE AABBCCDDEE` (12.4): parsing into a [`ControlRequest`].
//! The engine runs the door commands it yields (from the session through
//! its channel, and from a remote identification's answer); the executor
//! the session runs is `commands::control_device`, wired in by
//! `commands::executors::install_engine`.
//!
//! AA is written `%02X` (the table lists it in decimal: "11: network
//! switchover" is `0B` in the examples). EE, the operator, is optional.

use super::{DoorCommand, OutputAction, OutputTarget};
use std::time::Duration;

/// A parsed CONTROL DEVICE command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRequest {
    /// Carried out by the engine.
    Door(DoorCommand),
    /// 03: restart (BB 00 = this device; slave devices are not supported).
    Restart { device: u8 },
    /// 0B: network switch-over 1–4.
    SwitchNetwork(u8),
    /// 0C: identity-card registration on (true) / off.
    IdentityCardRegistration(bool),
    /// 0D: sub-device connection status (this controller has none).
    SubDeviceStatus,
    /// 05, 08, 0A: administrator delivery, Zigbee, RS-485 lighting.
    Unsupported(u8),
}

/// Why a command's argument is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("argument {0:?} is not 6 to 10 hexadecimal digits")]
    Malformed(String),
    #[error("control code {0:02X} is not defined")]
    UnknownCode(u8),
    #[error("value {value:02X} is not valid for {what}")]
    BadValue { what: &'static str, value: u8 },
}

/// Parses `AABBCCDD[EE]` (spaces and a trailing CR tolerated).
pub fn parse(arg: &str) -> Result<ControlRequest, ControlError> {
    let hex: String = arg.chars().filter(|c| !c.is_whitespace()).collect();
    if hex.len() % 2 != 0 || !(6..=10).contains(&hex.len()) {
        return Err(ControlError::Malformed(arg.to_owned()));
    }
    let mut bytes = [0u8; 5];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| ControlError::Malformed(arg.into()))?;
        bytes[i] = u8::from_str_radix(text, 16).map_err(|_| ControlError::Malformed(arg.into()))?;
    }
    let [aa, bb, cc, dd, _operator] = bytes;
    let bad = |what, value| Err(ControlError::BadValue { what, value });
    let req = match aa {
        0x01 => {
            let target = match cc {
                1 => OutputTarget::Lock,
                2 => OutputTarget::Aux,
                v => return bad("output type", v),
            };
            let action = match dd {
                0 => OutputAction::Off,
                0xFF => OutputAction::NormalOpen,
                s => OutputAction::For(Duration::from_secs(u64::from(s))),
            };
            ControlRequest::Door(DoorCommand::Output {
                target,
                index: bb,
                action,
            })
        }
        0x02 => ControlRequest::Door(DoorCommand::CancelAlarm { door: bb }),
        0x03 => ControlRequest::Restart { device: bb },
        0x04 => match cc {
            0 | 1 => ControlRequest::Door(DoorCommand::NormalOpen {
                door: bb,
                enable: cc == 1,
            }),
            v => return bad("normal open", v),
        },
        0x06 => match cc {
            0 | 1 => ControlRequest::Door(DoorCommand::Lock {
                door: bb,
                locked: cc == 1,
            }),
            v => return bad("lock", v),
        },
        0x07 => match bb {
            1 | 2 => ControlRequest::Door(DoorCommand::Emergency { all_open: bb == 1 }),
            v => return bad("emergency mode", v),
        },
        // 12.4's example sends `0900000000`: BB 00 is taken as "start".
        0x09 => match bb {
            0 | 1 => ControlRequest::Door(DoorCommand::WiegandTest { start: true }),
            2 => ControlRequest::Door(DoorCommand::WiegandTest { start: false }),
            v => return bad("Wiegand test", v),
        },
        0x0B => match bb {
            1..=4 => ControlRequest::SwitchNetwork(bb),
            v => return bad("network switch-over", v),
        },
        0x0C => match bb {
            0 | 1 => ControlRequest::IdentityCardRegistration(bb == 1),
            v => return bad("identity-card registration", v),
        },
        0x0D => ControlRequest::SubDeviceStatus,
        0x05 | 0x08 | 0x0A => ControlRequest::Unsupported(aa),
        other => return Err(ControlError::UnknownCode(other)),
    };
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_examples_parse() {
        assert_eq!(
            parse("01010105").unwrap(),
            ControlRequest::Door(DoorCommand::Output {
                target: OutputTarget::Lock,
                index: 1,
                action: OutputAction::For(Duration::from_secs(5))
            })
        );
        assert_eq!(
            parse("02010000").unwrap(),
            ControlRequest::Door(DoorCommand::CancelAlarm { door: 1 })
        );
        assert_eq!(
            parse("03000000").unwrap(),
            ControlRequest::Restart { device: 0 }
        );
        assert_eq!(
            parse("0900000000").unwrap(),
            ControlRequest::Door(DoorCommand::WiegandTest { start: true })
        );
        assert_eq!(parse("0D000000").unwrap(), ControlRequest::SubDeviceStatus);
        assert_eq!(parse("0B020000").unwrap(), ControlRequest::SwitchNetwork(2));
        assert_eq!(
            parse("010202FF07").unwrap(),
            ControlRequest::Door(DoorCommand::Output {
                target: OutputTarget::Aux,
                index: 2,
                action: OutputAction::NormalOpen
            })
        );
    }

    #[test]
    fn malformed_arguments_are_errors_not_panics() {
        for bad in ["", "01", "0101010", "zz010105", "01010105FFFF", "0é0105"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("0E000000"), Err(ControlError::UnknownCode(0x0E)));
        assert!(matches!(
            parse("01010305"),
            Err(ControlError::BadValue { .. })
        ));
    }
}
