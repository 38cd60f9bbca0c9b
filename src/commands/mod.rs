//! Command execution: the dispatcher the session hands each server command
//! to, and the executors that plug into it (DATA, OPTIONS, CONTROL DEVICE,
//! UPGRADE, ACCOUNT, ...).
//!
//! An executor never panics and never leaves the queue stuck: whatever it is
//! given, it answers with an Appendix 1 code.

pub mod account;
/// Appendix 1 return codes live in the protocol layer, below the engine and
/// the session that also answer with them.
pub use crate::protocol::codes;
pub mod control_device;
pub mod data;
pub mod executors;
pub mod options;
pub mod reboot;
pub mod server_time;
pub mod test_host;

use crate::clock::Clock;
use crate::link::ServerLink;
use crate::platform::Platform;
use crate::protocol::command::{Command, Verb};
use crate::store::Store;

/// What the session must do once a command's result has been reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FollowUp {
    #[default]
    Nothing,
    /// Restart the device (after UPGRADE, CONTROL DEVICE 03): only after the
    /// result reached the server, so the server learns it succeeded.
    Restart,
}

/// The result of one command: `Return=` and what follows `CMD=<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    pub ret: i64,
    /// Appended after `CMD=<name>` verbatim (ACCOUNT's `&transaction&...`).
    pub extra: String,
    pub follow_up: FollowUp,
}

impl CommandOutcome {
    pub fn code(ret: i64) -> Self {
        CommandOutcome {
            ret,
            extra: String::new(),
            follow_up: FollowUp::Nothing,
        }
    }

    /// Success, then a restart once the result is reported.
    pub fn then_restart(ret: i64) -> Self {
        CommandOutcome {
            follow_up: FollowUp::Restart,
            ..Self::code(ret)
        }
    }
}

impl From<i64> for CommandOutcome {
    fn from(ret: i64) -> Self {
        CommandOutcome::code(ret)
    }
}

/// What an executor may use while it runs.
pub struct CommandContext<'a> {
    pub store: &'a mut Store,
    pub link: &'a mut dyn ServerLink,
    pub clock: &'a dyn Clock,
    pub platform: &'a dyn Platform,
}

/// One family of commands. Object-safe so the dispatcher can hold a list.
pub trait CommandExecutor: Send {
    /// Whether this executor takes commands of this verb.
    fn handles(&self, verb: &Verb) -> bool;
    fn execute(&mut self, command: &Command, ctx: &mut CommandContext<'_>) -> CommandOutcome;
}

/// Commands the spec defines that this firmware deliberately does not run;
/// they get -708 ("the firmware does not support this command") rather than
/// -13 ("the command does not exist").
const KNOWN_UNSUPPORTED: &[&str] = &[
    "ENROLL_FP",
    "ENROLL_BIO",
    "ENROLL_MF",
    "SHELL",
    "CHECK",
    "INFO",
    "LOG",
    "CLEAR",
    "VERIFY",
];

/// Routes each command to the first executor that handles its verb.
#[derive(Default)]
pub struct Dispatcher {
    executors: Vec<Box<dyn CommandExecutor>>,
}

impl Dispatcher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, executor: Box<dyn CommandExecutor>) {
        self.executors.push(executor);
    }

    pub fn execute(&mut self, command: &Command, ctx: &mut CommandContext<'_>) -> CommandOutcome {
        if let Some(executor) = self.executors.iter_mut().find(|e| e.handles(&command.verb)) {
            return executor.execute(command, ctx);
        }
        match &command.verb {
            Verb::Other(name)
                if KNOWN_UNSUPPORTED.iter().any(|k| {
                    name.eq_ignore_ascii_case(k)
                        || name
                            .split(' ')
                            .next()
                            .is_some_and(|w| w.eq_ignore_ascii_case(k))
                }) =>
            {
                log::info!(
                    "command {} ({name}) is not supported by this firmware",
                    command.id
                );
                CommandOutcome::code(codes::UNSUPPORTED_COMMAND)
            }
            _ => {
                log::warn!(
                    "command {} ({}) is unknown; answering {}",
                    command.id,
                    command.result_name(),
                    codes::UNKNOWN_COMMAND
                );
                CommandOutcome::code(codes::UNKNOWN_COMMAND)
            }
        }
    }
}
