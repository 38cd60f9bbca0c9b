//! The command queue (11): fetching getrequest, running each command once
//! (or re-sending the stored result of one seen before), and reporting the
//! results in batches. It never connects or uploads events.

use super::transport::Method;
use super::{Session, SessionError, RESULT_BATCH};
use crate::commands::{codes, CommandContext, CommandOutcome, FollowUp};
use crate::protocol::command::{Command, Verb};
use crate::protocol::{parse_getrequest, CommandLine};
use std::time::Instant;

impl Session {
    /// 11.1: fetch commands, run each (or re-send its stored result), report.
    /// Returns how many of them were new (not re-sent IDs).
    pub fn poll_commands(&mut self) -> Result<usize, SessionError> {
        let pq = format!("/iclock/getrequest?SN={}", self.setup.serial);
        let asked = Instant::now();
        let reply = self.conn.request(Method::Get, &pq, b"")?;
        log::debug!(
            "getrequest answered {} bytes in {:?}",
            reply.body.len(),
            asked.elapsed()
        );
        if !reply.is_success() {
            return Err(self.status_error(reply.status, "/iclock/getrequest"));
        }
        self.conn.mark_heartbeat();
        let (commands, issues) = {
            // The body is dropped as soon as it is parsed: a bulk sync can
            // carry megabytes of records.
            let text = reply.into_text();
            parse_getrequest(&text)
        };
        if !issues.is_empty() {
            // One line per answer, however many junk lines it had.
            log::warn!(
                "ignoring {} getrequest line(s) that are not commands; the first: {:?}",
                issues.len(),
                issues.first()
            );
        }
        let mut new = 0;
        let started = Instant::now();
        for line in commands {
            self.drain_inputs()?;
            if self.handle_command(&line)? {
                new += 1;
            }
            drop(line);
            if !self.setup.batch_results {
                // One result per request, right after its command ran, so a
                // restart (upgrade, CONTROL DEVICE 03) never swallows it.
                self.report_results()?;
            }
        }
        self.report_results()?;
        log::debug!(
            "{new} new commands run and reported in {:?}",
            started.elapsed()
        );
        if std::mem::take(&mut self.restart_requested) {
            // The result is with the server: now the restart may happen.
            self.restart();
        }
        Ok(new)
    }

    /// Runs one command; `false` when it had already run (same ID and
    /// text): its stored result is reported again instead, or, for a
    /// revocation, it is applied again. Either way it is no new work, so a
    /// server that keeps offering it is not polled again at once.
    fn handle_command(&mut self, line: &CommandLine) -> Result<bool, SessionError> {
        let digest = line.text_digest();
        let command = Command::classify(line);
        let mut repeated = false;
        match self.store.command_result(&line.id)? {
            Some(stored) if stored.answers(&digest) => {
                repeated = true;
                if !crate::commands::data::revocation::is_revocation(&command) {
                    log::info!(
                        "command {} was already executed; re-sending its result",
                        line.id
                    );
                    self.store.mark_result_unreported(&line.id)?;
                    return Ok(false);
                }
                // A revocation is never skipped: the same ID and text may
                // come from a server that renumbered its commands after
                // others re-granted the access (revocation.rs).
                log::info!(
                    "command {} was already executed but revokes access; applying it again",
                    line.id
                );
            }
            Some(_) => log::info!(
                "command ID {} was used before for another command; running this one as new",
                line.id
            ),
            None => {}
        }
        log::debug!(
            "executing command {}: {}",
            command.id,
            command.result_name()
        );
        // DATA commands are idempotent: running one again after a power cut
        // lost its result changes nothing, so their bookkeeping needs no
        // fsync of its own. Everything else (doors, upgrades) is synced.
        let idempotent = matches!(
            command.verb,
            Verb::DataUpdate
                | Verb::DataDelete
                | Verb::DataCount
                | Verb::DataQuery
                | Verb::GetOptions
        );
        // Should the process die while the command runs, its result is
        // -12 and is reported after the restart (invariants 2 and 4).
        self.store.begin_command(
            &command.id,
            &digest,
            &command.result_name(),
            codes::EXECUTION_ERROR,
            !idempotent,
        )?;
        let outcome = {
            let mut ctx = CommandContext {
                store: &mut self.store,
                link: &mut self.conn,
                clock: &*self.clock,
                platform: &*self.platform,
            };
            let dispatcher = &mut self.dispatcher;
            // A bug in an executor must not stop the queue (invariant 4).
            // Release builds abort on panic instead; the result begun above
            // answers for the command then.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                dispatcher.execute(&command, &mut ctx)
            }))
            .unwrap_or_else(|_| {
                log::error!(
                    "command {} crashed its executor; answering {}",
                    command.id,
                    codes::EXECUTION_ERROR
                );
                CommandOutcome::code(codes::EXECUTION_ERROR)
            })
        };
        self.store
            .finish_command(&command.id, outcome.ret, &outcome.extra, !idempotent)?;
        if outcome.follow_up == FollowUp::Restart {
            self.restart_requested = true;
        }
        Ok(!repeated)
    }

    /// 10.4: results not yet reported, one per request unless batching is on.
    pub fn report_results(&mut self) -> Result<(), SessionError> {
        loop {
            let pending = self.store.unreported_results(RESULT_BATCH)?;
            if pending.is_empty() {
                return Ok(());
            }
            let pq = format!("/iclock/devicecmd?SN={}", self.setup.serial);
            let groups: Vec<Vec<_>> = if self.setup.batch_results {
                vec![pending]
            } else {
                pending.into_iter().map(|r| vec![r]).collect()
            };
            for group in groups {
                let body = group
                    .iter()
                    .map(crate::store::StoredResult::to_line)
                    .collect::<Vec<_>>()
                    .join("\n");
                let reply = self.conn.request(Method::Post, &pq, body.as_bytes())?;
                if !reply.is_success() {
                    return Err(self.status_error(reply.status, "/iclock/devicecmd"));
                }
                let ids: Vec<String> = group.into_iter().map(|r| r.id).collect();
                self.store.mark_results_reported(&ids)?;
            }
        }
    }
}
