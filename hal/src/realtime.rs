//! Real-time scheduling for the HAL's input threads.
//!
//! A card's bits wait in the kernel until a line thread reads them, and its frame is handed
//! on only when the dispatcher thread runs; on a busy 2-core controller (a bulk DATA sync,
//! SQLite checkpoints) ordinary threads may wait several milliseconds for a CPU. Under
//! SCHED_FIFO they run as soon as their edge arrives. The threads only block on their
//! line or channel and do a few microseconds of work per edge, so they cannot starve the
//! rest of the system (and the kernel keeps 5 % of every second for ordinary threads).
//!
//! The board's `[defaults] realtime_priority` sets the priority (default 20, below the
//! kernel's interrupt threads at 50, so an edge is timestamped before it is read); 0 keeps
//! normal scheduling. Without the privilege (root, CAP_SYS_NICE or an rtprio limit) the
//! OS refuses: one warning per process says so and the threads run at normal priority.

use std::sync::atomic::{AtomicBool, Ordering};

use thread_priority::{
    set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy, ThreadPriority,
    ThreadPriorityValue, ThreadSchedulePolicy,
};

/// Why the calling thread kept its normal priority.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RealtimeError {
    #[error("SCHED_FIFO priority {0} is outside 1..=99")]
    Range(u8),
    #[error("the OS refused SCHED_FIFO priority {priority}: {reason}")]
    Refused { priority: u8, reason: String },
}

/// How a thread asked for real-time scheduling came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduling {
    /// `realtime_priority = 0`: normal scheduling was asked for.
    Normal,
    RealTime(u8),
    /// Refused by the OS; the thread runs at normal priority.
    Refused(RealtimeError),
}

static REFUSAL_LOGGED: AtomicBool = AtomicBool::new(false);
static GRANT_LOGGED: AtomicBool = AtomicBool::new(false);

/// Puts the calling thread under SCHED_FIFO at `priority` (0: leaves it alone).
pub fn try_enter(priority: u8) -> Result<bool, RealtimeError> {
    if priority == 0 {
        return Ok(false);
    }
    let value =
        ThreadPriorityValue::try_from(priority).map_err(|_| RealtimeError::Range(priority))?;
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(value),
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
    )
    .map(|()| true)
    .map_err(|e| RealtimeError::Refused {
        priority,
        reason: match e {
            thread_priority::Error::OS(code) => std::io::Error::from_raw_os_error(code).to_string(),
            thread_priority::Error::PriorityNotInRange(_) => {
                return RealtimeError::Range(priority);
            }
            other => other.to_string(),
        },
    })
}

/// [`try_enter`] for a HAL input thread, logging the outcome once per process: one info
/// line when the first thread gets real-time priority, one warning when the OS refuses.
pub fn enter_for_input_thread(priority: u8) -> Scheduling {
    match try_enter(priority) {
        Ok(false) => Scheduling::Normal,
        Ok(true) => {
            if !GRANT_LOGGED.swap(true, Ordering::Relaxed) {
                log::info!("HAL input threads run under SCHED_FIFO priority {priority}");
            }
            Scheduling::RealTime(priority)
        }
        Err(e) => {
            if !REFUSAL_LOGGED.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "HAL input threads stay at normal priority: {e}; card reads may wait for a busy CPU (allow it with root, CAP_SYS_NICE or an rtprio limit, or set the board's realtime_priority = 0)"
                );
            }
            Scheduling::Refused(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_leaves_the_thread_alone_and_bad_priorities_are_refused() {
        assert_eq!(try_enter(0), Ok(false));
        assert_eq!(try_enter(100), Err(RealtimeError::Range(100)));
        assert_eq!(
            std::thread::spawn(|| enter_for_input_thread(0))
                .join()
                .unwrap(),
            Scheduling::Normal
        );
    }

    #[test]
    fn a_thread_gets_fifo_or_a_clear_refusal() {
        // Whether the OS allows it depends on the machine (root in CI, not on a laptop):
        // either outcome is fine, but it must be one of the two and say why.
        let got = std::thread::spawn(|| {
            let outcome = enter_for_input_thread(10);
            let policy = thread_priority::thread_schedule_policy().ok();
            (outcome, policy)
        })
        .join()
        .unwrap();
        match got {
            (Scheduling::RealTime(10), policy) => assert_eq!(
                policy,
                Some(ThreadSchedulePolicy::Realtime(
                    RealtimeThreadSchedulePolicy::Fifo
                ))
            ),
            (
                Scheduling::Refused(RealtimeError::Refused {
                    priority: 10,
                    reason,
                }),
                _,
            ) => {
                assert!(!reason.is_empty())
            }
            other => panic!("{other:?}"),
        }
    }
}
