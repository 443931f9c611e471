#!/usr/bin/env python3
"""python-socketio (5.x, sync Client) against the conformance example server.

    .venv/bin/python tests/socketio/python_client.py [--url http://127.0.0.1:PORT]

Without --url it starts `conformance --listen 127.0.0.1:0` itself (binary from $CONFORMANCE_BIN,
default target/release/conformance under the repository root) and kills it on exit.

For each transport setup (polling only, WebSocket only, and the default polling-then-upgrade):
connect to `/` (with and without auth) and receive `auth`; emit `message` → `message-back` with
the same arguments (text, nested JSON, bytes); call `message-with-ack` → the same arguments;
disconnect. Every wait is bounded. Ends with "python_client.py: N passed, M failed"; exits 1
if anything failed (-v prints the traceback of each failure).
"""

import argparse
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import traceback

from importlib.metadata import version

import socketio

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WAIT = 3.0

MODES = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgrade": None,  # python-socketio's default: polling first, then upgrade to websocket
}


class Server:
    """The conformance binary on an ephemeral loopback port."""

    def __init__(self, binary):
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + 10
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise RuntimeError("conformance did not say 'listening on' within 10 s: %r" % seen)
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.stop()
                raise RuntimeError("conformance exited before listening: %r" % seen)
            seen.append(line)
            m = re.search(r"listening on (\S+)", line)
            if m:
                self.url = "http://" + m.group(1)
                return

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=2)


class Client:
    """A socketio.Client whose events land in per-event queues."""

    def __init__(self):
        self.sio = socketio.Client(reconnection=False)
        self.events = {}
        for name in ("auth", "message-back"):
            self.sio.on(name, self._collector(name))
        self.sio.on("disconnect", self._collector("disconnect"))

    def _collector(self, name):
        q = self.events.setdefault(name, queue.Queue())
        return lambda *args: q.put(list(args))

    def next(self, name, timeout=WAIT):
        try:
            return self.events[name].get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no %r event within %.1f s" % (name, timeout)) from None

    def connect(self, url, transports, auth=None):
        self.sio.connect(url, transports=transports, auth=auth, namespaces=["/"],
                         wait_timeout=WAIT)
        if transports is None:
            deadline = time.monotonic() + WAIT
            while self.sio.transport() != "websocket" and time.monotonic() < deadline:
                time.sleep(0.02)
        want = transports[0] if transports else "websocket"
        eq(self.sio.transport(), want, "transport")

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:
            pass


def eq(got, want, what):
    # An explicit raise, not `assert`: `python -O` strips asserts, and these checks are the test.
    if got != want:
        raise AssertionError("%s: got %r, expected %r" % (what, got, want))


def check_auth(url, transports):
    c = Client()
    try:
        c.connect(url, transports)
        eq(c.next("auth"), [{}], "auth without auth data")
    finally:
        c.close()
    c = Client()
    try:
        c.connect(url, transports, auth={"token": "abc"})
        eq(c.next("auth"), [{"token": "abc"}], "auth with {token: abc}")
    finally:
        c.close()


ARGS = ["text é ✓", 42, -1.5, True, None, {"a": {"b": [1, "two", {"c": None}]}, "empty": {}}]


def check_message(url, transports):
    c = Client()
    try:
        c.connect(url, transports)
        c.next("auth")
        c.sio.emit("message", tuple(ARGS))
        eq(c.next("message-back"), ARGS, "message-back")
        blob = bytes(range(256))
        c.sio.emit("message", (blob, {"nested": blob[:3]}))
        eq(c.next("message-back"), [blob, {"nested": blob[:3]}], "message-back with bytes")
    finally:
        c.close()


def check_ack(url, transports):
    c = Client()
    try:
        c.connect(url, transports)
        c.next("auth")
        eq(c.sio.call("message-with-ack", {"x": [1, 2]}, timeout=WAIT), {"x": [1, 2]},
           "ack of one argument")
        got = c.sio.call("message-with-ack", tuple(ARGS), timeout=WAIT)
        eq(list(got), ARGS, "ack of several arguments")
        blob = b"\x00\x01\xfe\xff"
        eq(c.sio.call("message-with-ack", {"bin": blob}, timeout=WAIT), {"bin": blob},
           "ack with bytes")
    finally:
        c.close()


def check_disconnect(url, transports):
    c = Client()
    try:
        c.connect(url, transports)
        c.next("auth")
        eq(c.sio.connected, True, "connected")
        c.sio.disconnect()
        got = c.next("disconnect")
        # python-socketio >= 5.12 passes a reason: "client disconnect" for our own disconnect().
        eq(got, [c.sio.reason.CLIENT_DISCONNECT], "disconnect handler arguments")
        eq(c.sio.connected, False, "connected after disconnect()")
    finally:
        c.close()


CHECKS = [check_auth, check_message, check_ack, check_disconnect]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", help="a running conformance server (else one is started)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print tracebacks of failures")
    opts = ap.parse_args()

    # `timeout` sends SIGTERM: turn it into SystemExit so the server is still stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    server = None
    url = opts.url
    if url is None:
        binary = os.path.join(ROOT, os.environ.get("CONFORMANCE_BIN", "target/release/conformance"))
        server = Server(binary)
        url = server.url
    passed = failed = 0
    try:
        print("python-socketio %s against %s" % (version("python-socketio"), url))
        for mode, transports in MODES.items():
            for check in CHECKS:
                name = "%s %s" % (mode, check.__name__[len("check_"):])
                start = time.monotonic()
                try:
                    check(url, transports)
                except Exception as e:
                    failed += 1
                    print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
                    if opts.verbose:
                        traceback.print_exc()
                else:
                    passed += 1
                    print("ok   %s (%.2f s)" % (name, time.monotonic() - start))
    finally:
        if server:
            server.stop()
    print("python_client.py: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
