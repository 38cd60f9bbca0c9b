//! Upload throughput from a 100,000-event backlog (issues 2 and 10).
//!
//! Prints: events/s uploaded by the firmware (a child `lintel run` process)
//! to the reference server on loopback; events/s of a bare loop of the same
//! HTTP POSTs (same bodies and query, same server, one keep-alive agent, in
//! a child process too) in the same run; their ratio (target >= 0.8), also
//! by quarter of the backlog; and the firmware's peak RSS
//! (VmHWM, target < 16 MB). By default each rtlog POST carries one event, as
//! the firmware sends them; `BATCH_RTLOG=1` turns on `[server] batch_rtlog`
//! and measures multi-record POSTs instead. The firmware runs twice, plain
//! and with encrypted PUSH (docs/encrypted-push.md: every body sealed with
//! AES-256-GCM after an RSA exchange); the bare loop is plain.
//!
//!     cargo bench --bench upload            # BACKLOG=20000 for a quicker run
//!     BATCH_RTLOG=1 cargo bench --bench upload

mod common;

use common::vm_hwm_kb;
use lintel::store::{Store, DB_FILE};
use lintel_refserver::{Encryption, RefServer, ServerConfig};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SN: &str = "LNT0000001";

/// Set (to the input file) when this bench runs as the bare POST loop.
const BARE_LOOP_ENV: &str = "UPLOAD_BENCH_BARE_LOOP";

/// The bare loop: POSTs each body of the input file (server URL, token,
/// then the bodies, each ended by NUL) with a plain ureq agent over one
/// keep-alive connection, and prints the seconds it took. The agent sets
/// no timeout: with one, ureq looks the host up on a new thread for every
/// request (the firmware's resolver answers IP literals at once,
/// session/resolve.rs). Each answer is read to its end, as the firmware
/// does, so the connection goes back to the pool for the next POST.
fn bare_loop(input: &std::path::Path) {
    let data = std::fs::read(input).expect("bare loop input");
    let text = String::from_utf8(data).expect("UTF-8 input");
    let mut parts = text.splitn(3, '\n');
    let base = parts.next().expect("url").to_owned();
    let token = parts.next().expect("token").to_owned();
    let bodies: Vec<&str> = parts
        .next()
        .unwrap_or("")
        .split('\0')
        .filter(|b| !b.is_empty())
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let cookie = format!("token={token}");
    let t0 = Instant::now();
    for body in bodies {
        // The query the firmware sends: `count=` with the records.
        let url = format!(
            "{base}/iclock/cdata?SN={SN}&table=rtlog&count={}",
            body.lines().count()
        );
        agent
            .post(&url)
            .header("Cookie", &cookie)
            .send(body.as_bytes())
            .expect("bare POST")
            .into_body()
            .read_to_string()
            .expect("bare POST answer");
    }
    println!("{}", t0.elapsed().as_secs_f64());
}

