#!/usr/bin/env bash
# POSIX conformance: pjdfstest (Rust, 0.2.2) against `dpfs mount` over /dev/fuse.
#
#   ci/pjdfstest.sh [--backend mem|passthrough|nfs|kv|kv-redis] [--threads N] [--expected FILE] [TEST_PATTERN...]
#
# Installs what it needs (libacl1-dev, pjdfstest into $DPFS_TOOLS, default
# /var/tmp/dpfs-tools; both skipped when present), builds `dpfs` (release), mounts the
# backend on a temporary directory (passthrough: serving a fresh tmpfs; nfs: a private
# nfs-ganesha exporting a fresh tmpfs, ci/ganesha-lib.sh; kv: a fresh redb file; kv-redis:
# a private redis-server on loopback), runs pjdfstest there, prints the pass/fail/skip counts
# and the failures, unmounts, and exits non-zero only if a test fails that is not listed in
# the expected-failures file (default ci/pjdfstest-<backend>.expected: one test name per
# line, `#` comments). Needs root and /dev/fuse; skips (exit 0) without them.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${DPFS_TOOLS:-/var/tmp/dpfs-tools}
BACKEND=mem
THREADS=2
EXPECTED=
PATTERNS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --backend) BACKEND=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --expected) EXPECTED=$2; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) PATTERNS+=("$1"); shift ;;
    esac
done
EXPECTED=${EXPECTED:-$ROOT/ci/pjdfstest-${BACKEND%-redis}.expected}

if [ "$(id -u)" != 0 ]; then echo "pjdfstest: skipped: needs root"; exit 0; fi
if ! [ -c /dev/fuse ] || ! : 2>/dev/null <>/dev/fuse; then echo "pjdfstest: skipped: /dev/fuse unavailable"; exit 0; fi

# --- tools (idempotent) ---
source "$ROOT/ci/apt.sh"
apt_install libacl1-dev
PJD=$TOOLS/bin/pjdfstest
if ! [ -x "$PJD" ] || ! "$PJD" --version 2>/dev/null | grep -q '0\.2\.2'; then
    cargo install --locked pjdfstest --version 0.2.2 --root "$TOOLS"
fi
if [ -n "${DPFS_BIN:-}" ]; then
    DPFS=$DPFS_BIN # a binary built already (local runs)
else
    (cd "$ROOT" && cargo build --release -p dpfs)
    DPFS=${CARGO_TARGET_DIR:-$ROOT/target}/release/dpfs
fi

# --- dummy users: pjdfstest switches to two unprivileged users and their groups ---
user_group() { # user -> "user group" for an existing user
    local g
    g=$(id -gn "$1" 2>/dev/null) || return 1
    echo "$1 $g"
}
U1=$(user_group nobody) || { echo "pjdfstest: user nobody missing"; exit 1; }
U2=$(user_group daemon || user_group bin) || { echo "pjdfstest: no second dummy user (daemon/bin)"; exit 1; }

WORK=$(mktemp -d /tmp/dpfs-pjdfstest.XXXXXX)
chmod 0755 "$WORK" # the dummy users must reach the mount point
MNT=$WORK/mnt
mkdir "$MNT"
SHARED=()
if [ "$BACKEND" = passthrough ]; then
    # A fresh directory to serve, on its own tmpfs (pjdfstest's Linux features assume tmpfs/ext4).
    mkdir "$WORK/shared"
    mount -t tmpfs -o mode=0777 dpfs-pjdfstest "$WORK/shared" || echo "pjdfstest: no tmpfs; serving $WORK/shared"
    SHARED=(--shared-dir "$WORK/shared")
fi
REDIS_PID=
if [ "$BACKEND" = nfs ]; then
    # ganesha exports a fresh tmpfs; dpfs mounts it as an NFSv4.1 client.
    apt_install nfs-ganesha nfs-ganesha-vfs
    source "$ROOT/ci/ganesha-lib.sh"
    trap ganesha_stop EXIT # until cleanup (below) takes over
    mkdir "$WORK/shared"
    mount -t tmpfs -o mode=0777 dpfs-pjdfstest "$WORK/shared" || echo "pjdfstest: no tmpfs; exporting $WORK/shared"
    ganesha_start "$WORK/shared" "$WORK/ganesha"
    SHARED=(--nfs-server 127.0.0.1 --nfs-export /export)
elif [ "$BACKEND" = kv ]; then
    SHARED=(--kv-url "redb://$WORK/fs.redb")
