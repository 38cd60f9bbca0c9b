//! The firmware's config file: any text through the loader `run` and
//! `check-config` use. Nothing may panic; a bad file is an error.
#![no_main]

#[path = "../../tests/fuzz_cases/mod.rs"]
mod cases;

libfuzzer_sys::fuzz_target!(|data: &[u8]| cases::config_loader(data));
