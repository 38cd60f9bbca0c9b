#!/usr/bin/env bash
# Runs lintel on its embedded default: the simulated 4-door board against the
# reference PUSH server, both on this machine. Ctrl-C stops both.
#
#   scripts/demo.sh            # server on 127.0.0.1:8088, state in ./run/
#   PORT=9000 scripts/demo.sh
#
# While it runs, drive the board from another terminal:
#   cargo run -q -- sim --config run/lintel.toml swipe --reader 1 --card 4660
#   cargo run -q -- sim --config run/lintel.toml state
# and queue commands on the server:
#   curl -d 'CONTROL DEVICE 01010105' "http://127.0.0.1:8088/admin/queue?SN=LNT0000001"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PORT="${PORT:-8088}"
RUN="$PWD/run"
mkdir -p "$RUN/data"

cargo build --quiet --bins
cat > "$RUN/lintel.toml" <<TOML
# Written by scripts/demo.sh: the simulated board against the local reference server.
[device]
serial = "LNT0000001"
data_dir = "$RUN/data"
board = "$PWD/board-configs/sim-4door.toml"
[server]
url = "http://127.0.0.1:$PORT"
request_delay_sec = 2
TOML

SCRIPT_ARGS=()
if [ -f scripts/demo-enrol.txt ]; then
    SCRIPT_ARGS=(--script scripts/demo-enrol.txt --script-sn LNT0000001)
fi
target/debug/push-server --listen "127.0.0.1:$PORT" "${SCRIPT_ARGS[@]}" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT INT TERM
sleep 0.5
RUST_LOG="${RUST_LOG:-info}" target/debug/lintel run --config "$RUN/lintel.toml"
