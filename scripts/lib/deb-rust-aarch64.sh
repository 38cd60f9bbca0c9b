# Debian's Rust 1.85 with the aarch64 standard library, for the static aarch64 test
# programs the qemu rig runs in its guest (scripts/qemu-gpio-test.sh,
# scripts/qemu-power-loss.sh). Sourced; the caller sets TARGET
# (aarch64-unknown-linux-gnu), DEB_RUST_VERSION and a `log` function.

toolchain_ready() {
    [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] \
        && /usr/bin/rustc --version 2>/dev/null | grep -q '^rustc 1\.85' \
        && [ -d "/usr/lib/rustlib/$TARGET/lib" ] \
        && command -v aarch64-linux-gnu-gcc >/dev/null \
        && [ -f /usr/aarch64-linux-gnu/lib/libc.a ]
}

# Debian's packaged Rust 1.85 plus the aarch64 std unpacked into /usr/lib/rustlib (its
# apt install pulls a foreign dependency chain that does not resolve), as
# scripts/cross-build.sh does; see the verified recipe in shared/cross-toolchain.md.
install_toolchain() {
    if [ "$(id -u)" != 0 ]; then
        log "the Debian Rust 1.85 toolchain for $TARGET is missing and installing it needs root"
        exit 75
    fi
    export DEBIAN_FRONTEND=noninteractive
    local V="$DEB_RUST_VERSION"
    if ! apt-cache show "libstd-rust-web-dev:arm64=$V" >/dev/null 2>&1; then
        apt-get update || { sleep 20; apt-get update || log "apt-get update reported errors"; }
    fi
    apt-get install -y --no-install-recommends \
        "rustc-web=$V" "cargo-web=$V" "libstd-rust-web-dev=$V" "libstd-rust-web-1.85=$V" \
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    if [ ! -d "/usr/lib/rustlib/$TARGET/lib" ]; then
        local d
        d="$(mktemp -d)"
        chmod 755 "$d"   # apt-get download drops privileges to _apt
        (cd "$d" && apt-get download "libstd-rust-web-dev:arm64=$V" "libstd-rust-web-1.85:arm64=$V")
        for f in "$d"/*.deb; do dpkg -x "$f" "$d/x"; done
        mkdir -p /usr/lib/rustlib
        cp -r "$d/x/usr/lib/rustlib/$TARGET" /usr/lib/rustlib/
        rm -rf "$d"
    fi
    toolchain_ready || { log "toolchain still incomplete after install"; exit 75; }
}

# The static aarch64 build both scripts make, in one target dir of their own under
# $QEMU_GPIO_DIR: crt-static changes every aarch64 artifact's flags, so sharing
# target/deb-1.85 with scripts/cross-build.sh would rebuild both sides each time.
use_static_aarch64_build() {
    export CARGO_TARGET_DIR="$QEMU_GPIO_DIR/cargo"
    export RUSTC=/usr/bin/rustc
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
    export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
}
