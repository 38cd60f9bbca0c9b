#!/usr/bin/env bash
# True power loss: the store's commits on a real ext4 disk in an arm64 VM (the rig of
# scripts/qemu-gpio-test.sh), the VM killed with SIGKILL mid-traffic, so whatever the
# guest kernel had not yet written to its disk is gone, as in a power cut.
#
#   scripts/qemu-power-loss.sh
#
# Each boot of the VM runs tests/power_loss_guest.rs (built static for aarch64) on a
# virtio-blk ext4 disk: the first boot writes (events through Store::log_event, each a
# synced commit; outbox acknowledgements, compaction, pruning and command results
# through the unsynced commits); every later boot first checks the database as the
# power loss left it against what the earlier boots printed, then writes on; the last
# boot only checks. The VM is killed at a seeded random moment after its writer printed
# its first committed event. See tests/power_loss_guest.rs for what is checked.
#
# Why the unsynced writes are really lost: a commit made with synchronous=NORMAL is a
# write() into the WAL that only the guest kernel's page cache holds (ext4, default
# options, data=ordered; the guest writes dirty pages back after 5-30 s); SIGKILL ends
# qemu and with it the guest's RAM, so those pages never reach the disk. A synced
# commit's fsync makes the guest write them and send a flush first. The disk is
# attached with cache=none: O_DIRECT on the host, so the image holds exactly the writes
# the guest's block layer had completed when qemu died, with no host cache between,
# and a volatile write cache is announced to the guest, so its fsync really flushes.
# (cache=writeback would lose the same guest writes, since the host lives on; it is
# the fallback where the image's file system refuses O_DIRECT.)
# What this does not model: a disk's own volatile cache losing or reordering writes the
# guest already completed but did not flush (the host does not die, so they persist),
# nor torn sectors.
#
# Environment: LINTEL_POWER_LOSS_KILLS (power losses, default 5),
# LINTEL_POWER_LOSS_SEED (repeats a run's kill moments; printed),
# LINTEL_POWER_LOSS_TIMEOUT (seconds per boot, default 240), QEMU_DISK_CACHE (default
# none), QEMU_GPIO_DIR (cache shared with qemu-gpio-test.sh), LINTEL_SKIP_INSTALL=1.
# Exits non-zero when a check fails, 75 when the kernel, modules or toolchain cannot be
# set up on this machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET=aarch64-unknown-linux-gnu
DEB_RUST_VERSION="1.85.0+dfsg3-1~deb12u3"   # keep in step with scripts/cross-build.sh
export QEMU_GPIO_DIR="${QEMU_GPIO_DIR:-$ROOT/target/qemu-gpio}"
KILLS="${LINTEL_POWER_LOSS_KILLS:-5}"
SEED="${LINTEL_POWER_LOSS_SEED:-$(( $(date +%s) % 1000000 ))}"
TIMEOUT="${LINTEL_POWER_LOSS_TIMEOUT:-240}"
FLAVOUR=arm64
# Loaded in this order: ext4's dependencies first; crc32c_generic because ext4 and
# jbd2 ask the crypto API for crc32c (metadata_csum) and the initramfs has no modprobe.
MODULES="crypto/crc32c_generic lib/crc16 fs/mbcache fs/jbd2/jbd2 fs/ext4/ext4
drivers/virtio/virtio_mmio drivers/block/virtio_blk"
case "$KILLS$SEED" in *[!0-9]*) echo "qemu-power-loss: kills and seed are numbers" >&2; exit 2 ;; esac
[ "$KILLS" -ge 1 ] || { echo "qemu-power-loss: LINTEL_POWER_LOSS_KILLS must be at least 1" >&2; exit 2; }

start=$(date +%s)
log() { echo "qemu-power-loss: $* (+$(( $(date +%s) - start )) s)" >&2; }

