//! DATA commands (12.1) through the executor on an in-memory database: the
//! first byte picks the table (every table of the schema), the second the
//! verb (UPDATE, DELETE, COUNT, QUERY), the rest is the records or
//! conditions. Nothing may panic, and a command that fails must leave the
//! table as it was (all or nothing).
#![no_main]

#[path = "../../tests/fuzz_cases/mod.rs"]
mod cases;

libfuzzer_sys::fuzz_target!(|data: &[u8]| cases::data_records(data));
