#!/usr/bin/env bash
# Host side of the guest test: start a vhost-user-fs backend, boot a QEMU
# (TCG) guest whose /init mounts the share and runs a workload, and judge
# the DPFS-GUEST-RESULT line from the serial log.  Exit 0 only on PASS.
#
# Usage: ci/guest/run.sh --backend-cmd 'CMD {sock} {dir}' [options]
#   --kernel 6.1|6.12   guest kernel (default 6.1; 6.12 for multi-queue)
#   --backend-cmd CMD   backend command line; {sock} = vhost-user socket path,
#                       {dir} = share dir.  Run through bash in its own
#                       process group; stdout/stderr go to backend.log
#   --share DIR         share dir (default: fresh temp dir with hello.txt)
#   --smp N             guest vCPUs (default 1)
#   --queues N          virtio-fs request queues (default 1)
#   --mem MiB           guest RAM (default 512, 1024 with --smp >= 4)
#   --mb N              big-file test size in MiB (default 64)
#   --script FILE       workload instead of workload.sh: a host file (copied
#                       into the initramfs) or a guest path such as /mnt/x.sh
#   --extra DIR         copy DIR into the guest's /extra
#   --tag TAG           virtio-fs tag (default myfs)
#   --append ARGS       extra kernel command line
#   --timeout S         limit per boot in seconds (default 300)
#   --reboot            boot twice against the same running backend
#   --keep              keep the work dir even on success
# Env: DPFS_GUEST_CACHE (setup cache), DPFS_GUEST_BOOT=vmlinux|bzimage,
#      DPFS_BACKEND_WAIT (s to wait for the socket, default 30),
#      DPFS_BACKEND_GRACE (s between SIGTERM and SIGKILL, default 5).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${DPFS_GUEST_CACHE:-/var/tmp/dpfs-guest}
export DPFS_GUEST_CACHE=$CACHE

log() { printf 'run.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

KERNEL=6.1 BACKEND_CMD='' SHARE='' SMP=1 QUEUES=1 MEM='' MB=64 SCRIPT='' EXTRA=''
TAG=myfs APPEND='' TIMEOUT=300 REBOOT=0 KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
        --kernel) KERNEL=$2; shift ;;
        --backend-cmd) BACKEND_CMD=$2; shift ;;
        --share) SHARE=$2; shift ;;
        --smp) SMP=$2; shift ;;
        --queues) QUEUES=$2; shift ;;
        --mem) MEM=$2; shift ;;
        --mb) MB=$2; shift ;;
        --script) SCRIPT=$2; shift ;;
        --extra) EXTRA=$2; shift ;;
        --tag) TAG=$2; shift ;;
        --append) APPEND=$2; shift ;;
        --timeout) TIMEOUT=$2; shift ;;
        --reboot) REBOOT=1 ;;
        --keep) KEEP=1 ;;
        -h|--help) usage ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done
[ -n "$BACKEND_CMD" ] || die "--backend-cmd is required"
case $KERNEL in 6.1|6.12) ;; *) die "--kernel must be 6.1 or 6.12" ;; esac
for v in SMP QUEUES MB TIMEOUT ${MEM:+MEM}; do
    [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || die "--${v,,} needs a positive integer"
done
if [ "$QUEUES" -gt 1 ] && [ "$KERNEL" = 6.1 ]; then
    log "warning: Linux 6.1 uses one request queue whatever --queues says (multi-queue needs 6.11+)"
fi
# Default RAM is small; the big test keeps its MB-sized source in guest tmpfs.
if [ -z "$MEM" ]; then
    MEM=512; [ "$SMP" -ge 4 ] && MEM=1024
    need=$(( (MB + 320 + 255) / 256 * 256 ))
    [ "$need" -gt "$MEM" ] && { MEM=$need; log "--mb $MB: using --mem $MEM"; }
fi

timeout 1800 "$HERE/setup.sh"
KDIR=$CACHE/k$KERNEL
# PVH boot of the uncompressed ELF skips the emulated decompression.
case ${DPFS_GUEST_BOOT:-vmlinux} in
    vmlinux) IMAGE=$KDIR/vmlinux; [ -f "$IMAGE" ] || IMAGE=$KDIR/vmlinuz ;;
    bzimage) IMAGE=$KDIR/vmlinuz ;;
    *) die "DPFS_GUEST_BOOT must be vmlinux or bzimage" ;;
