#!/usr/bin/env bash
# Boots Debian's arm64 kernel under qemu-system-aarch64 (TCG) with a tiny busybox
# initramfs that loads configfs and the gpio-sim module (see setup.sh), creates one
# simulated chip through configfs, runs a test program in the guest and powers off.
#
# usage: scripts/qemu-gpio/run.sh [-t TIMEOUT_S] [-n NUM_LINES] [-f FILE]... [-d DISK] PROG [ARGS...]
#   PROG     an aarch64 static binary or a shell script; copied to /test/ in the guest and
#            run there with ARGS. Guest environment: GPIO_CHIP=/dev/gpiochipN,
#            GPIO_SIM_SYSFS=/sys/devices/platform/gpio-sim.0/gpiochipN, GPIO_SIM_LINES,
#            and every host variable named in QEMU_GPIO_PASS_ENV (e.g. RUST_BACKTRACE).
#   -f FILE  an extra file copied to /test/ (repeatable)
#   -t       seconds before qemu is killed (default 180)
#   -n       lines on the simulated chip (default 16)
#   -d DISK  a raw image attached as a virtio-blk disk (/dev/vda; its driver is a
#            module the program loads), cache mode QEMU_DISK_CACHE (default none)
# Environment: QEMU_SMP (guest CPUs, default 2), QEMU_CPU (default cortex-a57),
# QEMU_GPIO_DIR (what setup.sh made, default <repo>/target/qemu-gpio),
# QEMU_PIDFILE (qemu writes its pid there, for a caller that kills it).
# Prints the guest console; exits with the program's status, 124 on timeout (qemu
# killed), 125 when the guest never reported a status (e.g. a kernel panic).
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DIR="${QEMU_GPIO_DIR:-$ROOT/target/qemu-gpio}"
FLAVOUR=arm64
TIMEOUT=180; NLINES=16; EXTRA=()
DISK=
usage() { sed -n '6,23p' "$0" >&2; exit 2; }
while getopts "t:n:f:d:" o; do
    case $o in
        t) TIMEOUT=$OPTARG ;; n) NLINES=$OPTARG ;; f) EXTRA+=("$OPTARG") ;; d) DISK=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
PROG=$1; shift
case "$TIMEOUT$NLINES" in *[!0-9]*) usage ;; esac

KVER="$(cat "$DIR/kabi" 2>/dev/null)-$FLAVOUR"
KERNEL=$DIR/kernel/boot/vmlinuz-$KVER
CONFIGFS_KO=$DIR/kernel/configfs.ko
SIM_KO=$DIR/mod/gpio-sim.ko
BUSYBOX=$DIR/busybox
for f in "$KERNEL" "$CONFIGFS_KO" "$SIM_KO" "$BUSYBOX" "$PROG" "${EXTRA[@]}" ${DISK:+"$DISK"}; do
    [ -f "$f" ] || { echo "run.sh: missing $f (run scripts/qemu-gpio/setup.sh?)" >&2; exit 2; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/qemu-gpio.XXXXXX")"
QPID=; TPID=
cleanup() {
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
        kill -TERM "$QPID" 2>/dev/null; sleep 1; kill -KILL "$QPID" 2>/dev/null
    fi
    if [ -n "$TPID" ]; then kill "$TPID" 2>/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- initramfs -------------------------------------------------------------
R=$WORK/root
mkdir -p "$R"/{bin,dev,proc,sys,tmp,test,lib/modules}
cp "$BUSYBOX" "$R/bin/busybox"
cp "$CONFIGFS_KO" "$R/lib/modules/"
aarch64-linux-gnu-strip --strip-debug -o "$R/lib/modules/gpio-sim.ko" "$SIM_KO"
cp "$PROG" "$R/test/"; chmod +x "$R/test/$(basename "$PROG")"
for f in "${EXTRA[@]}"; do cp "$f" "$R/test/"; done
{
    for v in ${QEMU_GPIO_PASS_ENV:-}; do
        if [ -n "${!v+x}" ]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
    done
    printf 'exec /test/%q' "$(basename "$PROG")"
    for a in "$@"; do printf ' %q' "$a"; done
    echo
} > "$R/test/.cmd"
cat > "$R/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/test
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo "== guest up: \$(cut -d' ' -f1 /proc/uptime)s since kernel start"
insmod /lib/modules/configfs.ko && insmod /lib/modules/gpio-sim.ko || echo "== insmod failed"
mount -t configfs none /sys/kernel/config
C=/sys/kernel/config/gpio-sim/sim0
mkdir \$C \$C/bank0 && echo $NLINES > \$C/bank0/num_lines && echo gpio-sim-test > \$C/bank0/label && echo 1 > \$C/live
export GPIO_SIM_LINES=$NLINES
export GPIO_CHIP=/dev/\$(cat \$C/bank0/chip_name)
export GPIO_SIM_SYSFS=/sys/devices/platform/\$(cat \$C/dev_name)/\$(cat \$C/bank0/chip_name)
echo "== gpio-sim: \$GPIO_CHIP \$GPIO_SIM_SYSFS; chips: \$(ls /dev/gpiochip* | tr '\n' ' ')"
echo "== test start: \$(cut -d' ' -f1 /proc/uptime)s"
cd /test; sh /test/.cmd; rc=\$?
echo "== GUEST-EXIT=\$rc at \$(cut -d' ' -f1 /proc/uptime)s"
poweroff -f
EOF
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/initrd.gz"

# ---- boot -------------------------------------------------------------------
LOG=$WORK/console.log; : > "$LOG"
QARGS=()
if [ -n "$DISK" ]; then
    QARGS+=(-drive "file=$DISK,if=none,id=disk0,format=raw,cache=${QEMU_DISK_CACHE:-none}"
        -device virtio-blk-device,drive=disk0)
fi
if [ -n "${QEMU_PIDFILE:-}" ]; then QARGS+=(-pidfile "$QEMU_PIDFILE"); fi
START=$(date +%s.%N)
qemu-system-aarch64 -M virt -cpu "${QEMU_CPU:-cortex-a57}" -smp "${QEMU_SMP:-2}" -m 512 \
    -accel tcg,thread=multi -display none -monitor none -serial "file:$LOG" -no-reboot \
    -nodefaults -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
    -append "console=ttyAMA0 rdinit=/init quiet panic=-1" "${QARGS[@]}" </dev/null &
QPID=$!
tail -s 0.2 -n +1 -f --pid="$QPID" "$LOG" &
TPID=$!
deadline=$(( $(date +%s) + TIMEOUT ))
while kill -0 "$QPID" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "run.sh: timeout after ${TIMEOUT}s, killing qemu pid $QPID" >&2
        kill -TERM "$QPID" 2>/dev/null; sleep 2; kill -KILL "$QPID" 2>/dev/null
        wait "$QPID" 2>/dev/null; QPID=
        exit 124
    fi
    sleep 0.2
done
wait "$QPID" 2>/dev/null; QPID=
wait "$TPID" 2>/dev/null; TPID=
END=$(date +%s.%N)
echo "run.sh: qemu wall time $(awk "BEGIN{printf \"%.1f\", $END - $START}")s" >&2
rc=$(sed -n 's/.*== GUEST-EXIT=\([0-9]*\).*/\1/p' "$LOG" | tail -1)
exit "${rc:-125}"
