//! The fuzz targets' bodies, one function per target: `fuzz/fuzz_targets/*.rs`
//! call them under libFuzzer, and tests/fuzz_regressions.rs replays every
//! saved input (seeds and found crashes) through them in the normal test run.
#![allow(dead_code)]

use chrono::TimeZone;
use lintel::clock::ManualClock;
use lintel::commands::data::schema::TABLES;
use lintel::commands::data::DataExecutor;
use lintel::commands::{CommandContext, CommandExecutor};
use lintel::config::Config;
use lintel::platform::RecordingPlatform;
use lintel::protocol::command::Command;
use lintel::protocol::kv::KeyValues;
use lintel::protocol::upload::classify;
use lintel::protocol::{decode_body, parse_getrequest, ProtocolVersion};
use lintel::session::link::OfflineLink;
use lintel::session::params::{parse_trans_times, ServerParams};
use lintel::store::Store;
use lintel::upgrade::package::{verify_and_unpack, InstallPolicy, Manifest};
use lintel::upgrade::space::FreeSpace;
use lintel_hal::board::BoardConfig;
use lintel_hal::event::Timestamp;
use lintel_hal::wiegand::capture::{CaptureConfig, DataLine, WiegandCapture};
use lintel_hal::wiegand::format::{decode, decode_bits, Format, FormatTable};
use lintel_hal::wiegand::WiegandBits;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn bits_of(bytes: &[u8], n: usize) -> WiegandBits {
    let bools: Vec<bool> = (0..n)
        .map(|i| bytes.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1))
        .collect();
    WiegandBits::from_bools(&bools)
}

struct Plenty;

impl FreeSpace for Plenty {
    fn available_bytes(&self, _: &Path) -> std::io::Result<u64> {
        Ok(1 << 30)
    }
}

fn workdir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// A getrequest answer (11.1): any bytes, decoded as the session decodes
/// them, split into commands (CmdFormat 0 and 1, multi-record) and each
/// classified. Nothing may panic.
pub fn getrequest(data: &[u8]) {
    let text = decode_body(data);
    let (commands, _issues) = parse_getrequest(&text);
    for line in &commands {
        let command = Command::classify(line);
        let _ = command.result_name();
        let _ = command.table_and_body();
    }
}

/// DATA commands (12.1) through the executor on an in-memory database: the
/// first byte picks the table (every table of the schema), the second the
/// verb (UPDATE, DELETE, COUNT, QUERY), the rest is the records or
/// conditions. Nothing may panic, and a command that fails must leave the
/// table as it was (all or nothing).
pub fn data_records(data: &[u8]) {
    let [t, v, rest @ ..] = data else { return };
    let table = &TABLES[usize::from(*t) % TABLES.len()];
    let verb = ["UPDATE", "DELETE", "COUNT", "QUERY"][usize::from(*v) % 4];
    let body = String::from_utf8_lossy(rest);
    let line = match verb {
        "QUERY" => format!(
            "C:1:DATA QUERY tablename={},fielddesc=*,filter={body}",
            table.name
        ),
        _ => format!("C:1:DATA {verb} {} {body}", table.name),
    };
    STORE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (store, uses) = slot.get_or_insert_with(|| (fresh_store(), 0));
        *uses += 1;
        if *uses > STORE_REUSE {
            // A new database now and then keeps the state a run builds small.
            *store = fresh_store();
            *uses = 0;
        }
        // A failed command logs itself to the error log (10.12), so only the
        // tables commands write are held to "unchanged on failure".
        let guarded = if table.writable { table.sql } else { "" };
        run_data_command(store, &line, guarded);
    });
}

/// Iterations that share one database: migrating a new one per input
/// would cost most of the time.
const STORE_REUSE: u32 = 200;

thread_local! {
    static STORE: std::cell::RefCell<Option<(Store, u32)>> = const { std::cell::RefCell::new(None) };
}

fn fresh_store() -> Store {
    let mut store = Store::open_file(Path::new(":memory:")).expect("in-memory store");
    // One known row, so deletes and failed updates have something to spoil.
    run_data_command(
        &mut store,
        "C:0:DATA UPDATE user Pin=1\tName=A\tCardNo=123",
        "users",
    );
    store
}

/// Runs a command line through the DATA executor as the session would; a
/// command that fails must leave its table as it was (none: no check).
fn run_data_command(store: &mut Store, line: &str, sql_table: &str) {
    let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap());
    let platform = RecordingPlatform::new();
    let mut link = OfflineLink {
        serial: "FUZZ".into(),
    };
    let mut exec = DataExecutor::new();
    let (commands, _) = parse_getrequest(line);
    for c in commands {
        let command = Command::classify(&c);
        let before = (!sql_table.is_empty()).then(|| table_digest(store, sql_table));
        let mut ctx = CommandContext {
            store,
            link: &mut link,
            clock: &clock,
            platform: &platform,
        };
        let out = exec.execute(&command, &mut ctx);
        if let (true, Some(before)) = (out.ret < 0, before) {
            assert_eq!(
                table_digest(store, sql_table),
                before,
                "a failed command changed {sql_table}"
            );
        }
    }
}

