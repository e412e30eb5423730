#!/usr/bin/env bash
# kv backend crash test: `dpfs mount --backend kv` (redb) is killed with SIGKILL in the
# middle of a create/rename/unlink storm, then `dpfs fsck` must find the volume
# consistent, and a new mount must serve it.
#
#   ci/kv-crash.sh [--dpfs PATH] [--seconds N]
#
# Needs root and /dev/fuse; skips (exit 0) without them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DPFS=
SECONDS_STORM=3
while [ $# -gt 0 ]; do
    case "$1" in
        --dpfs) DPFS=$2; shift 2 ;;
        --seconds) SECONDS_STORM=$2; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "unknown argument $1"; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then echo "kv-crash: skipped: needs root"; exit 0; fi
if ! [ -c /dev/fuse ]; then echo "kv-crash: skipped: /dev/fuse unavailable"; exit 0; fi
if [ -z "$DPFS" ]; then
    (cd "$ROOT" && cargo build --release -p dpfs)
    DPFS=${CARGO_TARGET_DIR:-$ROOT/target}/release/dpfs
fi

WORK=$(mktemp -d /tmp/dpfs-kv-crash.XXXXXX)
MNT=$WORK/mnt
mkdir "$MNT"
URL=redb://$WORK/fs.redb
PID=
cleanup() {
    [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null || true
    mountpoint -q "$MNT" 2>/dev/null && umount -l "$MNT" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mount_kv() {
    "$DPFS" mount --backend kv --kv-url "$URL" --log-level warn "$MNT" >>"$WORK/dpfs.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do mountpoint -q "$MNT" && return 0; sleep 0.05; done
    cat "$WORK/dpfs.log"; echo "kv-crash: mount did not appear"; exit 1
}

storm() { # one worker: creates, renames, unlinks and makes directories in its own and a shared dir
    local w=$1 i=0
    mkdir -p "$MNT/w$w" "$MNT/shared" 2>/dev/null || true
    while :; do
        i=$((i + 1))
        echo "$w $i" >"$MNT/w$w/f$i" 2>/dev/null || return 0
        mv "$MNT/w$w/f$i" "$MNT/shared/w$w-$i" 2>/dev/null || return 0
        [ $((i % 3)) = 0 ] && { rm -f "$MNT/shared/w$w-$((i - 1))" 2>/dev/null || return 0; }
        [ $((i % 7)) = 0 ] && { mkdir "$MNT/w$w/d$i" 2>/dev/null || return 0; }
        [ $((i % 11)) = 0 ] && { ln "$MNT/shared/w$w-$i" "$MNT/w$w/l$i" 2>/dev/null || return 0; }
    done
}

mount_kv
for w in 1 2 3 4; do storm "$w" & done
sleep "$SECONDS_STORM"
kill -KILL "$PID"   # the supervisor; its daemon dies with it (PDEATHSIG)
wait "$PID" 2>/dev/null || true
PID=
wait 2>/dev/null || true
umount -l "$MNT" 2>/dev/null || true
echo "kv-crash: daemon killed during the storm; checking the volume"
"$DPFS" fsck --kv-url "$URL"
mount_kv
N=$(find "$MNT" | wc -l)
echo "kv-crash: remounted, $N names reachable"
touch "$MNT/after-crash" && rm "$MNT/after-crash"
kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=
"$DPFS" fsck --kv-url "$URL"
echo "kv-crash: OK"
