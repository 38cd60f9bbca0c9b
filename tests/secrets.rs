//! Secrets stay out of logs and out of other users' reach: every log line
//! passes the firmware's redaction (captured here at trace level, ureq's
//! lines included), the data directory and database are owner-only, and
//! `check-config` warns about an unprotected server URL.

mod common;

use common::*;
use lintel::private_files::mode_of;
use lintel_refserver::ServerConfig;
use std::path::Path;

#[test]
fn no_secret_reaches_the_log() {
    let logs = captured_logs();
    let server = start_server(ServerConfig {
        extra_config: vec![("authKey".into(), "SECRETAK4".into())],
        ..quick_server_config()
    });
    let dir = tempfile::tempdir().unwrap();
    let sync = server.queue_command(
        SN,
        "DATA UPDATE user CardNo=4660\tPin=1\tPassword=SECRETPW1\tName=Ann",
    );
    // A refused SET OPTIONS echoes its value in the error it logs.
    server.queue_command(SN, "SET OPTIONS ComPwd=SECRETCP2,Bogus=1");
    // A line that is no command is logged as it came.
    server.queue_command(SN, "INFO\nPassword=SECRETPW3\tPin=9");
    // Plain text, so nothing but the redaction keeps these out of the log.
    let fw = start_firmware(&config(&server.url(), dir.path(), "encryption = \"off\""));
    assert!(server.wait_for(PATIENCE, |s| s.results(SN).len() >= 3));
    assert!(wait_online(&server));
    fw.stop();
    assert!(server
        .results(SN)
        .iter()
        .any(|r| r.id == sync.to_string() && r.ret == 0));

    let session = server.session(SN).expect("a session");
    let token = server.expected_token(SN).unwrap();
    let secrets = [
        session.registry_code.as_str(),
        session.session_id.as_str(),
        token.as_str(),
        "SECRETPW1",
        "SECRETCP2",
        "SECRETPW3",
        "SECRETAK4",
    ];
    let lines = logs.lines();
    for secret in secrets {
        assert!(secret.len() >= 4, "{secret:?} too short to search for");
        let leaks: Vec<_> = lines.iter().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret} in the log: {leaks:#?}");
    }
    // The redaction did run on lines that carried them.
    assert!(logs.any_line_with(&["ComPwd=\"***\""]), "{lines:#?}");
    assert!(logs.any_line_with(&["authKey=***"]), "{lines:#?}");
}

#[test]
fn the_data_dir_and_database_are_owner_only() {
    let server = start_server(quick_server_config());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state/data");
    // Not through common::config: it would create the directory itself.
    let cfg = lintel::config::Config::from_toml_str(
        &config_text(&server.url(), &data, "encryption = \"off\""),
        Path::new("t.toml"),
        dir.path(),
    )
    .unwrap();
    let fw = start_firmware(&cfg);
    assert!(wait_online(&server));
    fw.stop();
    assert_eq!(mode_of(&data).unwrap(), 0o700);
    for file in ["lintel.db", "lintel.db-wal", "lintel.db-shm"] {
        let path = data.join(file);
        if path.exists() || file == "lintel.db" {
            assert_eq!(mode_of(&path).unwrap(), 0o600, "{file}");
        }
    }
}

#[test]
fn check_config_warns_about_plain_http_without_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let check = |extra: &str| {
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            config_text("http://127.0.0.1:9", &dir.path().join("data"), extra),
        )
        .unwrap();
        let out = binary(env!("CARGO_BIN_EXE_lintel"))
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let warned = check("encryption = \"off\"");
    assert!(
        warned.contains("warning") && warned.contains("http://"),
        "{warned}"
    );
    assert!(check("").is_empty());
}
