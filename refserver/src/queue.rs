//! The device command queue as the server fills it: a command with an ID
//! the server assigns ([`queue`]) or one the caller chooses
//! ([`queue_with_id`]). Used by the protocol (initial commands), the admin
//! endpoint and the test API alike, so none of them reaches into another.

use crate::config::ServerConfig;
use crate::state::{QueuedCommand, State};
use std::time::{SystemTime, UNIX_EPOCH};

/// Queues a command with a server-assigned ID.
pub(crate) fn queue(state: &mut State, cfg: &ServerConfig, sn: &str, command: &str) -> u64 {
    let id = state.new_command_id(cfg.id_style, now_millis(cfg.clock.now()));
    state.device_mut(sn).queue.push(QueuedCommand {
        id: id.to_string(),
        text: command.to_string(),
        deliveries: 0,
    });
    id
}

/// Queues a command with a caller-chosen ID.
pub(crate) fn queue_with_id(state: &mut State, sn: &str, id: &str, command: &str) {
    state.mark_id_used(id);
    state.device_mut(sn).queue.push(QueuedCommand {
        id: id.to_string(),
        text: command.to_string(),
        deliveries: 0,
    });
}

fn now_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
