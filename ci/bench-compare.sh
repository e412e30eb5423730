#!/usr/bin/env bash
# Side-by-side `dpfs bench` (the simulated guest) against dpfs serve --backend null, dpfs
# serve --backend mem and virtiofsd 1.14 (shared dir on tmpfs), in one run: 4 KiB randread
# and randwrite at QD 1 and 32, a stat storm and a create+unlink storm. Prints IOPS and p99
# per cell. A measurement, not a test.   ci/bench-compare.sh [RUNTIME_S=5]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME=${1:-5}
log() { printf '==> %s\n' "$*" >&2; }

ci/guest/install-virtiofsd.sh >&2
cargo build --release --locked -p dpfs >&2
BIN=$PWD/target/release/dpfs
VFSD=${DPFS_TOOLS:-/var/tmp/dpfs-tools}/bin/virtiofsd
W=$(mktemp -d /tmp/dpfs-bench.XXXXXX)
mkdir -p "$W/share"
mount -t tmpfs -o size=2g tmpfs "$W/share"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    umount "$W/share" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

start() { # name command...
    local name=$1
    shift
    "$@" > "$W/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$W/$name.sock" ] && return 0; sleep 0.1; done
    log "$name did not create its socket"; cat "$W/$name.log" >&2; exit 1
}
start null "$BIN" serve --socket-path "$W/null.sock" --backend null
start mem "$BIN" serve --socket-path "$W/mem.sock" --backend mem
# virtiofsd exits when its frontend disconnects: it is started afresh for every cell.
vfsd() {
    rm -f "$W/virtiofsd.sock"
    start virtiofsd "$VFSD" --socket-path="$W/virtiofsd.sock" --shared-dir="$W/share" --cache=never --sandbox=none
}

cells=("randread 1" "randread 32" "randwrite 1" "randwrite 32" "stat 1" "create-unlink 8")
printf '%-16s %-10s %12s %12s\n' workload daemon IOPS "p99 (us)"
for cell in "${cells[@]}"; do
    read -r rw qd <<<"$cell"
    for d in null mem virtiofsd; do
        if [ "$d" = null ] && [ "$rw" = create-unlink ]; then
            printf '%-16s %-10s %12s %12s\n' "$rw QD$qd" "$d" "n/a" "-"
            continue
        fi
        [ "$d" = virtiofsd ] && vfsd
        json=$("$BIN" bench --socket-path "$W/$d.sock" --rw "$rw" --bs 4k --iodepth "$qd" \
            --size 64m --runtime "$RUNTIME" --json --quiet 2>"$W/bench.err") || {
            log "bench $rw QD$qd against $d failed"; cat "$W/bench.err" >&2; exit 1; }
        python3 -c 'import json,sys; r=json.load(sys.stdin); i=r["iops"]; p=r["lat_us"]["p99"]; a=sys.argv; print(f"{a[1]:<16} {a[2]:<10} {i:>12.0f} {p:>12.1f}")' \
            "$rw QD$qd" "$d" <<<"$json"
    done
done
