//! The Wiegand decoder: raw frames against the standard formats, frames
//! against a card format from the server (the layout text is fuzzed too),
//! and edge streams through the capture that turns D0/D1 pulses into
//! frames. Nothing may panic.
#![no_main]

#[path = "../../tests/fuzz_cases/mod.rs"]
mod cases;

libfuzzer_sys::fuzz_target!(|data: &[u8]| cases::wiegand(data));
