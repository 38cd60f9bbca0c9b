//! The Linux backend's line provider: gpio-cdev (the kernel's v1 GPIO character-device
//! uAPI). v1 has no debounce and no event sequence numbers, so debounce and ordering live
//! above this in [`crate::wiring`]; a v2 provider could sit beside this one unchanged.
//!
//! Active levels are applied above too (electrical levels here), so the kernel's
//! ACTIVE_LOW flag is never set and edge polarity means the same on every kernel.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use gpio_cdev::{
    Chip, EventRequestFlags, EventType, LineEventHandle, LineHandle, LineRequestFlags,
};

use crate::board::{Bias, LineSpec};
use crate::line::{Backlog, EdgeCount, EdgeSource, LineError, LineProvider, OutputLine, RawEdge};
use crate::timestamp::Timestamp;

/// v1 uAPI bias flags (linux/gpio.h GPIOHANDLE_REQUEST_BIAS_*, Linux 5.5+); gpio-cdev 0.6
/// predates them, so they are passed as raw bits.
const BIAS_PULL_UP: u32 = 1 << 5;
const BIAS_PULL_DOWN: u32 = 1 << 6;
const BIAS_DISABLE: u32 = 1 << 7;

/// Lines from `/dev/gpiochipN` devices, chips opened once and shared.
#[derive(Default)]
pub struct CdevLines {
    chips: BTreeMap<String, Chip>,
}

impl CdevLines {
    pub fn new() -> CdevLines {
        CdevLines::default()
    }

    fn chip(&mut self, name: &str) -> Result<&mut Chip, LineError> {
        if !self.chips.contains_key(name) {
            let path = crate::board::chip_path(name);
            let chip = Chip::new(&path).map_err(|e| LineError::Chip {
                chip: path.display().to_string(),
                message: e.to_string(),
            })?;
            self.chips.insert(name.to_string(), chip);
        }
        self.chips.get_mut(name).ok_or_else(|| LineError::Chip {
            chip: name.to_string(),
            message: "not open".into(),
        })
    }
}

/// The request flags for a line: direction plus bias.
pub fn request_flags(direction: LineRequestFlags, bias: Bias) -> LineRequestFlags {
    let bias_bits = match bias {
        Bias::AsIs => 0,
        Bias::PullUp => BIAS_PULL_UP,
        Bias::PullDown => BIAS_PULL_DOWN,
        Bias::Disabled => BIAS_DISABLE,
    };
    direction | LineRequestFlags::from_bits_retain(bias_bits)
}

struct CdevOutput {
    id: String,
    handle: LineHandle,
}

impl OutputLine for CdevOutput {
    fn set_high(&mut self, high: bool) -> Result<(), LineError> {
        self.handle
            .set_value(u8::from(high))
            .map_err(|e| LineError::Io {
                line: self.id.clone(),
                message: e.to_string(),
            })
    }
}

struct CdevInput {
    id: String,
    events: LineEventHandle,
    /// Set once the dispatcher asks for the backlog: edges taken from the kernel's queue
    /// and not yet received by the dispatcher.
    taken: Option<Arc<EdgeCount>>,
}

/// Whether `file` (a line-event fd) has an edge queued in the kernel, without waiting
/// (`timeout_ms` 0) or until it has (-1).
fn readable(file: &File, timeout_ms: i32) -> std::io::Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags};
    let mut fds = [PollFd::new(file, PollFlags::POLLIN)];
    loop {
        match poll(&mut fds, timeout_ms) {
            Ok(n) => return Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(std::io::Error::from(e)),
        }
    }
}

/// The backlog of a kernel line: edges the line thread took and has not handed over, or
/// edges still in the kernel's queue.
struct CdevBacklog {
    taken: Arc<EdgeCount>,
    fd: File,
}

impl Backlog for CdevBacklog {
    fn pending(&self) -> bool {
        // An fd that cannot be polled says nothing; timing alone decides then.
        !self.taken.is_zero() || readable(&self.fd, 0).unwrap_or(false)
    }

