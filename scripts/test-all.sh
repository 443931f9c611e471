#!/usr/bin/env bash
# THE test command of the project:  bash scripts/test-all.sh
#
#  1. scripts/setup.sh            (toolchain for the peer tests; idempotent)
#  2. cargo test --workspace      (unit, integration and doc tests of every crate)
#  3. cargo build --release -p hunchensocket-examples --bin echo          (if an echo peer is selected)
#  4. peer tests against target/release/echo: rfc6455.py, hixie.py, hixie76.pl, Autobahn
#  5. cargo build --release -p hunchensocket-examples --bin conformance   (if a Socket.IO peer is selected)
#  6. Socket.IO peers, each starting its own target/release/conformance:
#     socketio-js (official socket.io-client, node --test), socketio-py (python-socketio),
#     js-client (our client: size check, tsc --noEmit, node --test of ours and the official client,
#     connection state recovery included),
#     cluster-js (tests/cluster/fleet.test.mjs: a fleet of conformance and Node socket.io nodes on
#     redis-server and on a Redis Cluster, every cluster operation from every node) and
#     cluster-faults (tests/cluster/faults.test.mjs: a Redis restart, kill -9 of a node, garbage on
#     the adapter's channels) and cluster-streams (tests/cluster/streams.test.mjs: recovery across
#     our nodes and a Node node on the Redis Streams adapter, and a randomized run); they start
#     their own redis-server processes
#  7. cargo build --release -p hunchensocket-examples --bin chat          (if a browser peer is selected)
#  8. browser-chat: the chat example in Chromium (playwright-core, node --test); it starts its own
#     target/release/chat and leaves screenshots in target/artifacts/; browser-chat-cluster: two
#     chat processes on one redis-server (started by the test), a page on each
#  9. bench-smoke: `cargo run --release --manifest-path bench/Cargo.toml -- compare --smoke`
#     (the benchmark harness against every server it compares, in seconds, asserting only that
#     each step ran and moved messages; `npm ci` in bench/node first when its lockfile changed)
# 10. netem (a Socket.IO peer: tests/netem/netem.test.mjs, node --test): network faults between
#     socket.io-client and target/release/conformance in network namespaces of the test's own
#     (delay, loss and reordering; a partition; a client that vanishes without a FIN; a slow
#     consumer); it skips where `ip netns add` is refused (not root)
# 11. soak-30s: the bench's unit tests (`cargo test --release --manifest-path bench/Cargo.toml`:
#     among them, that the soak's allocator counts what the server holds), then `cargo run
#     --release --manifest-path bench/Cargo.toml -- soak --seconds 30` (10 000 sessions for 30 s:
#     acked events, room broadcasts, 1 %/s reconnects; nothing lost or duplicated, heap and RSS
#     flat, back to baseline; see bench/README.md "Soak")
# 12. fuzz: scripts/fuzz-ci.sh (installs cargo-fuzz 0.13 if missing, builds every target in fuzz/
#     once with AddressSanitizer, runs each for FUZZ_SECONDS, default 30, from its committed corpus,
#     as many at once as there are CPUs;
#     fails on any finding)
#
# Ends with the line "peers: N passed, M failed"; exits non-zero if cargo or any peer failed.
#
# Environment (for development):
#   ECHO_BIN=/path/to/echo   use that binary, skip step 3
#   CONFORMANCE_BIN=/path/to/conformance   use that binary, skip step 5
#   CHAT_BIN=/path/to/chat   use that binary, skip step 7
#   CHAT_CLIENT_JS=/path/to/client.js   browser-chat serves that Socket.IO client instead of the
#                            bundled one (socket.io-client's dist/socket.io.esm.min.js, say)
#   SKIP_CARGO_TEST=1        skip step 2
#   PEERS="hixie rfc6455"    run only these peers
#                            (names: rfc6455 hixie hixie76 autobahn socketio-js socketio-py
#                             js-client cluster-js cluster-faults cluster-streams browser-chat
#                             browser-chat-cluster bench-smoke netem soak-30s fuzz)
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

