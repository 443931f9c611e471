#!/usr/bin/env bash
# Autobahn|Testsuite fuzzingclient against the echo server, then compare.py on the report.
#
#   bash tests/peers/autobahn/run.sh            # check against expected.json
#   bash tests/peers/autobahn/run.sh --write    # regenerate expected.json from this run
#
# Environment:
#   ECHO_CMD        server command, gets "--listen 127.0.0.1:PORT" appended
#                   (default: target/release/echo)
#   WSTEST          (default: .venv-autobahn/bin/wstest, made by scripts/setup.sh)
#   AUTOBAHN_CASES  JSON list overriding the template's cases for a quick partial run,
#                   e.g. '["1.*","7.*"]'; cases absent from the run are then not compared
# Report: target/autobahn/report/index.html (and index.json).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
cd "$ROOT"

ECHO_CMD=${ECHO_CMD:-$ROOT/target/release/echo}
WSTEST=${WSTEST:-$ROOT/.venv-autobahn/bin/wstest}
OUT=$ROOT/target/autobahn
COMPARE_ARGS=("$@")

ECHO_PID=
cleanup() {
    if [[ -n $ECHO_PID ]] && kill -0 "$ECHO_PID" 2>/dev/null; then
        kill "$ECHO_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$ECHO_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$ECHO_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

rm -rf "$OUT/report"
mkdir -p "$OUT"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086  # ECHO_CMD may be a command with arguments
$ECHO_CMD --listen "127.0.0.1:$PORT" >"$OUT/echo.log" 2>&1 &
ECHO_PID=$!
for _ in $(seq 200); do
    grep -q 'listening on' "$OUT/echo.log" && break
    kill -0 "$ECHO_PID" 2>/dev/null || { echo "autobahn: echo exited early:"; cat "$OUT/echo.log"; exit 1; }
    sleep 0.1
done
grep -q 'listening on' "$OUT/echo.log" || { echo "autobahn: echo did not print 'listening on' within 20s"; exit 1; }

python3 - "$HERE/fuzzingclient.json" "$OUT/fuzzingclient.json" "$PORT" "$OUT/report" <<'PY'
import json, os, sys
template, out, port, outdir = sys.argv[1:5]
text = open(template).read().replace("@PORT@", port).replace("@OUTDIR@", outdir)
cfg = json.loads(text)
if os.environ.get("AUTOBAHN_CASES"):
    cfg["cases"] = json.loads(os.environ["AUTOBAHN_CASES"])
json.dump(cfg, open(out, "w"), indent=2)
PY

echo "autobahn: echo on 127.0.0.1:$PORT (pid $ECHO_PID), running wstest fuzzingclient"
start=$SECONDS
rc=0
(cd "$OUT" && timeout 540 "$WSTEST" -m fuzzingclient -s "$OUT/fuzzingclient.json") >"$OUT/wstest.log" 2>&1 || rc=$?
echo "autobahn: wstest finished in $((SECONDS - start))s (exit $rc, log $OUT/wstest.log)"
if ! kill -0 "$ECHO_PID" 2>/dev/null; then
    echo "autobahn: echo server died during the run; its log:"
    tail -n 50 "$OUT/echo.log"
fi
cleanup
ECHO_PID=
if ((rc)); then
    tail -n 30 "$OUT/wstest.log"
    exit "$rc"
fi

if [[ -n ${AUTOBAHN_CASES:-} ]]; then COMPARE_ARGS+=(--allow-missing); fi
exec python3 "$HERE/compare.py" --report "$OUT/report/index.json" --expected "$HERE/expected.json" "${COMPARE_ARGS[@]}"
