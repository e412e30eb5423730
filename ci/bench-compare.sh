#!/usr/bin/env bash
# Side-by-side `dpfs bench` (the simulated guest) against dpfs serve --backend null, dpfs
# serve --backend mem and virtiofsd 1.14 (shared dir on tmpfs), in one run: 4 KiB randread
# and randwrite at QD 1 and 32, a stat storm and a create+unlink storm. Prints IOPS and
# latency per cell. A measurement, not a test.   ci/bench-compare.sh [RUNTIME_S=5]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME=${1:-5}
ci/guest/install-virtiofsd.sh >&2
cargo build --release --locked -p dpfs >&2
BIN=$PWD/target/release/dpfs
VFSD=${DPFS_TOOLS:-/var/tmp/dpfs-tools}/bin/virtiofsd
source ci/bench-lib.sh

cells=("randread 1" "randread 32" "randwrite 1" "randwrite 32" "stat 1" "create-unlink 8")
header
for cell in "${cells[@]}"; do
    read -r rw qd <<<"$cell"
    for d in null mem virtiofsd; do
        [ "$d" = null ] && [ "$rw" = create-unlink ] && continue
        case $d in
        virtiofsd) virtiofsd "$d" ;;
        *) start "$d" "$BIN" serve --socket-path "$W/$d.sock" --backend "$d" ;;
        esac
        row "$rw QD$qd" "$d" "$d" --rw "$rw" --bs 4k --iodepth "$qd" --size 64m
        stop_all
    done
done
