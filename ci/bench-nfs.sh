#!/usr/bin/env bash
# `dpfs bench` (the simulated guest) through `dpfs serve --backend nfs` against a private
# nfs-ganesha exporting a tmpfs: 4 KiB randread/randwrite at QD 1 and 32, 1 MiB sequential
# read and write, a stat storm and a create+unlink storm, for each client engine in the same
# run: dpfs's own NFSv4.1 client and the libnfs NFSv3 engine (`--nfs-client libnfs`, ganesha
# serving v3 through rpcbind). Prints IOPS, latency, and the CPU time per operation of the
# dpfs daemon (and, of that, its poller threads': the rest is the client engine's) and of
# ganesha (from /proc: utime+stime over the cell, divided by the operations done), then the
# issue's targets (our CPU per 4 KiB op at most half libnfs's,
# QD32 IOPS at least libnfs's, QD1 latency within 10 %). A measurement, not a test.
#   ci/bench-nfs.sh [RUNTIME_S=5]   (DPFS_BIN: a dpfs built with --features libnfs already;
#                                    ENGINES="dpfs libnfs" by default; CELLS="randread QD32,stat QD1"
#                                    runs only the cells named; HALTPOLL_NS=200000: let idle
#                                    vCPUs poll that long before halting, this run only,
#                                    see ci/vm-idle.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME=${1:-5}
if [ -n "${DPFS_BIN:-}" ]; then BIN=$DPFS_BIN; else
    cargo build --release --locked -p dpfs --features libnfs >&2
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/dpfs
fi
source ci/apt.sh
apt_install nfs-ganesha nfs-ganesha-vfs rpcbind >&2
ENGINES=${ENGINES:-dpfs libnfs}
W=$(mktemp -d /tmp/dpfs-bench-nfs.XXXXXX)
mkdir "$W/share"
mount -t tmpfs -o size=4g,mode=0777 tmpfs "$W/share"
source ci/ganesha-lib.sh
source ci/vm-idle.sh
DPFS_PID=
cleanup() {
    set +e # an EXIT trap that stops at its first failure would leave ganesha running
    vm_idle_restore
    [ -n "$DPFS_PID" ] && kill "$DPFS_PID" 2>/dev/null && wait "$DPFS_PID" 2>/dev/null
    ganesha_stop
    umount "$W/share" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
GANESHA_V3=1 ganesha_start "$W/share" "$W/ganesha" >&2
if [ -n "${HALTPOLL_NS:-}" ]; then vm_idle_poll "$HALTPOLL_NS"; fi
vm_idle_describe

TICK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in ticks
# The same for the poller threads of a dpfs process (the rest is the client engine's):
# vhost-user-backend names them vring_worker.
poller_cpu() {
    local t sum=0
    for t in /proc/"$1"/task/*; do
        [ "$(cat "$t/comm" 2>/dev/null)" = vring_worker ] || continue
        sum=$((sum + $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0)))
    done
    echo "$sum"
}

RESULTS=$W/results.jsonl
printf '%-7s %-18s %9s %9s %9s %9s %14s %14s %14s\n' client workload IOPS MiB/s "p50 us" "p99 us" "dpfs CPU/op" \
    "of it pollers" "ganesha CPU/op"
# NFS_ARGS: more `dpfs serve` options (e.g. "--nfs-threads 1 --nfs-nconnect 2").
cell() {
    local label=$1
    shift
    if [ -n "${CELLS:-}" ] && [[ ",$CELLS," != *",$label,"* ]]; then return 0; fi
    rm -f "$W/nfs.sock"
    # shellcheck disable=SC2086
    "$BIN" serve --socket-path "$W/nfs.sock" --backend nfs --nfs-server 127.0.0.1 --nfs-export /export \
        --nfs-client "$ENGINE" --sandbox none --log-level warn ${NFS_ARGS:-} >"$W/dpfs.log" 2>&1 &
    DPFS_PID=$!
    for _ in $(seq 100); do [ -S "$W/nfs.sock" ] && break; sleep 0.1; done
    [ -S "$W/nfs.sock" ] || { cat "$W/dpfs.log" >&2; exit 1; }
    local d0 g0 json
    d0=$(cpu "$DPFS_PID"); g0=$(cpu "$GANESHA_PID")
    "$BIN" bench --socket-path "$W/nfs.sock" --runtime "$RUNTIME" --json --quiet "$@" >"$W/bench.json" \
        2>"$W/bench.err" &
    local bench=$! p1=0 n
    # The poller threads live as long as the guest's connection: sampled while the guest
    # runs, keeping the largest sample (they may end before it; the last 0.1 s is missed).
    while kill -0 "$bench" 2>/dev/null; do
        n=$(poller_cpu "$DPFS_PID")
        [ "$n" -gt "$p1" ] && p1=$n
        sleep 0.1
    done
    wait "$bench" || { cat "$W/bench.err" "$W/dpfs.log" >&2; exit 1; }
    json=$(cat "$W/bench.json")
    local d1 g1
    d1=$(cpu "$DPFS_PID"); g1=$(cpu "$GANESHA_PID")
    python3 -c '
import json, sys
r = json.loads(sys.argv[2]); l = r["lat_us"]; tick = float(sys.argv[7])
ops = r.get("ops") or r["iops"] * float(sys.argv[3])
cpu = lambda a, b: (float(b) - float(a)) / tick / ops * 1e6 if ops else None
fmt = lambda v: "-" if v is None else "%.1f us" % v
d, g, p = cpu(sys.argv[4], sys.argv[5]), cpu(sys.argv[6], sys.argv[8]), cpu(0, sys.argv[11])
print("%-7s %-18s %9.0f %9.1f %9.1f %9.1f %14s %14s %14s" % (sys.argv[9], sys.argv[1], r["iops"], r["mib_s"],
      l["p50"], l["p99"], fmt(d), fmt(p), fmt(g)))
with open(sys.argv[10], "a") as f:
    f.write(json.dumps({"engine": sys.argv[9], "cell": sys.argv[1], "iops": r["iops"], "p50": l["p50"], "cpu": d,
                        "poller_cpu": p}) + "\n")
' "$label" "$json" "$RUNTIME" "$d0" "$d1" "$g0" "$TICK" "$g1" "$ENGINE" "$RESULTS" "$p1"
    kill "$DPFS_PID"; wait "$DPFS_PID" 2>/dev/null || true; DPFS_PID=
}

for ENGINE in $ENGINES; do
    cell "randread QD1" --rw randread --bs 4k --iodepth 1 --size 64m
    cell "randread QD32" --rw randread --bs 4k --iodepth 32 --size 64m
    cell "randwrite QD1" --rw randwrite --bs 4k --iodepth 1 --size 64m
    cell "randwrite QD32" --rw randwrite --bs 4k --iodepth 32 --size 64m
    cell "read 1M QD4" --rw read --bs 1m --iodepth 4 --size 256m
    cell "write 1M QD4" --rw write --bs 1m --iodepth 4 --size 256m
    cell "stat QD1" --rw stat --iodepth 1
    cell "create-unlink QD8" --rw create-unlink --iodepth 8
done

# The issue's targets, dpfs's client against the libnfs engine, where both ran.
python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {(r["engine"], r["cell"]): r for r in rows}
def both(cell):
    a, b = by.get(("dpfs", cell)), by.get(("libnfs", cell))
    return (a, b) if a and b else None
print()
print("%-18s %-34s %s" % ("workload", "target (dpfs vs libnfs)", "measured"))
for cell in ("randread QD1", "randread QD32", "randwrite QD1", "randwrite QD32"):
    p = both(cell)
    if not p:
        continue
    a, b = p
    if a["cpu"] and b["cpu"]:
        r = a["cpu"] / b["cpu"]
        print("%-18s %-34s %.2fx %s" % (cell, "CPU/op <= 0.5x", r, "met" if r <= 0.5 else "NOT met"))
    if cell.endswith("QD32"):
        r = a["iops"] / b["iops"]
        print("%-18s %-34s %.2fx %s" % (cell, "IOPS >= 1.0x", r, "met" if r >= 1.0 else "NOT met"))
    else:
        r = a["p50"] / b["p50"]
        print("%-18s %-34s %.2fx %s" % (cell, "p50 latency <= 1.1x", r, "met" if r <= 1.1 else "NOT met"))
PY
