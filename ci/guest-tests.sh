#!/usr/bin/env bash
# QEMU guest tests of `dpfs serve` (part of ci/test.sh): Linux 6.1 guests (one request
# queue, FUSE 7.37) against the mem and the passthrough backend (AIO engine), and a Linux
# 6.12 guest with DPFS's [local_mirror] settings (O_DIRECT on the host, no guest caching),
# and one with 4 request queues on 4 vCPUs against passthrough (io_uring) that reboots and
# mounts again against the same running daemon; a 6.12 guest against the nfs backend on a
# private nfs-ganesha exporting the share (ci/guest/nfs-backend.sh); a 6.1 guest against the
# kv backend on a private redis-server (16 MiB big file); and a 6.12 guest against mem
# through the remote gateway (ci/remote-dpfs.sh: dpfs gateway + dpfs serve --backend
# remote). Each runs the standard workload
# (ci/guest/workload.sh: namespace and data operations and a 64 MiB write + read with checksum).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\n==> [%4ss] %s\n' "$SECONDS" "$*" >&2; }

ci/guest/setup.sh
cargo build --release --locked -p dpfs
BIN=$PWD/target/release/dpfs
pass=0
fail=0
run() {
    local name=$1
    shift
    log "guest: $name"
    if ci/guest/run.sh "$@"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "guest test FAILED: $name" >&2
    fi
}
run "linux-6.1 mem" --kernel 6.1 --mb 64 --timeout 300 \
    --backend-cmd "$BIN serve --backend mem --socket-path {sock} --shared-dir {dir} --metrics"
run "linux-6.1 passthrough (Linux AIO engine)" --kernel 6.1 --mb 64 --timeout 300 \
    --backend-cmd "$BIN serve --socket-path {sock} --shared-dir {dir} --engine aio --metrics"
run "linux-6.12 passthrough, DPFS [local_mirror] config (directio_mode 2)" --kernel 6.12 --mb 64 --timeout 300 \
    --backend-cmd "$BIN serve --socket-path {sock} --shared-dir {dir} -c $PWD/ci/guest/dpfs-local-mirror.toml --metrics"
run "linux-6.12 passthrough 4 queues + reboot" --kernel 6.12 --smp 4 --queues 4 --mb 64 --reboot --timeout 600 \
    --backend-cmd "$BIN serve --socket-path {sock} --shared-dir {dir} --request-queues 4 --threads 4 --metrics"
run "linux-6.12 nfs (private nfs-ganesha exporting the share)" --kernel 6.12 --mb 16 --timeout 600 \
    --backend-cmd "$PWD/ci/guest/nfs-backend.sh $BIN {sock} {dir} --metrics"
run "linux-6.12 mem through dpfs gateway (dpfs serve --backend remote)" --kernel 6.12 --mb 16 --timeout 300 \
    --backend-cmd "env DPFS_REAL_BIN=$BIN $PWD/ci/remote-dpfs.sh serve --backend mem --socket-path {sock} --shared-dir {dir}"
# The kv backend on a private redis-server (no persistence), 16 MiB big file: every block
# of the guest's I/O is a Redis round trip or two over loopback.
source ci/apt.sh
apt_install redis-server
REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REDIS_DIR=$(mktemp -d /tmp/dpfs-guest-redis.XXXXXX)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$REDIS_DIR" \
    --daemonize yes --pidfile "$REDIS_DIR/redis.pid" >/dev/null
trap 'redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$REDIS_DIR"' EXIT
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
run "linux-6.1 kv on Redis" --kernel 6.1 --mb 16 --timeout 300 \
    --backend-cmd "$BIN serve --backend kv --kv-url redis://127.0.0.1:$REDIS_PORT --kv-volume guest --socket-path {sock} --metrics"
echo "guest: $pass passed, $fail failed"
[ "$fail" = 0 ]
