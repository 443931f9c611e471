#!/usr/bin/env python3
"""RFC 6455 echo checks with the `websockets` library as client, over ws:// and wss://.

    .venv/bin/python tests/peers/rfc6455.py HOST PORT --echo-cmd CMD

HOST PORT is an already running plain echo server. For wss:// the test makes a self-signed
certificate (openssl CLI) in a temp dir, starts a second server with
`CMD --listen 127.0.0.1:P --tls-cert cert.pem --tls-key key.pem` (CMD is split like a shell
word list, e.g. "target/release/echo"), waits for its `listening on` line, trusts exactly that
certificate, runs the same checks, and kills the server. Without --echo-cmd the wss:// part
is skipped (reported as a failure unless --no-tls is given).
"""

import argparse
import asyncio
import http.client
import os
import shlex
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK
from websockets.protocol import State

TIMEOUT = 10.0  # seconds, per awaited step
MAX_SIZE = 16 * 1024 * 1024


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


async def bounded(aw, what):
    try:
        return await asyncio.wait_for(aw, TIMEOUT)
    except asyncio.TimeoutError:
        raise CheckFailed(f"timeout ({TIMEOUT}s): {what}")


async def roundtrip(ws, msg):
    await bounded(ws.send(msg), "send")
    got = await bounded(ws.recv(), "echo")
    check(type(got) is type(msg),
          f"sent {type(msg).__name__}, got {type(got).__name__} back")
    check(got == msg, f"echo mismatch: sent {len(msg)} ({msg[:30]!r}), got {len(got)} ({got[:30]!r})")


async def t_text(uri, ctx):
    async with connect(uri, ssl=ctx, max_size=MAX_SIZE, open_timeout=TIMEOUT) as ws:
        for msg in ["hello", "", "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c\u8a9e \U0001F389",
                    "\u00e9" * 40000]:
            await roundtrip(ws, msg)


async def t_binary(uri, ctx):
    async with connect(uri, ssl=ctx, max_size=MAX_SIZE, open_timeout=TIMEOUT) as ws:
        for msg in [b"\x00\x01\x02\xff", b"", bytes(range(256)) * 4, os.urandom(1 << 20)]:
            await roundtrip(ws, msg)


async def t_ping(uri, ctx):
    async with connect(uri, ssl=ctx, max_size=MAX_SIZE, open_timeout=TIMEOUT,
                       ping_interval=None) as ws:
        waiter = await bounded(ws.ping(b"peer-ping"), "send ping")
        latency = await bounded(waiter, "pong for the client's ping")
        check(latency >= 0, "pong waiter resolved oddly")
        await roundtrip(ws, "after ping")  # connection still usable


async def t_close_1000(uri, ctx):
    ws = await bounded(connect(uri, ssl=ctx, max_size=MAX_SIZE, open_timeout=TIMEOUT), "connect")
    await roundtrip(ws, "before close")
    await bounded(ws.close(1000, "bye"), "closing handshake")
    await bounded(ws.wait_closed(), "TCP close")
    check(ws.state is State.CLOSED, f"state after close: {ws.state}")
    sent, rcvd = ws.protocol.close_sent, ws.protocol.close_rcvd
    check(sent is not None and sent.code == 1000, f"close frame sent: {sent}")
    check(rcvd is not None, "server never sent a close frame (connection dropped)")
    check(rcvd.code == 1000, f"server's close code is {rcvd.code}, expected 1000")
    check(not ws.protocol.close_rcvd_then_sent, "close order confused")
    try:
        await bounded(ws.recv(), "recv after close")
        raise CheckFailed("recv after close returned a message")
    except ConnectionClosedOK:
        pass


def t_plain_get(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        check(resp.status == 200, f"plain GET / answered {resp.status} {resp.reason}")
    finally:
        conn.close()


async def run_suite(label, uri, ctx, results):
    for t in (t_text, t_binary, t_ping, t_close_1000):
        name = f"{label} {t.__name__[2:]}"
        start = time.monotonic()
        try:
            await t(uri, ctx)
            results.append((name, None, time.monotonic() - start))
        except CheckFailed as e:
            results.append((name, str(e), time.monotonic() - start))
        except Exception as e:  # library errors: handshake refused, connection reset, ...
            results.append((name, f"{type(e).__name__}: {e}", time.monotonic() - start))


# ------------------------------------------------------------------------------ TLS server
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-days", "1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def start_tls_echo(cmd, tmp, cert, key):
    port = free_port()
    log = open(os.path.join(tmp, "echo-tls.log"), "w+b")
    argv = shlex.split(cmd) + ["--listen", f"127.0.0.1:{port}", "--tls-cert", cert, "--tls-key", key]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log.seek(0)
        out = log.read()
        if b"listening on" in out:
            return proc, port, log
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    stop(proc)
    log.seek(0)
    raise CheckFailed(f"TLS echo did not start ({argv}): {log.read()[-2000:]!r}")


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--echo-cmd", help="command that starts an echo server (for wss://)")
    ap.add_argument("--no-tls", action="store_true", help="skip the wss:// part")
    a = ap.parse_args()

    results = []
    start = time.monotonic()
    try:
        t_plain_get(a.host, a.port)
        results.append(("http plain GET /", None, time.monotonic() - start))
    except Exception as e:
        results.append(("http plain GET /", f"{type(e).__name__}: {e}", time.monotonic() - start))

    asyncio.run(run_suite("ws", f"ws://{a.host}:{a.port}/rfc6455/echo", None, results))

    if a.echo_cmd:
        with tempfile.TemporaryDirectory(prefix="peers-tls-") as tmp:
            proc = None
            try:
                cert, key = make_cert(tmp)
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and hostname
                ctx.load_verify_locations(cert)
                proc, port, log = start_tls_echo(a.echo_cmd, tmp, cert, key)
                asyncio.run(run_suite("wss", f"wss://127.0.0.1:{port}/rfc6455/echo", ctx, results))
            except (CheckFailed, subprocess.SubprocessError, OSError) as e:
                results.append(("wss setup", f"{type(e).__name__}: {e}", 0.0))
            finally:
                if proc is not None:
                    stop(proc)
    elif not a.no_tls:
        results.append(("wss", "no --echo-cmd given (use --no-tls to skip on purpose)", 0.0))

    failed = 0
    for name, err, secs in results:
        if err is None:
            print(f"ok   {name} ({secs:.2f}s)")
        else:
            failed += 1
            print(f"FAIL {name}: {err}")
    print(f"rfc6455.py: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
