//! The CONTROL DEVICE executor (12.4): parses the command with
//! [`crate::engine::control::parse`], hands door commands to the engine
//! through its [`EngineHandle`] and waits for the answer with a timeout;
//! restart and network switch-over go to the platform. It never touches a
//! door itself: the engine owns them.
//!
//! It also takes the terminal-style commands that mean the same:
//! `AC_UNALARM` is CONTROL DEVICE 02 for every door; `AC_UNLOCK` releases
//! door 1 for its DoorDrivertime. AC_UNLOCK names no door: servers that send
//! it were written for one-door terminals, so it opens the first door, the
//! one such a terminal has, never every door of a larger panel.

use crate::commands::{codes, CommandContext, CommandExecutor, CommandOutcome};
use crate::engine::control::{parse, ControlRequest};
use crate::engine::{DoorCommand, EngineHandle};
use crate::platform::PlatformAction;
use crate::protocol::command::{Command, Verb};
use std::time::Duration;

/// How long the session waits for the engine before answering -725.
pub const ENGINE_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The CONTROL DEVICE executor: door commands go to the engine.
pub struct ControlExecutor {
    engine: EngineHandle,
}

impl ControlExecutor {
    pub fn new(engine: EngineHandle) -> Self {
        ControlExecutor { engine }
    }
}

/// `AC_UNLOCK` and `AC_UNALARM` as the door commands they stand for.
fn terminal_command(verb: &Verb) -> Option<DoorCommand> {
    let Verb::Other(name) = verb else {
        return None;
    };
    if name.eq_ignore_ascii_case("AC_UNLOCK") {
        Some(DoorCommand::Unlock { door: 1 })
    } else if name.eq_ignore_ascii_case("AC_UNALARM") {
        Some(DoorCommand::CancelAlarm { door: 0 })
    } else {
        None
    }
}

impl CommandExecutor for ControlExecutor {
    fn handles(&self, verb: &Verb) -> bool {
        *verb == Verb::ControlDevice || terminal_command(verb).is_some()
    }

    fn execute(&mut self, command: &Command, ctx: &mut CommandContext<'_>) -> CommandOutcome {
        let parsed = match terminal_command(&command.verb) {
            Some(cmd) => Ok(ControlRequest::Door(cmd)),
            None => parse(&command.rest),
        };
        let req = match parsed {
            Ok(r) => r,
            Err(e) => {
                log::warn!("CONTROL DEVICE {}: {e}", command.id);
                return CommandOutcome::code(codes::BAD_PARAMETER);
            }
        };
        let platform = |action: PlatformAction, failed: i64| match ctx.platform.perform(action) {
            Ok(()) => codes::OK,
            Err(e) => {
                log::warn!("CONTROL DEVICE {}: {e}", command.id);
                failed
            }
        };
        let code = match req {
            ControlRequest::Door(cmd) => {
                let code = self.engine.command(cmd.clone(), ENGINE_REPLY_TIMEOUT);
                if code < 0 {
                    log::warn!("CONTROL DEVICE {} ({cmd:?}) answered {code}", command.id);
                }
                // Appendix 1 has specific codes for these two failures.
                match (&cmd, code) {
                    (DoorCommand::CancelAlarm { .. }, c) if c < 0 && c != codes::WAIT_TIMEOUT => {
                        codes::CANCEL_ALARM_FAILED
                    }
                    (DoorCommand::NormalOpen { .. }, c) if c < 0 && c != codes::WAIT_TIMEOUT => {
                        codes::NORMAL_OPEN_FAILED
                    }
                    _ => code,
                }
            }
            // Stored and reported first, then the session restarts
            // (FollowUp::Restart): a restart that happened never reads as -12.
            ControlRequest::Restart { device: 0 } => {
                return CommandOutcome::then_restart(codes::OK);
            }
            ControlRequest::Restart { .. } => codes::BAD_PARAMETER,
            ControlRequest::SwitchNetwork(n) => {
                platform(PlatformAction::SwitchNetwork(n), codes::EXECUTION_ERROR)
            }
            ControlRequest::IdentityCardRegistration(true) => {
                platform(PlatformAction::RegisterIdentityCard, codes::EXECUTION_ERROR)
            }
            ControlRequest::IdentityCardRegistration(false) => codes::OK,
            ControlRequest::SubDeviceStatus => codes::OK,
            ControlRequest::Unsupported(aa) => {
                log::info!(
                    "CONTROL DEVICE {:02X} is not supported by this controller",
                    aa
                );
                codes::UNSUPPORTED_COMMAND
            }
        };
        CommandOutcome::code(code)
    }
}
