#!/usr/bin/env bash
# THE test command of the project:  bash scripts/test-all.sh
#
#  1. scripts/setup.sh            (toolchain for the peer tests; idempotent)
#  2. cargo test --workspace      (unit, integration and doc tests of every crate)
#  3. cargo build --release -p hunchensocket-examples --bin echo
#  4. peer tests against target/release/echo: rfc6455.py, hixie.py, hixie76.pl, Autobahn
#
# Ends with the line "peers: N passed, M failed"; exits non-zero if cargo or any peer failed.
#
# Environment (for development):
#   ECHO_BIN=/path/to/echo   use that binary, skip step 3
#   SKIP_CARGO_TEST=1        skip step 2
#   PEERS="hixie rfc6455"    run only these peers (names: rfc6455 hixie hixie76 autobahn)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

step() { printf '\n==== %s\n' "$*"; }

bash scripts/setup.sh

cargo_failed=0
if [[ ${SKIP_CARGO_TEST:-0} != 1 ]]; then
    step "cargo test --workspace"
    cargo test --workspace || cargo_failed=1
fi

ALL_PEERS=(rfc6455 hixie hixie76 autobahn)
read -r -a PEER_LIST <<<"${PEERS:-${ALL_PEERS[*]}}"

ECHO=${ECHO_BIN:-}
build_failed=0
if [[ -z $ECHO ]]; then
    step "cargo build --release -p hunchensocket-examples --bin echo"
    if cargo build --release -p hunchensocket-examples --bin echo; then
        ECHO=$ROOT/target/release/echo
    else
        build_failed=1
    fi
fi

ECHO_PID=
ECHO_LOG=$ROOT/target/peers-echo.log
stop_echo() {
    if [[ -n $ECHO_PID ]] && kill -0 "$ECHO_PID" 2>/dev/null; then
        kill "$ECHO_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$ECHO_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$ECHO_PID" 2>/dev/null || true
    fi
    ECHO_PID=
}
trap stop_echo EXIT

# Start one echo on a free loopback port for the peers that take HOST PORT.
start_echo() {
    mkdir -p "$(dirname "$ECHO_LOG")"
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$ECHO" --listen "127.0.0.1:$PORT" >"$ECHO_LOG" 2>&1 &
    ECHO_PID=$!
    for _ in $(seq 200); do
        grep -q 'listening on' "$ECHO_LOG" && return 0
        kill -0 "$ECHO_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "echo did not come up on 127.0.0.1:$PORT; its output:"
    cat "$ECHO_LOG"
    return 1
}

passed=0
failed=0
failures=()
run_peer() {
    local name=$1 limit=$2
    shift 2
    step "peer $name"
    local start=$SECONDS rc=0
    timeout "$limit" "$@" || rc=$?
    if ((rc == 0)); then
        passed=$((passed + 1))
        echo "---- peer $name: ok ($((SECONDS - start))s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        if ((rc == 124)); then
            echo "---- peer $name: FAILED (timed out after ${limit}s)"
        else
            echo "---- peer $name: FAILED (exit $rc, $((SECONDS - start))s)"
        fi
    fi
}

if ((build_failed)); then
    echo "echo binary did not build: every peer counts as failed"
    failed=${#PEER_LIST[@]}
    failures=("${PEER_LIST[@]}")
elif ! start_echo; then
    failed=${#PEER_LIST[@]}
    failures=("${PEER_LIST[@]}")
else
    echo "echo: $ECHO on 127.0.0.1:$PORT (pid $ECHO_PID)"
    for peer in "${PEER_LIST[@]}"; do
        case $peer in
            rfc6455) run_peer rfc6455 120 .venv/bin/python tests/peers/rfc6455.py 127.0.0.1 "$PORT" --echo-cmd "$ECHO" ;;
            hixie) run_peer hixie 60 .venv/bin/python tests/peers/hixie.py 127.0.0.1 "$PORT" ;;
            hixie76) run_peer hixie76 60 perl tests/peers/hixie76.pl 127.0.0.1 "$PORT" ;;
            autobahn) run_peer autobahn 600 env ECHO_CMD="$ECHO" bash tests/peers/autobahn/run.sh ;;
            *) echo "unknown peer '$peer'"; failed=$((failed + 1)); failures+=("$peer") ;;
        esac
        if ! kill -0 "$ECHO_PID" 2>/dev/null; then
            echo "echo server died (after peer $peer); its output:"
            tail -n 50 "$ECHO_LOG"
            start_echo || true
        fi
    done
    stop_echo
fi

echo
if ((cargo_failed)); then echo "cargo test: FAILED"; fi
if ((build_failed)); then echo "cargo build (echo): FAILED"; fi
if ((failed)); then echo "failed peers: ${failures[*]}"; fi
echo "peers: $passed passed, $failed failed"
if ((cargo_failed || build_failed || failed)); then exit 1; fi
