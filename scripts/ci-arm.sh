#!/usr/bin/env bash
# The ARM part of CI: build armv7 and aarch64 release binaries with Debian's Rust
# 1.85 (which also proves the MSRV and the Cargo.lock), run the workspace tests for
# each target under qemu-user, and print binary sizes and armv7 peak RSS.
#
#   scripts/ci-arm.sh
#
# Environment:
#   LINTEL_CI_ARM_TEST_TARGETS  targets whose tests run under qemu (default: both)
#   LINTEL_ARM_TEST_SKIP        test-name substrings to skip under qemu, passed as
#                               --skip (default: "_a_pty" — qemu-user does not implement
#                               the termios ioctls the serial backend issues on a
#                               pseudo-terminal and answers ENOSYS, so the HAL's
#                               RS-485-over-pty tests run on x86 only)
#   LINTEL_RSS_ARGS             lintel arguments for the peak-RSS run (default --help)
#
# Each phase prints its duration; the whole run is budgeted at < 30 min on 2 cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEST_TARGETS="${LINTEL_CI_ARM_TEST_TARGETS:-armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu}"
# Tests that start the lintel binary as a child (the demo end to end, the
# systemd watchdog) run it through the emulator: cross-build.sh sets
# LINTEL_TEST_RUNNER (without binfmt_misc an emulated test cannot exec an ARM
# binary; the exec failed with ENOEXEC and the demo test used to time out).
export LINTEL_ARM_TEST_SKIP="${LINTEL_ARM_TEST_SKIP-_a_pty}"
start=$(date +%s)

phase() { # NAME CMD...
    local name="$1"; shift
    local t0
    t0=$(date +%s)
    echo "=== ci-arm: $name" >&2
    "$@"
    echo "=== ci-arm: $name took $(( $(date +%s) - t0 )) s" >&2
}

for target in armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu; do
    phase "build $target" "$ROOT/scripts/cross-build.sh" "$target"
    case " $TEST_TARGETS " in
        *" $target "*)
            phase "tests $target under qemu-user" \
                "$ROOT/scripts/cross-build.sh" "$target" --tests --skip-install ;;
    esac
done

phase "size report" "$ROOT/scripts/size-report.sh" --no-build
echo "=== ci-arm: total $(( $(date +%s) - start )) s" >&2