    fn delivered(&self) {
        self.taken.lower();
    }
}

impl EdgeSource for CdevInput {
    fn level(&mut self) -> Result<bool, LineError> {
        self.events
            .get_value()
            .map(|v| v != 0)
            .map_err(|e| LineError::Io {
                line: self.id.clone(),
                message: e.to_string(),
            })
    }

    fn next_edge(&mut self) -> Result<RawEdge, LineError> {
        if let Some(taken) = &self.taken {
            // Counted before it leaves the kernel's queue, so the backlog never misses it.
            readable(self.events.file(), -1).map_err(|e| LineError::Io {
                line: self.id.clone(),
                message: e.to_string(),
            })?;
            taken.raise();
        }
        let event = self.events.get_event().map_err(|e| {
            if let Some(taken) = &self.taken {
                taken.lower();
            }
            LineError::Io {
                line: self.id.clone(),
                message: e.to_string(),
            }
        })?;
        let at = Instant::now();
        Ok(RawEdge {
            high: event.event_type() == EventType::RisingEdge,
            at: Timestamp {
                at,
                mono_ns: event.timestamp(),
                from_kernel: true,
            },
        })
    }

    fn backlog(&mut self) -> Option<Arc<dyn Backlog>> {
        let fd = match self.events.file().try_clone() {
            Ok(fd) => fd,
            Err(e) => {
                log::warn!(
                    "input {}: cannot watch its queue ({e}); Wiegand frames end by timing alone",
                    self.id
                );
                return None;
            }
        };
        let taken = self.taken.get_or_insert_with(Default::default).clone();
        Some(Arc::new(CdevBacklog { taken, fd }))
    }
}

impl LineProvider for CdevLines {
    fn output(
        &mut self,
        line: &LineSpec,
        initial_high: bool,
        consumer: &str,
    ) -> Result<Box<dyn OutputLine>, LineError> {
        let id = line.id();
        let handle = self
            .chip(&line.chip)?
            .get_line(line.line)
            .and_then(|l| {
                l.request(
                    request_flags(LineRequestFlags::OUTPUT, line.bias),
                    u8::from(initial_high),
                    consumer,
                )
            })
            .map_err(|e| LineError::Request {
                line: id.clone(),
                message: e.to_string(),
            })?;
        Ok(Box::new(CdevOutput { id, handle }))
    }

    fn input(&mut self, line: &LineSpec, consumer: &str) -> Result<Box<dyn EdgeSource>, LineError> {
        let id = line.id();
        let events = self
            .chip(&line.chip)?
            .get_line(line.line)
            .and_then(|l| {
                l.events(
                    request_flags(LineRequestFlags::INPUT, line.bias),
                    EventRequestFlags::BOTH_EDGES,
                    consumer,
                )
            })
            .map_err(|e| LineError::Request {
                line: id.clone(),
                message: e.to_string(),
            })?;
        Ok(Box::new(CdevInput {
            id,
            events,
            taken: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_maps_to_uapi_bits() {
        assert_eq!(request_flags(LineRequestFlags::INPUT, Bias::AsIs).bits(), 1);
        assert_eq!(
            request_flags(LineRequestFlags::INPUT, Bias::PullUp).bits(),
            1 | 32
        );
        assert_eq!(
            request_flags(LineRequestFlags::OUTPUT, Bias::PullDown).bits(),
            2 | 64
        );
        assert_eq!(
            request_flags(LineRequestFlags::INPUT, Bias::Disabled).bits(),
            1 | 128
        );
    }

    #[test]
    fn missing_chip_is_a_clear_error() {
        let mut lines = CdevLines::new();
        let spec = LineSpec {
            chip: "gpiochip-does-not-exist".into(),
            line: 3,
            active_low: false,
            bias: Bias::AsIs,
            debounce_ms: None,
        };
        let err = lines.input(&spec, "test").err().unwrap();
        assert_eq!(err.kind(), crate::line::LineErrorKind::Unavailable);
        assert!(err.to_string().contains("/dev/gpiochip-does-not-exist"));
    }
}
