#!/usr/bin/env python3
"""Raw-socket hixie-75 / hixie-76 client checks against an echo server (stdlib only).

    python3 tests/peers/hixie.py HOST PORT

Written for this project from draft-hixie-thewebsocketprotocol-75 and -76; it shares no code
with the server. Header names are compared case-insensitively; status lines and header values
byte for byte. Every read has a timeout. Exit status 0 when every check passed.
"""

import socket
import sys
import time
import traceback

TIMEOUT = 5.0  # seconds, for every single read/connect

# The draft-76 example handshake (protocols.md §2, first row) and a second vector (second row).
KEY1_A, KEY2_A, KEY3_A, ANSWER_A = ("4 @1  46546xW%0l 1 5", "12998 5 Y3 1  .P00",
                                    b"^n:ds[4U", b"8jKS'y:G*Co,Wxa-")
KEY1_B, KEY2_B, KEY3_B, ANSWER_B = ("18x 6]8vM;54 *(5:  {   U1]8  z [  8",
                                    "1_ tx7X d  <  nw  334J702) 7]o}` 0",
                                    b"Tm[K T2u", b"fQJ,fN/4F4!~K~MH")

MESSAGES = [
    "hello",
    "",
    "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c\u8a9e \U0001F389",
    "x" * 70000 + "\u00ff",
]


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.settimeout(TIMEOUT)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, what):
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise CheckFailed(f"timeout ({TIMEOUT}s) waiting for {what}; have {self.buf[:80]!r}")
        if not chunk:
            raise CheckFailed(f"connection closed by server while waiting for {what}; "
                              f"have {self.buf[:80]!r}")
        self.buf += chunk

    def read_until(self, delim, what, limit=1 << 20):
        while delim not in self.buf:
            check(len(self.buf) <= limit, f"no {delim!r} within {limit} bytes ({what})")
            self._fill(what)
        i = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n, what):
        while len(self.buf) < n:
            self._fill(what)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def expect_eof(self, what):
        check(self.buf == b"", f"unexpected bytes before EOF ({what}): {self.buf[:80]!r}")
        deadline = time.monotonic() + TIMEOUT
        while True:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                raise CheckFailed(f"server did not close TCP within {TIMEOUT}s ({what})")
            except ConnectionResetError:
                raise CheckFailed(f"server reset the connection instead of closing it ({what})")
            check(chunk == b"", f"unexpected bytes instead of EOF ({what}): {chunk[:80]!r}")
            return

    def close(self):
        self.sock.close()


def read_response_head(conn):
    """Returns (status line, {lowercased name: [values]}) of the handshake response."""
    head = conn.read_until(b"\r\n\r\n", "handshake response headers", limit=16384)
    lines = head[:-4].split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        check(b":" in line, f"malformed header line {line!r}")
        name, value = line.split(b":", 1)
        headers.setdefault(name.strip().lower().decode("latin-1"), []).append(value.strip())
    return lines[0], headers


def expect_header(headers, name, value):
    got = headers.get(name.lower())
    check(got is not None, f"missing header {name}; headers: {headers}")
    check(len(got) == 1, f"header {name} repeated: {got}")
    check(got[0] == value, f"header {name}: expected {value!r}, got {got[0]!r}")


def echo_messages(conn):
    for msg in MESSAGES:
        conn.send(b"\x00" + msg.encode("utf-8") + b"\xff")
        t = conn.read_exact(1, "frame type byte")
        check(t == b"\x00", f"expected text frame type 0x00, got {t!r}")
        data = conn.read_until(b"\xff", "end of text frame", limit=len(msg.encode()) + 16)[:-1]
        check(data == msg.encode("utf-8"),
              f"echo mismatch: sent {msg[:40]!r} ({len(msg)} chars), got {data[:60]!r}")


def request(path, hostport, extra):
    lines = [f"GET {path} HTTP/1.1", "Upgrade: WebSocket", "Connection: Upgrade",
             f"Host: {hostport}", f"Origin: http://{hostport}"] + extra
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# ------------------------------------------------------------------------------------ tests
def test_hixie75(host, port):
    hp = f"{host}:{port}"
    conn = Conn(host, port)
    try:
        conn.send(request("/chat75?x=1", hp, []))
        status, headers = read_response_head(conn)
        check(status == b"HTTP/1.1 101 Web Socket Protocol Handshake", f"status line {status!r}")
        expect_header(headers, "Upgrade", b"WebSocket")
        expect_header(headers, "Connection", b"Upgrade")
        expect_header(headers, "WebSocket-Origin", f"http://{hp}".encode())
        expect_header(headers, "WebSocket-Location", f"ws://{hp}/chat75?x=1".encode())
        check("sec-websocket-location" not in headers, "hixie-75 reply carries Sec-WebSocket-Location")
        echo_messages(conn)
    finally:
        conn.close()  # hixie-75 has no closing handshake: TCP close ends it


def hixie76(host, port, path, key1, key2, key3, answer, split_key3):
    hp = f"{host}:{port}"
    conn = Conn(host, port)
    try:
        head = request(path, hp, [f"Sec-WebSocket-Key1: {key1}", f"Sec-WebSocket-Key2: {key2}"])
        if split_key3:
            conn.send(head)
            time.sleep(0.2)
            conn.send(key3)
        else:
            conn.send(head + key3)
        status, headers = read_response_head(conn)
        check(status == b"HTTP/1.1 101 WebSocket Protocol Handshake", f"status line {status!r}")
        expect_header(headers, "Upgrade", b"WebSocket")
        expect_header(headers, "Connection", b"Upgrade")
        expect_header(headers, "Sec-WebSocket-Origin", f"http://{hp}".encode())
        expect_header(headers, "Sec-WebSocket-Location", f"ws://{hp}{path}".encode())
        check("sec-websocket-protocol" not in headers, "Sec-WebSocket-Protocol sent but none asked")
        got = conn.read_exact(16, "16-byte MD5 challenge answer")
        check(got == answer, f"challenge answer: expected {answer!r}, got {got!r}")
        echo_messages(conn)
        conn.send(b"\xff\x00")
        got = conn.read_exact(2, "closing handshake FF 00")
        check(got == b"\xff\x00", f"closing handshake: expected FF 00, got {got!r}")
        conn.expect_eof("after closing handshake")
    finally:
        conn.close()


def test_hixie76_draft_example(host, port):
    hixie76(host, port, "/demo", KEY1_A, KEY2_A, KEY3_A, ANSWER_A, split_key3=False)


def test_hixie76_key3_late(host, port):
    hixie76(host, port, "/late/key3", KEY1_B, KEY2_B, KEY3_B, ANSWER_B, split_key3=True)


TESTS = [test_hixie75, test_hixie76_draft_example, test_hixie76_key3_late]


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: hixie.py HOST PORT")
    host, port = sys.argv[1], int(sys.argv[2])
    failed = 0
    for t in TESTS:
        start = time.monotonic()
        try:
            t(host, port)
            print(f"ok   {t.__name__} ({time.monotonic() - start:.2f}s)")
        except CheckFailed as e:
            failed += 1
            print(f"FAIL {t.__name__}: {e}")
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}: unexpected error")
            traceback.print_exc(file=sys.stdout)
    print(f"hixie.py: {len(TESTS) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
