//! A getrequest answer (11.1): any bytes, decoded as the session decodes
//! them, split into commands (CmdFormat 0 and 1, multi-record) and each
//! classified. Nothing may panic.
#![no_main]

#[path = "../../tests/fuzz_cases/mod.rs"]
mod cases;

libfuzzer_sys::fuzz_target!(|data: &[u8]| cases::getrequest(data));
