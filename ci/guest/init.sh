#!/bin/sh
# /init of the test guest (busybox sh).  Mounts the virtio-fs share, runs a
# workload script and reports on the serial console with lines the host
# greps for:
#   DPFS-CHECK-OK: name | DPFS-CHECK-FAIL: name (detail)
#   DPFS-INFO: ... | DPFS-PERF: ...
#   DPFS-GUEST-RESULT: PASS|FAIL   (always the last line)
# Kernel cmdline knobs (read from /proc/cmdline: dotted parameters are not
# passed to init's environment):
#   dpfs.tag=TAG      virtio-fs tag to mount (default myfs)
#   dpfs.script=PATH  workload; a path in the initramfs, or under /mnt to run a
#                     script from the share (default /workload.sh)
#   dpfs.mb=N         size of the big-file test in MiB (default 64)
#   dpfs.phase=WORD   free-form, passed to the workload as $PHASE
#   dpfs.mntopts=OPTS extra mount -o options
/bin/busybox mkdir -p /proc /sys /dev /tmp /mnt /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# The rootfs may be ramfs; a real tmpfs bounds the big test's source file
# and makes its size limit explicit.
mount -t tmpfs -o size=90% tmpfs /tmp
# Everything from here goes to the serial console, whatever the kernel gave us.
exec </dev/console >/dev/console 2>&1

TAG=myfs
SCRIPT=/workload.sh
MB=64
PHASE=default
MNTOPTS=
for arg in $(cat /proc/cmdline); do
    case $arg in
        dpfs.tag=*)     TAG=${arg#dpfs.tag=} ;;
        dpfs.script=*)  SCRIPT=${arg#dpfs.script=} ;;
        dpfs.mb=*)      MB=${arg#dpfs.mb=} ;;
        dpfs.phase=*)   PHASE=${arg#dpfs.phase=} ;;
        dpfs.mntopts=*) MNTOPTS=${arg#dpfs.mntopts=} ;;
    esac
done

STATUS=PASS
fail() { echo "DPFS-CHECK-FAIL: $1 ($2)"; STATUS=FAIL; }

finish() {
    cd /
    read -r up _ < /proc/uptime
    echo "DPFS-INFO: guest uptime at end ${up} s"
    echo "DPFS-GUEST-RESULT: $STATUS"
    sync
    poweroff -f
    # If power-off did not work, exiting init panics the kernel; with
    # panic=-1 and QEMU's -no-reboot that ends the VM too.
    sleep 2
    exit 1
}

read -r up _ < /proc/uptime
echo "DPFS-INFO: init phase=$PHASE tag=$TAG script=$SCRIPT mb=$MB uptime=$up"

# 6.1: virtio and virtiofs are modules; 6.12 cloud has them built in and
# ships none.  The order file replaces depmod, which the guest lacks.
if [ -f /lib/modules/modules.order ]; then
    while read -r m; do
        out=$(insmod "/lib/modules/$m" 2>&1) || fail "insmod-$m" "$out"
    done < /lib/modules/modules.order
fi

# The virtio-fs device may be probed a moment after the modules load.
mounted=0
i=0
while [ $i -lt 20 ]; do
    if out=$(mount -t virtiofs ${MNTOPTS:+-o "$MNTOPTS"} "$TAG" /mnt 2>&1); then
        mounted=1
        break
    fi
    i=$((i + 1))
    sleep 0.2
done
if [ $mounted = 1 ]; then
    echo "DPFS-CHECK-OK: mount (attempt $((i + 1)))"
else
    fail mount "$out"
    dmesg | tail -n 20
    finish
fi

if [ ! -f "$SCRIPT" ]; then
    fail workload "script $SCRIPT not found"
    finish
fi

# The workload's own lines go to the console as they come; a copy is kept
# to judge the result.  Its exit status travels through a file because the
# pipeline hides it.
cd /mnt || fail cd /mnt
{ MNT=/mnt MB=$MB PHASE=$PHASE TAG=$TAG sh "$SCRIPT" 2>&1; echo $? > /tmp/workload.rc; } \
    | tee /tmp/workload.out
cd /
rc=$(cat /tmp/workload.rc 2>/dev/null || echo missing)
[ "$rc" = 0 ] || fail workload "exit status $rc"
grep -q '^DPFS-CHECK-FAIL' /tmp/workload.out && STATUS=FAIL
grep -q '^DPFS-CHECK-OK' /tmp/workload.out || fail workload "no check passed"

# Unmounting makes the guest send FUSE_DESTROY and waits for it: a backend
# that loses or mishandles a request hangs or fails here.
if out=$(umount /mnt 2>&1); then
    echo "DPFS-CHECK-OK: umount"
else
    fail umount "$out"
fi
finish
