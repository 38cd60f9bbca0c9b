#!/usr/bin/env bash
# Cross-build lintel for an ARM board and optionally run its tests under qemu-user.
#
#   scripts/cross-build.sh TARGET [--tests] [--skip-install] [-- extra cargo test args]
#
# TARGET is armv7-unknown-linux-gnueabihf or aarch64-unknown-linux-gnu.
#
# Path 1: `cross` (cross.toml) when a working container engine exists.
# Path 2 (container-free, what runs on the project's Debian 12 machines): Debian's
# packaged Rust 1.85 (rustc-web/cargo-web) plus the target standard libraries from
# libstd-rust-web-dev unpacked into /usr/lib/rustlib, gcc cross linkers and
# qemu-user-static. Building with Debian's 1.85 also proves the MSRV: Cargo.lock must
# build with it. See /work/shared/cross-toolchain.md for the verified recipe.
#
# Outputs: target/deb-1.85-ship/<TARGET>/release/lintel, the shipped binary (stripped by
# the release profile, built without unwind tables: see below). Tests build in
# target/deb-1.85. Separate target dirs keep 1.85 artifacts from invalidating the host's
# newer ones, and the shipped build's flags from the tests' (a test run rebuilds the
# binary it starts with its own flags).
#
# Tests under qemu-user: every test binary of the workspace is built for TARGET and run
# through CARGO_TARGET_<TRIPLE>_RUNNER. Tests that need host-only tools (none known yet)
# are skipped by name with LINTEL_ARM_TEST_SKIP="name1 name2" (passed as --skip filters;
# scripts/ci-arm.sh sets the default list and says why each entry is there).
#
# rustup is deliberately not used even where `rustup target add` would work: building
# with Debian's 1.85 is what proves the MSRV, and it needs no network beyond apt.
set -euo pipefail

DEB_RUST_VERSION="1.85.0+dfsg3-1~deb12u3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
    echo "usage: $0 armv7-unknown-linux-gnueabihf|aarch64-unknown-linux-gnu [--tests] [--skip-install] [--no-cross] [-- test args]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
TARGET="$1"; shift
RUN_TESTS=0
SKIP_INSTALL=0
NO_CROSS="${LINTEL_NO_CROSS:-0}"
EXTRA_TEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tests) RUN_TESTS=1 ;;
        --skip-install) SKIP_INSTALL=1 ;;
        --no-cross) NO_CROSS=1 ;;
        --) shift; EXTRA_TEST_ARGS=("$@"); break ;;
        *) usage ;;
    esac
    shift
done

case "$TARGET" in
    armv7-unknown-linux-gnueabihf)
        DEB_ARCH=armhf; GNU_TRIPLE=arm-linux-gnueabihf; QEMU=qemu-arm-static ;;
    aarch64-unknown-linux-gnu)
        DEB_ARCH=arm64; GNU_TRIPLE=aarch64-linux-gnu; QEMU=qemu-aarch64-static ;;
    *) usage ;;
esac
TRIPLE_ENV="$(echo "$TARGET" | tr 'a-z-' 'A-Z_')"

log() { echo "cross-build[$TARGET]: $*" >&2; }

# Run apt-get update, retrying once: a foreign-architecture index can fail with
# "Mirror sync in progress" while the mirror is being updated. A still-failing index
# that we do not need (e.g. security/armhf) is tolerated when the pinned packages
# resolve anyway.
packages_resolvable() {
    apt-cache show "rustc-web=$DEB_RUST_VERSION" "libstd-rust-web-dev:$DEB_ARCH=$DEB_RUST_VERSION" \
        >/dev/null 2>&1
}
apt_update() {
    local out
    if out="$(apt-get update 2>&1)" && ! grep -q "Mirror sync in progress" <<<"$out"; then
        return 0
    fi
    log "apt-get update failed or the mirror was syncing; retrying once in 20 s"
    sleep 20
    if apt-get update; then return 0; fi
    if packages_resolvable; then
        log "apt-get update reported errors, but the pinned toolchain packages resolve; continuing"
        return 0
    fi
    log "apt-get update failed and the toolchain packages are not available"
    return 1
}

deb_toolchain_ready() {
    [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] \
        && /usr/bin/rustc --version 2>/dev/null | grep -q '^rustc 1\.85' \
        && [ -d "/usr/lib/rustlib/$TARGET/lib" ] \
        && command -v "$GNU_TRIPLE-gcc" >/dev/null \
        && [ -d "/usr/$GNU_TRIPLE/lib" ] \
        && command -v "$QEMU" >/dev/null
}

