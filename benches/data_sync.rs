//! Bulk synchronisation, end to end: 100,000 `user` and 100,000
//! `userauthorize` records queued on the reference server as DATA UPDATE
//! commands of 1,000 records each, fetched by the firmware (a child
//! process, so its peak RSS is its own) over getrequest, applied, and
//! answered. Beside it, in the same run, a bare rusqlite prepared-insert
//! loop writes the same rows into the same schema with the same pragmas
//! and the same 1,000-row transactions.
//!
//! Prints figures only; nothing here asserts a speed.
//!
//! `cargo bench --bench data_sync` (env `DATA_SYNC_PER_POLL` sets how many
//! commands one getrequest answer carries; default 40).

mod common;

use common::vm_hwm_kb;
use lintel::clock::DeviceClock;
use lintel::commands::executors::{install, ExecutorEnv};
use lintel::commands::{CommandContext, Dispatcher};
use lintel::platform::RecordingPlatform;
use lintel::protocol::parse_getrequest;
use lintel::session::link::OfflineLink;
use lintel::store::Store;
use lintel_refserver::{Encryption, RefServer, ServerConfig};
use rusqlite::params;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SN: &str = "BENCH00001";
const RECORDS: usize = 100_000;
const PER_COMMAND: usize = 1_000;

fn user_record(i: usize) -> String {
    format!(
        "CardNo={}\tPin={i}\tPassword=\tGroup=1\tStartTime=0\tEndTime=0\tName=User {i}\tPrivilege=0",
        1_000_000 + i
    )
}

fn authorize_record(i: usize) -> String {
    format!("Pin={i}\tAuthorizeTimezoneId=1\tAuthorizeDoorId=15\tDevID=1")
}

fn commands() -> Vec<String> {
    let mut out = Vec::new();
    for (table, make) in [
        ("user", user_record as fn(usize) -> String),
        ("userauthorize", authorize_record),
    ] {
        for start in (0..RECORDS).step_by(PER_COMMAND) {
            let body: Vec<String> = (start..start + PER_COMMAND).map(make).collect();
            out.push(format!("DATA UPDATE {table} {}", body.join("\n")));
        }
    }
    out
}

/// The same rows through prepared inserts, 1,000 per transaction.
fn bare_rusqlite() -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("store");
    let conn = store.conn_mut();
    let started = Instant::now();
    for start in (0..RECORDS).step_by(PER_COMMAND) {
        let tx = conn.transaction().expect("tx");
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO users(cardno, pin, password, grp, start_raw, end_raw, name, privilege)
                     VALUES (?1, ?2, '', 1, '0', '0', ?3, 0)",
                )
                .expect("prepare");
            for i in start..start + PER_COMMAND {
                stmt.execute(params![
                    (1_000_000 + i).to_string(),
                    i.to_string(),
                    format!("User {i}")
                ])
                .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    for start in (0..RECORDS).step_by(PER_COMMAND) {
        let tx = conn.transaction().expect("tx");
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO user_authorizations(pin, timezone_id, door_mask, dev_id)
                     VALUES (?1, 1, 15, 1)",
                )
                .expect("prepare");
            for i in start..start + PER_COMMAND {
                stmt.execute(params![i.to_string()]).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    started.elapsed()
}

/// The same commands through the dispatcher in this process: parsing and
/// applying only, no HTTP and no result bookkeeping.
fn in_process(cmds: &[String]) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("store");
    let mut dispatcher = Dispatcher::new();
    install(
        &mut dispatcher,
        &ExecutorEnv {
            data_dir: dir.path().to_owned(),
            serial: SN.into(),
            ..Default::default()
        },
    );
    let clock = DeviceClock::new(0);
    let platform = RecordingPlatform::new();
    let mut link = OfflineLink { serial: SN.into() };
    let started = Instant::now();
    for (n, text) in cmds.iter().enumerate() {
        let (lines, _) = parse_getrequest(&format!("C:{n}:{text}"));
        let command = lintel::protocol::command::Command::classify(&lines[0]);
        let mut ctx = CommandContext {
            store: &mut store,
            link: &mut link,
            clock: &clock,
            platform: &platform,
        };
        let out = dispatcher.execute(&command, &mut ctx);
        assert_eq!(out.ret, 0);
    }
    started.elapsed()
}

/// CPU time of every thread of a process so far (schedstat, nanoseconds).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut ns = 0u64;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

