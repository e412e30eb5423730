#!/usr/bin/env bash
# Stands in for the dpfs binary wherever a test starts `dpfs serve --backend X` (sim's
# property and fault suites through DPFS_BIN, the guest harness through --backend-cmd):
# starts `dpfs gateway --backend X` on a free loopback port with a fresh key, then execs
# `dpfs serve --backend remote` against it, so the same tests run through the forwarder
# and the gateway. The gateway gets SIGKILL when the serve process ends (PR_SET_PDEATHSIG),
# so killing what the test started kills both. Other subcommands go to dpfs unchanged.
#   DPFS_REAL_BIN   the dpfs binary [default: target/debug/dpfs next to this script]
set -euo pipefail
dpfs=${DPFS_REAL_BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/debug/dpfs}
[ "${1:-}" = serve ] || exec "$dpfs" "$@"
shift
backend=mem socket_dir="" serve=() gateway=()
while [ $# -gt 0 ]; do
    case "$1" in
        --backend) backend=$2; shift 2 ;;
        --shared-dir | --engine | --xattr-policy | --cache) gateway+=("$1" "$2"); shift 2 ;;
        --socket-path) socket_dir=$(dirname "$2"); serve+=("$1" "$2"); shift 2 ;;
        *) serve+=("$1"); shift ;;
    esac
done
# The key lives beside the socket (the test's temporary directory), or in a fresh one.
dir=${socket_dir:-$(mktemp -d)}
key=$dir/remote.key
head -c 32 /dev/urandom | base64 >"$key"
out=$dir/gateway.out
setpriv --pdeathsig KILL "$dpfs" gateway --listen 127.0.0.1:0 --key-file "$key" --backend "$backend" \
    --log-level "${DPFS_GATEWAY_LOG:-warn}" "${gateway[@]}" >"$out" &
addr=""
for _ in $(seq 1200); do
    addr=$(sed -n 's/^dpfs: gateway listening on \([^:]*:[0-9]*\):.*/\1/p' "$out")
    [ -n "$addr" ] && break
    kill -0 $! 2>/dev/null || { echo "remote-dpfs.sh: the gateway exited" >&2; exit 1; }
    sleep 0.05
done
[ -n "$addr" ] || { echo "remote-dpfs.sh: the gateway did not start" >&2; exit 1; }
exec "$dpfs" serve --backend remote --remote "$addr" --key-file "$key" "${serve[@]}"
