#!/usr/bin/env bash
# The remote gateway's cost: `dpfs bench` (the simulated guest) against dpfs serve
# --backend null and mem in-process, and against dpfs serve --backend remote forwarding to
# dpfs gateway --backend null and mem on loopback; 4 KiB randread at QD 1 and 32, one run
# each. Prints the table, then the added QD1 latency (p50) and the QD32 IOPS of the
# gateway path as a share of in-process null. A measurement, not a test.
#   ci/bench-remote.sh [RUNTIME_S=5]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME=${1:-5}
cargo build --release --locked -p dpfs >&2
BIN=$PWD/target/release/dpfs
VFSD=""
BENCH_DIR=${BENCH_DIR:-/tmp/dpfs-bench-remote-share}
source ci/bench-lib.sh
head -c 32 /dev/urandom | base64 >"$W/key"

# gateway BACKEND: dpfs gateway on a free loopback port; sets GW to its address.
gateway() {
    "$BIN" gateway --listen 127.0.0.1:0 --key-file "$W/key" --backend "$1" --log-level warn >"$W/gw.out" 2>"$W/gw.log" &
    pids+=($!)
    GW=""
    for _ in $(seq 100); do
        GW=$(sed -n 's/^dpfs: gateway listening on \([^:]*:[0-9]*\):.*/\1/p' "$W/gw.out")
        [ -n "$GW" ] && return 0
        sleep 0.1
    done
    log "the gateway did not start"; cat "$W/gw.log" >&2; exit 1
}

header
for qd in 1 32; do
    for d in null mem; do
        start "$d" "$BIN" serve --socket-path "$W/$d.sock" --backend "$d" --sandbox none
        row "randread 4k QD$qd" "$d" "$d" --rw randread --bs 4k --iodepth "$qd" --size 64m
        "$BIN" bench --socket-path "$W/$d.sock" --runtime "$RUNTIME" --json --quiet --rw randread --bs 4k \
            --iodepth "$qd" --size 64m >"$W/$d-local-$qd.json"
        stop_all
        gateway "$d"
        start "remote-$d" "$BIN" serve --socket-path "$W/remote-$d.sock" --backend remote --remote "$GW" \
            --key-file "$W/key" --sandbox none
        row "randread 4k QD$qd" "remote-$d" "$d via gateway" --rw randread --bs 4k --iodepth "$qd" --size 64m
        "$BIN" bench --socket-path "$W/remote-$d.sock" --runtime "$RUNTIME" --json --quiet --rw randread --bs 4k \
            --iodepth "$qd" --size 64m >"$W/$d-remote-$qd.json"
        stop_all
    done
done
python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
r = lambda d, k, q: json.load(open(f"{w}/{d}-{k}-{q}.json"))
for d in ("null", "mem"):
    add = r(d, "remote", 1)["lat_us"]["p50"] - r(d, "local", 1)["lat_us"]["p50"]
    print(f"{d}: added QD1 p50 latency through the gateway: {add:.1f} us (target <= 15)")
for d in ("null", "mem"):
    share = 100 * r(d, "remote", 32)["iops"] / r("null", "local", 32)["iops"]
    print(f"{d} via gateway, QD32 IOPS: {share:.0f} % of in-process null (target >= 70)")
PY
