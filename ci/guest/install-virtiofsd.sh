#!/usr/bin/env bash
# Install the reference Rust virtiofsd (the daemon our backend is compared
# against) into a private prefix.  bookworm does not package it and trixie's
# package needs a newer glibc, so it is built from crates.io.
#
# Usage: ci/guest/install-virtiofsd.sh [ROOT]
#   ROOT defaults to ${DPFS_TOOLS:-/var/tmp/dpfs-tools}; the binary ends up in
#   ROOT/bin/virtiofsd.  Idempotent: a matching binary is left alone.
set -euo pipefail

VERSION=1.14.0
ROOT=${1:-${DPFS_TOOLS:-/var/tmp/dpfs-tools}}
BIN=$ROOT/bin/virtiofsd

log() { printf 'install-virtiofsd: %s\n' "$*" >&2; }

if [ -x "$BIN" ] && timeout 10 "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
    log "virtiofsd $VERSION already installed at $BIN"
    exit 0
fi

# Build dependencies: libcap-ng and libseccomp are linked by virtiofsd.
source "$(dirname "$0")/../apt.sh"
apt_install libcap-ng-dev libseccomp-dev pkg-config

command -v cargo >/dev/null || { log "cargo not found in PATH"; exit 1; }

# Build outside any workspace so no project .cargo/config.toml applies, and
# in a private target dir so a CARGO_TARGET_DIR of the caller is not polluted.
build=$(mktemp -d /var/tmp/dpfs-virtiofsd-build.XXXXXX)
trap 'rm -rf "$build"' EXIT
log "building virtiofsd $VERSION (takes 1-3 minutes)"
start=$(date +%s)
(cd "$build" && CARGO_TARGET_DIR="$build/target" \
    timeout 1800 cargo install --locked virtiofsd --version "$VERSION" --root "$ROOT" >&2)
log "installed $BIN in $(( $(date +%s) - start )) s"
"$BIN" --version >&2
