#!/usr/bin/env bash
# Build the guest initramfs: static busybox, /init (init.sh), the default
# workload (/workload.sh), the virtio/virtiofs modules for the 6.1 kernel
# (6.12 cloud has them built in) and, optionally, extra files under /extra.
#
# Usage: ci/guest/mkinitramfs.sh KERNEL(6.1|6.12) OUT.cpio.gz [EXTRA_DIR]
# Needs ci/guest/setup.sh to have filled the cache
# (${DPFS_GUEST_CACHE:-/var/tmp/dpfs-guest}).  Takes well under a second.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${DPFS_GUEST_CACHE:-/var/tmp/dpfs-guest}

log() { printf 'mkinitramfs: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: $0 6.1|6.12 OUT.cpio.gz [EXTRA_DIR]"
KERNEL=$1 OUT=$2 EXTRA=${3:-}
case $KERNEL in 6.1|6.12) ;; *) die "kernel must be 6.1 or 6.12, not '$KERNEL'" ;; esac
KDIR=$CACHE/k$KERNEL
[ -f "$KDIR/READY" ] && [ -x "$CACHE/busybox" ] || die "cache incomplete: run ci/guest/setup.sh"
[ -z "$EXTRA" ] || [ -d "$EXTRA" ] || die "extra dir '$EXTRA' does not exist"
command -v cpio >/dev/null || die "cpio missing: run ci/guest/setup.sh"

root=$(mktemp -d "${TMPDIR:-/tmp}/dpfs-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,mnt,tmp,lib/modules,extra}
install -m 0755 "$CACHE/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 0755 "$HERE/init.sh" "$root/init"
install -m 0755 "$HERE/workload.sh" "$root/workload.sh"

if [ -f "$KDIR/modules.order" ]; then
    cp "$KDIR"/modules/*.ko "$root/lib/modules/"
    cp "$KDIR/modules.order" "$root/lib/modules/"
fi

# The kernel opens /dev/console for init before init can mount devtmpfs;
# without the node the early output is lost (init.sh re-opens it anyway).
if [ "$(id -u)" = 0 ]; then
    mknod -m 600 "$root/dev/console" c 5 1
fi

if [ -n "$EXTRA" ]; then
    cp -a "$EXTRA"/. "$root/extra/"
fi

mkdir -p "$(dirname "$OUT")"
(cd "$root" && find . | LC_ALL=C sort | timeout 120 cpio -o -H newc -R 0:0 --quiet) \
    | timeout 120 gzip -6 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "built $OUT ($(du -h "$OUT" | cut -f1), kernel $(cat "$KDIR/READY"))"
