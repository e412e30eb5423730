#!/usr/bin/env bash
# The README's test command. On a fresh Debian machine it installs what it needs, then runs
# the lints, every unit, property and integration test (including the sim tests against
# virtiofsd and `dpfs serve`, /dev/fuse mounts, and the NFS client against nfs-ganesha, and
# the nfs backend's libnfs engine against it over NFSv3),
# checks that the fuzz targets build, runs pjdfstest against `dpfs mount` (mem,
# passthrough and kv on redb and Redis backends), the kv crash test, runs the instruction-count performance gate (and its self-test),
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
# dpfs list-emulation-managers loads rdma-core at run time: with it installed the tests take
# the real library path (a kernel without RDMA answers ENOSYS), not just "library missing".
apt_install libibverbs1
# The package may start its own ganesha (and rpcbind) on 2049; the tests start a private one.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nfs-ganesha 2>/dev/null; then
    systemctl stop nfs-ganesha
fi
export DPFS_REQUIRE_NFS=1

log "Redis for the kv backend's tests (each test starts a private redis-server on loopback)"
apt_install redis-server
export DPFS_REQUIRE_REDIS=1

log "cargo test"
cargo test --workspace --locked

log "the nfs backend's libnfs engine (NFSv3, --features libnfs): clippy, and its test against ganesha with rpcbind"
# libnfs-sys runs bindgen at build time: libclang and libnfs's headers.
apt_install libnfs-dev rpcbind libclang1-14 libclang-common-14-dev
# shellcheck source=ci/ganesha-lib.sh
source ci/ganesha-lib.sh
rpcbind_start
# The feature adds code to dpfs-backend-nfs and the --nfs-client choice to dpfs: lint both with it.
cargo clippy -p dpfs -p dpfs-backend-nfs --all-targets --features dpfs/libnfs --locked -- -D warnings
cargo test -p dpfs-backend-nfs --features libnfs --locked --test libnfs

log "one suite, two HALs: sim's property tests and fault injection through the DPU model (SNAP and DOCA flows)"
for hal in dpu-model dpu-model-doca; do
    DPFS_SIM_HAL=$hal cargo test -p dpfs-sim --locked --test model --test faults --test dpfs
done

log "BlueField FFI type-check (SNAP and DOCA declarations; nothing is linked without an SDK)"
cargo check -p dpfs-hal-snap --features ffi-snap,ffi-doca --locked
cargo check -p dpfs --features ffi-snap --locked
cargo test -p dpfs-hal-snap --features ffi-snap,ffi-doca --locked --lib ffi

log "sim suites (model, dpfs, faults) through dpfs serve --backend remote and dpfs gateway"
DPFS_BIN=$PWD/ci/remote-dpfs.sh cargo test -p dpfs-sim --locked --test model --test dpfs --test faults

log "the remote backend over the DPU model: sim's model suite through forwarder, SNAP flow and gateway"
DPFS_SIM_HAL=dpu-model DPFS_BIN=$PWD/ci/remote-dpfs.sh cargo test -p dpfs-sim --locked --test model

log "fuzz target compiles"
cargo check --manifest-path fuzz/Cargo.toml --locked --quiet

log "POSIX conformance: pjdfstest on the mem backend through /dev/fuse"
ci/pjdfstest.sh --backend mem

log "POSIX conformance: pjdfstest on the passthrough backend (over a tmpfs) through /dev/fuse"
ci/pjdfstest.sh --backend passthrough

log "POSIX conformance: pjdfstest on the nfs backend (nfs-ganesha exporting a tmpfs) through /dev/fuse"
ci/pjdfstest.sh --backend nfs
log "POSIX conformance: pjdfstest on the kv backend (redb file, then Redis) through /dev/fuse"
ci/pjdfstest.sh --backend kv
ci/pjdfstest.sh --backend kv-redis

log "kv crash test: SIGKILL dpfs during a create/rename/unlink storm, then fsck"
ci/kv-crash.sh

log "kv: two dpfs mounts on one Redis volume writing and renaming in one directory, then fsck"
ci/kv-two-daemons.sh

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
