#!/usr/bin/env bash
# Print the stripped release binary size of lintel for armv7 and aarch64 (target:
# under 4 MB each) and the peak RSS of the armv7 binary under qemu-user.
#
#   scripts/size-report.sh [--no-build] [-- ARGS...]
#
# ARGS is the lintel command line whose peak RSS is measured (default: --help; the
# demo-scenario mode goes here once it exists). Also settable as LINTEL_RSS_ARGS.
# Peak RSS is GNU time's "Maximum resident set size" of the qemu-arm-static process,
# so it includes qemu's own few MB: an upper bound on what the board will see.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1
read -r -a RSS_ARGS <<<"${LINTEL_RSS_ARGS:---help}"
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --) shift; RSS_ARGS=("$@"); break ;;
        *) echo "usage: $0 [--no-build] [-- lintel args]" >&2; exit 2 ;;
    esac
    shift
done

LIMIT=$((4 * 1024 * 1024))
TARGET_DIR="${LINTEL_DEB_TARGET_DIR:-$ROOT/target/deb-1.85}"
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
log="$(mktemp)"
set +e
/usr/bin/time -v -o "$log" qemu-arm-static -L /usr/arm-linux-gnueabihf "$armv7" "${RSS_ARGS[@]}" >/dev/null 2>&1
rc=$?
set -e
rss_kb=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$log")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$log")
rm -f "$log"
printf 'peak-rss armv7 (qemu-user) lintel %s: %s KiB, wall %s, exit %d\n' \
    "${RSS_ARGS[*]}" "${rss_kb:-?}" "${wall:-?}" "$rc"
exit "$status"
