#!/usr/bin/env bash
# Builds every cargo-fuzz target once and fuzzes each for a fixed time: the fuzz step of CI.
#
#   scripts/fuzz-ci.sh
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 30)
#   TARGETS        targets to run (default: every target `cargo fuzz list` names)
#   SANITIZER      "address" (default) or "none" where AddressSanitizer does not work
#   FUZZ_JOBS      targets fuzzed at once (default: the number of CPUs); each still gets its
#                  FUZZ_SECONDS in a process of its own
#
# Installs cargo-fuzz 0.13 from crates.io when `cargo fuzz` is missing or another version.
# Each target starts from its committed corpus (fuzz/corpus/<target>/); the entries libFuzzer
# adds there have hash names and are gitignored. Prints one line per target with its
# executions, and exits non-zero if a target fails to build or finds a crash (the input is
# left in fuzz/artifacts/<target>/).
set -euo pipefail

seconds="${FUZZ_SECONDS:-30}"
sanitizer="${SANITIZER:-address}"
cargo_fuzz_version=0.13.2

case "$seconds" in
    '' | *[!0-9]* | 0)
        echo "FUZZ_SECONDS must be a positive number of seconds, not '$seconds'" >&2
        exit 2
        ;;
esac

started=$SECONDS
have=$(cargo fuzz --version 2>/dev/null || true)
case "$have" in
    'cargo-fuzz 0.13.'*) echo "== $have" ;;
    *)
        echo "== cargo install cargo-fuzz $cargo_fuzz_version (found: ${have:-none})"
        cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
        ;;
esac

installed=$SECONDS

cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

# cargo-fuzz passes nightly-only flags (-Z sanitizer, -Cpasses=sancov-module); RUSTC_BOOTSTRAP
# lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1

if [[ -z ${TARGETS:-} ]]; then
    TARGETS=$(cargo fuzz list | tr '\n' ' ')
fi
read -r -a targets <<<"$TARGETS"

# One build of every target: the dependencies are compiled once, and each run below executes
# the binary it produced, so nothing is built again.
echo "== cargo fuzz build -s $sanitizer (every target)"
cargo fuzz build -s "$sanitizer"
built=$SECONDS
echo "== built in $((built - installed))s"

triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=target/$triple/release
jobs="${FUZZ_JOBS:-$(nproc)}"
case "$jobs" in
    '' | *[!0-9]* | 0) jobs=1 ;;
esac

# Fuzzes one target; prints its result line and, on a finding, what the log says of it. Exits
# non-zero on a finding. Runs in the background, so its output is written at its end, at once.
fuzz_one() {
    local target=$1 corpus=corpus/$1 log rc=0 execs size out
    if ! ls "$corpus"/seed-* >/dev/null 2>&1; then
        echo "fuzz $target: FAILED (no seed in fuzz/$corpus/)"
        return 1
    fi
    mkdir -p "artifacts/$target"
    log=artifacts/$target/run.log
    # No -jobs/-workers: libFuzzer fuzzes in this one process. -timeout: an input that runs
    # for 10 s is a hang, and a finding.
    "$bin_dir/$target" "$corpus" -artifact_prefix="artifacts/$target/" \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    size=$(find "$corpus" -type f | wc -l)
    if ((rc == 0)); then
        echo "fuzz $target: ok, ${execs:-?} execs in ${seconds}s, corpus $size"
        return 0
    fi
    # The panic and its message, or the sanitizer's report, and where the input went.
    out=$({ sed -n '/panicked at\|^==[0-9]*==ERROR/,+8p' "$log" | head -n 24; grep 'Test unit written' "$log"; } ||
        tail -n 20 "$log")
    printf 'fuzz %s: FAILED (exit %s) after %s execs; input in fuzz/artifacts/%s/\n%s\n' \
        "$target" "$rc" "${execs:-?}" "$target" "$out"
    return 1
}

echo "== fuzzing ${#targets[@]} targets, $jobs at a time, ${seconds}s each"
failures=()
declare -A running=()
# Waits for one running target and records it if it failed.
reap() {
    local pid rc=0
    wait -n -p pid "${!running[@]}" || rc=$?
    ((rc == 0)) || failures+=("${running[$pid]}")
    unset "running[$pid]"
}
for target in "${targets[@]}"; do
    while ((${#running[@]} >= jobs)); do reap; done
    fuzz_one "$target" &
    running[$!]=$target
done
while ((${#running[@]})); do reap; done

echo "== fuzz step took $((SECONDS - started))s: install $((installed - started))s, build $((built - installed))s, runs $((SECONDS - built))s"
if ((${#failures[@]})); then
    echo "fuzz: failed targets: ${failures[*]}"
    exit 1
fi
