//! Upload throughput from a 100,000-event backlog (issue 2).
//!
//! Prints: events/s uploaded by the firmware (a child `lintel run` process)
//! to the reference server on loopback; events/s of a bare loop of the same
//! HTTP POSTs (same bodies, same server) in the same run; their ratio
//! (target >= 0.8); and the firmware's peak RSS (VmHWM, target < 16 MB).
//!
//!     cargo bench --bench upload            # BACKLOG=20000 for a quicker run

use lintel::store::{Store, DB_FILE};
use lintel_refserver::{RefServer, ServerConfig};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SN: &str = "LNT0000001";

fn main() {
    let backlog: u64 = std::env::var("BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    fill_backlog(&data, backlog);
    let bodies = batch_bodies(&data);

    let server = RefServer::start(ServerConfig {
        request_delay: 30,
        error_delay: 1,
        ..ServerConfig::default()
    })
    .expect("server");
    let config = dir.path().join("lintel.toml");
    std::fs::write(
        &config,
        format!(
            "[device]\nserial = \"{SN}\"\ndata_dir = \"{}\"\nboard = \"{}/board-configs/sim-4door.toml\"\n[server]\nurl = \"{}\"\n[log]\nlevel = \"{}\"\n",
            data.display(),
            env!("CARGO_MANIFEST_DIR"),
            server.url(),
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
    let target = usize::try_from(backlog).unwrap_or(usize::MAX);
    let patience = Duration::from_secs(600);
    // The server re-checks these after each request it handles: no polling
    // thread competes with the run being measured.
    // The clock starts when the device has registered: what follows is the
    // configuration download, one poll and the backlog upload.
    server.wait_for(patience, |s| s.registration(SN).is_some());
    let registered = Instant::now();
    server.wait_for(patience, |s| {
        s.uploads(SN)
            .iter()
            .filter(|u| u.accepted && u.table.as_deref() == Some("rtlog"))
            .map(|u| u.records.len())
            .sum::<usize>()
            > target
    });
    let elapsed = started.elapsed();
    let uploading = registered.elapsed();
    // VmHWM is the high-water mark: one reading at the end is the peak.
    let peak_kb = vm_hwm_kb(pid).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    let firmware_rate = backlog as f64 / uploading.as_secs_f64();

    // The bare loop: the same bodies POSTed with a plain ureq agent.
    let token = server.expected_token(SN).expect("device registered");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = format!("{}/iclock/cdata?SN={SN}&table=rtlog", server.url());
    let t0 = Instant::now();
    for body in &bodies {
        agent
            .post(&url)
            .header("Cookie", &format!("token={token}"))
            .send(body.as_bytes())
            .expect("bare POST");
    }
    let bare_rate = backlog as f64 / t0.elapsed().as_secs_f64();

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
        let half = posts.len() / 2;
        (rate(&posts[..half]), rate(&posts[half..]))
    });
    println!("upload backlog: {backlog} events in {} POSTs", bodies.len());
    if let (Some(f), Some(b)) = (fw_rate_server, bare_rate_server) {
        println!(
            "at the server, first to last backlog POST: firmware {f:.0} events/s, bare loop {b:.0} events/s, ratio {:.2} (target >= 0.80)",
            f / b
        );
    }
    println!(
        "firmware: {firmware_rate:.0} events/s from registration to last event ({:.2} s; {:.2} s from process start, including connect and registry)",
        uploading.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!("bare POST loop: {bare_rate:.0} events/s");
    println!(
        "ratio firmware/bare: {:.2} (target >= 0.80)",
        firmware_rate / bare_rate
    );
    println!(
        "firmware peak RSS (VmHWM): {:.1} MB (target < 16 MB)",
        peak_kb as f64 / 1024.0
    );
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

/// The request bodies the firmware will send, batched the same way.
fn batch_bodies(data: &std::path::Path) -> Vec<String> {
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
        if count == 10_000 || current.len() + row.len() + 1 > 2_048_000 - 1024 {
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

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
