//! `lintel check-config` and `lintel run` through the real binary: both run
//! the same validation, so what one refuses the other refuses, with an error
//! naming the key, quickly, without echoing huge values and without a panic.

mod common;

use common::{config_text, PATIENCE};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

/// What a run of the binary ended with.
struct Outcome {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `lintel <verb> --config <config>`; a run that has not ended within
/// PATIENCE (a FIFO read blocking, a firmware that started) is killed and
/// reported as a failure of the test.
fn lintel(verb: &str, config: &Path, dir: &Path) -> Outcome {
    let out_path = dir.join(format!("{verb}.out"));
    let err_path = dir.join(format!("{verb}.err"));
    let child = common::binary(env!("CARGO_BIN_EXE_lintel"))
        .arg(verb)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("lintel starts");
    let mut child = common::Running(child);
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "lintel {verb} --config {} did not end",
            config.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    Outcome {
        success: status.success(),
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned(),
    }
}

/// A config file in `dir` for a server nobody listens on, with `edit`
/// applied to its text.
fn config_with(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let path = dir.join("lintel.toml");
    let text = config_text("http://127.0.0.1:9", &dir.join("data"), "");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// Both commands refuse `config`, naming `key`, in a short message.
fn both_refuse(config: &Path, dir: &Path, key: &str) {
    for verb in ["check-config", "run"] {
        let out = lintel(verb, config, dir);
        assert!(!out.success, "{verb} accepted it: {}", out.stdout);
        assert!(out.stderr.contains(key), "{verb}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{verb}: {}", out.stderr);
        assert!(
            out.stderr.len() < 2000,
            "{verb}: {} bytes",
            out.stderr.len()
        );
    }
}

#[test]
fn a_good_config_passes() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), |t| t);
    let out = lintel("check-config", &config, dir.path());
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("ok"), "{}", out.stdout);
    assert!(
        !dir.path().join("data").exists(),
        "checking creates nothing"
    );
}

#[test]
fn an_error_delay_beyond_any_clock_is_refused_before_it_can_panic() {
    for value in ["18446744073709551615", "9223372036854775807", "0"] {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with(dir.path(), |t| {
            t.replace("error_delay_sec = 1", &format!("error_delay_sec = {value}"))
        });
        both_refuse(&config, dir.path(), "server.error_delay_sec");
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), |t| {
        t.replace(
            "request_delay_sec = 1",
            "request_delay_sec = 18446744073709551615",
        )
    });
    both_refuse(&config, dir.path(), "server.request_delay_sec");
}

#[test]
fn a_data_dir_that_is_not_a_writable_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = config_with(dir.path(), |t| {
        t.replace(&format!("\"{}\"", data.display()), "\"/dev/null\"")
    });
    both_refuse(&config, dir.path(), "device.data_dir");
}

#[test]
fn a_port_out_of_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), |t| {
        t.replace("http://127.0.0.1:9", "http://127.0.0.1:99999")
    });
    both_refuse(&config, dir.path(), "server.url");
}

#[test]
fn a_public_key_that_is_not_a_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "this is not a key\n").unwrap();
    let config = config_with(dir.path(), |t| {
        format!("{t}[upgrade]\npublic_key = \"{}\"\n", key.display())
    });
    both_refuse(&config, dir.path(), "upgrade.public_key");
    // A device file as the key is not read at all.
    let config = config_with(dir.path(), |t| {
        format!("{t}[upgrade]\npublic_key = \"/dev/zero\"\n")
    });
    both_refuse(&config, dir.path(), "upgrade.public_key");
}

#[test]
fn devices_and_fifos_are_not_read_as_config() {
    let dir = tempfile::tempdir().unwrap();
    both_refuse(Path::new("/dev/zero"), dir.path(), "a device");
    let fifo = dir.path().join("fifo.toml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        both_refuse(&fifo, dir.path(), "a FIFO");
    } else {
        eprintln!("mkfifo is not available; the FIFO case is skipped");
    }
}

#[test]
fn a_huge_value_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let huge = "x".repeat(50 * 1024 * 1024);
    let config = config_with(dir.path(), |t| t.replace("LNT0000001", &huge));
    both_refuse(&config, dir.path(), "larger than");
    // Within the size limit, the value is still cut short.
    let long = "y".repeat(30_000);
    let config = config_with(dir.path(), |t| t.replace("LNT0000001", &long));
    both_refuse(&config, dir.path(), "device.serial");
}
