#!/usr/bin/env bash
# Install valgrind 3.24 into a private prefix, for the instruction-count gate.
#
# Debian 12's valgrind 3.19 has no wrapper for openat2(2): under it every open of the
# passthrough backend (confined by openat2) fails with ENOSYS. Trixie's binary package needs
# a newer glibc, so Debian's trixie source package is built here (about 5 minutes on 2 cores,
# once per machine).
#
# Usage: ci/install-valgrind.sh [ROOT]   (ROOT defaults to ${DPFS_TOOLS:-/var/tmp/dpfs-tools})
#   valgrind ends up in ROOT/valgrind/bin/valgrind. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/apt.sh

VERSION=3.24.0
DEBIAN_VERSION=1:3.24.0-3
ROOT=${1:-${DPFS_TOOLS:-/var/tmp/dpfs-tools}}
PREFIX=$ROOT/valgrind
BIN=$PREFIX/bin/valgrind

log() { printf 'install-valgrind: %s\n' "$*" >&2; }

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -qx "valgrind-$VERSION"; then
    log "valgrind $VERSION already installed at $BIN"
    exit 0
fi

# libc6-dbg: valgrind needs the dynamic loader's symbols to start programs.
apt_install gcc make perl bzip2 libc6-dbg

work=$(mktemp -d /var/tmp/dpfs-valgrind-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A private apt configuration that only knows trixie's sources: the machine's own lists
# and preferences are left alone.
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
cat > "$work/apt/sources.list" <<'SOURCES'
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SOURCES
apt_private=(-o Dir::Etc::SourceList="$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache" -o APT::Sandbox::User=root)
log "fetching Debian's valgrind $DEBIAN_VERSION source package"
apt_get "${apt_private[@]}" update >&2
(cd "$work/src" && { apt_get "${apt_private[@]}" source --download-only "valgrind=$DEBIAN_VERSION" >&2 ||
    apt_get "${apt_private[@]}" source --download-only valgrind >&2; })
tarball=$(ls "$work"/src/valgrind_*.orig.tar.bz2 | head -1)
tar -C "$work" -xjf "$tarball"
src=$(ls -d "$work"/valgrind-*/ | head -1)

log "building $(basename "$src") (about 5 minutes on 2 cores)"
start=$(date +%s)
(cd "$src" && ./configure --prefix="$PREFIX" --enable-only64bit >"$work/configure.log" 2>&1 &&
    make -j"$(nproc)" >"$work/make.log" 2>&1 && rm -rf "$PREFIX" && make install >"$work/install.log" 2>&1) || {
    log "build failed; last lines of the logs:"; tail -n 30 "$work"/*.log >&2; exit 1; }
log "installed $("$BIN" --version) at $BIN in $(( $(date +%s) - start )) s"
