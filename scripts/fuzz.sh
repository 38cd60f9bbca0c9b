#!/usr/bin/env bash
# Coverage-guided fuzzing of lintel's parsers with libFuzzer, on the stable
# toolchain: the fuzz/ crate (libfuzzer-sys) is built with rustc's stable
# sanitizer-coverage flags (-C passes=sancov-module and LLVM's coverage
# options, the instrumentation cargo-fuzz uses without a sanitizer), so no
# nightly compiler and no cargo-fuzz install are needed. libFuzzer itself is
# C++ built by libfuzzer-sys: a C++ compiler must be there (installed with
# apt-get when missing and running as root).
#
#   scripts/fuzz.sh [-t SECONDS] [TARGET...]     run each target SECONDS (default 60)
#   scripts/fuzz.sh --build-only
#   scripts/fuzz.sh --list
#
# Targets (fuzz/fuzz_targets/, bodies in tests/fuzz_cases/mod.rs): getrequest,
# data_records (every DATA table; UPDATE/DELETE/COUNT/QUERY), config_answers
# (7.1/7.4/7.5 key/value answers, upload acknowledgements), wiegand (decoder,
# card formats, edge capture), board_loader, config_loader, upgrade_package.
#
# Each target starts from fuzz/seeds/<target>/ (and board-configs/ for the
# board loader) and keeps what it learns in target/fuzz/corpus/<target>/, so
# longer runs build on earlier ones. Prints "fuzz: <target>: N executions in
# S s" per target and a total. A crash stops that target; its input is saved
# under target/fuzz/artifacts/<target>/ and the run exits 1 after the other
# targets ran. To keep it as a regression test (tests/fuzz_regressions.rs),
# copy the input to fuzz/regressions/<target>/.
# Exit 75: the toolchain (C++ compiler, libFuzzer build) could not be set up.
#
# Environment: FUZZ_SECONDS (default 60), FUZZ_RSS_LIMIT_MB (default 2048),
# FUZZ_TARGET_DIR (default target/fuzz).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGETS_ALL=(getrequest data_records config_answers wiegand board_loader config_loader upgrade_package)
SECONDS_PER="${FUZZ_SECONDS:-60}"
BUILD_ONLY=0
TARGETS=()
while [ $# -gt 0 ]; do
    case "$1" in
        -t) SECONDS_PER="$2"; shift 2 ;;
        --build-only) BUILD_ONLY=1; shift ;;
        --list) printf '%s\n' "${TARGETS_ALL[@]}"; exit 0 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${TARGETS_ALL[@]}")
case "$SECONDS_PER" in ''|*[!0-9]*) echo "fuzz.sh: -t needs whole seconds" >&2; exit 2 ;; esac

log() { echo "fuzz: $*" >&2; }
start=$(date +%s)

if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "no C++ compiler: installing g++"
        (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++) >&2 \
            || { log "cannot install g++"; exit 75; }
    else
        log "libFuzzer needs a C++ compiler (g++ or clang++) and none is installed"
        exit 75
    fi
fi

HOST="$(rustc -vV | sed -n 's/^host: //p')"
TARGET_DIR="${FUZZ_TARGET_DIR:-$ROOT/target/fuzz}"
# The instrumentation of cargo-fuzz (--sanitizer none), all stable options.
# --target keeps it off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
t0=$(date +%s)
if ! cargo build --release --locked --manifest-path fuzz/Cargo.toml --target "$HOST" \
        --target-dir "$TARGET_DIR" --bins; then
    # A compile error in the project's code is the code's failure; the C++
    # part failing to build is the environment's. Tell them apart by asking
    # cargo to build only libfuzzer-sys.
    if ! cargo build --release --locked --manifest-path fuzz/Cargo.toml --target "$HOST" \
            --target-dir "$TARGET_DIR" -p libfuzzer-sys >/dev/null 2>&1; then
        log "libFuzzer (libfuzzer-sys) does not build here"
        exit 75
    fi
    exit 1
fi
log "build took $(( $(date +%s) - t0 )) s"
[ "$BUILD_ONLY" = 1 ] && exit 0

BIN="$TARGET_DIR/$HOST/release"
crashed=()
total=0
for t in "${TARGETS[@]}"; do
    [ -x "$BIN/$t" ] || { log "unknown target $t (try --list)"; exit 2; }
    corpus="$TARGET_DIR/corpus/$t"
    artifacts="$TARGET_DIR/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    extra=("fuzz/seeds/$t")
    [ -d "fuzz/regressions/$t" ] && extra+=("fuzz/regressions/$t")
    [ "$t" = board_loader ] && extra+=(board-configs)
    out="$TARGET_DIR/$t.log"
    rc=0
    "$BIN/$t" -max_total_time="$SECONDS_PER" -rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-2048}" \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$corpus" "${extra[@]}" > "$out" 2>&1 || rc=$?
    runs="$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 \2/p' "$out" | tail -1)"
    if [ -z "$runs" ]; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$out" | tail -1) ?"
    fi
    n="${runs%% *}"; s="${runs##* }"
    files="$(find "$corpus" -type f | wc -l)"
    cov="$(grep -o 'cov: [0-9]*' "$out" | tail -1 | cut -d' ' -f2)"
    echo "fuzz: $t: ${n:-0} executions in ${s:-?} s (coverage ${cov:-?} edges, corpus $files inputs)"
    total=$(( total + ${n:-0} ))
    if [ "$rc" != 0 ]; then
        crashed+=("$t")
        echo "fuzz: $t: FAILED (exit $rc); the failing input and libFuzzer's report:"
        ls -1 "$artifacts" | sed "s|^|fuzz:   $artifacts/|"
        grep -E -A12 'panicked|ERROR: libFuzzer|SUMMARY' "$out" | head -40 | sed 's/^/fuzz:   /'
        echo "fuzz:   reproduce: $BIN/$t <input>"
    fi
done
echo "fuzz: ${#TARGETS[@]} targets, $total executions in all, $(( $(date +%s) - start )) s with the build"
if [ ${#crashed[@]} -gt 0 ]; then
    echo "fuzz: crashes in: ${crashed[*]}"
    exit 1
fi
