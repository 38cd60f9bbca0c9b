//! Embeds the firmware's build date, the floor below which a server's time
//! is not believed (src/clock/sync.rs). Reproducible: the same source gives
//! the same date. `SOURCE_DATE_EPOCH` wins (the reproducible-builds
//! convention); else the date of the git commit being built; else a fixed
//! date, which is only a lower, less strict floor.

use std::path::Path;
use std::process::Command;

/// 2025-06-01 00:00:00 UTC: used when neither source is available.
const FALLBACK_EPOCH: i64 = 1_748_736_000;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let (epoch, source) = match from_env() {
        Some(e) => (e, "SOURCE_DATE_EPOCH"),
        None => match from_git() {
            Some(e) => (e, "git commit date"),
            None => (FALLBACK_EPOCH, "fallback"),
        },
    };
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let text = format!(
        "/// Unix time of the firmware's build date ({source}).\npub const BUILD_EPOCH: i64 = {epoch};\n"
    );
    std::fs::write(Path::new(&out).join("build_epoch.rs"), text).expect("OUT_DIR is writable");
}

fn from_env() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()?
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|e| *e > 0)
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_owned())
}

fn from_git() -> Option<i64> {
    let epoch = git(&["log", "-1", "--format=%ct"])?.parse::<i64>().ok()?;
    // Build again when HEAD moves: a new commit has a new date.
    if let Some(dir) = git(&["rev-parse", "--path-format=absolute", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
    }
    if let (Some(common), Some(head)) = (
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        for path in [format!("{common}/{head}"), format!("{common}/packed-refs")] {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    Some(epoch)
}
