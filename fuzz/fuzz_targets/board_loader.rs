//! Board files: any text through the loader the firmware and check-config
//! use, then validation, capabilities and every reader's format. Nothing
//! may panic; a bad file is an error that names what is wrong.
#![no_main]

#[path = "../../tests/fuzz_cases/mod.rs"]
mod cases;

libfuzzer_sys::fuzz_target!(|data: &[u8]| cases::board_loader(data));