ALL_PEERS=(rfc6455 hixie hixie76 autobahn socketio-js socketio-py js-client cluster-js cluster-faults cluster-streams browser-chat browser-chat-cluster bench-smoke)
# The reliability campaign's peers.
ALL_PEERS+=(netem soak-30s)
ALL_PEERS+=(fuzz)
read -r -a PEER_LIST <<<"${PEERS:-${ALL_PEERS[*]}}"
# Peers of the echo server, Socket.IO peers (they start the conformance server themselves),
# browser peers (they start the chat example themselves), and the benchmark smoke run (it
# starts every server it needs).
ECHO_PEERS=()
IO_PEERS=()
BROWSER_PEERS=()
BENCH_PEERS=()
FUZZ_PEERS=()
for peer in "${PEER_LIST[@]}"; do
    case $peer in
        socketio-* | js-client | cluster-*) IO_PEERS+=("$peer") ;;
        browser-*) BROWSER_PEERS+=("$peer") ;;
        bench-*) BENCH_PEERS+=("$peer") ;;
        soak-*) BENCH_PEERS+=("$peer") ;;
        netem) IO_PEERS+=("$peer") ;;
        fuzz) FUZZ_PEERS+=("$peer") ;;
        *) ECHO_PEERS+=("$peer") ;;
    esac
done

