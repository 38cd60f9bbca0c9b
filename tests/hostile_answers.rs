//! Hostile answers: what the session reads of an answer is bounded by what
//! the answer is (acknowledgement, configuration, commands), a gzip body is
//! bounded after decoding, junk lines cost one log line per answer, and a
//! registry answer that is not printable ASCII is refused, not kept.
//!
//! The tests share one counting logger, so they run one at a time.

mod common;

use common::*;
use lintel::clock::ManualClock;
use lintel::session::link::{Connection, LinkError, ServerLink};
use lintel::session::transport::{HttpReply, Method, TransportError, UreqTransport};
use lintel::store::Store;
use lintel_refserver::{Fault, FaultKind, ServerConfig};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::Duration;

/// Counts the firmware's log lines at the level a deployed device writes
/// (info and above) and their bytes.
struct CountingLogger {
    lines: AtomicUsize,
    bytes: AtomicUsize,
}

static LOGGER: CountingLogger = CountingLogger {
    lines: AtomicUsize::new(0),
    bytes: AtomicUsize::new(0),
};
static INSTALL: Once = Once::new();
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl log::Log for CountingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info && metadata.target().starts_with("lintel")
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.lines.fetch_add(1, Ordering::Relaxed);
            let text = record.args().to_string();
            self.bytes.fetch_add(text.len(), Ordering::Relaxed);
        }
    }
    fn flush(&self) {}
}

/// Takes the log for this test and zeroes its counters.
fn exclusive_log() -> MutexGuard<'static, ()> {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    INSTALL.call_once(|| {
        log::set_logger(&LOGGER).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Info);
    });
    LOGGER.lines.store(0, Ordering::Relaxed);
    LOGGER.bytes.store(0, Ordering::Relaxed);
    guard
}

