//! Wiegand: bit capture from D0/D1 pulses ([`capture`]) and decoding by format tables
//! ([`format`]); the built-in formats by ZKTeco's names ([`named`]).
//!
//! Capture happens in the HAL (it needs edge timing); decoding is a pure function the
//! access-control engine calls with the format table in force, because the server can
//! change formats at any time (spec 12.1.1.22–24).

pub mod capture;
pub mod format;
pub mod named;

pub use capture::{CaptureConfig, DataLine, WiegandCapture};
pub use format::{
    decode, BadFormatReason, BitRole, Decoded, Format, FormatError, FormatErrorKind, FormatTable,
    ParityCheck, ReversalType,
};

use crate::timestamp::Timestamp;

/// Longest frame kept bit for bit; longer bursts are flagged as overflow.
pub const MAX_FRAME_BITS: usize = 128;

/// Up to 128 bits in arrival order (bit 0 is the first bit the reader sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct WiegandBits {
    /// The bits with the first one received as the most significant of `len` bits.
    value: u128,
    len: usize,
    /// More than [`MAX_FRAME_BITS`] bits arrived; only the first 128 are kept.
    overflow: bool,
}

impl WiegandBits {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one received bit.
    pub fn push(&mut self, bit: bool) {
        if self.len >= MAX_FRAME_BITS {
            self.overflow = true;
            return;
        }
        self.value = (self.value << 1) | u128::from(bit);
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn overflow(&self) -> bool {
        self.overflow
    }

    /// Bit `i` in arrival order; false past the end.
    pub fn get(&self, i: usize) -> bool {
        if i >= self.len {
            return false;
        }
        (self.value >> (self.len - 1 - i)) & 1 == 1
    }

    /// Sets bit `i` (arrival order); ignored past the end.
    pub fn set(&mut self, i: usize, bit: bool) {
        if i >= self.len {
            return;
        }
        let mask = 1u128 << (self.len - 1 - i);
        if bit {
            self.value |= mask;
        } else {
            self.value &= !mask;
        }
    }

    /// Every bit complemented (what swapped D0/D1 wires produce).
    pub fn inverted(&self) -> WiegandBits {
        let mut out = *self;
        for i in 0..self.len {
            out.set(i, !self.get(i));
        }
        out
    }

    /// The frame as an integer, first bit most significant.
    pub fn as_u128(&self) -> u128 {
        self.value
    }

    pub fn iter(&self) -> impl Iterator<Item = bool> + '_ {
        (0..self.len).map(|i| self.get(i))
    }

    /// From a string of '0' and '1' (other characters are rejected).
    pub fn from_bit_str(s: &str) -> Option<WiegandBits> {
        let mut bits = WiegandBits::new();
        for c in s.chars() {
            match c {
                '0' => bits.push(false),
                '1' => bits.push(true),
                _ => return None,
            }
        }
        Some(bits)
    }

    pub fn from_bools(bools: &[bool]) -> WiegandBits {
        let mut bits = WiegandBits::new();
        for &b in bools {
            bits.push(b);
        }
        bits
    }
}

impl std::fmt::Display for WiegandBits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.iter() {
            f.write_str(if b { "1" } else { "0" })?;
        }
        Ok(())
    }
}

/// One completed frame from a reader, with its capture timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WiegandFrame {
    pub bits: WiegandBits,
    /// Start of the first accepted pulse.
    pub first_edge: Timestamp,
    /// The last edge of the frame (what latency is measured from).
    pub last_edge: Timestamp,
    /// Pulses rejected as noise while this frame was captured (too short, too long,
    /// both lines active at once, an end without a start).
    pub noise_pulses: u32,
}
