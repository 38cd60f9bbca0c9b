#!/usr/bin/env bash
# One-time setup for run.sh: Debian's arm64 kernel plus a gpio-sim module built for it,
# and a static busybox for the guest's initramfs. Idempotent: a finished setup is
# recognised by its stamp file and left alone (FORCE=1 redoes it).
#
#   scripts/qemu-gpio/setup.sh            (as root on Debian 12)
#
# Everything lands in $QEMU_GPIO_DIR (default <repo>/target/qemu-gpio, inside the
# gitignored target/): nothing downloaded or built here is committed.
#
# Why the module is built here: Debian's arm64 kernels ship with CONFIG_GPIO_SIM and
# CONFIG_IRQ_SIM off, so the kernel's own gpio-sim.c and irq_sim.c are compiled together
# as one out-of-tree module against the exact headers of the kernel that boots. One line
# of irq_sim.c is adapted because irq_to_desc() is not exported to modules.
#
# Packages installed on the host: qemu-system-arm (from the same version as an installed
# backports qemu-utils, which bookworm's 7.2 would otherwise remove), cpio, gzip, the
# aarch64 cross gcc (to build the module), make, xz-utils. Downloaded but not installed:
# linux-image/-headers/-kbuild/-source of one pinned kernel version, busybox-static:arm64.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${QEMU_GPIO_DIR:-$ROOT/target/qemu-gpio}"
FLAVOUR=arm64
STAMP="$DIR/setup-done"

log() { echo "qemu-gpio setup: $*" >&2; }

ready() {
    [ -f "$STAMP" ] || return 1
    local abi
    abi="$(cat "$DIR/kabi" 2>/dev/null)" || return 1
    [ -f "$DIR/kernel/boot/vmlinuz-$abi-$FLAVOUR" ] \
        && [ -f "$DIR/kernel/configfs.ko" ] \
        && [ -f "$DIR/mod/gpio-sim.ko" ] \
        && [ -x "$DIR/busybox" ] \
        && command -v qemu-system-aarch64 >/dev/null \
        && command -v cpio >/dev/null \
        && command -v aarch64-linux-gnu-strip >/dev/null
}

if [ "${FORCE:-0}" != 1 ] && ready; then
    log "already set up in $DIR (kernel $(cat "$DIR/kabi")-$FLAVOUR)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    log "needs root (apt-get) for the first setup"
    exit 1
fi
rm -f "$STAMP"
mkdir -p "$DIR"
cd "$DIR"
export DEBIAN_FRONTEND=noninteractive

installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }

# apt-get update, retried once: a foreign-architecture index can fail with "Mirror sync
# in progress" while the mirror updates. Errors are tolerated when what we need resolves.
apt_update() {
    local out
    if out="$(apt-get update 2>&1)" && ! grep -q "Mirror sync in progress" <<<"$out"; then
        return 0
    fi
    log "apt-get update failed or the mirror was syncing; retrying once in 20 s"
    sleep 20
    apt-get update || log "apt-get update still reports errors; trying with the lists we have"
}

updated=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
# The arm64 kernel packages are looked up below; without arm64 lists they are not found.
if ! apt-cache show linux-image-arm64:arm64 >/dev/null 2>&1; then
    apt_update
    updated=1
fi

# The image may carry qemu-utils from bookworm-backports (10.0.x); bookworm's
# qemu-system-arm (7.2) would remove it, so then take qemu-system-arm from backports at
# the same version, through private apt lists (/etc/apt is not touched).
QU="$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)"
if [[ "$QU" == *bpo12* ]] && ! installed qemu-system-arm; then
    mkdir -p apt/lists/partial
    cat > apt/sources.list <<'EOS'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
EOS
    AO=(-o Dir::Etc::sourcelist="$DIR/apt/sources.list" -o Dir::Etc::sourceparts=/nonexistent
        -o Dir::State::Lists="$DIR/apt/lists")
    apt-get "${AO[@]}" update || log "private apt update reported errors (a stale foreign index is harmless)"
    apt-get "${AO[@]}" install -y --no-install-recommends \
        "qemu-system-arm=$QU" "qemu-system-common=$QU" "qemu-system-data=$QU"
fi
need=()
for p in qemu-system-arm cpio gzip gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu \
    libc6-dev-arm64-cross make xz-utils; do
    installed "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    if ! apt-get install -y --no-install-recommends "${need[@]}"; then
        [ "$updated" = 1 ] && exit 1
        apt_update; updated=1
        apt-get install -y --no-install-recommends "${need[@]}"
    fi
fi

