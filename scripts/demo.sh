#!/usr/bin/env bash
# Runs lintel on its embedded default: the simulated 4-door board against the
# reference PUSH server, both on this machine. Ctrl-C stops both.
#
#   scripts/demo.sh            # server on 127.0.0.1:8088, state in ./run/
#   PORT=9000 scripts/demo.sh
#   scripts/demo.sh --smoke    # check the demo works, then stop (CI runs this)
#
# It builds what it runs (the `lintel` firmware and the reference server
# `push-server` of the refserver package), starts the server, waits until it
# listens, then starts the firmware, so the first registration succeeds at once.
#
# While it runs, drive the board from another terminal:
#   cargo run -q -- sim --config run/lintel.toml swipe --reader 1 --card 4660
#   cargo run -q -- sim --config run/lintel.toml state
# and queue commands on the server:
#   curl -d 'CONTROL DEVICE 01010105' "http://127.0.0.1:8088/admin/queue?SN=LNT0000001"
#
# --smoke: server up on a free port, registration, the demo's enrolment, the
# demo card 4660 on reader 1 releases door 1 (`lintel sim ... state`), its
# event 0 reaches the server, both processes stop. Exit 0 = pass, 1 = fail.
# After the build, the whole check is bounded by SMOKE_TIMEOUT seconds
# (default 120); its state lives in a temporary directory that is removed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SN=LNT0000001
SMOKE=0
case "${1:-}" in
    --smoke) SMOKE=1 ;;
    "") ;;
    *) echo "usage: scripts/demo.sh [--smoke]" >&2; exit 2 ;;
esac

echo "demo: building lintel and push-server"
cargo build --quiet --locked -p lintel --bin lintel -p lintel-refserver --bin push-server
LINTEL="$PWD/target/debug/lintel"
SERVER_BIN="$PWD/target/debug/push-server"

if [ "$SMOKE" = 1 ]; then
    RUN="$(mktemp -d)"
    PORT="${PORT:-0}" # 0: any free port, read back from the server's first line
    DEADLINE=$(( SECONDS + ${SMOKE_TIMEOUT:-120} ))
else
    RUN="$PWD/run"
    PORT="${PORT:-8088}"
    DEADLINE=$(( SECONDS + 60 )) # only for waiting on the server's port
fi
mkdir -p "$RUN/data"
SERVER_LOG="$RUN/push-server.log"
LINTEL_LOG="$RUN/lintel.log"
SERVER=""
FIRMWARE=""

stop() {
    # The firmware first (SIGTERM: it stops its threads and exits), then the server.
    for pid in $FIRMWARE $SERVER; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $FIRMWARE $SERVER; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    FIRMWARE=""
    SERVER=""
}
cleanup() {
    stop
    if [ "$SMOKE" = 1 ]; then rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until `grep -E PATTERN FILE` matches, or the deadline; false on timeout.
wait_for() { # FILE PATTERN
    until grep -qE "$2" "$1" 2>/dev/null; do
        if [ "$SECONDS" -ge "$DEADLINE" ]; then return 1; fi
        if [ -n "$SERVER" ] && ! kill -0 "$SERVER" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
}

SCRIPT_ARGS=()
if [ -f scripts/demo-enrol.txt ]; then
    SCRIPT_ARGS=(--script scripts/demo-enrol.txt --script-sn "$SN")
fi
: > "$SERVER_LOG"
if [ "$SMOKE" = 1 ]; then
    "$SERVER_BIN" --listen "127.0.0.1:$PORT" "${SCRIPT_ARGS[@]}" > "$SERVER_LOG" 2>&1 &
else
    # The server's log stays on the terminal (it prints every request and event).
    "$SERVER_BIN" --listen "127.0.0.1:$PORT" "${SCRIPT_ARGS[@]}" > >(tee "$SERVER_LOG") 2>&1 &
fi
SERVER=$!
if ! wait_for "$SERVER_LOG" 'listening on http://'; then
    echo "demo: push-server did not start listening on 127.0.0.1:$PORT" >&2
    cat "$SERVER_LOG" >&2
    exit 1
fi
URL="$(grep -oE 'listening on http://[0-9.:]+' "$SERVER_LOG" | head -n1 | sed 's/^listening on //')"

cat > "$RUN/lintel.toml" <<TOML
# Written by scripts/demo.sh: the simulated board against the local reference server.
[device]
serial = "$SN"
data_dir = "$RUN/data"
board = "$PWD/board-configs/sim-4door.toml"
[server]
url = "$URL"
request_delay_sec = 2
TOML

if [ "$SMOKE" = 0 ]; then
    echo "demo: push-server is listening on $URL; starting lintel (config $RUN/lintel.toml)"
    RUST_LOG="${RUST_LOG:-info}" "$LINTEL" run --config "$RUN/lintel.toml" &
    FIRMWARE=$!
    wait "$FIRMWARE"
    exit $?
fi

# ---- smoke mode ----
step() { echo "smoke: $*"; }
fail() {
    echo "smoke: FAIL: $*"
    echo "--- push-server log (last 40 lines)"; tail -n 40 "$SERVER_LOG" || true
    echo "--- lintel log (last 40 lines)"; tail -n 40 "$LINTEL_LOG" || true
    exit 1
}
step "push-server listening on $URL"
started=$SECONDS
RUST_LOG="${RUST_LOG:-info}" "$LINTEL" run --config "$RUN/lintel.toml" > "$LINTEL_LOG" 2>&1 &
FIRMWARE=$!

wait_for "$SERVER_LOG" "^\[$SN\] POST /iclock/registry.* -> 200" || fail "no registration"
step "registered $(( SECONDS - started )) s after the firmware started"

commands=$(grep -cvE '^[[:space:]]*(#|$)' scripts/demo-enrol.txt)
until [ "$(grep -cE 'result: .*Return=0' "$SERVER_LOG" || true)" -ge "$commands" ]; do
    if grep -qE 'result: .*Return=-' "$SERVER_LOG"; then fail "an enrolment command was refused"; fi
    [ "$SECONDS" -lt "$DEADLINE" ] || fail "the $commands enrolment commands were not all answered Return=0"
    sleep 0.2
done
step "the $commands commands of scripts/demo-enrol.txt answered Return=0"

sim() { "$LINTEL" sim --config "$RUN/lintel.toml" "$@"; }
sim swipe --reader 1 --card 4660 || fail "lintel sim swipe failed"
step "card 4660 presented to reader 1"
until sim state | grep -qE '"locks":\[true,'; do
    [ "$SECONDS" -lt "$DEADLINE" ] || fail "door 1 was not released: $(sim state || true)"
    sleep 0.1
done
step "door 1 released: $(sim state)"

wait_for "$SERVER_LOG" 'EVENT .* door=1 pin=1 card=4660 event=0 ' || fail "event 0 of card 4660 did not reach the server"
step "server got: $(grep -E 'EVENT .* door=1 pin=1 card=4660 event=0 ' "$SERVER_LOG" | head -n1 | sed 's/^ *//')"

stop
step "lintel and push-server stopped"
echo "smoke: PASS ($(( SECONDS - started )) s)"
