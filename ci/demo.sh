#!/usr/bin/env bash
# The README's first command: on a fresh Debian machine, build dpfs, serve the embedded
# default (the in-memory file system, seeded with a few files) over vhost-user, boot a
# QEMU guest that mounts it with `mount -t virtiofs`, show some file operations from
# inside the guest, and clean up.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '==> %s\n' "$*" >&2; }

log "installing QEMU, guest kernels and tools (cached after the first run)"
ci/guest/setup.sh
log "building dpfs (release)"
ci/toolchain.sh
cargo build --release --locked -p dpfs
log "starting dpfs serve (mem backend) and booting a Linux guest under QEMU/TCG"
ci/guest/run.sh --kernel "${DPFS_DEMO_KERNEL:-6.12}" --smp 2 --queues 2 --script ci/demo-guest.sh --timeout 240 \
    --backend-cmd "$PWD/target/release/dpfs serve --socket-path {sock} --backend mem --request-queues 2 --metrics"
