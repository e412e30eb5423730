#!/usr/bin/env bash
# Backend wrapper for the QEMU guest run over nfs (ci/guest-tests.sh):
#   ci/guest/nfs-backend.sh DPFS_BIN SOCK DIR [extra dpfs serve args...]
# starts a private nfs-ganesha (ci/ganesha-lib.sh) exporting DIR (run.sh's share, with its
# hello.txt) and runs `dpfs serve --backend nfs` against it on SOCK. ganesha is stopped when
# this script exits, whichever way (run.sh ends the backend with SIGTERM, then SIGKILL to its
# process group).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$1 SOCK=$2 DIR=$3
shift 3
# shellcheck source=../ganesha-lib.sh
. "$HERE/../ganesha-lib.sh"
STATE=$(mktemp -d /tmp/dpfs-guest-ganesha.XXXXXX)
DPFS_PID=
cleanup() {
    if [ -n "$DPFS_PID" ]; then
        kill -TERM "$DPFS_PID" 2>/dev/null || true
        wait "$DPFS_PID" 2>/dev/null || true
    fi
    ganesha_stop
    rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
ganesha_start "$DIR" "$STATE"
echo "nfs-backend.sh: ganesha (pid $GANESHA_PID) exports $DIR"
"$BIN" serve --backend nfs --nfs-server 127.0.0.1 --nfs-export /export --socket-path "$SOCK" "$@" &
DPFS_PID=$!
wait "$DPFS_PID"
