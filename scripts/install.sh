#!/bin/sh
# Lay out lintel on a target root file system. POSIX sh, so it also runs on boards
# whose only shell is BusyBox (scripts/flash.sh runs it there over ssh).
#
#   install.sh --root DIR [--binary PATH] [--config PATH] [--unit PATH]
#              [--board-configs DIR] [--enable]
#
# Layout (the same as src/upgrade/slots.rs and packaging/lintel.service expect):
#   DIR/opt/lintel/slots/a/lintel         the binary (into the slot `current` names)
#   DIR/opt/lintel/slots/a/board-configs/ board configuration files
#   DIR/opt/lintel/slots/b/               the other slot, empty until an upgrade
#   DIR/opt/lintel/current -> slots/a     created only if missing
#   DIR/etc/lintel/lintel.toml            the config (an existing one is kept)
#   DIR/var/lib/lintel/                   data directory (events, tables)
#   DIR/etc/systemd/system/lintel.service
#
# Idempotent: running it again replaces the binary in the active slot (through a
# rename, so a running binary is never written over), keeps an existing config and
# the data directory, and leaves the slot links alone. --enable runs systemctl
# (only meaningful with --root /).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

root=""
binary=""
config=""
unit="$repo/packaging/lintel.service"
board_configs="$repo/board-configs"
enable=0

die() { echo "install.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --root) root=${2:?}; shift 2 ;;
        --binary) binary=${2:?}; shift 2 ;;
        --config) config=${2:?}; shift 2 ;;
        --unit) unit=${2:?}; shift 2 ;;
        --board-configs) board_configs=${2:?}; shift 2 ;;
        --enable) enable=1; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done
[ -n "$root" ] || die "--root DIR is required (use --root / on the device)"
[ -d "$root" ] || die "root $root does not exist"
[ -z "$binary" ] || [ -f "$binary" ] || die "binary $binary not found"
[ -z "$config" ] || [ -f "$config" ] || die "config $config not found"
[ -f "$unit" ] || die "unit file $unit not found"

root=${root%/}
opt="$root/opt/lintel"
etc="$root/etc/lintel"
data="$root/var/lib/lintel"
units="$root/etc/systemd/system"

mkdir -p "$opt/slots/a" "$opt/slots/b" "$etc" "$data" "$units"
chmod 0750 "$data"

# The active slot: whatever `current` names, or slot a on a fresh install.
if [ -L "$opt/current" ]; then
    target=$(readlink "$opt/current")
    case "$target" in
        slots/a|slots/b) ;;
        *) die "$opt/current points at $target, not at slots/a or slots/b" ;;
    esac
else
    [ ! -e "$opt/current" ] || die "$opt/current exists and is not a symlink"
    ln -s slots/a "$opt/.current.tmp"
    mv -f "$opt/.current.tmp" "$opt/current"
    target=slots/a
fi
slot="$opt/$target"

# Copy to a temporary name in the same directory, then rename: atomic, and safe
# while the old binary is running.
install_file() { # SRC DEST MODE
    cp "$1" "$2.tmp"
    chmod "$3" "$2.tmp"
    mv -f "$2.tmp" "$2"
}

if [ -n "$binary" ]; then
    install_file "$binary" "$slot/lintel" 0755
    echo "installed $binary -> $slot/lintel"
elif [ ! -f "$slot/lintel" ]; then
    echo "note: no --binary given and $slot/lintel does not exist yet" >&2
fi

if [ -d "$board_configs" ]; then
    mkdir -p "$slot/board-configs"
    for f in "$board_configs"/*.toml; do
        [ -f "$f" ] || continue
        install_file "$f" "$slot/board-configs/$(basename "$f")" 0644
    done
fi

if [ -f "$etc/lintel.toml" ]; then
    if [ -n "$config" ]; then
        if cmp -s "$config" "$etc/lintel.toml"; then :; else
            echo "keeping existing $etc/lintel.toml (new one written to lintel.toml.new)"
            install_file "$config" "$etc/lintel.toml.new" 0640
        fi
    fi
elif [ -n "$config" ]; then
    install_file "$config" "$etc/lintel.toml" 0640
    echo "installed $config -> $etc/lintel.toml"
else
    echo "note: no config at $etc/lintel.toml; pass --config before starting the service" >&2
fi

install_file "$unit" "$units/lintel.service" 0644

if [ "$enable" = 1 ]; then
    [ "$root" = "" ] || die "--enable only with --root /"
    systemctl daemon-reload
    systemctl enable lintel.service
fi
echo "lintel laid out under ${root:-/} (active slot $target)"
