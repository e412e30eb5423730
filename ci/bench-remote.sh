#!/usr/bin/env bash
# The remote gateway's cost: `dpfs bench` (the simulated guest) against dpfs serve
# --backend null and mem in-process, and against dpfs serve --backend remote forwarding to
# dpfs gateway --backend null and mem on loopback; 4 KiB randread at QD 1 and 32, one run
# each. Prints the table, then the added QD1 latency (p50) and the QD32 IOPS of the
# gateway path as a share of in-process null. A measurement, not a test.
# First, the machine's floor: the same exchange as a bare TCP ping-pong between two
# threads, and through forwarder and gateway without a guest (remote/examples/rtt.rs).
#   ci/bench-remote.sh [RUNTIME_S=5]   (DPFS_BIN: a dpfs built already; HALTPOLL_NS=200000:
#                                       let idle vCPUs poll that long before halting, for
#                                       this run only; see ci/vm-idle.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME=${1:-5}
if [ -n "${DPFS_BIN:-}" ]; then BIN=$DPFS_BIN; else # DPFS_BIN: a dpfs built already
    cargo build --release --locked -p dpfs >&2
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/dpfs
fi
cargo build --release --locked -p dpfs-remote --example rtt >&2
RTT=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/rtt
VFSD=""
BENCH_DIR=${BENCH_DIR:-/tmp/dpfs-bench-remote-share}
source ci/bench-lib.sh
source ci/vm-idle.sh
trap 'vm_idle_restore; cleanup' EXIT
if [ -n "${HALTPOLL_NS:-}" ]; then vm_idle_poll "$HALTPOLL_NS"; fi
vm_idle_describe
echo "round trips without a guest (4 KiB READ, null backend):"
"$RTT" 5000 | sed 's/^/  /'
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

# cell LABEL DAEMON SHOWN JSON BENCH-ARGS...: one run, printed as a row and kept as JSON.
cell() {
    local label=$1 daemon=$2 shown=$3 out=$4
    shift 4
    "$BIN" bench --socket-path "$W/$daemon.sock" --runtime "$RUNTIME" --json --quiet "$@" >"$out" 2>"$W/bench.err" || {
        log "bench $label against $daemon failed"; cat "$W/bench.err" "$W/$daemon.log" >&2; exit 1; }
    python3 -c '
import json, sys
r = json.load(open(sys.argv[3])); l = r["lat_us"]
print("%-22s %-24s %10.0f %10.1f %10.1f %10.1f" % (sys.argv[1], sys.argv[2], r["iops"], r["mib_s"], l["p50"], l["p99"]))
' "$label" "$shown" "$out"
}

header
for qd in 1 32; do
    for d in null mem; do
        start "$d" "$BIN" serve --socket-path "$W/$d.sock" --backend "$d" --sandbox none
        cell "randread 4k QD$qd" "$d" "$d" "$W/$d-local-$qd.json" --rw randread --bs 4k --iodepth "$qd" --size 64m
        stop_all
        gateway "$d"
        start "remote-$d" "$BIN" serve --socket-path "$W/remote-$d.sock" --backend remote --remote "$GW" \
            --key-file "$W/key" --sandbox none
        cell "randread 4k QD$qd" "remote-$d" "$d via gateway" "$W/$d-remote-$qd.json" --rw randread --bs 4k \
            --iodepth "$qd" --size 64m
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