install_deb_toolchain() {
    if deb_toolchain_ready; then
        log "Debian Rust 1.85 toolchain for $TARGET already present"
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        log "need root to install the toolchain (or run with --skip-install after installing)"
        exit 75
    fi
    export DEBIAN_FRONTEND=noninteractive
    local need_update=0
    for arch in armhf arm64; do
        if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
            dpkg --add-architecture "$arch"
            need_update=1
        fi
    done
    if [ "$need_update" = 1 ] || ! apt-cache show "libstd-rust-web-dev:$DEB_ARCH=$DEB_RUST_VERSION" >/dev/null 2>&1; then
        apt_update
    fi
    local V="$DEB_RUST_VERSION"
    apt-get install -y --no-install-recommends \
        "rustc-web=$V" "cargo-web=$V" "libstd-rust-web-dev=$V" "libstd-rust-web-1.85=$V" \
        gcc-arm-linux-gnueabihf gcc-aarch64-linux-gnu \
        libc6-dev-armhf-cross libc6-dev-arm64-cross qemu-user-static
    if [ ! -d "/usr/lib/rustlib/$TARGET/lib" ]; then
        # Installing the foreign-arch std through apt pulls a dependency chain that does
        # not resolve; download the .debs and unpack only the rustlib part.
        local d
        d="$(mktemp -d)"
        chmod 755 "$d"   # apt-get download drops privileges to _apt
        (cd "$d" && apt-get download \
            "libstd-rust-web-dev:$DEB_ARCH=$V" "libstd-rust-web-1.85:$DEB_ARCH=$V")
        for f in "$d"/*.deb; do dpkg -x "$f" "$d/x"; done
        mkdir -p /usr/lib/rustlib
        cp -r "$d/x/usr/lib/rustlib/$TARGET" /usr/lib/rustlib/
        rm -rf "$d"
    fi
    deb_toolchain_ready || { log "toolchain still incomplete after install"; exit 75; }
}

cross_usable() {
    [ "$NO_CROSS" = 1 ] && return 1
    command -v cross >/dev/null || return 1
    # A docker client without a daemon (as on the project machines) is not enough.
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then return 0; fi
    if command -v podman >/dev/null && podman info >/dev/null 2>&1; then return 0; fi
    return 1
}

cd "$ROOT"

if cross_usable; then
    log "using cross (container engine available)"
    cross build --release --target "$TARGET" --bin lintel
    if [ "$RUN_TESTS" = 1 ]; then
        cross test --release --workspace --target "$TARGET" -- "${EXTRA_TEST_ARGS[@]}"
    fi
    exit 0
fi

if [ "$SKIP_INSTALL" != 1 ]; then
    # A toolchain that cannot be installed here (mirror down, no network) is
    # the environment's failure, not the code's: exit 75 (EX_TEMPFAIL) so CI
    # can tell the two apart. Build and test failures keep their own status.
    set -E
    trap 'log "toolchain setup failed"; exit 75' ERR
    install_deb_toolchain
    trap - ERR
    set +E
fi

export RUSTC=/usr/bin/rustc
export CARGO_TARGET_DIR="${LINTEL_DEB_TARGET_DIR:-$ROOT/target/deb-1.85}"
export "CARGO_TARGET_${TRIPLE_ENV}_LINKER=$GNU_TRIPLE-gcc"
export "CARGO_TARGET_${TRIPLE_ENV}_RUNNER=$QEMU -L /usr/$GNU_TRIPLE"
# Tests that start the firmware binary as a child go through the same
# emulator (tests/common::binary): without binfmt_misc the kernel cannot exec
# an ARM binary that an emulated test spawns.
export LINTEL_TEST_RUNNER="$QEMU -L /usr/$GNU_TRIPLE"
# Bundled C code (sqlite, ring) is compiled with the matching cross gcc.
export "CC_${TARGET//-/_}=$GNU_TRIPLE-gcc"
export "AR_${TARGET//-/_}=$GNU_TRIPLE-ar"
CARGO=/usr/bin/cargo

log "$($RUSTC --version), $($CARGO --version)"
# The shipped binary has no unwind tables: with panic = "abort" nothing unwinds, and
# the tables were 130 KB of a binary that must stay under 4 MB (std's own, prebuilt,
# remain, so a panic message still names its place). Nor does it have the unwinder's
# search table (.eh_frame_hdr, --no-eh-frame-hdr): 131 KB on aarch64, which had
# grown to 4,076,264 bytes; without it a RUST_BACKTRACE backtrace comes out empty,
# nothing else reads it. Tests keep both: the test harness unwinds.
SHIP_DIR="${LINTEL_SHIP_TARGET_DIR:-$ROOT/target/deb-1.85-ship}"
env CARGO_TARGET_DIR="$SHIP_DIR" \
    "CARGO_TARGET_${TRIPLE_ENV}_RUSTFLAGS=-C force-unwind-tables=no -C link-arg=-Wl,--no-eh-frame-hdr" \
    "CFLAGS_${TARGET//-/_}=-fno-asynchronous-unwind-tables -fno-unwind-tables" \
    $CARGO build --locked --release --target "$TARGET" --bin lintel
BIN="$SHIP_DIR/$TARGET/release/lintel"
log "built $BIN ($(stat -c %s "$BIN") bytes)"

if [ "$RUN_TESTS" = 1 ]; then
    SKIP_ARGS=()
    for name in ${LINTEL_ARM_TEST_SKIP:-}; do SKIP_ARGS+=(--skip "$name"); done
    # Release profile (opt-level z, panic and overflow settings, no debug assertions)
    # like the shipped build, but without cross-crate LTO and with 16 codegen units:
    # each of the ~40 test binaries was LTO-linked on its own, ~93% of this stage's
    # time (tests ran 194 s of a 2,765 s armv7 stage). LTO changes inlining, not what
    # safe code means; the shipped binary is still built with it above, and the demo
    # and watchdog tests run the firmware binary built here. LINTEL_ARM_TEST_LTO=1
    # builds the tests with the shipped LTO settings instead.
    if [ "${LINTEL_ARM_TEST_LTO:-0}" != 1 ]; then
        export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
    fi
    log "running the workspace tests under $QEMU"
    $CARGO test --locked --release --workspace --target "$TARGET" --no-fail-fast \
        -- "${SKIP_ARGS[@]}" "${EXTRA_TEST_ARGS[@]}"
fi
