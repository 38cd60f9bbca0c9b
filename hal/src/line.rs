//! Raw GPIO lines behind a small trait, so the board wiring, active levels, debounce and
//! Wiegand capture above it are the same code for the Linux backend (gpio-cdev), the sim and
//! tests. Levels here are electrical (true = high); active-level mapping happens above.
//!
//! [`MemLines`] is the in-memory provider: the sim backend runs on it, and tests use it as
//! the fake line provider for the Linux code path.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use crate::board::LineSpec;
use crate::timestamp::Timestamp;

/// Errors from a line provider.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("cannot open GPIO chip {chip}: {message}")]
    Chip { chip: String, message: String },
    #[error("cannot request line {line}: {message}")]
    Request { line: String, message: String },
    #[error("line {line}: {message}")]
    Io { line: String, message: String },
    /// The line's source was shut down (sim stopped, HAL dropped).
    #[error("line {0} closed")]
    Closed(String),
}

/// Short classification of [`LineError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineErrorKind {
    /// Chip or line missing or busy: a configuration problem.
    Unavailable,
    /// The kernel refused an operation on an open line.
    Io,
    Closed,
}

impl LineError {
    pub fn kind(&self) -> LineErrorKind {
        match self {
            LineError::Chip { .. } | LineError::Request { .. } => LineErrorKind::Unavailable,
            LineError::Io { .. } => LineErrorKind::Io,
            LineError::Closed(_) => LineErrorKind::Closed,
        }
    }
}

/// One electrical edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEdge {
    /// The electrical level after the edge (true = high).
    pub high: bool,
    pub at: Timestamp,
}

/// A requested output line.
pub trait OutputLine: Send {
    /// Drives the line to an electrical level.
    fn set_high(&mut self, high: bool) -> Result<(), LineError>;
}

/// A requested input line delivering edges; `next_edge` blocks.
pub trait EdgeSource: Send {
    /// The electrical level now.
    fn level(&mut self) -> Result<bool, LineError>;
    /// Blocks until the next edge.
    fn next_edge(&mut self) -> Result<RawEdge, LineError>;
    /// A probe of the edges this line has but the dispatcher has not received yet, for the
    /// Wiegand capture to wait for them rather than end a frame while a line thread is late.
    /// `None`: not known (the capture then goes by timing alone).
    fn backlog(&mut self) -> Option<Arc<dyn Backlog>> {
        None
    }
}

/// Edges of one line on their way to the dispatcher (queued in the kernel or in memory, or
/// read by the line's thread and not yet handed over).
pub trait Backlog: Send + Sync {
    /// True while at least one edge is on its way.
    fn pending(&self) -> bool;
    /// The dispatcher received one edge of this line.
    fn delivered(&self);
}

/// A count of edges on their way: raised where an edge enters the line's queue, lowered by
/// the dispatcher. Never below zero (an edge delivered before the count was asked for).
#[derive(Debug, Default)]
pub struct EdgeCount(AtomicUsize);