# toolchain_ready, install_toolchain: the recipe both qemu scripts share.
# shellcheck source=scripts/lib/deb-rust-aarch64.sh
. "$ROOT/scripts/lib/deb-rust-aarch64.sh"

# The block and ext4 modules of the kernel setup.sh cached (Debian builds them as
# modules), from the linux-image package of that exact ABI.
MODDIR="$QEMU_GPIO_DIR/kernel/power-loss"
modules_ready() {
    local m
    [ "$(cat "$MODDIR/kabi" 2>/dev/null)" = "$(cat "$QEMU_GPIO_DIR/kabi" 2>/dev/null)" ] || return 1
    for m in $MODULES; do [ -f "$MODDIR/$(basename "$m").ko" ] || return 1; done
}
fetch_modules() {
    [ "$(id -u)" = 0 ] || { log "fetching the kernel's ext4 and virtio-blk modules needs root (apt-get)"; return 1; }
    local abi pkg ver d m paths=()
    abi="$(cat "$QEMU_GPIO_DIR/kabi")"
    pkg="linux-image-$abi-$FLAVOUR"
    ver="$(apt-cache show --no-all-versions "$pkg:arm64" | sed -n 's/^Version: //p' | head -1)"
    [ -n "$ver" ] || { log "no $pkg:arm64 in the apt lists"; return 1; }
    d="$(mktemp -d)"
    chmod 755 "$d"   # apt-get download drops privileges to _apt
    (cd "$d" && apt-get download "$pkg:arm64=$ver") || { rm -rf "$d"; return 1; }
    for m in $MODULES; do paths+=("./lib/modules/$abi-$FLAVOUR/kernel/$m.ko"); done
    dpkg --fsys-tarfile "$d"/*.deb | tar -x -C "$d" "${paths[@]}" || { rm -rf "$d"; return 1; }
    rm -rf "$MODDIR" && mkdir -p "$MODDIR"
    for m in $MODULES; do
        aarch64-linux-gnu-strip --strip-debug -o "$MODDIR/$(basename "$m").ko" \
            "$d/lib/modules/$abi-$FLAVOUR/kernel/$m.ko"
    done
    rm -rf "$d"
    echo "$abi" > "$MODDIR/kabi"
}

cd "$ROOT"
if [ "${LINTEL_SKIP_INSTALL:-0}" != 1 ]; then
    scripts/qemu-gpio/setup.sh || { log "setup failed"; exit 75; }
    set -E
    trap 'log "toolchain setup failed"; exit 75' ERR
    toolchain_ready || install_toolchain
    command -v mkfs.ext4 >/dev/null || apt-get install -y --no-install-recommends e2fsprogs
    trap - ERR
    set +E
    modules_ready || fetch_modules || { log "could not fetch the kernel's block modules"; exit 75; }
fi
modules_ready || { log "kernel modules missing in $MODDIR"; exit 75; }
command -v mkfs.ext4 >/dev/null || { log "mkfs.ext4 (e2fsprogs) is missing"; exit 75; }
log "setup ready"

# The build of qemu-gpio-test.sh, in its target dir (crt-static: the initramfs has no
# shared libraries).
use_static_aarch64_build
WORK="$QEMU_GPIO_DIR/power-loss"
rm -rf "$WORK" && mkdir -p "$WORK"
JSON="$WORK/build.json"
/usr/bin/cargo test --locked -p lintel --test power_loss_guest --target "$TARGET" \
    --no-run --message-format=json-render-diagnostics > "$JSON"
BIN="$(grep -o '"executable":"[^"]*/power_loss_guest-[^"]*"' "$JSON" | tail -1 | cut -d'"' -f4 || true)"
[ -n "$BIN" ] && [ -f "$BIN" ] || { log "could not find the built test executable in $JSON"; exit 1; }
GUEST_BIN="$WORK/power_loss_guest"
aarch64-linux-gnu-strip --strip-debug -o "$GUEST_BIN" "$BIN"
if aarch64-linux-gnu-readelf -l "$GUEST_BIN" | grep -q 'INTERP'; then
    log "$GUEST_BIN is dynamically linked; the guest has no shared libraries"
    exit 1
fi
log "built $(basename "$BIN") ($(stat -c %s "$GUEST_BIN") bytes, static)"

# The guest side: load the modules, mount the disk (ext4 recovers its journal here
# after a power loss), run the program. A disk that does not mount fails the proof.
GUEST_SH="$WORK/power-loss-guest.sh"
{
    echo '#!/bin/sh'
    echo 'for m in '"$(for m in $MODULES; do printf '%s ' "$(basename "$m")"; done)"'; do'
    echo '    insmod /test/$m.ko || { echo "== insmod $m failed"; exit 1; }'
    echo 'done'
    echo 'i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done'
    echo 'mkdir -p /mnt && mount -t ext4 /dev/vda /mnt || { echo "== mount failed"; exit 1; }'
    echo 'echo "== mounted: $(grep " /mnt " /proc/mounts)"'
    echo 'exec /test/power_loss_guest --ignored --exact power_loss_guest --nocapture --test-threads=1'
} > "$GUEST_SH"
chmod +x "$GUEST_SH"
FILES=(-f "$GUEST_BIN")
for m in $MODULES; do FILES+=(-f "$MODDIR/$(basename "$m").ko"); done

DISK="$WORK/disk.img"
truncate -s 64M "$DISK"
CACHE="${QEMU_DISK_CACHE:-none}"
# cache=none opens the image with O_DIRECT, which some file systems (tmpfs) refuse;
# writeback loses the same guest writes (the host, not the guest, keeps its cache).
if [ "$CACHE" = none ] && ! dd if=/dev/zero of="$DISK" bs=4096 count=1 oflag=direct conv=notrunc status=none 2>/dev/null; then
    log "$WORK does not take O_DIRECT; the disk gets cache=writeback"
    CACHE=writeback
fi
export QEMU_DISK_CACHE="$CACHE"
mkfs.ext4 -q -F "$DISK"
EXPECT="$WORK/expect.txt"
: > "$EXPECT"

# Complete PL lines of a console log (a line cut by the kill has no newline yet).
pl_lines() {
    local f="$1"
    if [ -s "$f" ] && [ "$(tail -c1 "$f" | od -An -c | tr -d ' ')" != '\n' ]; then
        head -n -1 "$f"
    else
        cat "$f"
    fi | tr -d '\r' | grep '^PL ' || true
}

# figure NAME LINE: the number after NAME in a check line.
figure() { sed -n "s/.* $1 \([0-9]*\).*/\1/p" <<<"$2"; }

# boot N MODE: one boot of the VM; MODE write or check-write is killed after a random
# delay once its writer committed; check runs to its end.
RANDOM=$SEED
# run.sh of the boot in progress: stopped (it kills its qemu) if this script ends early.
RPID=
trap '[ -z "$RPID" ] || kill -TERM "$RPID" 2>/dev/null || true' EXIT
checks=0; events_checked=0; rolled_checks=0; rolled_total=0; results_lost=0
boot() {
    local n="$1" mode="$2" console="$WORK/console-$1.log" pidfile="$WORK/qemu-$1.pid"
    local delay_ms=$(( 500 + RANDOM % 4500 )) rc=0 t0 waited=0
    rm -f "$pidfile"; : > "$console"
    cp "$EXPECT" "$WORK/expect-in.txt"
    log "boot $n: $mode$([ "$mode" = check ] || echo ", killed ${delay_ms} ms after its first commit")"
    t0=$(date +%s)
    LINTEL_POWER_LOSS_MODE="$mode" LINTEL_POWER_LOSS_DIR=/mnt/data \
        LINTEL_POWER_LOSS_EXPECT=/test/expect-in.txt RUST_BACKTRACE=1 \
        QEMU_GPIO_PASS_ENV="LINTEL_POWER_LOSS_MODE LINTEL_POWER_LOSS_DIR LINTEL_POWER_LOSS_EXPECT RUST_BACKTRACE" \
        QEMU_SMP=1 QEMU_PIDFILE="$pidfile" \
        scripts/qemu-gpio/run.sh -t "$TIMEOUT" -d "$DISK" "${FILES[@]}" -f "$WORK/expect-in.txt" \
        "$GUEST_SH" > "$console" 2>&1 &
    local rpid=$!
    RPID=$rpid
    if [ "$mode" != check ]; then
        # Wait for the writer's first committed event of this boot, then the delay.
        while kill -0 "$rpid" 2>/dev/null; do
            if awk '/^PL WRITER START/ { s = 1 } s && /^PL COMMITTED/ { f = 1; exit } END { exit !f }' \
                "$console"; then
                break
            fi
            sleep 0.1
        done
        if kill -0 "$rpid" 2>/dev/null; then
            sleep "$(awk "BEGIN{printf \"%.3f\", $delay_ms / 1000}")"
            if grep -q '== GUEST-EXIT=' "$console"; then
                log "boot $n: the guest program ended before the power loss"
            elif [ -s "$pidfile" ] && kill -KILL "$(cat "$pidfile")" 2>/dev/null; then
                waited=1
            fi
        fi
    fi
    wait "$rpid" || rc=$?
    RPID=
    # The console without the writer's traffic lines (they stay in $console).
    tr -d '\r' < "$console" | grep -v '^PL \(COMMITTED\|ACK\|RESULT\|COMPACTED\)' \
        | sed 's/^/    | /' >&2 || true
    local check_line
    check_line="$(pl_lines "$console" | grep '^PL CHECK ok' | tail -1 || true)"
    if [ "$mode" != write ]; then
        if [ -z "$check_line" ]; then
            log "boot $n: the check did not pass (run.sh status $rc); console: $console"
            exit 1
        fi
        checks=$((checks + 1))
        events_checked=$(figure events "$check_line")
        local rolled
        rolled=$(figure rolled_back "$check_line")
        if [ "$rolled" -gt 0 ]; then rolled_checks=$((rolled_checks + 1)); fi
        rolled_total=$((rolled_total + rolled))
        results_lost=$((results_lost + $(figure unsynced_results_lost "$check_line")))
        log "boot $n: ${check_line#PL }"
    fi
    if [ "$mode" = check ]; then
        [ "$rc" = 0 ] || { log "boot $n: check run ended with status $rc"; exit 1; }
    else
        if [ "$waited" != 1 ] || [ "$rc" != 125 ]; then
            log "boot $n: expected the VM killed mid-traffic (run.sh status $rc, killed $waited)"
            exit 1
        fi
        local committed
        committed=$(pl_lines "$console" | sed -n '/^PL WRITER START/,$p' | grep -c '^PL COMMITTED' || true)
        log "boot $n: power loss after $committed events committed in this boot ($(( $(date +%s) - t0 )) s)"
        pl_lines "$console" | sed -n '/^PL WRITER START/,$p' >> "$EXPECT"
    fi
}

log "seed $SEED (LINTEL_POWER_LOSS_SEED=$SEED repeats the kill moments), $KILLS power losses, disk cache=$CACHE"
boot 1 write
for n in $(seq 2 "$KILLS"); do boot "$n" check-write; done
boot $((KILLS + 1)) check
# Every check after the first boot follows one power loss.
echo "qemu-power-loss: power losses survived: $checks of $KILLS (seed $SEED)"
echo "qemu-power-loss: events checked: $events_checked (every event committed, re-checked after each later loss)"
echo "qemu-power-loss: acknowledgements found rolled back: $rolled_total in $rolled_checks of $checks checks (unsynced command results lost: $results_lost)"
log "done"
