#!/usr/bin/env bash
# The README's test command. On a fresh Debian machine it installs what it needs, then runs
# the lints, every unit, property and integration test (including the sim tests against
# virtiofsd and `dpfs serve`, /dev/fuse mounts, and the NFS client against nfs-ganesha),
# checks that the fuzz targets build, runs pjdfstest against `dpfs mount` (mem and
# passthrough backends), runs the instruction-count performance gate (and its self-test),
# and boots QEMU guests (Linux 6.1 and 6.12 with 4 request queues) against `dpfs serve`.
#   DPFS_SKIP_GUEST=1   skip the QEMU guest tests (quick local runs)
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\n==> [%4ss] %s\n' "$SECONDS" "$*" >&2; }
export CARGO_TERM_COLOR=never

log "toolchain (pinned by rust-toolchain.toml) and components"
ci/toolchain.sh
rustup component add rustfmt clippy >/dev/null 2>&1 || true

log "cargo fmt --check"
cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "reference daemon for the sim tests (virtiofsd 1.14)"
ci/guest/install-virtiofsd.sh >&2
export DPFS_REQUIRE_DAEMONS=1

log "NFS server for the dpfs-nfs4 client tests (nfs-ganesha on 127.0.0.1:2049)"
# shellcheck source=ci/apt.sh
source ci/apt.sh
apt_install nfs-ganesha nfs-ganesha-vfs
# The package may start its own ganesha (and rpcbind) on 2049; the tests start a private one.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nfs-ganesha 2>/dev/null; then
    systemctl stop nfs-ganesha
fi
export DPFS_REQUIRE_NFS=1

log "cargo test"
cargo test --workspace --locked

log "sim suites (model, dpfs, faults) through dpfs serve --backend remote and dpfs gateway"
DPFS_BIN=$PWD/ci/remote-dpfs.sh cargo test -p dpfs-sim --locked --test model --test dpfs --test faults

log "fuzz target compiles"
cargo check --manifest-path fuzz/Cargo.toml --locked --quiet

log "POSIX conformance: pjdfstest on the mem backend through /dev/fuse"
ci/pjdfstest.sh --backend mem

log "POSIX conformance: pjdfstest on the passthrough backend (over a tmpfs) through /dev/fuse"
ci/pjdfstest.sh --backend passthrough

log "performance gate: instruction counts against benches/baselines/instructions.toml"
ci/perf-gate.sh

log "performance gate self-test: an injected regression must fail the gate"
ci/perf-gate.sh --self-test

if [ "${DPFS_SKIP_GUEST:-0}" = 1 ]; then
    log "guest tests skipped (DPFS_SKIP_GUEST=1)"
else
    log "guest tests"
    ci/guest-tests.sh
fi
log "all tests passed"