impl EdgeCount {
    pub fn raise(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn lower(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    pub fn is_zero(&self) -> bool {
        self.0.load(Ordering::SeqCst) == 0
    }
}

impl Backlog for EdgeCount {
    fn pending(&self) -> bool {
        !self.is_zero()
    }

    fn delivered(&self) {
        self.lower();
    }
}

/// Hands out lines. Implementations: `linux::CdevLines`, [`MemLines`].
pub trait LineProvider {
    /// Requests an output, initially at `initial_high`.
    fn output(
        &mut self,
        line: &LineSpec,
        initial_high: bool,
        consumer: &str,
    ) -> Result<Box<dyn OutputLine>, LineError>;
    /// Requests an input with edge events on both edges.
    fn input(&mut self, line: &LineSpec, consumer: &str) -> Result<Box<dyn EdgeSource>, LineError>;
}

#[derive(Default)]
struct MemState {
    /// Electrical level of every line that was requested (outputs and inputs).
    levels: BTreeMap<String, bool>,
    /// Where to deliver edges for each requested input.
    inputs: BTreeMap<String, Sender<RawEdge>>,
    /// Consumer label of each requested line, as the kernel would keep it.
    consumers: BTreeMap<String, String>,
    /// Edges on their way, for the inputs whose backlog was asked for.
    backlogs: BTreeMap<String, Arc<EdgeCount>>,
}

/// In-memory lines. Clone it to keep a handle for driving inputs and reading outputs.
///
/// Inputs idle at the level given by `idle_high` (true models pull-ups: an active-low
/// contact reads high while inactive).
#[derive(Clone, Default)]
pub struct MemLines {
    state: Arc<Mutex<MemState>>,
}

impl MemLines {
    pub fn new() -> MemLines {
        MemLines::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemState> {
        // A panic while holding this lock can only come from a bug in this module; keep
        // serving the data rather than poisoning every later caller.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Electrical level of a requested line (`chip:line`), if requested.
    pub fn level(&self, id: &str) -> Option<bool> {
        self.lock().levels.get(id).copied()
    }

    /// Consumer label given when `id` was requested.
    pub fn consumer(&self, id: &str) -> Option<String> {
        self.lock().consumers.get(id).cloned()
    }

    /// All requested line ids.
    pub fn requested(&self) -> Vec<String> {
        self.lock().consumers.keys().cloned().collect()
    }

    /// Drives an input to an electrical level at a time; no edge if the level is unchanged.
    pub fn drive(&self, id: &str, high: bool, at: Timestamp) -> Result<(), LineError> {
        let mut st = self.lock();
        let tx = st
            .inputs
            .get(id)
            .cloned()
            .ok_or_else(|| LineError::Closed(id.to_string()))?;
        if st.levels.get(id).copied() == Some(high) {
            return Ok(());
        }
        st.levels.insert(id.to_string(), high);
        let count = st.backlogs.get(id).cloned();
        drop(st);
        send_counted(&tx, RawEdge { high, at }, count.as_deref(), id)
    }

    /// Delivers an edge even if it does not change the stored level (glitches, replays of
    /// recorded timings where the level bookkeeping is the test's own).
    pub fn inject(&self, id: &str, edge: RawEdge) -> Result<(), LineError> {
        let mut st = self.lock();
        let tx = st
            .inputs
            .get(id)
            .cloned()
            .ok_or_else(|| LineError::Closed(id.to_string()))?;
        st.levels.insert(id.to_string(), edge.high);
        let count = st.backlogs.get(id).cloned();
        drop(st);
        send_counted(&tx, edge, count.as_deref(), id)
    }

    /// Delivers several edges as one burst, as a kernel queue read late does: the inputs'
    /// threads hand none of them on before the last is sent (they take the state lock
    /// after each receive, and this holds it while sending), and each is counted as on its
    /// way first. So a frame reaches the Wiegand capture whole even if this thread is
    /// preempted halfway through sending it, which on a busy machine can last longer than
    /// any frame gap.
    pub fn inject_burst(&self, edges: &[(String, RawEdge)]) -> Result<(), LineError> {
        let mut st = self.lock();
        let mut targets = Vec::with_capacity(edges.len());
        for (id, edge) in edges {
            let tx = st
                .inputs
                .get(id)
                .cloned()
                .ok_or_else(|| LineError::Closed(id.clone()))?;
            targets.push((tx, st.backlogs.get(id).cloned()));
            st.levels.insert(id.clone(), edge.high);
        }
        for (_, count) in &targets {
            if let Some(c) = count {
                c.raise();
            }
        }
        let mut result = Ok(());
        for ((tx, count), (id, edge)) in targets.iter().zip(edges) {
            if result.is_err() || tx.send(*edge).is_err() {
                // Not sent: no longer on its way.
                if let Some(c) = count {
                    c.lower();
                }
                result = Err(LineError::Closed(id.clone()));
            }
        }
        drop(st);
        result
    }

    /// Closes every input (their `next_edge` returns `Closed`), as a shutdown does.
    pub fn close_inputs(&self) {
        self.lock().inputs.clear();
    }
}

/// Sends an edge to an input's thread, counted as on its way first so the dispatcher can
/// never see the edge before the count.
fn send_counted(
    tx: &Sender<RawEdge>,
    edge: RawEdge,
    count: Option<&EdgeCount>,
    id: &str,
) -> Result<(), LineError> {
    if let Some(c) = count {
        c.raise();
    }
    tx.send(edge).map_err(|_| {
        if let Some(c) = count {
            c.lower();
        }
        LineError::Closed(id.to_string())
    })
}

struct MemOutput {
    id: String,
    lines: MemLines,
}

impl OutputLine for MemOutput {
    fn set_high(&mut self, high: bool) -> Result<(), LineError> {
        self.lines.lock().levels.insert(self.id.clone(), high);
        Ok(())
    }
}

struct MemInput {
    id: String,
    lines: MemLines,
    rx: Receiver<RawEdge>,
}

impl EdgeSource for MemInput {
    fn level(&mut self) -> Result<bool, LineError> {
        self.lines
            .level(&self.id)
            .ok_or_else(|| LineError::Closed(self.id.clone()))
    }

    fn next_edge(&mut self) -> Result<RawEdge, LineError> {
        let edge = self
            .rx
            .recv()
            .map_err(|_| LineError::Closed(self.id.clone()))?;
        // Waits while a burst is still being sent (see `inject_burst`).
        drop(self.lines.lock());
        Ok(edge)
    }

    fn backlog(&mut self) -> Option<Arc<dyn Backlog>> {
        let count = self
            .lines
            .lock()
            .backlogs
            .entry(self.id.clone())
            .or_default()
            .clone();
        Some(count)
    }
}

impl LineProvider for MemLines {
    fn output(
        &mut self,
        line: &LineSpec,
        initial_high: bool,
        consumer: &str,
    ) -> Result<Box<dyn OutputLine>, LineError> {
        let id = line.id();
        let mut st = self.lock();
        if st.consumers.contains_key(&id) {
            return Err(LineError::Request {
                line: id,
                message: "busy".into(),
            });
        }
        st.consumers.insert(id.clone(), consumer.to_string());
        st.levels.insert(id.clone(), initial_high);
        drop(st);
        Ok(Box::new(MemOutput {
            id,
            lines: self.clone(),
        }))
    }

    fn input(&mut self, line: &LineSpec, consumer: &str) -> Result<Box<dyn EdgeSource>, LineError> {
        let id = line.id();
        let mut st = self.lock();
        if st.consumers.contains_key(&id) {
            return Err(LineError::Request {
                line: id,
                message: "busy".into(),
            });
        }
        let (tx, rx) = mpsc::channel();
        st.consumers.insert(id.clone(), consumer.to_string());
        // Idle level: inactive, i.e. high for active-low lines (pull-up), low otherwise.
        st.levels.insert(id.clone(), line.active_low);
        st.inputs.insert(id.clone(), tx);
        drop(st);
        Ok(Box::new(MemInput {
            id,
            lines: self.clone(),
            rx,
        }))
    }
}