esac

W=$(mktemp -d "${TMPDIR:-/tmp}/dpfs-guest-run.XXXXXX")
SOCK=$W/vhost-fs.sock
BPID=''
QPID=''
OK=0
log "work dir $W"

stop_backend() {
    [ -n "$BPID" ] || return 0
    local pid=$BPID i target=$BPID
    BPID=
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    # setsid made the backend a process group leader: signal the whole group
    # so helpers of a compound command line go too.
    # (pgrp is the 3rd field after the last ")" of /proc/PID/stat; no procps.)
    [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $3}')" = "$pid" ] \
        && target=-$pid
    kill -TERM -- "$target" 2>/dev/null || true
    for ((i = 0; i < ${DPFS_BACKEND_GRACE:-5} * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "backend ignored SIGTERM, sending SIGKILL"
        kill -KILL -- "$target" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    # dpfs prints its counters (requests per queue, per opcode) on exit: show them.
    grep -a '^dpfs: ' "$W/backend.log" >&2 2>/dev/null || true
}
cleanup() {
    # Interrupted mid-boot: QEMU (under timeout) must not outlive us.
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
        kill -TERM "$QPID" 2>/dev/null || true
        wait "$QPID" 2>/dev/null || true
    fi
    stop_backend
    if [ "$OK" = 1 ] && [ "$KEEP" = 0 ]; then
        rm -rf "$W"
    else
        log "logs kept in $W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_backend_log() {
    [ -s "$W/backend.log" ] || return 0
    log "--- backend.log (last 40 lines) ---"
    tail -n 40 "$W/backend.log" >&2
}

# --- share dir and guest files -------------------------------------------
if [ -z "$SHARE" ]; then
    SHARE=$W/share
    mkdir -p "$SHARE"
    echo "hello from the dpfs host" > "$SHARE/hello.txt"
fi
[ -d "$SHARE" ] || die "share dir '$SHARE' does not exist"
SHARE=$(cd "$SHARE" && pwd)

mkdir -p "$W/extra"
[ -z "$EXTRA" ] || cp -a "$EXTRA"/. "$W/extra/"
GUEST_SCRIPT=/workload.sh
if [ -n "$SCRIPT" ]; then
    if [ -f "$SCRIPT" ]; then
        cp "$SCRIPT" "$W/extra/$(basename "$SCRIPT")"
        GUEST_SCRIPT=/extra/$(basename "$SCRIPT")
    else
        GUEST_SCRIPT=$SCRIPT   # a path inside the guest, e.g. on the share
    fi
fi
timeout 120 "$HERE/mkinitramfs.sh" "$KERNEL" "$W/initramfs.cpio.gz" "$W/extra"

# --- backend -----------------------------------------------------------------
cmd=${BACKEND_CMD//\{sock\}/$SOCK}
cmd=${cmd//\{dir\}/$SHARE}
log "starting backend: $cmd"
# bash runs a simple command in place (no extra process); compound command
# lines work too since the whole process group is signalled at the end.
setsid bash -c "$cmd" > "$W/backend.log" 2>&1 < /dev/null &
BPID=$!

wait_socket() {
    local i
    for ((i = 0; i < ${DPFS_BACKEND_WAIT:-30} * 10; i++)); do
        [ -S "$SOCK" ] && return 0
        kill -0 "$BPID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
t=$(now)
if ! wait_socket; then
    if kill -0 "$BPID" 2>/dev/null; then
        log "backend did not create $SOCK in ${DPFS_BACKEND_WAIT:-30} s"
    else
        log "backend exited before creating its socket"
    fi
    show_backend_log
    exit 1
fi
log "backend socket ready after $(secs "$t" "$(now)") s"

# --- guest boots ---------------------------------------------------------------
boot() {  # boot N -> 0 on PASS
    local n=$1
    local serial=$W/serial-boot$n.log qlog=$W/qemu-boot$n.log
    local t0 rc=0 dead_since='' result
    log "boot $n: kernel $KERNEL ($(basename "$IMAGE")), smp $SMP, queues $QUEUES, mem ${MEM}M"
    : > "$serial"   # exists even if QEMU dies before opening it
    t0=$(now)
    # Guest RAM must be a shared memfd: the backend maps it to reach the
    # virtqueues and buffers.  -no-reboot turns a guest panic into an exit.
    timeout -k 5 "$TIMEOUT" qemu-system-x86_64 \
        -accel tcg -machine pc -m "$MEM" -smp "$SMP" \
        -nodefaults -no-user-config -display none -no-reboot \
        -serial "file:$serial" \
        -object "memory-backend-memfd,id=mem,size=${MEM}M,share=on" -numa node,memdev=mem \
        -chardev "socket,id=vfs0,path=$SOCK" \
        -device "vhost-user-fs-pci,queue-size=1024,chardev=vfs0,tag=$TAG,num-request-queues=$QUEUES" \
        -kernel "$IMAGE" -initrd "$W/initramfs.cpio.gz" \
        -append "console=ttyS0 panic=-1 quiet dpfs.tag=$TAG dpfs.mb=$MB dpfs.phase=boot$n dpfs.script=$GUEST_SCRIPT $APPEND" \
        > "$qlog" 2>&1 < /dev/null &
    QPID=$!
    # A backend that dies mid-run leaves the guest stuck in a FUSE request
    # until the timeout; notice it and stop early.  Backends that exit on
    # QEMU's disconnect die right as QEMU exits, hence the grace period.
    while kill -0 "$QPID" 2>/dev/null; do
        if [ -z "$dead_since" ] && ! kill -0 "$BPID" 2>/dev/null; then
            dead_since=$(date +%s)
        fi
        if [ -n "$dead_since" ] && [ $(( $(date +%s) - dead_since )) -ge 5 ]; then
            log "boot $n: backend died while the guest was running; stopping QEMU"
            kill -TERM "$QPID" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    wait "$QPID" || rc=$?
    QPID=''
    local wall
    wall=$(secs "$t0" "$(now)")
    tr -d '\r' < "$serial" | grep -a '^DPFS-' || true
    result=$(tr -d '\r' < "$serial" | grep -a '^DPFS-GUEST-RESULT:' | tail -n 1 | awk '{print $2}')
    [ "$rc" = 124 ] && log "boot $n: QEMU killed after the ${TIMEOUT} s timeout"
    if [ "$result" = PASS ]; then
        log "boot $n: PASS (wall ${wall} s)"
        return 0
    fi
    # A guest kernel that panicked before its init printed anything never reached dpfs
    # (seen once: an int3 oops in hrtimer code while booting 6.12 on 4 vCPUs under TCG).
    if [ -z "$result" ] && grep -aq 'Kernel panic' "$serial" && ! grep -aq '^DPFS-' "$serial"; then
        EARLY_CRASH=1
    fi
    log "boot $n: FAIL (result '${result:-none}', qemu exit $rc, wall ${wall} s)"
    log "--- serial-boot$n.log (last 80 lines) ---"
    tr -d '\r' < "$serial" | tail -n 80 >&2
    [ -s "$qlog" ] && { log "--- qemu-boot$n.log ---"; tail -n 20 "$qlog" >&2; }
    show_backend_log
    return 1
}

# boot_once_more N: boot N, and once more if the guest kernel crashed before its init ran
# (a TCG boot flake; dpfs saw no request): any failure after init counts.
boot_once_more() {
    EARLY_CRASH=0
    boot "$1" && return 0
    [ "$EARLY_CRASH" = 1 ] || return 1
    log "boot $1: the guest kernel crashed before its init ran, not a dpfs failure; booting it once more"
    boot "$1"
}

boot_once_more 1 || exit 1
if [ "$REBOOT" = 1 ]; then
    # The point of the second boot: the daemon must outlive its frontend
    # disconnecting and accept a new one on the same socket.  A daemon that
    # exits on disconnect does so within moments of QEMU's exit: give it 1 s.
    sleep 1
    if ! kill -0 "$BPID" 2>/dev/null; then
        log "boot 2: FAIL: the backend exited after the first guest disconnected."
        log "  --reboot needs a daemon that keeps serving across QEMU reconnects;"
        log "  virtiofsd exits on disconnect by design, so it cannot pass this."
        show_backend_log
        exit 1
    fi
    wait_socket || { log "boot 2: FAIL: backend socket $SOCK is gone"; show_backend_log; exit 1; }
    boot_once_more 2 || exit 1
fi

for f in "$SHARE"/dpfs-guest-boot*.txt; do
    [ -e "$f" ] && log "guest marker visible on the host: $(basename "$f")"
done
OK=1
log "RESULT: PASS"
