//! What hostile answers cost the firmware: its peak RSS (VmHWM, target
//! < 32 MB whatever the server sends) and the log it writes (bounded), for
//! each answer below, each against a fresh `lintel run` child process.
//!
//!     cargo bench --bench hostile_answers        # ROUNDS=3 answers each
//!
//! `LINTEL_BIN=path` measures another build of the firmware (an older one,
//! for the figures before a change).
//!
//! Answers: junk getrequest lines (`OK` + `x` lines, 10 MB and just under
//! the limit), a gzip bomb as the getrequest answer and as the upload
//! acknowledgement (256 KB on the wire), a 2.4 MB configuration answer of
//! 200,000 lines, a 64 MB plain getrequest answer, and a non-UTF-8
//! registry answer.

mod common;

use common::vm_hwm_kb;
use lintel_refserver::{Fault, FaultKind, RefServer, ServerConfig};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SN: &str = "LNT0000001";

struct Answer {
    name: &'static str,
    path: &'static str,
    method: Option<&'static str>,
    body: Vec<u8>,
    gzip: bool,
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

fn junk(lines: usize) -> Vec<u8> {
    let mut body = b"OK\n".to_vec();
    body.reserve(lines * 2);
    for _ in 0..lines {
        body.extend_from_slice(b"x\n");
    }
    body
}

fn answers() -> Vec<Answer> {
    let mut config = String::new();
    for i in 0..200_000 {
        config.push_str(&format!("Key{i:06}=1\n"));
    }
    let mut ack = b"OK".to_vec();
    ack.resize(256 << 20, b' ');
    vec![
        Answer {
            name: "none (baseline)",
            path: "/nowhere",
            method: None,
            body: Vec::new(),
            gzip: false,
        },
        Answer {
            name: "getrequest OK + 5,000,000 junk lines (10 MB)",
            path: "/iclock/getrequest",
            method: None,
            body: junk(5_000_000),
            gzip: false,
        },
        Answer {
            name: "getrequest OK + 2,000,000 junk lines (4 MB, under the limit)",
            path: "/iclock/getrequest",
            method: None,
            body: junk(2_000_000),
            gzip: false,
        },
        Answer {
            name: "getrequest gzip bomb (256 MB decoded)",
            path: "/iclock/getrequest",
            method: None,
            body: gzip(&vec![b'\n'; 256 << 20]),
            gzip: true,
        },
        Answer {
            name: "upload acknowledgement gzip bomb (256 MB decoded)",
            path: "/iclock/cdata",
            method: Some("POST"),
            body: gzip(&ack),
            gzip: true,
        },
        Answer {
            name: "configuration answer of 200,000 lines (2.4 MB)",
            path: "/iclock/push",
            method: None,
            body: config.into_bytes(),
            gzip: false,
        },
        Answer {
            name: "getrequest of 64 MB",
            path: "/iclock/getrequest",
            method: None,
            body: vec![b'y'; 64 << 20],
            gzip: false,
        },
        Answer {
            name: "registry answer not UTF-8",
            path: "/iclock/registry",
            method: None,
            body: b"RegistryCode=\xd5\xc5\xff\xfe\x01\n".to_vec(),
            gzip: false,
        },
    ]
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!("hostile answers, {rounds} of each, each against a fresh firmware process:");
    let mut worst = 0.0f64;
    for answer in answers() {
        let (peak_mb, lines, bytes, served) = run(&answer, rounds);
        worst = worst.max(peak_mb);
        println!(
            "  {:<62} peak RSS {:>5.1} MB   log {:>4} lines {:>7} bytes   ({} answered)",
            answer.name, peak_mb, lines, bytes, served
        );
    }
    println!("  worst peak RSS: {worst:.1} MB (target < 32 MB)");
}

/// Runs the firmware until the server has given `rounds` hostile answers
/// (and one more request after them), then reads its peak RSS and log.
fn run(answer: &Answer, rounds: usize) -> (f64, usize, usize, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = RefServer::start(ServerConfig {
        error_delay: 1,
        request_delay: 1,
        timeout_sec: 10,
        ..ServerConfig::default()
    })
    .expect("server");
    let mut headers = Vec::new();
    if answer.gzip {
        headers.push(("Content-Encoding".to_owned(), "gzip".to_owned()));
    }
    let mut fault = Fault::new(FaultKind::ReplaceBody {
        status: None,
        body: answer.body.clone(),
        headers,
    })
    .on_path(answer.path)
    .times(u32::try_from(rounds).unwrap_or(u32::MAX));
    if let Some(m) = answer.method {
        fault = fault.on_method(m);
    }
    server.set_fault(fault);
    let config = dir.path().join("lintel.toml");
    std::fs::write(
        &config,
        format!(
            "[device]\nserial = \"{SN}\"\ndata_dir = \"{}\"\nboard = \"{}/board-configs/sim-4door.toml\"\n[server]\nurl = \"{}\"\nerror_delay_sec = 1\nrequest_delay_sec = 1\n[log]\nlevel = \"info\"\n",
            data.display(),
            env!("CARGO_MANIFEST_DIR"),
            server.url(),
        ),
    )
    .expect("config");
    let log_path = dir.path().join("lintel.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let bin = std::env::var("LINTEL_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lintel").into());
    let mut child = Command::new(bin)
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("lintel starts");
    let pid = child.id();
    let faulty =
        |s: &lintel_refserver::State| s.requests().iter().filter(|r| r.fault.is_some()).count();
    // Every hostile answer given, and a request after the last one: it was
    // handled (the baseline: as many polls).
    server.wait_for(Duration::from_secs(300), |s| {
        let given = if answer.path == "/nowhere" {
            s.requests()
                .iter()
                .filter(|r| r.path == "/iclock/getrequest")
                .count()
        } else {
            faulty(s)
        };
        given >= rounds && s.requests().last().is_some_and(|r| r.fault.is_none())
    });
    // Whatever the last request was, let its handling finish.
    let settle = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(100));
    }
    let peak_kb = vm_hwm_kb(pid).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    let served = server.with_state(faulty);
    let text = std::fs::read(&log_path).unwrap_or_default();
    let lines = text.iter().filter(|b| **b == b'\n').count();
    #[allow(clippy::cast_precision_loss)]
    let peak_mb = peak_kb as f64 / 1024.0;
    (peak_mb, lines, text.len(), served)
}
