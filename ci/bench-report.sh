#!/usr/bin/env bash
# A bench report people look at: `dpfs bench` (the simulated guest) sweeps 4 KiB randread
# over QD 1,2,4,8,16,32 against dpfs serve --backend null, dpfs serve --backend mem and
# virtiofsd 1.14 (shared dir on tmpfs), a fresh daemon per sweep (per point for virtiofsd,
# which exits when its one client disconnects); saves each sweep's JSON
# and draws them with `dpfs bench-plot` into iops-vs-qd.svg (IOPS and p99 latency against
# queue depth) and index.html (the plot and a table of every figure). Root needed (tmpfs).
#   ci/bench-report.sh [RUNTIME_S=3]     OUT=target/bench-report  QDS=1,2,4,8,16,32
# A measurement, not a test: compare reports made on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME=${1:-3}
OUT=${OUT:-target/bench-report}
QDS=${QDS:-1,2,4,8,16,32}
ci/guest/install-virtiofsd.sh >&2
cargo build --release --locked -p dpfs >&2
BIN=$PWD/target/release/dpfs
VFSD=${DPFS_TOOLS:-/var/tmp/dpfs-tools}/bin/virtiofsd
source ci/bench-lib.sh

mkdir -p "$OUT"
OUT=$(realpath "$OUT")
began=$SECONDS
labels=()
# bench DAEMON OUT.json QDS: one `dpfs bench` sweep (or point) against $W/DAEMON.sock.
bench() {
    "$BIN" bench --socket-path "$W/$1.sock" --rw randread --bs 4k --size 64m --iodepth "$3" \
        --runtime "$RUNTIME" --json > "$2" || {
        log "bench against $1 failed"; cat "$W/$1.log" >&2; exit 1; }
}
for d in dpfs-null dpfs-mem; do
    start "$d" "$BIN" serve --socket-path "$W/$d.sock" --backend "${d#dpfs-}"
    log "$d: 4k randread at QD $QDS, ${RUNTIME}s per point"
    bench "$d" "$OUT/$d.json" "$QDS"
    stop_all
    labels+=("$d=$OUT/$d.json")
done
# virtiofsd serves one connection and exits, and each point is a connection: a fresh
# virtiofsd per point, one file per point, joined into one line by bench-plot.
log "virtiofsd: 4k randread at QD $QDS, ${RUNTIME}s per point"
for qd in ${QDS//,/ }; do
    virtiofsd virtiofsd
    bench virtiofsd "$OUT/virtiofsd-qd$qd.json" "$qd"
    stop_all
    labels+=("virtiofsd=$OUT/virtiofsd-qd$qd.json")
done
"$BIN" bench-plot --out "$OUT/iops-vs-qd.svg" --html "$OUT/index.html" \
    --title "4 KiB randread, dpfs bench (simulated guest), ${RUNTIME}s per point, $(hostname)" "${labels[@]}"
log "report: $OUT/index.html ($((SECONDS - began))s of measuring and drawing)"
