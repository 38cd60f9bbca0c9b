//! Configuration answers (7.1 init block, 7.4 registry, 7.5 push) and the
//! other short answers the session reads: key/value lines applied to the
//! session's parameters, comma-separated options, TransTimes, versions and
//! upload acknowledgements. Nothing may panic, and the parameters stay in
//! the ranges the session relies on.
#![no_main]

#[path = "../../tests/fuzz_cases/mod.rs"]
mod cases;

libfuzzer_sys::fuzz_target!(|data: &[u8]| cases::config_answers(data));
