#!/usr/bin/env bash
# Issue 5's bench: the passthrough backend against virtiofsd 1.14 on the same tmpfs
# directory, through `dpfs bench` (the simulated guest, event-driven like a real one):
# 4 KiB randread/randwrite at QD 1 and 32 on 1 and 2 request queues, 1 MiB sequential
# read/write, stat and create+unlink storms. dpfs runs with each engine and polling mode
# in DAEMONS; every cell gets fresh daemons. A measurement, not a test.
#   ci/bench-passthrough.sh [RUNTIME_S=5]    DAEMONS="virtiofsd sync-event ..." to narrow,
#   BENCH_DIR=/var/tmp/x to bench a directory on another file system instead of tmpfs
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME=${1:-5}
DAEMONS=${DAEMONS:-virtiofsd sync-event sync-hybrid sync-busy io-uring-hybrid aio-hybrid}
ci/guest/install-virtiofsd.sh >&2
cargo build --release --locked -p dpfs >&2
BIN=$PWD/target/release/dpfs
VFSD=${DPFS_TOOLS:-/var/tmp/dpfs-tools}/bin/virtiofsd
source ci/bench-lib.sh

# daemon NAME QUEUES: NAME is virtiofsd or ENGINE-POLL (dpfs passthrough).
daemon() {
    local name=$1 queues=$2
    if [ "$name" = virtiofsd ]; then virtiofsd "$name"; return; fi
    local engine=${name%-*} poll=${name##*-}
    start "$name" "$BIN" serve --socket-path "$W/$name.sock" --shared-dir "$SHARE" --cache never \
        --engine "$engine" --poll "$poll" --threads "$queues" --request-queues "$queues"
}

# label | queues | bench args. Two queues: dpfs runs two jobs (one per queue); virtiofsd
# has a single request queue, so it gets one job with the same total depth.
cells=(
    "randread QD1|1|--rw randread --bs 4k --iodepth 1"
    "randread QD32|1|--rw randread --bs 4k --iodepth 32"
    "randread 2q QD1|2|--rw randread --bs 4k --iodepth 1"
    "randread 2q QD32|2|--rw randread --bs 4k --iodepth 32"
    "randwrite QD1|1|--rw randwrite --bs 4k --iodepth 1"
    "randwrite QD32|1|--rw randwrite --bs 4k --iodepth 32"
    "randwrite 2q QD1|2|--rw randwrite --bs 4k --iodepth 1"
    "randwrite 2q QD32|2|--rw randwrite --bs 4k --iodepth 32"
    "read 1M QD1|1|--rw read --bs 1m --iodepth 1 --size 256m"
    "write 1M QD1|1|--rw write --bs 1m --iodepth 1 --size 256m"
    "stat QD1|1|--rw stat --iodepth 1"
    "stat QD32|1|--rw stat --iodepth 32"
    "create-unlink QD8|1|--rw create-unlink --iodepth 8"
    "create-unlink QD32|1|--rw create-unlink --iodepth 32"
)
header
for cell in "${cells[@]}"; do
    IFS='|' read -r label queues args <<<"$cell"
    for d in $DAEMONS; do
        daemon "$d" "$queues"
        # shellcheck disable=SC2086 # args is a word list
        if [ "$queues" = 2 ] && [ "$d" = virtiofsd ]; then
            qd=${args##*--iodepth }
            qd=${qd%% *}
            row "$label" "$d" "$d (1q, QD$((qd * 2)))" ${args/--iodepth $qd/--iodepth $((qd * 2))}
        elif [ "$queues" = 2 ]; then
            row "$label" "$d" "$d" $args --queues 2 --jobs 2
        else
            row "$label" "$d" "$d" $args
        fi
        stop_all
    done
done
