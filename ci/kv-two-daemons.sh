#!/usr/bin/env bash
# Two `dpfs mount --backend kv` processes on one Redis volume (a private redis-server):
# writers on both mounts create and rename files in one shared directory at once; then
# both mounts must list the same complete set of names (after the 1 s cache timeout) and
# `dpfs fsck` must find the volume clean.
#
#   ci/kv-two-daemons.sh [--dpfs PATH] [--files N]
#
# Needs root, /dev/fuse and redis-server; skips (exit 0) without root or /dev/fuse.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DPFS=
FILES=200
while [ $# -gt 0 ]; do
    case "$1" in
        --dpfs) DPFS=$2; shift 2 ;;
        --files) FILES=$2; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "unknown argument $1"; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then echo "kv-two-daemons: skipped: needs root"; exit 0; fi
if ! [ -c /dev/fuse ]; then echo "kv-two-daemons: skipped: /dev/fuse unavailable"; exit 0; fi
source "$ROOT/ci/apt.sh"
apt_install redis-server
if [ -z "$DPFS" ]; then
    (cd "$ROOT" && cargo build --release -p dpfs)
    DPFS=${CARGO_TARGET_DIR:-$ROOT/target}/release/dpfs
fi

WORK=$(mktemp -d /tmp/dpfs-kv-two.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=redis://127.0.0.1:$PORT
PIDS=()
cleanup() {
    for m in "$WORK/a" "$WORK/b"; do mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true; done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" --daemonize yes \
    --pidfile "$WORK/redis.pid" >/dev/null
for _ in $(seq 100); do redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done

for m in a b; do
    mkdir "$WORK/$m"
    "$DPFS" mount --backend kv --kv-url "$URL" --kv-volume two --log-level warn "$WORK/$m" >"$WORK/$m.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do mountpoint -q "$WORK/$m" && break; sleep 0.05; done
    mountpoint -q "$WORK/$m" || { cat "$WORK/$m.log"; echo "kv-two-daemons: mount $m failed"; exit 1; }
done
mkdir "$WORK/a/d"
sleep 1.2 # b's negative entry for d (if any) expires
writer() { # mount tag: creates, then renames every other file, all in the shared directory
    local m=$1 t=$2 i
    for i in $(seq "$FILES"); do
        echo "$t $i" >"$WORK/$m/d/$t-$i"
        if [ $((i % 2)) = 0 ]; then mv "$WORK/$m/d/$t-$i" "$WORK/$m/d/$t-$i-r"; fi
    done
}
writer a a1 & writer b b1 & writer a a2 & writer b b2 &
wait -n; wait -n; wait -n; wait -n
sleep 1.2 # both kernels' entry and attribute caches expire
want=$((4 * FILES))
na=$(ls "$WORK/a/d" | wc -l)
nb=$(ls "$WORK/b/d" | wc -l)
echo "kv-two-daemons: mount a lists $na names, mount b $nb, $want written"
[ "$na" = "$want" ] && [ "$nb" = "$want" ] || { echo "kv-two-daemons: lost or doubled entries"; exit 1; }
diff <(ls "$WORK/a/d") <(ls "$WORK/b/d")
for m in a b; do umount "$WORK/$m"; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()
"$DPFS" fsck --kv-url "$URL" --kv-volume two
echo "kv-two-daemons: OK"
