//! The upgrade package reader: any bytes as an `emfw.cfg` (plain or gzipped
//! tar with manifest, signature and files), checked and unpacked into a
//! staging directory with the running firmware's policy and limits, and the
//! manifest parser on its own. Nothing may panic, nothing may be written
//! outside the staging directory.
#![no_main]

#[path = "../../tests/fuzz_cases/mod.rs"]
mod cases;

libfuzzer_sys::fuzz_target!(|data: &[u8]| cases::upgrade_package(data));
