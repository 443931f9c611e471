#!/usr/bin/env bash
# Two chat processes on one Redis: bash scripts/chat-cluster.sh
#
# Starts Debian's redis-server on 127.0.0.1:${REDIS_PORT:-6380} (nothing saved), then the chat
# example twice with --redis: http://127.0.0.1:3000/ and http://127.0.0.1:3001/. Open one page
# on each and talk. Ctrl-C stops all three (by PID).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install -y redis-server" >&2; exit 1; }
cargo build --release -p hunchensocket-examples --bin chat
port=${REDIS_PORT:-6380}
pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT INT TERM
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
for web in 3000 3001; do
    target/release/chat --listen "127.0.0.1:$web" --redis "redis://127.0.0.1:$port/" &
    pids+=($!)
done
wait
