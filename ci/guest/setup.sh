#!/usr/bin/env bash
# Prepare a Debian bookworm host for the QEMU guest tests: QEMU 10 from
# bookworm-backports, archive tools, a static busybox, and two guest kernels
# unpacked into the cache:
#   $CACHE/k6.1/   Debian bookworm 6.1 (virtio/fuse/virtiofs are modules)
#   $CACHE/k6.12/  bookworm-backports 6.12 cloud kernel (virtiofs built in;
#                  needed for multi-queue virtio-fs, Linux >= 6.11)
#   $CACHE/busybox
# Each kernel dir holds vmlinuz, vmlinux (uncompressed ELF for PVH boot, which
# skips seconds of emulated decompression under TCG), config, and for 6.1 the
# modules plus modules.order (the insmod order; the guest has no depmod).
#
# Usage: ci/guest/setup.sh [--refresh]
#   --refresh  re-resolve kernel versions with apt-cache and re-download.
# Cache dir: ${DPFS_GUEST_CACHE:-/var/tmp/dpfs-guest}.  When everything is
# present it returns in well under a second without touching apt.
set -euo pipefail
source "$(dirname "$0")/../apt.sh"

CACHE=${DPFS_GUEST_CACHE:-/var/tmp/dpfs-guest}
REFRESH=0
[ "${1:-}" = "--refresh" ] && REFRESH=1

log() { printf 'setup: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The 6.1 modules virtiofs needs, in load order (from `depends=` in each .ko).
MODS_61="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci fuse virtiofs"
HOST_PKGS="cpio xz-utils gzip zstd"

qemu_ok() {
    # QEMU 7.2 (bookworm) crashes SMP 6.12 guests under TCG about 1 run in 4;
    # 10.x from backports does not.  Require >= 10.
    command -v qemu-system-x86_64 >/dev/null || return 1
    local v
    v=$(timeout 10 qemu-system-x86_64 --version | sed -n '1s/.*version \([0-9]*\)\..*/\1/p')
    [ -n "$v" ] && [ "$v" -ge 10 ]
}
host_tools_ok() {
    local c
    for c in cpio xz gzip zstd dpkg-deb od; do command -v $c >/dev/null || return 1; done
}
kernel_ok() { [ -f "$CACHE/k$1/READY" ]; }

if [ $REFRESH = 0 ] && qemu_ok && host_tools_ok && kernel_ok 6.1 && kernel_ok 6.12 \
        && [ -x "$CACHE/busybox" ]; then
    log "all cached in $CACHE ($(cat "$CACHE/k6.1/READY"), $(cat "$CACHE/k6.12/READY"))"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root (apt-get install)"
mkdir -p "$CACHE"
export DEBIAN_FRONTEND=noninteractive

# --- apt sources: make sure bookworm-backports is known ----------------------
add_backports() {
    if grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        return 0
    fi
    # Reuse the mirror of the main bookworm entry (deb822 or one-line format):
    # the machine may be able to reach only that host.
    local uri
    uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
        /^URIs:/   { u=$2 }
        /^Suites:/ { for (i=2;i<=NF;i++) if ($i=="bookworm" && u!="") { print u; exit } }
        /^$/       { u="" }' || true)
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
    fi
    uri=${uri:-http://deb.debian.org/debian}
    log "adding bookworm-backports from $uri"
    cat > /etc/apt/sources.list.d/bookworm-backports.sources <<EOF
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}
add_backports

log "apt-get update"
apt_get update >&2 || die "apt-get update failed"

# --- host packages -------------------------------------------------------------
if ! host_tools_ok; then
    log "installing $HOST_PKGS"
    apt_get install -y --no-install-recommends $HOST_PKGS >&2
fi
if ! qemu_ok; then
    log "installing qemu-system-x86 from bookworm-backports"
    apt_get install -y --no-install-recommends -t bookworm-backports qemu-system-x86 >&2
    qemu_ok || die "QEMU >= 10 still not available after install"
fi
log "$(qemu-system-x86_64 --version | head -1)"

# --- downloads -------------------------------------------------------------------
# apt-get download writes into the cwd; the .debs are deleted once extracted.
dl=$CACHE/dl
mkdir -p "$dl"

fetch_deb() {  # fetch_deb PKG -> prints the path of the .deb
    local pkg=$1 f
    f=$(ls "$dl/${pkg}_"*.deb 2>/dev/null | head -1 || true)
    if [ -z "$f" ]; then
        log "downloading $pkg"
        # _apt cannot write into the cache dir; download as root without the warning.
        (cd "$dl" && apt_get -o APT::Sandbox::User=root download "$pkg" >&2) || die "apt-get download $pkg failed"
        f=$(ls "$dl/${pkg}_"*.deb | head -1)
    fi
    printf '%s\n' "$f"
}

# busybox-static conflicts with the dynamic busybox package (which initramfs
# tooling may depend on), so unpack its binary instead of installing it.
if [ $REFRESH = 1 ] || [ ! -x "$CACHE/busybox" ]; then
    deb=$(fetch_deb busybox-static)
    tmp=$(mktemp -d "$dl/bb.XXXXXX")
    dpkg-deb -x "$deb" "$tmp"
    install -m 0755 "$tmp/bin/busybox" "$CACHE/busybox.new"
    mv "$CACHE/busybox.new" "$CACHE/busybox"
    rm -rf "$tmp" "$deb"
fi

# The ABI number changes with every kernel security update, so resolve the
# package through the metapackages instead of hard-coding it.
resolve_kernel() {  # resolve_kernel 6.1|6.12 -> package name
    local meta pattern p rel=()
    case $1 in
        6.1)  meta=linux-image-amd64;       pattern='^linux-image-6\.1\.[0-9]+-[0-9]+-amd64$' ;;
        6.12) meta=linux-image-cloud-amd64; pattern='^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64$'
              rel=(-t bookworm-backports) ;;
    esac
    p=$(apt-cache "${rel[@]}" depends "$meta" 2>/dev/null \
        | awk '/Depends: linux-image-/ {print $2}' | grep -E "$pattern" | head -1 || true)
    if [ -z "$p" ]; then  # fallback: newest matching name in the package lists
        p=$(apt-cache pkgnames linux-image-"$1" | grep -E "$pattern" | sort -V | tail -1 || true)
    fi
    [ -n "$p" ] || die "no package for kernel $1 found with apt-cache"
    printf '%s\n' "$p"
}