/// Row count and the sum of rowids of a table: what a half-applied
/// command would change.
fn table_digest(store: &Store, sql_table: &str) -> (i64, i64) {
    store
        .conn()
        .query_row(
            &format!("SELECT COUNT(*), COALESCE(SUM(rowid), 0) FROM {sql_table}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap_or((-1, -1))
}

/// Configuration answers (7.1 init block, 7.4 registry, 7.5 push) and the
/// other short answers the session reads: key/value lines applied to the
/// session's parameters, comma-separated options, TransTimes, versions and
/// upload acknowledgements. Nothing may panic, and the parameters stay in
/// the ranges the session relies on.
pub fn config_answers(data: &[u8]) {
    let text = decode_body(data);
    let kv = KeyValues::parse_lines(&text);
    let mut params = ServerParams::defaults(
        Duration::from_secs(30),
        Duration::from_secs(2),
        Duration::from_secs(10),
    );
    params.apply(&kv);
    // The session adds these to `Instant::now()`: they must stay sane.
    assert!(params.error_delay <= Duration::from_secs(3600));
    assert!(params.request_delay <= Duration::from_secs(3600));
    assert!(params.timeout <= Duration::from_secs(600));
    assert!(params.trans_interval <= Duration::from_secs(24 * 3600));
    let _ = params.negotiated();
    for (_, value) in kv.iter() {
        let _ = parse_trans_times(value);
        let _ = ProtocolVersion::parse(value);
    }
    let _ = KeyValues::parse_comma(&text).to_comma_line();
    let _ = classify(&text);
}

/// The Wiegand decoder: raw frames against the standard formats, frames
/// against a card format from the server (the layout text is fuzzed too),
/// and edge streams through the capture that turns D0/D1 pulses into
/// frames. Nothing may panic.
pub fn wiegand(data: &[u8]) {
    let [mode, n, rest @ ..] = data else { return };
    match mode % 3 {
        0 => {
            let bits = bits_of(rest, usize::from(*n));
            let _ = decode_bits(&bits, &FormatTable::standard());
        }
        1 => {
            // `<card format text>\0<frame bytes>`
            let split = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            let text = String::from_utf8_lossy(&rest[..split]);
            if let Ok(format) = Format::parse_card_format(&text) {
                let frame = rest.get(split + 1..).unwrap_or_default();
                let bits = bits_of(frame, usize::from(*n));
                let table = FormatTable::single(format.clone());
                let _ = decode_bits(&bits, &table);
                let _ = format.parity_ok(&bits);
                let _ = format.encode(u64::from(*n) * 977, Some(u32::from(*n)));
            }
            let _ = Format::by_name_or_card_format(&text);
        }
        _ => {
            // Edges: each 3 bytes = line/level, then a delay in µs.
            let mut capture = WiegandCapture::new(CaptureConfig::default());
            let start = Instant::now();
            let mut t_ns: u64 = 1_000_000;
            let table = FormatTable::standard();
            for edge in rest.chunks(3) {
                let flags = edge[0];
                let delay = u64::from(u16::from_le_bytes([
                    *edge.get(1).unwrap_or(&0),
                    *edge.get(2).unwrap_or(&0),
                ]));
                t_ns += delay * 1_000;
                let line = if flags & 1 == 0 {
                    DataLine::D0
                } else {
                    DataLine::D1
                };
                let at = Timestamp {
                    at: start,
                    mono_ns: t_ns,
                    from_kernel: flags & 4 != 0,
                };
                capture.on_edge(line, flags & 2 != 0, at);
                if let Some(frame) = capture.poll(t_ns) {
                    let _ = decode(&frame, &table);
                }
            }
            if let Some(frame) = capture.poll(t_ns.saturating_add(1_000_000_000)) {
                let _ = decode(&frame, &table);
            }
        }
    }
}

/// Board files: any text through the loader the firmware and check-config
/// use, then validation, capabilities and every reader's format. Nothing
/// may panic; a bad file is an error that names what is wrong.
pub fn board_loader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(board) = BoardConfig::from_toml_str(text) {
        let _ = board.validate();
        let _ = board.capabilities().registration_fields();
        for number in 0..=8u8 {
            if let Some(reader) = board.reader(number) {
                let _ = board.reader_format(reader);
            }
            let _ = board.readers_of_door(number).count();
            let _ = board.door(number);
        }
    }
}

/// The firmware's config file: any text through the loader `run` and
/// `check-config` use. Nothing may panic; a bad file is an error.
pub fn config_loader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::from_toml_str(text, Path::new("fuzz.toml"), Path::new("/fuzz-base"))
    {
        let _ = config.server_base();
    }
}

/// The upgrade package reader: any bytes as an `emfw.cfg` (plain or gzipped
/// tar with manifest, signature and files), checked and unpacked into a
/// staging directory with the running firmware's policy and limits, and the
/// manifest parser on its own. Nothing may panic, nothing may be written
/// outside the staging directory.
pub fn upgrade_package(data: &[u8]) {
    let _ = Manifest::parse(data);
    let dir = workdir();
    let package = dir.join("emfw.cfg");
    let staging = dir.join("staging");
    std::fs::write(&package, data).expect("package file");
    let _ = verify_and_unpack(
        &package,
        &staging,
        &InstallPolicy::for_running_firmware(),
        &Plenty,
    );
    // Whatever the package said, only the package and the staging directory exist.
    for entry in std::fs::read_dir(dir).expect("work dir") {
        let name = entry.expect("entry").file_name();
        assert!(
            name == "emfw.cfg" || name == "staging",
            "{name:?} written outside the staging dir"
        );
    }
}

/// A target: any bytes in, a panic on a defect.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/Cargo.toml` names its binaries.
pub const TARGETS: &[(&str, Target)] = &[
    ("getrequest", getrequest),
    ("data_records", data_records),
    ("config_answers", config_answers),
    ("wiegand", wiegand),
    ("board_loader", board_loader),
    ("config_loader", config_loader),
    ("upgrade_package", upgrade_package),
];
