#!/usr/bin/env bash
# Print the stripped release binary size of lintel for armv7 and aarch64 (target:
# under 4 MB, i.e. 4,000,000 bytes, each) and the peak RSS of the armv7 binary
# under qemu-user running the demo scenario: the reference server (a host build)
# enrols the users of scripts/demo-enrol.txt, the armv7 firmware runs on the
# simulated 4-door board, and cards are presented with the host's `lintel sim`.
#
#   scripts/size-report.sh [--no-build] [-- ARGS...]
#
# With ARGS, the peak RSS of `lintel ARGS` is measured instead of the demo.
# Peak RSS is GNU time's "Maximum resident set size" of the qemu-arm-static process,
# so it includes qemu's own few MB: an upper bound on what the board will see.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1
RSS_ARGS=()
if [ -n "${LINTEL_RSS_ARGS:-}" ]; then read -r -a RSS_ARGS <<<"$LINTEL_RSS_ARGS"; fi
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --) shift; RSS_ARGS=("$@"); break ;;
        *) echo "usage: $0 [--no-build] [-- lintel args]" >&2; exit 2 ;;
    esac
    shift
done

LIMIT=4000000
TARGET_DIR="${LINTEL_SHIP_TARGET_DIR:-$ROOT/target/deb-1.85-ship}"
status=0

for target in armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu; do
    if [ "$BUILD" = 1 ]; then
        "$ROOT/scripts/cross-build.sh" "$target" >&2
    fi
    bin="$TARGET_DIR/$target/release/lintel"
    if [ ! -f "$bin" ]; then
        echo "size-report: $bin missing (run without --no-build)" >&2
        exit 1
    fi
    # The release profile strips already; strip a copy again so the figure is the
    # stripped size even if the profile changes.
    case "$target" in
        armv7*) strip_tool=arm-linux-gnueabihf-strip ;;
        aarch64*) strip_tool=aarch64-linux-gnu-strip ;;
    esac
    tmp="$(mktemp)"
    cp "$bin" "$tmp"
    if command -v "$strip_tool" >/dev/null; then "$strip_tool" "$tmp"; fi
    size=$(stat -c %s "$tmp")
    rm -f "$tmp"
    verdict=ok
    if [ "$size" -ge "$LIMIT" ]; then verdict="OVER 4 MB"; status=1; fi
    printf 'size %-32s %9d bytes (%s MiB) [%s]\n' "$target" "$size" \
        "$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')" "$verdict"
done

armv7="$TARGET_DIR/armv7-unknown-linux-gnueabihf/release/lintel"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ ${#RSS_ARGS[@]} -gt 0 ]; then
    set +e
    /usr/bin/time -v -o "$work/time" qemu-arm-static -L /usr/arm-linux-gnueabihf "$armv7" "${RSS_ARGS[@]}" >/dev/null 2>&1
    rc=$?
    set -e
    what="lintel ${RSS_ARGS[*]}"
else
    # The demo scenario.
    (cd "$ROOT" && cargo build --quiet -p lintel-refserver --bin push-server && cargo build --quiet --bin lintel)
    port=$((20000 + RANDOM % 20000))
    "$ROOT/target/debug/push-server" --listen "127.0.0.1:$port" --request-delay 2 \
        --script "$ROOT/scripts/demo-enrol.txt" --script-sn LNT0000001 >"$work/server.log" 2>&1 &
    server=$!
    cat >"$work/lintel.toml" <<TOML
[device]
serial = "LNT0000001"
data_dir = "$work/data"
board = "$ROOT/board-configs/sim-4door.toml"
[server]
url = "http://127.0.0.1:$port"
request_delay_sec = 2
TOML
    /usr/bin/time -v -o "$work/time" qemu-arm-static -L /usr/arm-linux-gnueabihf \
        "$armv7" run --config "$work/lintel.toml" >"$work/fw.log" 2>&1 &
    timer=$!
    sim() { "$ROOT/target/debug/lintel" sim --config "$work/lintel.toml" "$@" >/dev/null 2>&1 || true; }
    # Wait for registration and enrolment, then present cards and press buttons.
    enrol=$(grep -c '^[A-Z]' "$ROOT/scripts/demo-enrol.txt" || true)
    for _ in $(seq 1 120); do
        done_cmds=$(grep -c "/iclock/devicecmd" "$work/server.log" 2>/dev/null || true)
        [ "${done_cmds:-0}" -ge "$enrol" ] && break
        sleep 0.5
    done
    sleep 3
    for card in 4660 4661 4662 9999 4660; do sim swipe --reader 1 --card "$card"; sleep 1; done
    sim button --door 1; sleep 1
    sim sensor --door 1 open; sleep 1; sim sensor --door 1 closed
    sleep 6
    pkill -TERM -P "$timer" qemu-arm-static 2>/dev/null || true
    set +e
    wait "$timer"
    rc=$?
    set -e
    kill "$server" 2>/dev/null || true
    events=$(grep -c "EVENT" "$work/server.log" || true)
    what="demo scenario ($events events at the server)"
fi
rss_kb=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$work/time")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$work/time")
printf 'peak-rss armv7 (qemu-user) %s: %s KiB, wall %s, exit %d\n' \
    "$what" "${rss_kb:-?}" "${wall:-?}" "$rc"
exit "$status"
