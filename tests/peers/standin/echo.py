#!/usr/bin/env python3
"""Stand-in echo server, used only to develop and self-check the peer tests.

It mimics the CLI of the project's `echo` binary:

    echo.py --listen 127.0.0.1:PORT [--tls-cert cert.pem --tls-key key.pem] [--proto rfc6455|hixie]

and prints `listening on ADDR` once bound. Unlike the real server it speaks only one family per
process: `rfc6455` (default, via the `websockets` library) or `hixie` (hixie-75 and hixie-76,
hand-written below). It is NOT a reference implementation; the real checks are the peers.
"""

import argparse
import asyncio
import hashlib
import ssl
import struct
import sys

MAX_MESSAGE = 16 * 1024 * 1024


# ------------------------------------------------------------------------------- RFC 6455
async def serve_rfc6455(host, port, ssl_ctx):
    from websockets.asyncio.server import serve
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    async def handler(ws):
        async for message in ws:
            await ws.send(message)

    def plain_get(connection, request):
        if "upgrade" not in request.headers.get("Connection", "").lower():
            return Response(200, "OK", Headers([("Content-Length", "3")]), b"ok\n")
        return None

    async with serve(handler, host, port, ssl=ssl_ctx, max_size=MAX_MESSAGE,
                     process_request=plain_get, compression=None):
        print(f"listening on {host}:{port}", flush=True)
        await asyncio.Future()


# ------------------------------------------------------------------------------- hixie
def key_part(key):
    digits = int("".join(c for c in key if c.isdigit()))
    spaces = key.count(" ")
    if spaces == 0 or digits % spaces:
        raise ValueError("bad key")
    return digits // spaces


async def hixie_conn(reader, writer, scheme):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1]
        hdr = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdr[k.strip().lower()] = v.strip()
        if "upgrade" not in hdr:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
            await writer.drain()
            return
        location = f"{scheme}://{hdr.get('host', '')}{target}"
        if "sec-websocket-key1" in hdr:
            key3 = await asyncio.wait_for(reader.readexactly(8), 10)
            challenge = struct.pack(">II", key_part(hdr["sec-websocket-key1"]),
                                    key_part(hdr["sec-websocket-key2"])) + key3
            resp = ("HTTP/1.1 101 WebSocket Protocol Handshake\r\n"
                    "Upgrade: WebSocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Origin: {hdr.get('origin', '')}\r\n"
                    f"Sec-WebSocket-Location: {location}\r\n")
            if "sec-websocket-protocol" in hdr:
                resp += f"Sec-WebSocket-Protocol: {hdr['sec-websocket-protocol']}\r\n"
            writer.write(resp.encode("latin-1") + b"\r\n" + hashlib.md5(challenge).digest())
        else:
            resp = ("HTTP/1.1 101 Web Socket Protocol Handshake\r\n"
                    "Upgrade: WebSocket\r\nConnection: Upgrade\r\n"
                    f"WebSocket-Origin: {hdr.get('origin', '')}\r\n"
                    f"WebSocket-Location: {location}\r\n\r\n")
            writer.write(resp.encode("latin-1"))
        await writer.drain()
        while True:
            t = (await reader.readexactly(1))[0]
            if t & 0x80:
                length = 0
                while True:
                    b = (await reader.readexactly(1))[0]
                    length = length * 128 + (b & 0x7F)
                    if not b & 0x80:
                        break
                if t == 0xFF and length == 0:
                    writer.write(b"\xff\x00")
                    await writer.drain()
                    return
                await reader.readexactly(length)
            else:
                data = (await reader.readuntil(b"\xff"))[:-1]
                if t == 0x00:
                    text = data.decode("utf-8", errors="replace")
                    writer.write(b"\x00" + text.encode("utf-8") + b"\xff")
                    await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve_hixie(host, port, ssl_ctx):
    scheme = "wss" if ssl_ctx else "ws"
    server = await asyncio.start_server(lambda r, w: hixie_conn(r, w, scheme), host, port,
                                        ssl=ssl_ctx, limit=MAX_MESSAGE + 2)
    print(f"listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--proto", choices=["rfc6455", "hixie"], default="rfc6455")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    ssl_ctx = None
    if a.tls_cert:
        ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_ctx.load_cert_chain(a.tls_cert, a.tls_key)
    serve = serve_rfc6455 if a.proto == "rfc6455" else serve_hixie
    try:
        asyncio.run(serve(host, int(port), ssl_ctx))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
