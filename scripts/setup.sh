#!/usr/bin/env bash
# Install everything the peer tests need. Idempotent: safe (and cheap) to run every time.
#
#   Debian packages : libprotocol-websocket-perl (hixie-76 client), openssl (test certificates),
#                     redis-server and redis-tools (the Redis fleet tests),
#                     nodejs and npm when `node` / `npm` are not on PATH (Socket.IO peer)
#   .venv/          : Python 3 venv with tests/peers/requirements.txt (websockets, python-socketio)
#   tests/socketio/node_modules/ : `npm ci` from tests/socketio/package-lock.json (socket.io-client)
#   /usr/bin/chromium : Debian's chromium, when missing (the browser test of the chat example)
#   tests/browser/node_modules/  : `npm ci` from tests/browser/package-lock.json (playwright-core)
#   js-client/node_modules/      : `npm ci` from js-client/package-lock.json (esbuild, typescript, socket.io-client)
#   bench/node/node_modules/     : `npm ci` from bench/node/package-lock.json (socket.io, for the benchmark)
#   tests/cluster/node_modules/  : `npm ci` from tests/cluster/package-lock.json (socket.io, the Redis
#                                  adapter and emitter, node-redis, socket.io-client, notepack.io)
#   tests/netem/node_modules/    : `npm ci` from tests/netem/package-lock.json (socket.io-client);
#                                  the netem test also needs iproute2 (ip, tc), in the apt list
#   .venv-autobahn/ : Python 2.7 venv with Autobahn|Testsuite (wstest)
#
# Environment:
#   PY3   Python 3 interpreter for .venv/        (default: python3)
#   PY27  Python 2.7 interpreter for Autobahn   (default: pyenv's 2.7.18, else python2.7 on PATH)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

say() { printf 'setup: %s\n' "$*"; }

# A venv is reused when it was built from the same requirements file (hash stamp) and still works.
stamp_of() { sha256sum "$1" | cut -d' ' -f1; }

# Run a noisy command quietly; show its output only when it fails.
quiet() {
    local log rc=0
    log=$(mktemp)
    "$@" >"$log" 2>&1 || rc=$?
    if ((rc)); then
        echo "setup: FAILED ($rc): $*" >&2
        cat "$log" >&2
    fi
    rm -f "$log"
    return "$rc"
}

PY3=${PY3:-python3}

# ---------------------------------------------------------------- Debian packages
APT_PKGS=(libprotocol-websocket-perl openssl redis-server redis-tools)
# The netem test makes network namespaces, veth pairs and qdiscs with ip and tc.
APT_PKGS+=(iproute2)
# Debian's own python3 cannot make venvs without python3-venv (no ensurepip).
if ! "$PY3" -c 'import ensurepip' 2>/dev/null; then APT_PKGS+=(python3-venv); fi
# node --test and the socket.io-client peer; keep a node that is already there (any packaging).
if ! command -v node >/dev/null; then APT_PKGS+=(nodejs); fi
if ! command -v npm >/dev/null; then APT_PKGS+=(npm); fi
# The browser test drives Debian's Chromium; any chromium already at that path will do.
if [[ ! -x /usr/bin/chromium ]]; then APT_PKGS+=(chromium); fi
missing=()
for p in "${APT_PKGS[@]}"; do
    if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    SUDO=
    if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
    say "apt: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${APT_PKGS[@]}" >/dev/null
else
    say "apt: ${APT_PKGS[*]} already installed"
fi

# ---------------------------------------------------------------- Python 3 venv
REQ3=tests/peers/requirements.txt
want=$(stamp_of "$REQ3")
if [[ -x .venv/bin/python && -f .venv/.req-stamp && $(cat .venv/.req-stamp) == "$want" ]] \
    && .venv/bin/python -c 'import websockets, socketio' 2>/dev/null; then
    say ".venv: up to date ($(.venv/bin/python -c 'import websockets; print("websockets", websockets.__version__)'))"
else
    say ".venv: creating with $PY3 and $REQ3"
    rm -rf .venv
    quiet "$PY3" -m venv .venv
    quiet .venv/bin/python -m pip install --disable-pip-version-check -r "$REQ3"
    echo "$want" > .venv/.req-stamp
fi

# ---------------------------------------------------------------- npm packages
# Each directory's node_modules is reused while the sha256 of its lockfile matches the stamp
# written after the last `npm ci` and its packages still load; otherwise `npm ci` installs
# exactly what the lockfile says.
npm_ci() { # DIR "require(...) expression" LABEL
    local dir=$1 check=$2 want
    want=$(stamp_of "$dir/package-lock.json")
    if [[ -f $dir/node_modules/.lock-hash && $(cat "$dir/node_modules/.lock-hash") == "$want" ]] \
        && (cd "$dir" && node -e "$check") 2>/dev/null; then
        say "$dir/node_modules: up to date ($3)"
    else
        say "$dir/node_modules: npm ci (node $(node --version))"
        quiet npm --prefix "$dir" ci --no-audit --no-fund
        echo "$want" > "$dir/node_modules/.lock-hash"
    fi
}
# The official socket.io-client, for the Socket.IO peer tests.
npm_ci tests/socketio 'require("socket.io-client")' "socket.io-client"
# playwright-core: it drives /usr/bin/chromium and downloads no browser of its own.
npm_ci tests/browser 'require("playwright-core")' "playwright-core"
# Dev tools of the bundled client (esbuild, typescript, socket.io-client for the comparison);
# the client itself has no dependencies.
npm_ci js-client 'require("esbuild"); require("typescript"); require("socket.io-client")' "esbuild, typescript"
# The Node socket.io server the benchmark compares with.
npm_ci bench/node 'require("socket.io"); require("@socket.io/redis-adapter")' "socket.io, redis adapter"
# The Redis fleet tests: Node socket.io nodes with @socket.io/redis-adapter, the emitter, node-redis.
npm_ci tests/cluster 'require("socket.io"); require("@socket.io/redis-adapter")' "socket.io fleet"
# The netem test's clients (socket.io-client, run inside network namespaces).
npm_ci tests/netem 'require("socket.io-client")' "socket.io-client"

# ---------------------------------------------------------------- Python 2.7 venv for Autobahn
REQ27=tests/peers/autobahn/requirements-py27.txt
want=$(stamp_of "$REQ27")
if [[ -x .venv-autobahn/bin/wstest && -f .venv-autobahn/.req-stamp && $(cat .venv-autobahn/.req-stamp) == "$want" ]] \
    && .venv-autobahn/bin/wstest --help >/dev/null 2>&1; then
    say ".venv-autobahn: up to date (wstest works)"
else
    if [[ -z ${PY27:-} ]]; then
        if command -v pyenv >/dev/null && [[ -x $(pyenv root)/versions/2.7.18/bin/python ]]; then
            PY27=$(pyenv root)/versions/2.7.18/bin/python
        elif command -v python2.7 >/dev/null; then
            PY27=$(command -v python2.7)
        else
            echo "setup: no Python 2.7 found (Autobahn|Testsuite needs it); set PY27=/path/to/python2.7" >&2
            exit 1
        fi
    fi
    say ".venv-autobahn: creating with $PY27 and $REQ27 (about a minute)"
    rm -rf .venv-autobahn
    quiet "$PY27" -m pip install --disable-pip-version-check 'virtualenv<20.22'
    quiet "$PY27" -m virtualenv .venv-autobahn
    quiet .venv-autobahn/bin/pip install --disable-pip-version-check -r "$REQ27"
    .venv-autobahn/bin/wstest --help >/dev/null
    echo "$want" > .venv-autobahn/.req-stamp
fi

say "done ($ROOT)"