ECHO=${ECHO_BIN:-}
build_failed=0
if ((${#ECHO_PEERS[@]})) && [[ -z $ECHO ]]; then
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

if ((${#ECHO_PEERS[@]} == 0)); then
    :
elif ((build_failed)); then
    echo "echo binary did not build: every echo peer counts as failed"
    failed=$((failed + ${#ECHO_PEERS[@]}))
    failures+=("${ECHO_PEERS[@]}")
elif ! start_echo; then
    failed=$((failed + ${#ECHO_PEERS[@]}))
    failures+=("${ECHO_PEERS[@]}")
else
    echo "echo: $ECHO on 127.0.0.1:$PORT (pid $ECHO_PID)"
    for peer in "${ECHO_PEERS[@]}"; do
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

# Socket.IO peers: each starts `conformance --listen 127.0.0.1:0` itself and kills it on exit.
CONFORMANCE=${CONFORMANCE_BIN:-}
io_build_failed=0
if ((${#IO_PEERS[@]})) && [[ -z $CONFORMANCE ]]; then
    step "cargo build --release -p hunchensocket-examples --bin conformance"
    if cargo build --release -p hunchensocket-examples --bin conformance; then
        CONFORMANCE=$ROOT/target/release/conformance
    else
        io_build_failed=1
    fi
fi
if ((${#IO_PEERS[@]} == 0)); then
    :
elif ((io_build_failed)); then
    echo "conformance binary did not build: every Socket.IO peer counts as failed"
    failed=$((failed + ${#IO_PEERS[@]}))
    failures+=("${IO_PEERS[@]}")
else
    CONFORMANCE=$(realpath "$CONFORMANCE")
    for peer in "${IO_PEERS[@]}"; do
        case $peer in
            socketio-js) run_peer socketio-js 60 env CONFORMANCE_BIN="$CONFORMANCE" \
                node --test --test-reporter=spec tests/socketio/client.test.mjs ;;
            socketio-py) run_peer socketio-py 60 env CONFORMANCE_BIN="$CONFORMANCE" \
                .venv/bin/python tests/socketio/python_client.py ;;
            js-client) run_peer js-client 240 env CONFORMANCE_BIN="$CONFORMANCE" bash -c \
                'cd js-client && node scripts/size.mjs && node_modules/.bin/tsc --noEmit -p . \
                    && node --experimental-websocket --test --test-reporter=spec test/client.test.mjs test/kick.test.mjs \
                    test/recovery.test.mjs' ;;
            cluster-js) run_peer cluster-js 300 env CONFORMANCE_BIN="$CONFORMANCE" \
                node --test --test-reporter=spec tests/cluster/fleet.test.mjs ;;
            cluster-faults) run_peer cluster-faults 300 env CONFORMANCE_BIN="$CONFORMANCE" \
                node --test --test-reporter=spec tests/cluster/faults.test.mjs ;;
            cluster-streams) run_peer cluster-streams 180 env CONFORMANCE_BIN="$CONFORMANCE" \
                node --test --test-reporter=spec tests/cluster/streams.test.mjs ;;
            netem) run_peer netem 180 env CONFORMANCE_BIN="$CONFORMANCE" \
                node --test --test-reporter=spec tests/netem/netem.test.mjs ;;
            *) echo "unknown peer '$peer'"; failed=$((failed + 1)); failures+=("$peer") ;;
        esac
    done
fi

# Browser peers: each starts `chat --listen 127.0.0.1:0` itself and kills it on exit.
CHAT=${CHAT_BIN:-}
chat_build_failed=0
if ((${#BROWSER_PEERS[@]})) && [[ -z $CHAT ]]; then
    step "cargo build --release -p hunchensocket-examples --bin chat"
    if cargo build --release -p hunchensocket-examples --bin chat; then
        CHAT=$ROOT/target/release/chat
    else
        chat_build_failed=1
    fi
fi
if ((${#BROWSER_PEERS[@]} == 0)); then
    :
elif ((chat_build_failed)); then
    echo "chat binary did not build: every browser peer counts as failed"
    failed=$((failed + ${#BROWSER_PEERS[@]}))
    failures+=("${BROWSER_PEERS[@]}")
else
    CHAT=$(realpath "$CHAT")
    for peer in "${BROWSER_PEERS[@]}"; do
        case $peer in
            browser-chat) run_peer browser-chat 120 env CHAT_BIN="$CHAT" \
                node --test --test-reporter=spec tests/browser/chat.test.mjs ;;
            browser-chat-cluster) run_peer browser-chat-cluster 120 env CHAT_BIN="$CHAT" \
                node --test --test-reporter=spec tests/browser/chat-cluster.test.mjs ;;
            *) echo "unknown peer '$peer'"; failed=$((failed + 1)); failures+=("$peer") ;;
        esac
    done
fi

# The benchmark harness (bench/, its own cargo workspace) in smoke mode; setup.sh installed its
# Node peer's packages (bench/node).
# bench/ builds into the main target directory: the crates it shares with the workspace
# (tokio, hyper, ours) are built once for both.
export BENCH_TARGET_DIR=$ROOT/target
for peer in "${BENCH_PEERS[@]}"; do
    case $peer in
        # The limit covers the first release build of bench/ (minutes); the run takes seconds.
        bench-smoke) run_peer bench-smoke 1200 env CARGO_TARGET_DIR="$BENCH_TARGET_DIR" \
            cargo run --release --manifest-path bench/Cargo.toml -- compare --smoke ;;
        # 10 000 sessions fit: they connect in about 2 s here and the run ends in about 40 s.
        # The server runs on mimalloc, the soak's default: under connection churn glibc's malloc
        # keeps a growing share of freed memory for minutes (bench/README.md, "Soak").
        soak-30s) run_peer soak-30s 1200 env CARGO_TARGET_DIR="$BENCH_TARGET_DIR" bash -c \
            'cargo test --release --manifest-path bench/Cargo.toml &&
             cargo run --release --manifest-path bench/Cargo.toml -- soak --seconds 30' ;;
        *) echo "unknown peer '$peer'"; failed=$((failed + 1)); failures+=("$peer") ;;
    esac
done

# The fuzz targets (fuzz/, a cargo package of its own with its own target dir).
for peer in "${FUZZ_PEERS[@]}"; do
    case $peer in
        # The limit covers installing cargo-fuzz (1-2 minutes) and the build of fuzz/ (4-9 minutes
        # on 2 cores, with the machine's load); the runs take FUZZ_SECONDS per target.
        fuzz) run_peer fuzz 1500 bash scripts/fuzz-ci.sh ;;
        *) echo "unknown peer '$peer'"; failed=$((failed + 1)); failures+=("$peer") ;;
    esac
done

echo
if ((cargo_failed)); then echo "cargo test: FAILED"; fi
if ((build_failed)); then echo "cargo build (echo): FAILED"; fi
if ((io_build_failed)); then echo "cargo build (conformance): FAILED"; fi
if ((chat_build_failed)); then echo "cargo build (chat): FAILED"; fi
if ((failed)); then echo "failed peers: ${failures[*]}"; fi
echo "peers: $passed passed, $failed failed"
if ((cargo_failed || build_failed || io_build_failed || chat_build_failed || failed)); then exit 1; fi
