//! `REBOOT`: the same restart as CONTROL DEVICE 03, reported first. The
//! result is stored and sent to the server before the platform restarts
//! (`FollowUp::Restart`), so a restart that happened never reads as -12.

use crate::commands::{CommandContext, CommandExecutor, CommandOutcome};
use crate::protocol::codes;
use crate::protocol::command::{Command, Verb};

pub struct RebootExecutor;

impl CommandExecutor for RebootExecutor {
    fn handles(&self, verb: &Verb) -> bool {
        matches!(verb, Verb::Other(name) if name.eq_ignore_ascii_case("REBOOT"))
    }

    fn execute(&mut self, _command: &Command, _ctx: &mut CommandContext<'_>) -> CommandOutcome {
        CommandOutcome::then_restart(codes::OK)
    }
}