fn replace_body(body: Vec<u8>, headers: &[(&str, &str)]) -> FaultKind {
    FaultKind::ReplaceBody {
        status: None,
        body,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A link to `server` as the session builds it, without a session around it.
fn connection(server: &lintel_refserver::RefServer) -> Connection {
    Connection::new(
        Box::new(UreqTransport::with_ca_file(std::path::Path::new(""))),
        &server.url(),
        SN,
        Arc::new(ManualClock::new(chrono::Utc::now())),
        Duration::from_secs(10),
        1 << 20,
    )
}

/// The answer was refused as too large, or what was kept is at most `limit`.
fn assert_bounded(reply: Result<HttpReply, LinkError>, limit: usize) {
    match reply {
        Err(LinkError::Transport(TransportError::TooLarge { .. })) => {}
        Ok(r) => assert!(
            r.body.len() <= limit,
            "{} bytes kept of an answer (limit {limit})",
            r.body.len()
        ),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn lenient_server() -> lintel_refserver::RefServer {
    start_server(ServerConfig {
        token_check: false,
        ..quick_server_config()
    })
}

#[test]
fn junk_getrequest_lines_cost_one_log_line_per_answer() {
    let _log = exclusive_log();
    let server = start_server(quick_server_config());
    let mut junk = b"OK\n".to_vec();
    for _ in 0..50_000 {
        junk.extend_from_slice(b"x\n");
    }
    server.set_fault(
        Fault::new(replace_body(junk, &[]))
            .on_path("/iclock/getrequest")
            .times(3),
    );
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    // Three junk answers, then a normal poll: the third has been handled.
    let handled = server.wait_for(PATIENCE, |s| {
        let polls: Vec<_> = s
            .requests_from(SN)
            .filter(|r| r.path == "/iclock/getrequest")
            .collect();
        polls.iter().filter(|r| r.fault.is_some()).count() == 3
            && polls.last().is_some_and(|r| r.fault.is_none())
    });
    fw.stop();
    assert!(handled, "three junk answers and a normal poll");
    let lines = LOGGER.lines.load(Ordering::Relaxed);
    let bytes = LOGGER.bytes.load(Ordering::Relaxed);
    // 150,000 junk lines; start-up and connection take a dozen lines.
    assert!(lines < 60, "{lines} log lines for three junk answers");
    assert!(bytes < 16_000, "{bytes} log bytes for three junk answers");
}

#[test]
fn a_gzip_bomb_as_an_upload_acknowledgement_is_not_inflated() {
    let _log = exclusive_log();
    let server = lenient_server();
    let mut ack = b"OK".to_vec();
    ack.resize(16 << 20, b' ');
    server.set_fault(
        Fault::new(replace_body(gzip(&ack), &[("Content-Encoding", "gzip")]))
            .on_path("/iclock/cdata")
            .on_method("POST"),
    );
    let mut conn = connection(&server);
    let pq = format!("/iclock/cdata?SN={SN}&table=rtlog");
    let reply = conn.post(&pq, b"time=2024-05-01 08:00:00\tpin=1\tevent=0\tindex=1");
    assert_bounded(reply, 64 * 1024);
}

#[test]
fn a_huge_configuration_answer_is_refused() {
    let _log = exclusive_log();
    let server = lenient_server();
    // 200,000 lines, 2.4 MB: no configuration is a thousandth of that.
    let mut answer = String::new();
    for i in 0..200_000 {
        answer.push_str(&format!("Key{i:06}=1\n"));
    }
    server.set_fault(Fault::new(replace_body(answer.into_bytes(), &[])).on_path("/iclock/push"));
    let mut conn = connection(&server);
    let reply = conn.request(Method::Post, &format!("/iclock/push?SN={SN}"), b"");
    assert_bounded(reply, 64 * 1024);
}

#[test]
fn a_gzip_bomb_as_a_getrequest_answer_is_bounded_after_decoding() {
    let _log = exclusive_log();
    let server = lenient_server();
    let bomb = gzip(&vec![b'\n'; 16 << 20]);
    assert!(bomb.len() < 64 * 1024, "{} bytes on the wire", bomb.len());
    server.set_fault(
        Fault::new(replace_body(bomb, &[("Content-Encoding", "gzip")]))
            .on_path("/iclock/getrequest"),
    );
    let mut conn = connection(&server);
    let reply = conn.request(Method::Get, &format!("/iclock/getrequest?SN={SN}"), b"");
    // One DATA command may be 4 MB (Appendix 1, -106); a little more is read.
    assert_bounded(reply, 5 * 1024 * 1024);
}

/// Starts the firmware against a server whose registry answers `body`, waits
/// for `attempts` registrations and returns what the device stored.
fn registry_answer_kept(body: &[u8], attempts: usize) -> (Option<String>, usize) {
    let server = start_server(quick_server_config());
    server.set_fault(Fault::new(replace_body(body.to_vec(), &[])).on_path("/iclock/registry"));
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    let reconnected = server.wait_for(PATIENCE, |s| {
        s.requests_from(SN)
            .filter(|r| r.path == "/iclock/registry")
            .count()
            >= attempts
    });
    fw.stop();
    assert!(
        reconnected,
        "the device registers again after a refused answer"
    );
    let pushes = server
        .requests()
        .iter()
        .filter(|r| r.path == "/iclock/push")
        .count();
    let store = Store::open(dir.path()).unwrap();
    (store.option("RegistryCode").unwrap(), pushes)
}

/// Nothing, or what the server's own init block gave after the reconnect
/// (the reference server knows the device by then): never the bad answer.
fn assert_printable(kept: Option<String>) {
    assert!(
        kept.as_deref()
            .is_none_or(|c| c.len() <= 128 && c.bytes().all(|b| b.is_ascii_graphic())),
        "{kept:?}"
    );
}

#[test]
fn a_non_utf8_registry_code_is_refused_not_stored() {
    let _log = exclusive_log();
    let (kept, pushes) = registry_answer_kept(b"RegistryCode=\xd5\xc5\xff\xfe\x01x\n", 2);
    assert_printable(kept);
    assert_eq!(
        pushes, 0,
        "no session is built on a refused registry answer"
    );
    assert!(LOGGER.lines.load(Ordering::Relaxed) > 0);
}

#[test]
fn an_overlong_or_control_character_registry_code_is_refused() {
    let _log = exclusive_log();
    let long = format!("RegistryCode={}\n", "A".repeat(10_000));
    let (kept, pushes) = registry_answer_kept(long.as_bytes(), 2);
    assert_printable(kept);
    assert_eq!(pushes, 0);
    let (kept, _) = registry_answer_kept(b"RegistryCode=ab\x07cd\nSessionID=S1\n", 2);
    assert_printable(kept);
}

#[test]
fn a_session_id_that_is_not_printable_ascii_is_refused() {
    let _log = exclusive_log();
    let server = start_server(quick_server_config());
    server.set_fault(
        Fault::new(replace_body(
            b"ServerVersion=3.1.2\nSessionID=\xff\xfe\x00\n".to_vec(),
            &[],
        ))
        .on_path("/iclock/push"),
    );
    let dir = tempfile::tempdir().unwrap();
    let fw = start_firmware(&config(&server.url(), dir.path(), ""));
    let retried = server.wait_for(PATIENCE, |s| {
        s.requests_from(SN)
            .filter(|r| r.path == "/iclock/push")
            .count()
            >= 2
    });
    fw.stop();
    assert!(
        retried,
        "the device connects again after a refused push answer"
    );
    let store = Store::open(dir.path()).unwrap();
    assert_printable(store.option("SessionID").unwrap());
    let polled = server
        .requests()
        .iter()
        .any(|r| r.path == "/iclock/getrequest");
    assert!(!polled, "no polling with a token from a refused SessionID");
}

#[test]
fn a_download_gets_no_more_than_its_caller_allows() {
    let _log = exclusive_log();
    let server = lenient_server();
    server.serve_file("/big.jpg", vec![7u8; 100_000]);
    let mut conn = connection(&server);
    let mut sink = Vec::new();
    let r = conn.download("/big.jpg", &[], 10_000, &mut sink);
    assert!(
        matches!(
            r,
            Err(LinkError::Transport(TransportError::TooLarge { .. }))
        ),
        "{r:?}"
    );
    assert!(
        sink.len() <= 10_000,
        "{} bytes reached the sink",
        sink.len()
    );
    // Decoded bytes count: a compressed file is bounded the same way.
    server.set_fault(
        Fault::new(replace_body(
            gzip(&vec![0u8; 8 << 20]),
            &[("Content-Encoding", "gzip")],
        ))
        .on_path("/bomb.jpg"),
    );
    server.serve_file("/bomb.jpg", b"x".to_vec());
    let mut sink = Vec::new();
    let r = conn.download("/bomb.jpg", &[], 10_000, &mut sink);
    assert!(r.is_err() && sink.len() <= 10_000, "{} bytes", sink.len());
    let mut sink = Vec::new();
    assert!(conn.download("/big.jpg", &[], 100_000, &mut sink).is_ok());
    assert_eq!(sink.len(), 100_000);
}

#[test]
fn an_error_page_never_becomes_downloaded_content() {
    let _log = exclusive_log();
    let server = lenient_server();
    server.set_fault(Fault::new(FaultKind::Status(503)).on_path("/fw/emfw.cfg"));
    let mut conn = connection(&server);
    let mut sink = Vec::new();
    let reply = conn
        .download("/fw/emfw.cfg", &[], 1 << 20, &mut sink)
        .unwrap();
    assert_eq!(reply.status, 503);
    assert!(sink.is_empty(), "{} bytes of an error page", sink.len());
}
