//! Every input saved for the fuzz targets, replayed through the same target
//! functions in the normal test run: the seed corpora under `fuzz/seeds/`
//! and every crash a fuzzing run found, kept under `fuzz/regressions/` with
//! the fix (scripts/fuzz.sh says where a new crash input is; copy it there).

mod fuzz_cases;

use std::path::Path;

fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let mut replayed = 0;
    for (name, target) in fuzz_cases::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            let data = std::fs::read(&path).expect("input");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} panics on {}", path.display());
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn seed_inputs_pass_every_target() {
    assert!(replay("seeds") > 0, "the seed corpora are there");
}

#[test]
fn inputs_that_once_crashed_a_target_pass_it_now() {
    replay("regressions");
}
