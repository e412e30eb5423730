# Shared by ci/bench-compare.sh and ci/bench-passthrough.sh (sourced): the share (a fresh
# tmpfs, or BENCH_DIR if set: e.g. a directory on a disk file system), daemons started per
# cell, and one `dpfs bench` run printed as a table row.
# Needs: BIN (dpfs), VFSD (virtiofsd), RUNTIME (seconds per cell).

log() { printf '==> %s\n' "$*" >&2; }

W=$(mktemp -d /tmp/dpfs-bench.XXXXXX)
if [ -n "${BENCH_DIR:-}" ]; then
    mkdir -p "$BENCH_DIR"
    SHARE=$(realpath "$BENCH_DIR")
else
    SHARE=$W/share
    mkdir -p "$SHARE"
    mount -t tmpfs -o size=4g tmpfs "$SHARE"
fi
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${BENCH_DIR:-}" ] || umount "$SHARE" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

# start NAME COMMAND...: runs a daemon that listens on $W/NAME.sock, waits for the socket.
start() {
    local name=$1
    shift
    rm -f "$W/$name.sock"
    "$@" > "$W/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$W/$name.sock" ] && return 0; sleep 0.1; done
    log "$name did not create its socket"; cat "$W/$name.log" >&2; exit 1
}

# stop_all: stops every daemon started so far (each cell gets fresh ones).
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}

# virtiofsd NAME: virtiofsd 1.14 on the share, no guest caching, as a bench needs.
virtiofsd() {
    start "$1" "$VFSD" --socket-path="$W/$1.sock" --shared-dir="$SHARE" --cache=never --sandbox=none
}

# header / row LABEL DAEMON SHOWN BENCH-ARGS...: one `dpfs bench` against $W/DAEMON.sock,
# printed with SHOWN in the daemon column.
header() { printf '%-22s %-24s %10s %10s %10s %10s\n' workload daemon IOPS MiB/s "p50 (us)" "p99 (us)"; }
row() {
    local label=$1 daemon=$2 shown=$3
    shift 3
    local json
    json=$("$BIN" bench --socket-path "$W/$daemon.sock" --runtime "$RUNTIME" --json --quiet "$@" 2>"$W/bench.err") || {
        log "bench $label against $daemon failed"; cat "$W/bench.err" "$W/$daemon.log" >&2; exit 1; }
    python3 -c '
import json, sys
r = json.loads(sys.argv[3]); l = r["lat_us"]
print("%-22s %-24s %10.0f %10.1f %10.1f %10.1f" % (sys.argv[1], sys.argv[2], r["iops"], r["mib_s"], l["p50"], l["p99"]))
'  "$label" "$shown" "$json"
}
