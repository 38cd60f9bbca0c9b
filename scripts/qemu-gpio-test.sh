#!/usr/bin/env bash
# The HAL's Linux GPIO backend against a real arm64 kernel: boots Debian's arm64 kernel
# with gpio-sim under qemu-system-aarch64 and runs hal/tests/gpio_sim_kernel.rs there.
#
#   scripts/qemu-gpio-test.sh [-- extra test-binary args, e.g. a test name filter]
#
# Steps: (1) scripts/qemu-gpio/setup.sh (idempotent; kernel, gpio-sim.ko and busybox
# cached in target/qemu-gpio/); (2) Debian's Rust 1.85 with the aarch64 standard library
# (the recipe of scripts/cross-build.sh, installed only if missing); (3) a statically
# linked aarch64 build of the test (crt-static, so the busybox initramfs needs no shared
# libraries); (4) scripts/qemu-gpio/run.sh boots the guest and runs it. Exits with the
# test binary's status (124: qemu timed out; 125: the guest never reported a status;
# 75: the kernel, module or toolchain could not be set up on this machine).
#
# The guest gets one CPU (the Wiegand test explains why) and the tests run one at a time.
#
# Environment: QEMU_GPIO_TIMEOUT (seconds for the qemu run, default 240),
# QEMU_GPIO_DIR (cache, default target/qemu-gpio), LINTEL_SKIP_INSTALL=1 (no apt-get).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET=aarch64-unknown-linux-gnu
DEB_RUST_VERSION="1.85.0+dfsg3-1~deb12u3"   # keep in step with scripts/cross-build.sh
export QEMU_GPIO_DIR="${QEMU_GPIO_DIR:-$ROOT/target/qemu-gpio}"
TIMEOUT="${QEMU_GPIO_TIMEOUT:-240}"
EXTRA_ARGS=()
if [ "${1:-}" = "--" ]; then shift; EXTRA_ARGS=("$@"); fi

start=$(date +%s)
log() { echo "qemu-gpio-test: $* (+$(( $(date +%s) - start )) s)" >&2; }

# toolchain_ready, install_toolchain: the recipe both qemu scripts share.
# shellcheck source=scripts/lib/deb-rust-aarch64.sh
. "$ROOT/scripts/lib/deb-rust-aarch64.sh"

cd "$ROOT"
if [ "${LINTEL_SKIP_INSTALL:-0}" != 1 ]; then
    # Kernel, module, busybox and toolchain that cannot be fetched or built
    # here are the environment's failure: exit 75 (EX_TEMPFAIL) so CI can tell
    # them from a failing test, which keeps its own status.
    scripts/qemu-gpio/setup.sh || { log "setup failed"; exit 75; }
    set -E
    trap 'log "toolchain setup failed"; exit 75' ERR
    toolchain_ready || install_toolchain
    trap - ERR
    set +E
fi
log "setup ready"

use_static_aarch64_build   # crt-static: the initramfs has no shared libraries
JSON="$QEMU_GPIO_DIR/build.json"
/usr/bin/cargo test --locked -p lintel-hal --test gpio_sim_kernel --target "$TARGET" \
    --no-run --message-format=json-render-diagnostics > "$JSON"
BIN="$(grep -o '"executable":"[^"]*/gpio_sim_kernel-[^"]*"' "$JSON" | tail -1 | cut -d'"' -f4 || true)"
if [ -z "$BIN" ] || [ ! -f "$BIN" ]; then
    log "could not find the built test executable in $JSON"
    exit 1
fi
# Debug info only makes the initramfs bigger; symbols stay for backtraces.
GUEST_BIN="$QEMU_GPIO_DIR/gpio_sim_kernel"
aarch64-linux-gnu-strip --strip-debug -o "$GUEST_BIN" "$BIN"
if aarch64-linux-gnu-readelf -l "$GUEST_BIN" | grep -q 'INTERP'; then
    log "$GUEST_BIN is dynamically linked; the guest has no shared libraries"
    exit 1
fi
log "built $(basename "$BIN") ($(stat -c %s "$GUEST_BIN") bytes, static)"

CONSOLE="$QEMU_GPIO_DIR/console.log"
set +e
# One guest CPU: see the Wiegand test in hal/tests/gpio_sim_kernel.rs for why.
QEMU_SMP=1 RUST_BACKTRACE=1 QEMU_GPIO_PASS_ENV=RUST_BACKTRACE \
    scripts/qemu-gpio/run.sh -t "$TIMEOUT" "$GUEST_BIN" --test-threads=1 --nocapture "${EXTRA_ARGS[@]}" \
    2>&1 | tee "$CONSOLE"
rc=${PIPESTATUS[0]}
set -e
# In the guest the tests must really run: a skip there means the rig did not export the
# gpio-sim environment, which would otherwise pass silently.
if [ "$rc" = 0 ] && grep -q 'skipping .*GPIO_CHIP and GPIO_SIM_SYSFS are not set' "$CONSOLE"; then
    log "the tests skipped inside the guest (GPIO_CHIP/GPIO_SIM_SYSFS missing)"
    rc=1
fi
log "finished with status $rc"
exit "$rc"