# Extract the uncompressed kernel ELF from a bzImage: find the payload's
# compression magic and decompress from there.  The decompressors complain
# about the data after the payload; the output is complete all the same,
# which the ELF header check below makes sure of.
extract_vmlinux() {  # extract_vmlinux VMLINUZ OUT
    local z=$1 out=$2 pos magic shoff shent shnum
    pos=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$z" | head -1 | cut -d: -f1 || true)
    if [ -n "$pos" ]; then
        tail -c +$((pos + 1)) "$z" | xz -dc > "$out" 2>/dev/null || true
    else
        pos=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$z" | head -1 | cut -d: -f1 || true)
        [ -n "$pos" ] || { log "no xz/zstd payload in $z"; return 1; }
        tail -c +$((pos + 1)) "$z" | zstd -dcq > "$out" 2>/dev/null || true
    fi
    magic=$(od -An -c -N 4 "$out" | tr -d ' ')
    shoff=$(od -An -t u8 -j 40 -N 8 "$out" | tr -d ' ')
    shent=$(od -An -t u2 -j 58 -N 2 "$out" | tr -d ' ')
    shnum=$(od -An -t u2 -j 60 -N 2 "$out" | tr -d ' ')
    if [ "$magic" != '177ELF' ] || [ -z "$shoff" ] \
            || [ "$(stat -c %s "$out")" -lt $((shoff + shent * shnum)) ]; then
        log "vmlinux extraction from $z failed"; rm -f "$out"; return 1
    fi
}

prepare_kernel() {  # prepare_kernel 6.1|6.12
    local k=$1 dir=$CACHE/k$1
    if [ $REFRESH = 0 ] && kernel_ok "$k"; then return 0; fi
    local pkg deb kver tmp m f
    pkg=$(resolve_kernel "$k")
    kver=${pkg#linux-image-}
    log "kernel $k: $pkg"
    deb=$(fetch_deb "$pkg")
    tmp=$(mktemp -d "$dl/k.XXXXXX")
    # Unpack only what is needed: the whole package is ~400 MiB of modules.
    log "extracting $pkg"
    dpkg-deb --fsys-tarfile "$deb" | timeout 300 tar -x -C "$tmp" --wildcards \
        './boot/*' '*/kernel/drivers/virtio/*' '*/kernel/fs/fuse/*'
    rm -rf "$dir"; mkdir -p "$dir"
    cp "$tmp/boot/vmlinuz-$kver" "$dir/vmlinuz"
    cp "$tmp/boot/config-$kver" "$dir/config"
    if [ "$k" = 6.1 ]; then
        mkdir -p "$dir/modules"
        : > "$dir/modules.order"
        for m in $MODS_61; do
            f=$(find "$tmp" -name "$m.ko*" | head -1)
            [ -n "$f" ] || die "module $m not found in $pkg"
            case $f in  # busybox insmod cannot read compressed modules
                *.ko.xz)  xz -dc "$f" > "$dir/modules/$m.ko" ;;
                *.ko.zst) zstd -dcq "$f" > "$dir/modules/$m.ko" ;;
                *)        cp "$f" "$dir/modules/$m.ko" ;;
            esac
            echo "$m.ko" >> "$dir/modules.order"
        done
    else
        grep -q '^CONFIG_VIRTIO_FS=y' "$dir/config" || die "$pkg: virtiofs is not built in"
    fi
    if grep -q '^CONFIG_PVH=y' "$dir/config"; then
        log "extracting uncompressed vmlinux for PVH boot"
        extract_vmlinux "$dir/vmlinuz" "$dir/vmlinux" || true
    fi
    echo "$kver" > "$dir/READY"
    rm -rf "$tmp" "$deb"
    log "kernel $k ready in $dir"
}

prepare_kernel 6.1
prepare_kernel 6.12
rmdir "$dl" 2>/dev/null || true
log "done: cache in $CACHE"
