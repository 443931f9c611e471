#!/usr/bin/env bash
# Builds the three cargo-fuzz targets and runs each for a few seconds.
#
#   scripts/fuzz-smoke.sh [SECONDS]     (default 10 per target)
#
# Environment: SANITIZER (default "address"; "none" where ASan does not work),
# TARGETS (default "rfc6455_codec hixie_codec handshake engineio_payload socketio_packet").
# Exits non-zero as soon as a target fails to build or finds a crash; the input that
# triggered it is left in fuzz/artifacts/<target>/.
set -euo pipefail

seconds="${1:-10}"
sanitizer="${SANITIZER:-address}"
targets="${TARGETS:-rfc6455_codec hixie_codec handshake engineio_payload socketio_packet}"

case "$seconds" in
    '' | *[!0-9]*)
        echo "usage: $0 [SECONDS]" >&2
        exit 2
        ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cd "$(dirname "$0")/../fuzz"

# cargo-fuzz passes nightly-only flags (-Z sanitizer, -Cpasses=sancov-module);
# RUSTC_BOOTSTRAP lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1

for target in $targets; do
    echo "== build $target"
    cargo fuzz build -s "$sanitizer" "$target"
done

for target in $targets; do
    echo "== run $target for ${seconds}s"
    # No -jobs/-workers: libFuzzer then fuzzes in this one process. Generated corpus
    # entries (hash names) are gitignored.
    if ! cargo fuzz run -s "$sanitizer" "$target" -- \
        -max_total_time="$seconds" -print_final_stats=1; then
        echo "!! $target found a crash (or failed); see fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
echo "== no finding"