fn main() {
    let per_poll: usize = std::env::var("DATA_SYNC_PER_POLL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let cmds = commands();
    let total_cmds = cmds.len();
    let apply_only = in_process(&cmds);
    let baseline = bare_rusqlite();
    let rows = 2 * RECORDS;
    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!("data_sync: {rows} records as {total_cmds} commands of {PER_COMMAND}, {per_poll} commands per getrequest");
    let mut applied_rates = Vec::new();
    // Plain, then encrypted PUSH (docs/encrypted-push.md): every getrequest
    // answer and result sealed with AES-256-GCM.
    for encrypted in [false, true] {
        let run = sync(&cmds, per_poll, encrypted);
        let name = if encrypted { "encrypted" } else { "plain" };
        println!("  {name}:");
        if !run.done {
            println!(
                "    INCOMPLETE: {} of {total_cmds} results after the wait",
                run.results
            );
        }
        println!("    results: {} ({} not 0)", run.results, run.failed);
        println!(
            "    end to end (spawn to last result): {:.2} s, {:.0} records/s",
            run.e2e.as_secs_f64(),
            rate(run.e2e)
        );
        println!(
            "    after registration (polls, apply, results): {:.2} s, {:.0} records/s",
            run.applied.as_secs_f64(),
            rate(run.applied)
        );
        if let Some(cpu) = run.cpu_used {
            println!(
                "    firmware CPU time in that span (all threads): {cpu:.2} s ({:.0}% of it)",
                100.0 * cpu / run.applied.as_secs_f64()
            );
        }
        match run.hwm {
            Some(kb) => println!(
                "    firmware peak RSS (VmHWM): {:.1} MB (target < 32 MB)",
                kb as f64 / 1024.0
            ),
            None => println!("    firmware peak RSS: unavailable (/proc not readable)"),
        }
        applied_rates.push(rate(run.applied));
    }
    println!(
        "  in-process dispatcher, same commands (parse + apply, no HTTP): {:.2} s, {:.0} records/s",
        apply_only.as_secs_f64(),
        rate(apply_only)
    );
    println!(
        "  bare rusqlite prepared inserts, same rows: {:.2} s, {:.0} records/s",
        baseline.as_secs_f64(),
        rate(baseline)
    );
    println!(
        "  ratio (after registration / bare): {:.2} plain, {:.2} encrypted (target >= 0.5)",
        applied_rates[0] / rate(baseline),
        applied_rates[1] / rate(baseline)
    );
}

struct SyncRun {
    done: bool,
    results: usize,
    failed: usize,
    e2e: Duration,
    applied: Duration,
    cpu_used: Option<f64>,
    hwm: Option<u64>,
}

/// One sync of `cmds` through the firmware binary against the server.
fn sync(cmds: &[String], per_poll: usize, encrypted: bool) -> SyncRun {
    let total_cmds = cmds.len();
    let server = RefServer::start(ServerConfig {
        error_delay: 1,
        request_delay: 1,
        timeout_sec: 20,
        max_commands_per_poll: Some(per_poll),
        encryption: if encrypted {
            Encryption::Required
        } else {
            Encryption::Off
        },
        ..ServerConfig::default()
    })
    .expect("reference server");
    for c in cmds {
        server.queue_command(SN, c);
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    if encrypted {
        // The device key exists already, as on a device past its first start.
        let pem = lintel::crypto::keystore::generate_pem().expect("device key");
        lintel::private_files::create_private_dir(&data).expect("data dir");
        lintel::private_files::write_private_file(
            &data.join(lintel::crypto::keystore::KEY_FILE),
            pem.as_bytes(),
        )
        .expect("key file");
    }
    let board =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("board-configs/sim-4door.toml");
    let config = dir.path().join("lintel.toml");
    std::fs::write(
        &config,
        format!(
            "[device]\nserial = \"{SN}\"\ndata_dir = \"{}\"\nboard = \"{}\"\n[server]\nurl = \"{}\"\nerror_delay_sec = 1\nrequest_delay_sec = 1\ntimeout_sec = 20\nencryption = \"{}\"\n[log]\nlevel = \"{}\"\n",
            data.display(),
            board.display(),
            server.url(),
            if encrypted { "required" } else { "off" },
            std::env::var("LOG").unwrap_or_else(|_| "warn".into())
        ),
    )
    .expect("config");

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lintel"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("firmware starts");
    let pid = child.id();
    let registered = server.wait_for(Duration::from_secs(60), |s| s.registration(SN).is_some());
    let connected_at = Instant::now();
    let cpu_at_registration = cpu_seconds(pid);
    let done = registered
        && server.wait_for(Duration::from_secs(900), |s| {
            s.results(SN).len() >= total_cmds
        });
    let finished = Instant::now();
    let hwm = vm_hwm_kb(pid);
    let cpu_used = cpu_seconds(pid)
        .zip(cpu_at_registration)
        .map(|(end, start)| end - start);
    // Only the process this benchmark started, by its id.
    let _ = child.kill();
    let _ = child.wait();
    let results = server.results(SN);
    SyncRun {
        done,
        results: results.len(),
        failed: results.iter().filter(|r| r.ret != 0).count(),
        e2e: finished - started,
        applied: finished - connected_at,
        cpu_used,
        hwm,
    }
}
