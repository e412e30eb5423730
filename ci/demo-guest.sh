#!/bin/sh
# Runs inside the demo guest (busybox sh) with the dpfs share mounted on $MNT:
# a few everyday file operations, each echoed with its output so the host shows them.
cd "$MNT" || exit 1
show() {
    echo "DPFS-DEMO: \$ $*"
    sh -c "$*" 2>&1 | sed 's/^/DPFS-DEMO:   /'
}
check() { if sh -c "$2" >/dev/null 2>&1; then echo "DPFS-CHECK-OK: $1"; else echo "DPFS-CHECK-FAIL: $1"; fi; }
show "mount | grep virtiofs"
show "ls -la $MNT"
show "cat $MNT/hello.txt"
show "echo 'written by the guest' > $MNT/guest.txt && cat $MNT/guest.txt"
show "mkdir -p $MNT/docs/notes && mv $MNT/guest.txt $MNT/docs/notes/ && ln -s docs/notes/guest.txt $MNT/shortcut"
show "ls -lR $MNT/docs && readlink $MNT/shortcut && cat $MNT/shortcut"
show "dd if=/dev/zero of=$MNT/blob bs=1M count=8 2>&1 | tail -n 1 && md5sum $MNT/blob"
show "df -h $MNT"
check "hello.txt readable" "grep -q . $MNT/hello.txt"
check "write + rename + symlink" "[ \"\$(cat $MNT/shortcut)\" = 'written by the guest' ]"
check "8 MiB file" "[ \$(stat -c %s $MNT/blob) = 8388608 ]"
show "rm -rf $MNT/docs $MNT/shortcut $MNT/blob && ls $MNT"
