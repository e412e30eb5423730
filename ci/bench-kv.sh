#!/usr/bin/env bash
# Issue 10's bench: the kv backend on redb (a file on disk, fsync = durable commit) and on
# Redis (a private redis-server, no persistence), kv-redb-immediate (redb with
# --kv-durability immediate: every reply follows a durable commit), against the mem and passthrough (tmpfs)
# backends, through `dpfs bench` (the simulated guest): stat, create+unlink storms, whole-file
# 4 KiB read and write at QD 1 and 32 (DPFS-KV's case), and 1 MiB sequential. Every cell
# gets fresh daemons. A measurement, not a test.
#   ci/bench-kv.sh [RUNTIME_S=3]     DAEMONS="kv-redb mem" and ONLY=create-unlink to narrow,
#   KV_ARGS="--threads 2" for more serve flags on the kv daemons
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME=${1:-3}
DAEMONS=${DAEMONS:-mem passthrough kv-redb kv-redb-immediate kv-redis}
ONLY=${ONLY:-}
source ci/apt.sh
apt_install redis-server
if [ -z "${BIN:-}" ]; then # BIN=path/to/dpfs measures that binary instead
    cargo build --release --locked -p dpfs >&2
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/dpfs
fi
VFSD=/nonexistent # bench-lib's virtiofsd is not used here
source ci/bench-lib.sh
DISK=$(mktemp -d /var/tmp/dpfs-bench-kv.XXXXXX) # redb's file on a disk, not on tmpfs
REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis_stop() { redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; }
trap 'redis_stop; rm -rf "$DISK"; cleanup' EXIT

# shellcheck disable=SC2086 # KV_ARGS is a word list
daemon() {
    local name=$1
    case "$name" in
        mem) start "$name" "$BIN" serve --socket-path "$W/$name.sock" --backend mem --cache never ;;
        passthrough) start "$name" "$BIN" serve --socket-path "$W/$name.sock" --shared-dir "$SHARE" --cache never ;;
        kv-redb)
            rm -f "$DISK/fs.redb"
            start "$name" "$BIN" serve --socket-path "$W/$name.sock" --backend kv --kv-url "redb://$DISK/fs.redb" --cache never ${KV_ARGS:-} ;;
        kv-redb-immediate)
            rm -f "$DISK/fs.redb"
            start "$name" "$BIN" serve --socket-path "$W/$name.sock" --backend kv --kv-url "redb://$DISK/fs.redb" \
                --kv-durability immediate --cache never ${KV_ARGS:-} ;;
        kv-redis)
            redis_stop
            redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DISK" \
                --daemonize yes --pidfile "$DISK/redis.pid" >/dev/null
            for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
            start "$name" "$BIN" serve --socket-path "$W/$name.sock" --backend kv \
                --kv-url "redis://127.0.0.1:$REDIS_PORT" --cache never ${KV_ARGS:-} ;;
    esac
}

cells=(
    "stat QD1|--rw stat --iodepth 1"
    "stat QD32|--rw stat --iodepth 32"
    "create-unlink QD1|--rw create-unlink --iodepth 1"
    "create-unlink QD32|--rw create-unlink --iodepth 32"
    "read 4K file QD1|--rw randread --bs 4k --size 4k --iodepth 1"
    "read 4K file QD32|--rw randread --bs 4k --size 4k --iodepth 32"
    "write 4K file QD1|--rw randwrite --bs 4k --size 4k --iodepth 1"
    "write 4K file QD32|--rw randwrite --bs 4k --size 4k --iodepth 32"
    "read 1M QD1|--rw read --bs 1m --size 64m --iodepth 1"
    "write 1M QD1|--rw write --bs 1m --size 64m --iodepth 1"
)
header
for cell in "${cells[@]}"; do
    IFS='|' read -r label args <<<"$cell"
    [[ -z "$ONLY" || "$label" == *"$ONLY"* ]] || continue
    for d in $DAEMONS; do
        daemon "$d"
        # shellcheck disable=SC2086 # args is a word list
        row "$label" "$d" "$d" $args
        stop_all
    done
done