elif [ "$BACKEND" = kv-redis ]; then
    apt_install redis-server
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
        --daemonize yes --pidfile "$WORK/redis.pid" >/dev/null
    for _ in $(seq 100); do redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
    REDIS_PID=$(cat "$WORK/redis.pid")
    SHARED=(--kv-url "redis://127.0.0.1:$PORT" --kv-volume pjdfstest)
    BACKEND=kv
fi
CONF=$WORK/pjdfstest.toml
cat >"$CONF" <<CONF
# Linux: the features ext4/tmpfs have (as in pjdfstest's ci/linux-ext4.toml).
[features]
posix_fallocate = {}
utime_now = {}
utimensat = {}

[settings]
naptime = 0.01

[dummy_auth]
entries = [["${U1% *}", "${U1#* }"], ["${U2% *}", "${U2#* }"]]
CONF

DPFS_PID=
cleanup() {
    if mountpoint -q "$MNT" 2>/dev/null; then umount -l "$MNT" || true; fi
    if [ -n "$DPFS_PID" ] && kill -0 "$DPFS_PID" 2>/dev/null; then
        kill -TERM "$DPFS_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$DPFS_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DPFS_PID" 2>/dev/null || true
    fi
    if [ "$BACKEND" = nfs ]; then ganesha_stop; fi
    if mountpoint -q "$WORK/shared" 2>/dev/null; then umount -l "$WORK/shared" || true; fi
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; fi
    if [ -n "${PJDFSTEST_KEEP:-}" ]; then echo "pjdfstest: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

"$DPFS" mount --backend "$BACKEND" "${SHARED[@]}" --threads "$THREADS" --log-level warn "$MNT" >"$WORK/dpfs.log" 2>&1 &
DPFS_PID=$!
for _ in $(seq 100); do
    mountpoint -q "$MNT" && break
    kill -0 "$DPFS_PID" 2>/dev/null || { cat "$WORK/dpfs.log"; echo "pjdfstest: dpfs mount exited"; exit 1; }
    sleep 0.1
done
mountpoint -q "$MNT" || { cat "$WORK/dpfs.log"; echo "pjdfstest: mount did not appear"; exit 1; }
chmod 0777 "$MNT"

LOG=$WORK/pjdfstest.log
echo "pjdfstest: backend $BACKEND on $MNT ($THREADS reader threads)"
set +e
(cd "$MNT" && NO_COLOR=1 timeout --kill-after=10 1800 "$PJD" -c "$CONF" -p "$MNT" "${PATTERNS[@]}") >"$LOG" 2>&1
RC=$?
set -e
sed -i 's/\x1b\[[0-9;]*m//g' "$LOG"
if [ $RC = 124 ] || [ $RC = 137 ]; then tail -20 "$LOG"; echo "pjdfstest: timed out"; exit 1; fi

PASSED=$(grep -cE '[[:space:]]ok$' "$LOG" || true)
FAILED=$(grep -cE '[[:space:]]FAILED$' "$LOG" || true)
SKIPPED=$(grep -cE '[[:space:]]skipped$' "$LOG" || true)
grep -E '^Summary' "$LOG" || true
echo "pjdfstest: $PASSED passed, $FAILED failed, $SKIPPED skipped (backend $BACKEND)"

{ grep -E '[[:space:]]FAILED$' "$LOG" || true; } | awk '{print $1}' | sort -u >"$WORK/failed"
touch "$WORK/expected"
if [ -f "$EXPECTED" ]; then
    { sed -e 's/#.*//' -e 's/[[:space:]]//g' "$EXPECTED" | grep -v '^$' || true; } | sort -u >"$WORK/expected"
fi
UNEXPECTED=$(comm -23 "$WORK/failed" "$WORK/expected")
if [ -s "$WORK/failed" ]; then
    echo "failures (expected ones marked):"
    while read -r t; do
        if grep -qxF "$t" "$WORK/expected"; then echo "  $t (expected)"; else echo "  $t"; fi
    done <"$WORK/failed"
fi
if [ -n "${PJDFSTEST_VERBOSE:-}" ] || [ -n "$UNEXPECTED" ]; then
    # The assertion that failed, for each unexpected failure.
    for t in $UNEXPECTED; do grep -A3 -E "^$t[[:space:]]+FAILED$" "$LOG" | sed 's/^/    /'; done
fi
if [ -n "$UNEXPECTED" ]; then
    echo "pjdfstest: $(echo "$UNEXPECTED" | wc -l) unexpected failure(s)"
    exit 1
fi
echo "pjdfstest: OK (no unexpected failures)"
