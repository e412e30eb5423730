#!/usr/bin/env bash
# The instruction-count gate. Runs the gungraun benches (benches/benches/instructions.rs)
# under callgrind and compares every case with benches/baselines/instructions.toml: exits 1
# when a case regresses past its limit (2 % unless [limits.cases] says otherwise), naming it
# with its old and new counts, or when the cases and the baseline differ; lists improvements
# so the baseline gets tightened.
#
#   ci/perf-gate.sh               the gate (what .ci/run runs)
#   ci/perf-gate.sh --update      rewrite the baseline's counts; commit them saying why
#   ci/perf-gate.sh --self-test   build core with known extra work in its request path
#                                 (feature gate-self-test) and check that the gate fails
#   ci/perf-gate.sh ... FILTER    only the cases matching gungraun's FILTER, e.g.
#                                 'instructions::core_null::*' (others are not reported missing)
#
# Installs what it needs: valgrind 3.24 (ci/install-valgrind.sh) and gungraun-runner 0.20.0
# under ${DPFS_TOOLS:-/var/tmp/dpfs-tools}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=${DPFS_TOOLS:-/var/tmp/dpfs-tools}
RUNNER_VERSION=0.20.0
BASELINE=benches/baselines/instructions.toml
log() { printf 'perf-gate: %s\n' "$*" >&2; }

mode=gate
filter=
for a in "$@"; do
    case $a in
    --update) mode=update ;;
    --self-test) mode=self-test ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) log "unknown option $a"; exit 2 ;;
    *) filter=$a ;;
    esac
done

# --- tools ---
ci/install-valgrind.sh "$TOOLS"
export GUNGRAUN_VALGRIND_BIN=$TOOLS/valgrind/bin/valgrind
if ! "$TOOLS/bin/gungraun-runner" --version 2>/dev/null | grep -q "$RUNNER_VERSION"; then
    log "installing gungraun-runner $RUNNER_VERSION (about 3 minutes)"
    build=$(mktemp -d /var/tmp/dpfs-gungraun-build.XXXXXX)
    (cd "$build" && CARGO_TARGET_DIR="$build/target" \
        cargo install --locked gungraun-runner --version "$RUNNER_VERSION" --root "$TOOLS" >&2)
    rm -rf "$build"
fi
export PATH="$TOOLS/bin:$PATH"
cargo build --release --locked -q -p dpfs-benches --bin perf-gate
GATE=${CARGO_TARGET_DIR:-$ROOT/target}/release/perf-gate
meta=(--meta "rustc=$(rustc --version | cut -d' ' -f2)" --meta "valgrind=$("$GUNGRAUN_VALGRIND_BIN" --version)")

out=$(mktemp /tmp/dpfs-perf-gate.XXXXXX)
trap 'rm -f "$out"; rm -rf /dev/shm/dpfs-bench' EXIT

# bench [CARGO-ARGS...]: runs the instruction-count benches into $out.
bench() {
    local start=$SECONDS
    log "running the instruction-count benches ${filter:+(filter $filter) }$*"
    cargo bench --locked -q -p dpfs-benches --bench instructions "$@" -- --output-format=json ${filter:+"$filter"} >"$out"
    log "$(grep -c '^{' "$out") cases measured in $((SECONDS - start)) s"
}
partial=()
[ -n "$filter" ] && partial=(--partial)

case $mode in
gate)
    bench
    "$GATE" --results "$out" --baseline "$BASELINE" "${partial[@]}" "${meta[@]}"
    ;;
update)
    bench
    "$GATE" --results "$out" --baseline "$BASELINE" --update "${partial[@]}" "${meta[@]}"
    ;;
self-test)
    # Measured against a clean run of the same cases made just before (not the committed
    # baseline, which may have drifted within its limits): the injected work costs about 50
    # instructions per request, 2.8-3.9 % of the cheap null cases, and they must fail by name.
    [ -n "$filter" ] || filter='instructions::core_null::*'
    clean=$(mktemp /tmp/dpfs-perf-gate-clean.XXXXXX.toml)
    cp "$BASELINE" "$clean"
    bench
    "$GATE" --results "$out" --baseline "$clean" --update --partial >/dev/null
    bench --features gate-self-test
    set +e
    "$GATE" --results "$out" --baseline "$clean" --partial | tee "$out.report"
    rc=${PIPESTATUS[0]}
    set -e
    ok=0
    [ "$rc" = 1 ] && grep -q '^REGRESSION null/getattr: ' "$out.report" && ok=1
    rm -f "$out.report" "$clean"
    if [ "$ok" = 1 ]; then
        log "self-test passed: the gate failed on the injected regression (exit 1, null/getattr named)"
    else
        log "self-test FAILED: the gate exited $rc on an injected regression"
        exit 1
    fi
    ;;
esac
