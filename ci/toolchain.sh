#!/usr/bin/env bash
# Makes the toolchain that rust-toolchain.toml pins available under its pinned name.
# These machines have one toolchain, installed as "stable", and rustup cannot download
# another: when "stable" is the pinned version it is made available under that name too (a
# symlink in rustup's toolchain directory, as rustup itself would name the download;
# `rustup toolchain link` refuses release names), otherwise this says clearly what is
# missing. Idempotent; run before the first cargo command.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
[ -n "$want" ] || { echo "toolchain: no channel in rust-toolchain.toml" >&2; exit 1; }
if rustup toolchain list | grep -q "^$want[- ]"; then
    exit 0
fi
stable=$(rustup run stable rustc --version 2>/dev/null || true)
case $stable in
"rustc $want "*)
    host=$(rustup run stable rustc -vV | sed -n 's/^host: //p')
    dir=${RUSTUP_HOME:-$HOME/.rustup}/toolchains
    ln -sfn "$dir/stable-$host" "$dir/$want-$host"
    rustup toolchain list | grep -q "^$want[- ]" || { echo "toolchain: could not make $want available" >&2; exit 1; }
    echo "toolchain: stable ($stable) made available as $want" >&2
    ;;
*)
    echo "toolchain: rust-toolchain.toml pins $want but this machine has ${stable:-no stable toolchain};" \
        "install $want or bump the pin together with the perf-gate baselines" >&2
    exit 1
    ;;
esac
