#!/usr/bin/env bash
# Measures the same QEMU guest workload against dpfs and against virtiofsd 1.14, in
# alternating rounds so machine noise hits both alike, and prints a side-by-side table of
# the in-guest dd write/read throughput and the wall time per boot. Not part of ci/test.sh:
# it is a measurement (TCG emulation bounds the absolute figures; compare the ratios).
#   ci/compare-virtiofsd.sh [ROUNDS=3] [MB=256] [KERNEL=6.1]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3} MB=${2:-256} KERNEL=${3:-6.1}
log() { printf '==> %s\n' "$*" >&2; }

ci/guest/setup.sh
ci/guest/install-virtiofsd.sh >&2
cargo build --release --locked -p dpfs >&2
VFSD=${DPFS_TOOLS:-/var/tmp/dpfs-tools}/bin/virtiofsd
# virtiofsd serves a directory: give it tmpfs, as dpfs's mem backend is in memory too.
SHARE=$(mktemp -d /tmp/dpfs-cmp.XXXXXX)
mount -t tmpfs -o size=2g tmpfs "$SHARE"
trap 'umount "$SHARE" 2>/dev/null; rmdir "$SHARE"' EXIT
echo "hello from the host" > "$SHARE/hello.txt"

declare -A CMD=(
    [dpfs-mem]="$PWD/target/release/dpfs serve --backend mem --socket-path {sock} --shared-dir {dir}"
    [virtiofsd]="$VFSD --socket-path={sock} --shared-dir={dir} --cache=auto --sandbox=none"
)
results=$(mktemp)
for ((r = 1; r <= ROUNDS; r++)); do
    for name in dpfs-mem virtiofsd; do
        log "round $r: $name"
        out=$(ci/guest/run.sh --kernel "$KERNEL" --mb "$MB" --share "$SHARE" --timeout 600 \
            --backend-cmd "${CMD[$name]}" 2>&1) || { echo "$out" >&2; exit 1; }
        perf=$(grep -a '^DPFS-PERF:' <<<"$out" | tail -n 1)
        wall=$(grep -a 'boot 1: PASS (wall' <<<"$out" | sed 's/.*wall \([0-9.]*\) s.*/\1/')
        w=$(sed 's/.*write_mib_s=\([0-9.]*\).*/\1/' <<<"$perf")
        rd=$(sed 's/.*read_mib_s=\([0-9.]*\).*/\1/' <<<"$perf")
        echo "$name $r $w $rd $wall" | tee -a "$results" >&2
    done
done
echo
printf '%-10s %6s %14s %14s %10s\n' backend round "write MiB/s" "read MiB/s" "wall s"
sort -k1,1 -k2,2n "$results" | while read -r n r w rd wall; do
    printf '%-10s %6s %14s %14s %10s\n' "$n" "$r" "$w" "$rd" "$wall"
done
awk '{w[$1]+=$3; r[$1]+=$4; t[$1]+=$5; c[$1]++}
     END {for (n in c) printf "%-10s %6s %14.1f %14.1f %10.1f\n", n, "mean", w[n]/c[n], r[n]/c[n], t[n]/c[n]}' "$results" | sort
rm -f "$results"