fn main() {
    if let Some(input) = std::env::var_os(BARE_LOOP_ENV) {
        bare_loop(std::path::Path::new(&input));
        return;
    }
    let backlog: u64 = std::env::var("BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let batched = std::env::var("BATCH_RTLOG").is_ok_and(|v| v == "1");
    let plain = run(backlog, batched, false);
    let sealed = run(backlog, batched, true);
    println!(
        "upload backlog: {backlog} events in {} POSTs ({})",
        plain.posts,
        if batched {
            "batch_rtlog = true: several records per POST"
        } else {
            "one record per POST, the default"
        }
    );
    if let (Some(f), Some(b)) = (plain.server_rate, plain.bare_server_rate) {
        println!(
            "at the server, first to last backlog POST: firmware {f:.0} events/s, bare loop {b:.0} events/s, ratio {:.2} (target >= 0.80)",
            f / b
        );
    }
    if let Some(e) = sealed.server_rate {
        println!("at the server, first to last backlog POST, encrypted: firmware {e:.0} events/s");
    }
    for (name, r) in [("plain", &plain), ("encrypted", &sealed)] {
        println!(
            "firmware ({name}): {:.0} events/s from registration to last event ({:.2} s; {:.2} s from process start, including connect and registry); peak RSS (VmHWM) {:.1} MB (target < 16 MB)",
            r.firmware_rate,
            r.uploading.as_secs_f64(),
            r.elapsed.as_secs_f64(),
            r.peak_kb as f64 / 1024.0
        );
    }
    println!("bare POST loop: {:.0} events/s", plain.bare_rate);
    println!(
        "ratio firmware/bare: {:.2} plain, {:.2} encrypted (target >= 0.80)",
        plain.firmware_rate / plain.bare_rate,
        sealed.firmware_rate / plain.bare_rate
    );
}

struct Run {
    posts: usize,
    firmware_rate: f64,
    uploading: Duration,
    elapsed: Duration,
    peak_kb: u64,
    server_rate: Option<f64>,
    bare_rate: f64,
    bare_server_rate: Option<f64>,
}

/// One firmware run over the backlog, and (plain only) the bare loop.
fn run(backlog: u64, batched: bool, encrypted: bool) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    fill_backlog(&data, backlog);
    let bodies = batch_bodies(&data, if batched { 10_000 } else { 1 });
    if encrypted {
        // The device key exists already, as on a device past its first start.
        let pem = lintel::crypto::keystore::generate_pem().expect("device key");
        lintel::private_files::write_private_file(
            &data.join(lintel::crypto::keystore::KEY_FILE),
            pem.as_bytes(),
        )
        .expect("key file");
    }

    let server = RefServer::start(ServerConfig {
        request_delay: 30,
        error_delay: 1,
        encryption: if encrypted {
            Encryption::Required
        } else {
            Encryption::Off
        },
        ..ServerConfig::default()
    })
    .expect("server");
    let config = dir.path().join("lintel.toml");
    std::fs::write(
        &config,
        format!(
            "[device]\nserial = \"{SN}\"\ndata_dir = \"{}\"\nboard = \"{}/board-configs/sim-4door.toml\"\n[server]\nurl = \"{}\"\nbatch_rtlog = {batched}\nencryption = \"{}\"\n[log]\nlevel = \"{}\"\n",
            data.display(),
            env!("CARGO_MANIFEST_DIR"),
            server.url(),
            if encrypted { "required" } else { "off" },
            std::env::var("LOG").unwrap_or_else(|_| "warn".into())
        ),
    )
    .expect("config");

    // The firmware, as a separate process so its RSS is its own.
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lintel"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .spawn()
        .expect("lintel starts");
    let pid = child.id();
    let patience = Duration::from_secs(600);
    // The server re-checks these after each request it handles: no polling
    // thread competes with the run being measured.
    // The clock starts when the device has registered: what follows is the
    // configuration download, one poll and the backlog upload.
    server.wait_for(patience, |s| s.registration(SN).is_some());
    let registered = Instant::now();
    // Done when the last backlog event (index = backlog) has been taken.
    // Checked every 20 ms, scanning only the uploads that are new since the
    // last look: a check after every request (RefServer::wait_for) woke
    // this thread 100,000 times during the run it measures, and summing
    // every upload each time was quadratic under the server's lock.
    let last = format!("\tindex={backlog}");
    let mut scanned = 0;
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        let done = server.with_state(|s| {
            let uploads = s.uploads(SN);
            let found = uploads[scanned.min(uploads.len())..].iter().any(|u| {
                u.accepted
                    && u.table.as_deref() == Some("rtlog")
                    && String::from_utf8_lossy(&u.raw)
                        .lines()
                        .any(|l| l.ends_with(&last))
            });
            scanned = uploads.len();
            found
        });
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    let uploading = registered.elapsed();
    // VmHWM is the high-water mark: one reading at the end is the peak.
    let peak_kb = vm_hwm_kb(pid).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    let firmware_rate = backlog as f64 / uploading.as_secs_f64();

    // The bare loop (plain runs only): the same bodies, from a process of
    // its own (this bench run again) as the firmware is, so both pay the
    // same cost of talking to the server in this process; see `bare_loop`.
    let bare_rate = if encrypted {
        0.0
    } else {
        bare_run(&server, dir.path(), &bodies, backlog)
    };

    // The same yardstick for both, taken at the server: records per second
    // between the first and the last rtlog POST that carried backlog events
    // (the first POST's records are not counted: its duration is unknown).
    let (fw_rate_server, bare_rate_server) = server.with_state(|s| {
        let posts: Vec<(std::time::Instant, usize)> = s
            .requests()
            .iter()
            .filter(|r| {
                r.path == "/iclock/cdata"
                    && r.query_value("table") == Some("rtlog")
                    && r.status == 200
            })
            .map(|r| {
                let n = String::from_utf8_lossy(&r.body)
                    .lines()
                    .filter(|l| l.contains("\tevent=27\t"))
                    .count();
                (r.handled_at, n)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let rate = |posts: &[(std::time::Instant, usize)]| {
            let (first, rest) = posts.split_first()?;
            let last = rest.last()?;
            let n: usize = rest.iter().map(|(_, n)| n).sum();
            Some(n as f64 / last.0.duration_since(first.0).as_secs_f64())
        };
        // Without a bare loop (encrypted runs) every POST is the firmware's.
        let half = if encrypted {
            posts.len()
        } else {
            posts.len() / 2
        };
        // Both rates through the backlog, by quarter: a rate that falls as
        // the backlog drains (or as the server's records grow) shows here.
        let quarters = |posts: &[(std::time::Instant, usize)]| {
            posts
                .chunks((posts.len() / 4).max(1))
                .filter_map(|c| rate(c).map(|r| format!("{r:.0}")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "events/s by quarter of the backlog{}: firmware {}; bare loop {}",
            if encrypted { " (encrypted)" } else { "" },
            quarters(&posts[..half]),
            quarters(&posts[half..])
        );
        (rate(&posts[..half]), rate(&posts[half..]))
    });
    Run {
        posts: bodies.len(),
        firmware_rate,
        uploading,
        elapsed,
        peak_kb,
        server_rate: fw_rate_server,
        bare_rate,
        bare_server_rate: bare_rate_server,
    }
}

/// Runs the bare loop over `bodies` in a child process; its events/s.
fn bare_run(server: &RefServer, dir: &std::path::Path, bodies: &[String], backlog: u64) -> f64 {
    let token = server.expected_token(SN).expect("device registered");
    let spec = dir.join("bare-loop");
    let mut file = format!("{}\n{token}\n", server.url()).into_bytes();
    for body in bodies {
        file.extend_from_slice(body.as_bytes());
        file.push(0);
    }
    std::fs::write(&spec, file).expect("bare loop input");
    let out = Command::new(std::env::current_exe().expect("bench path"))
        .env(BARE_LOOP_ENV, &spec)
        .output()
        .expect("bare loop runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bare_secs: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("bare loop prints its seconds");
    backlog as f64 / bare_secs
}

fn fill_backlog(data: &std::path::Path, n: u64) {
    let mut store = Store::open(data).expect("store");
    let tx = store.conn_mut().transaction().expect("tx");
    {
        let mut ev = tx
            .prepare("INSERT INTO event_log(time, pin, cardno, eventaddr, event, verifytype) VALUES (?1, ?2, ?3, 1, 27, '4')")
            .expect("prepare");
        let mut out = tx
            .prepare("INSERT INTO outbox(channel, body) VALUES ('rtlog', ?1)")
            .expect("prepare");
        for i in 0..n {
            let time = "2024-05-01 08:00:00";
            ev.execute(rusqlite::params![
                time,
                (1000 + i).to_string(),
                (5000 + i).to_string()
            ])
            .expect("insert");
            let idx = tx.last_insert_rowid();
            let line = format!("time={time}\tpin={}\tcardno={}\tsitecode=0\tlinkid=0\teventaddr=1\tevent=27\tinoutstatus=0\tverifytype=4\tindex={idx}", 1000 + i, 5000 + i);
            out.execute([line]).expect("insert");
        }
    }
    tx.commit().expect("commit");
}

/// The request bodies the firmware will send, batched the same way (at most
/// `per_post` records each).
fn batch_bodies(data: &std::path::Path, per_post: usize) -> Vec<String> {
    let store = Store::open_file(&data.join(DB_FILE)).expect("store");
    let mut stmt = store
        .conn()
        .prepare("SELECT body FROM outbox ORDER BY id")
        .expect("prepare");
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    // outbox_batch takes at most 10,000 rows and MaxPackageSize - 1 KiB bytes.
    let mut bodies = Vec::new();
    let mut current = String::new();
    let mut count = 0;
    for row in rows {
        if count == per_post || current.len() + row.len() + 1 > 2_048_000 - 1024 {
            bodies.push(std::mem::take(&mut current));
            count = 0;
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&row);
        count += 1;
    }
    if !current.is_empty() {
        bodies.push(current);
    }
    bodies
}
