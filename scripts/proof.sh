#!/usr/bin/env bash
# The project's own proof (issue 11, item 11), each part printing its figures:
#
#   scripts/proof.sh power-cut   the real binary SIGKILLed at seeded random moments
#                                under swipes, a bulk DATA sync and UPGRADE downloads;
#                                prints kills survived and events checked
#   scripts/proof.sh faults      the real binary against every fault kind of the
#                                reference server; prints the kinds tried, peak RSS
#                                per kind and under the worst answer, log growth
#   scripts/proof.sh fuzz        every libFuzzer target, time-boxed (scripts/fuzz.sh);
#                                prints executions per target
#   scripts/proof.sh all         the three in turn (the default)
#
# Environment:
#   LINTEL_POWER_CUT_KILLS   kills of the power-cut run (default 200; a longer run:
#                            LINTEL_POWER_CUT_KILLS=2000 scripts/proof.sh power-cut)
#   LINTEL_POWER_CUT_SEED    repeat a run's kill moments and traffic (printed by each run)
#   LINTEL_HOSTILE_TIMES     how often each fault fires (default 3)
#   LINTEL_HOSTILE_ONLY      only the fault cases whose name contains this
#   LINTEL_FUZZ_SECONDS      seconds per fuzz target (default 30; scripts/fuzz.sh -t
#                            for longer runs)
# Every part gates: a failed check exits non-zero after the figures are printed.
# The fuzz part exits 75 when its toolchain cannot be set up here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

timed() { # NAME CMD...
    local name="$1"; shift
    local t0 rc=0
    t0=$(date +%s)
    "$@" || rc=$?
    echo "proof: $name took $(( $(date +%s) - t0 )) s (exit $rc)"
    return "$rc"
}

power_cut() {
    LINTEL_POWER_CUT_KILLS="${LINTEL_POWER_CUT_KILLS:-200}" \
        cargo test --locked --test power_cut -- --ignored --nocapture --test-threads=1
}

faults() {
    cargo test --locked --test hostile_server -- --ignored --nocapture --test-threads=1
}

fuzz() {
    scripts/fuzz.sh -t "${LINTEL_FUZZ_SECONDS:-30}"
}

case "${1:-all}" in
    power-cut) timed "power cut" power_cut ;;
    faults) timed "hostile server" faults ;;
    fuzz) timed "fuzzing" fuzz ;;
    all)
        rc=0
        timed "power cut" power_cut || rc=1
        timed "hostile server" faults || rc=1
        timed "fuzzing" fuzz || rc=$(( rc ? rc : $? ))
        exit "$rc" ;;
    *) sed -n '2,24p' "$0" >&2; exit 2 ;;
esac
