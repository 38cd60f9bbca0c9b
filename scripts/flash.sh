#!/usr/bin/env bash
# Build lintel for a board and deploy it over ssh with the layout of install.sh.
#
#   scripts/flash.sh HOST [--target TRIPLE] [--user USER] [--port N] [--config PATH]
#                         [--binary PATH] [--no-build] [--no-restart] [--dry-run]
#
# HOST is the board's address as ssh knows it. The default target is armv7;
# --binary deploys a given file instead of the cross-built one (implies --no-build).
# --dry-run prints every command instead of running it.
#
# On the board this copies the binary, install.sh, the unit file and the board
# configs to /tmp/lintel-flash, runs `sh install.sh --root / --enable` there (which
# replaces the binary in the active slot through a rename) and restarts the service.
# Upgrades in the field go through the UPGRADE command and the A/B slots instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '2,14p' "$0" >&2; exit 2; }

[ $# -ge 1 ] || usage
HOST="$1"; shift
case "$HOST" in -*) usage ;; esac
TARGET=armv7-unknown-linux-gnueabihf
USER_NAME=root
PORT=22
CONFIG=""
BINARY=""
BUILD=1
RESTART=1
DRY_RUN=0
while [ $# -gt 0 ]; do
    case "$1" in
        --target) TARGET="${2:?}"; shift ;;
        --user) USER_NAME="${2:?}"; shift ;;
        --port) PORT="${2:?}"; shift ;;
        --config) CONFIG="${2:?}"; shift ;;
        --binary) BINARY="${2:?}"; BUILD=0; shift ;;
        --no-build) BUILD=0 ;;
        --no-restart) RESTART=0 ;;
        --dry-run) DRY_RUN=1 ;;
        *) usage ;;
    esac
    shift
done

# Print a command; run it unless this is a dry run.
run() {
    printf '+'; printf ' %q' "$@"; printf '\n'
    if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}

if [ "$BUILD" = 1 ]; then
    run "$ROOT/scripts/cross-build.sh" "$TARGET"
fi
if [ -z "$BINARY" ]; then
    BINARY="$ROOT/target/deb-1.85-ship/$TARGET/release/lintel"
fi
if [ "$DRY_RUN" = 0 ] && [ ! -f "$BINARY" ]; then
    echo "flash.sh: binary $BINARY not found (build it or pass --binary)" >&2
    exit 1
fi

DEST="$USER_NAME@$HOST"
STAGE=/tmp/lintel-flash
SSH=(ssh -p "$PORT" -o BatchMode=yes "$DEST")
SCP=(scp -P "$PORT" -o BatchMode=yes)

files=("$BINARY" "$ROOT/scripts/install.sh" "$ROOT/packaging/lintel.service")
install_args="--root / --binary $STAGE/lintel --unit $STAGE/lintel.service --board-configs $STAGE/board-configs --enable"
if [ -n "$CONFIG" ]; then
    files+=("$CONFIG")
    install_args+=" --config $STAGE/$(basename "$CONFIG")"
fi

run "${SSH[@]}" "rm -rf $STAGE && mkdir -p $STAGE/board-configs"
run "${SCP[@]}" "${files[@]}" "$DEST:$STAGE/"
if [ "$(basename "$BINARY")" != lintel ]; then
    run "${SSH[@]}" "mv $STAGE/$(basename "$BINARY") $STAGE/lintel"
fi
run "${SCP[@]}" "$ROOT"/board-configs/*.toml "$DEST:$STAGE/board-configs/"
run "${SSH[@]}" "sh $STAGE/install.sh $install_args"
if [ "$RESTART" = 1 ]; then
    run "${SSH[@]}" "systemctl restart lintel.service && systemctl --no-pager status lintel.service | head -n 5"
fi
if [ "$DRY_RUN" = 1 ]; then
    echo "flash.sh: dry run, nothing was sent to $HOST"
else
    echo "flash.sh: deployed $BINARY to $HOST"
fi