# The current bookworm arm64 kernel: ABI and version from the meta package, and every
# kernel-side package pinned to that exact version (headers must match the image).
IMG="$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/ *Depends: \(linux-image-[^:]*\).*/\1/p' | head -1)"
ABI="${IMG#linux-image-}"; ABI="${ABI%-$FLAVOUR}"                               # e.g. 6.1.0-50
VER="$(apt-cache show --no-all-versions "$IMG:arm64" | sed -n 's/^Version: //p' | head -1)"  # e.g. 6.1.176-1
SER="${ABI%%.0-*}"                                                             # e.g. 6.1
if [ -z "$ABI" ] || [ -z "$VER" ]; then
    log "cannot resolve the arm64 kernel package (apt lists for arm64 missing?)"
    exit 1
fi
log "kernel ABI $ABI version $VER series $SER"

rm -rf debs && mkdir -p debs && chmod 755 debs   # apt-get download drops privileges to _apt
(cd debs && apt-get download busybox-static:arm64 "linux-headers-$ABI-common=$VER" \
    "linux-kbuild-$SER=$VER" "linux-source-$SER=$VER" \
    "linux-image-$ABI-$FLAVOUR:arm64=$VER" "linux-headers-$ABI-$FLAVOUR:arm64=$VER")

# busybox for the initramfs
rm -rf bbx && mkdir bbx && dpkg -x debs/busybox-static_*_arm64.deb bbx
cp bbx/bin/busybox busybox && rm -rf bbx

# kernel headers + kbuild (for building the module)
rm -rf hdr && mkdir hdr
for d in debs/linux-headers-"$ABI"-common_"$VER"_all.deb debs/linux-kbuild-"$SER"_"$VER"_amd64.deb \
    debs/linux-headers-"$ABI"-"$FLAVOUR"_"$VER"_arm64.deb; do
    dpkg -x "$d" hdr
done
K="hdr/usr/src/linux-headers-$ABI-$FLAVOUR"
sed -i "s#^include /usr/src/#include $DIR/hdr/usr/src/#" "$K/Makefile"

# kernel image: only vmlinuz, its config and configfs.ko are needed at run time
rm -rf kernel tmpx && mkdir -p tmpx kernel/boot
dpkg --fsys-tarfile debs/linux-image-"$ABI"-"$FLAVOUR"_"$VER"_arm64.deb | tar -x -C tmpx \
    ./boot/vmlinuz-"$ABI-$FLAVOUR" ./boot/config-"$ABI-$FLAVOUR" \
    ./lib/modules/"$ABI-$FLAVOUR"/kernel/fs/configfs/configfs.ko
cp tmpx/boot/* kernel/boot/
cp tmpx/lib/modules/"$ABI-$FLAVOUR"/kernel/fs/configfs/configfs.ko kernel/configfs.ko
rm -rf tmpx
grep -E 'CONFIG_GPIO_CDEV_V1|CONFIG_CONFIGFS_FS=|CONFIG_GPIO_SIM' "kernel/boot/config-$ABI-$FLAVOUR" >&2 || true

# gpio-sim + irq_sim sources from the matching kernel source, built as one module
rm -rf src mod && mkdir -p src mod
dpkg --fsys-tarfile debs/linux-source-"$SER"_"$VER"_all.deb \
    | tar -xO ./usr/src/linux-source-"$SER".tar.xz \
    | tar -xJ -C src --strip-components=1 linux-source-"$SER"/drivers/gpio/gpio-sim.c \
        linux-source-"$SER"/drivers/gpio/gpiolib.h linux-source-"$SER"/kernel/irq/irq_sim.c
cp src/drivers/gpio/gpio-sim.c mod/gpio-sim-main.c
cp src/drivers/gpio/gpiolib.h src/kernel/irq/irq_sim.c mod/
rm -rf src
# irq_to_desc() is not exported to modules; irq_get_irq_data() is.
sed -i 's|^#include <linux/irq.h>$|#include <linux/irq.h>\n#include <linux/irqdesc.h>|;
        s|handle_simple_irq(irq_to_desc(irqnum));|handle_simple_irq(irq_data_to_desc(irq_get_irq_data(irqnum)));|' \
    mod/irq_sim.c
grep -q irq_get_irq_data mod/irq_sim.c || { log "irq_sim.c patch did not apply"; exit 1; }
printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n' > mod/Kbuild
make -s -C "$K" M="$DIR/mod" ARCH=arm64 DEB_BUILD_ARCH=amd64 DEB_HOST_ARCH=arm64 \
    DEB_HOST_GNU_TYPE=aarch64-linux-gnu CROSS_COMPILE=aarch64-linux-gnu- -j"$(nproc)" modules
[ -f mod/gpio-sim.ko ] || { log "gpio-sim.ko was not built"; exit 1; }

echo "$ABI" > kabi
# The .debs and private apt lists are not needed at run time (KEEP_DEBS=1 keeps them);
# hdr/ stays so the module can be rebuilt by hand.
[ "${KEEP_DEBS:-0}" = 1 ] || rm -rf debs apt
date -u +%FT%TZ > "$STAMP"
log "done: $(du -sh "$DIR" | cut -f1) in $DIR"
