// The official socket.io-client (Node) against the conformance example server.
//
//   node --test tests/socketio/client.test.mjs
//
// Starts `conformance --listen 127.0.0.1:0` itself (binary from $CONFORMANCE_BIN, default
// target/release/conformance under the repository root), reads the "listening on ADDR" line and
// kills the server in the `after` hook. The same scenario runs over three transport setups:
// WebSocket only, polling only, and the default polling-then-upgrade (the upgrade is asserted).
// Every wait is bounded by withTimeout().

import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { WAIT_MS, clearTimers, next, sleep, withTimeout } from "../support/wait.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = path.resolve(ROOT, process.env.CONFORMANCE_BIN || "target/release/conformance");
const QUIET_MS = 300;

// ------------------------------------------------------------------ helpers


// Binary data as received: a Buffer (Node), an ArrayBuffer or another view. Anything else fails.
function bytesOf(value, what) {
    if (Buffer.isBuffer(value)) return value;
    if (value instanceof ArrayBuffer) return Buffer.from(value);
    if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    assert.fail(`${what}: expected binary data, got ${JSON.stringify(value)}`);
}

let server;
let baseUrl;
let serverLog = "";

async function startServer() {
    server = spawn(BIN, ["--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
    const onData = (chunk) => { serverLog += chunk.toString(); };
    server.stdout.on("data", onData);
    server.stderr.on("data", onData);
    const listening = new Promise((resolve, reject) => {
        const check = () => {
            const m = /listening on (\S+)/.exec(serverLog);
            if (m) resolve(m[1]);
        };
        server.stdout.on("data", check);
        server.stderr.on("data", check);
        server.once("error", reject);
        server.once("exit", (code, signal) =>
            reject(new Error(`conformance exited (${code ?? signal}) before listening:\n${serverLog}`)));
    });
    const addr = await withTimeout(listening, `"listening on" from ${BIN}`, 10000);
    baseUrl = `http://${addr}`;
}

// If this process is ended early (a SIGTERM from `timeout`, ^C), the server goes with it.
function killServerNow() {
    if (server && server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
}
process.on("exit", killServerNow);
for (const sig of ["SIGTERM", "SIGINT"]) {
    process.on(sig, () => {
        killServerNow();
        process.exit(128 + (sig === "SIGTERM" ? 15 : 2));
    });
}

async function stopServer() {
    if (!server || server.exitCode !== null || server.signalCode !== null) return;
    const exited = once(server, "exit");
    server.kill("SIGTERM");
    try {
        await withTimeout(exited, "conformance exit after SIGTERM", 2000);
    } catch {
        server.kill("SIGKILL");
        await withTimeout(once(server, "exit"), "conformance exit after SIGKILL", 2000).catch(() => {});
    }
}

const MODES = {
    websocket: { transports: ["websocket"] },
    polling: { transports: ["polling"] },
    upgrade: {}, // the client's default: polling first, then upgrade to WebSocket
};

const open = new Set();

// A new client (own Manager, own Engine.IO session) for namespace `nsp`; no reconnection so a
// failure surfaces at once. The `auth` event is collected from the moment the socket exists.
function client(mode, nsp = "/", extra = {}) {
    const socket = io(baseUrl + nsp, {
        forceNew: true,
        reconnection: false,
        timeout: WAIT_MS,
        ...MODES[mode],
        ...extra,
    });
    open.add(socket);
    socket.authEvent = next(socket, "auth");
    socket.authEvent.catch(() => {}); // not every test awaits it
    // The Engine.IO socket exists as soon as io() returns (autoConnect): catch its upgrade early.
    socket.upgraded = mode === "upgrade"
        ? next(socket.io.engine, "upgrade", WAIT_MS).then(([transport]) => transport)
        : null;
    socket.upgraded?.catch(() => {});
    return socket;
}

// Connects and, in "upgrade" mode, waits for the upgrade and asserts the transport changed.
async function connected(mode, nsp = "/", extra = {}) {
    const socket = client(mode, nsp, extra);
    const result = await withTimeout(new Promise((resolve, reject) => {
        socket.once("connect", () => resolve(socket));
        socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
    }), `connect to ${nsp} (${mode})`);
    if (mode === "upgrade") {
        const transport = await socket.upgraded;
        assert.equal(transport.name, "websocket");
        assert.equal(socket.io.engine.transport.name, "websocket");
    } else {
        assert.equal(socket.io.engine.transport.name, MODES[mode].transports[0]);
    }
    return result;
}

function closeAll() {
    for (const socket of open) socket.disconnect();
    open.clear();
    // The background `auth`/`upgrade` waits of sockets that never got them.
    clearTimers();
}

// ------------------------------------------------------------------ tests

before(startServer);
after(async () => {
    closeAll();
    await stopServer();
});

for (const mode of Object.keys(MODES)) {
    describe(`socket.io-client over ${mode}`, () => {
        after(closeAll);

        it("connects to / without auth and gets auth {}", async () => {
            const socket = await connected(mode);
            assert.ok(socket.connected);
            assert.equal(typeof socket.id, "string");
            assert.deepEqual(await socket.authEvent, [{}]);
        });

        it("connects to / with auth {token:'abc'} and gets it back", async () => {
            const socket = await connected(mode, "/", { auth: { token: "abc" } });
            assert.deepEqual(await socket.authEvent, [{ token: "abc" }]);
        });

        it("connects to /custom (with and without auth)", async () => {
            const plain = await connected(mode, "/custom");
            assert.deepEqual(await plain.authEvent, [{}]);
            const withAuth = await connected(mode, "/custom", { auth: { user: "u", n: [1, 2] } });
            assert.deepEqual(await withAuth.authEvent, [{ user: "u", n: [1, 2] }]);
        });

        it("message → message-back with the same arguments", async () => {
            const socket = await connected(mode);
            const args = [
                "text é ✓",
                42,
                -1.5,
                true,
                null,
                { a: { b: [1, "two", { c: null }] }, empty: {} },
                [[], [1, [2, [3]]]],
            ];
            const back = next(socket, "message-back");
            socket.emit("message", ...args);
            assert.deepEqual(await back, args);
        });

        it("emitWithAck message-with-ack → acked with the same arguments", async () => {
            const socket = await connected(mode);
            // emitWithAck resolves with the first ack argument only, so ask with one argument
            // and check the multi-argument case with a callback.
            const one = await withTimeout(socket.emitWithAck("message-with-ack", { x: [1, 2] }),
                "ack of message-with-ack");
            assert.deepEqual(one, { x: [1, 2] });
            const all = await withTimeout(new Promise((resolve) =>
                socket.emit("message-with-ack", 1, "2", { three: 3 }, (...got) => resolve(got))),
            "ack of message-with-ack (3 args)");
            assert.deepEqual(all, [1, "2", { three: 3 }]);
        });

        it("binary: top-level and nested, both ways, and through an ack", async () => {
            const socket = await connected(mode);
            const top = Buffer.from([0, 1, 2, 127, 128, 254, 255]);
            const nested = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
            const empty = Buffer.alloc(0);

            const back = next(socket, "message-back");
            socket.emit("message", top, { label: "n", data: { bytes: nested, list: [empty] } }, "tail");
            const [gotTop, gotObj, gotTail] = await back;
            assert.deepEqual(bytesOf(gotTop, "top-level"), top);
            assert.equal(gotObj.label, "n");
            assert.deepEqual(bytesOf(gotObj.data.bytes, "nested"), Buffer.from(nested));
            assert.deepEqual(bytesOf(gotObj.data.list[0], "nested empty"), empty);
            assert.equal(gotTail, "tail");

            const acked = await withTimeout(new Promise((resolve) =>
                socket.emit("message-with-ack", { bin: top }, nested, (...got) => resolve(got))),
            "binary ack");
            assert.equal(acked.length, 2);
            assert.deepEqual(bytesOf(acked[0].bin, "ack nested"), top);
            assert.deepEqual(bytesOf(acked[1], "ack top-level"), Buffer.from(nested));
        });

        it("server-ack: the server asks for an ack and reports it", async () => {
            const socket = await connected(mode);
            const asked = new Promise((resolve) => {
                socket.once("server-ack", (...args) => {
                    const cb = args.pop();
                    assert.equal(typeof cb, "function", "server-ack must ask for an ack");
                    cb("B-value", 2);
                    resolve(args);
                });
            });
            const result = next(socket, "server-ack-result");
            socket.emit("server-ack", "A", { n: 1 });
            assert.deepEqual(await withTimeout(asked, "server-ack from server"), ["A", { n: 1 }]);
            assert.deepEqual(await result, ["B-value", 2]);
        });

        it("unknown namespace /random → connect_error 'Invalid namespace'", async () => {
            const socket = client(mode, "/random");
            const [err] = await next(socket, "connect_error");
            assert.equal(err.message, "Invalid namespace");
            assert.equal(socket.connected, false);
        });

        it("client disconnect → 'io client disconnect'", async () => {
            const socket = await connected(mode);
            const gone = next(socket, "disconnect");
            socket.disconnect();
            const [reason] = await gone;
            assert.equal(reason, "io client disconnect");
            assert.equal(socket.connected, false);
        });

        it("rooms: others-in-room reaches the other member only", async () => {
            const [a, b, c] = await Promise.all([connected(mode), connected(mode), connected(mode)]);
            const got = { a: [], b: [], c: [] };
            a.on("room-message", (...x) => got.a.push(x));
            b.on("room-message", (...x) => got.b.push(x));
            c.on("room-message", (...x) => got.c.push(x));
            a.emit("join", "r1");
            b.emit("join", "r1");
            // `join` has no ack: a round trip on the same socket after it makes sure the server
            // has handled it (events of one socket are handled in order).
            await Promise.all([a, b].map((s) =>
                withTimeout(s.emitWithAck("message-with-ack", "sync"), "sync after join")));
            const arrived = next(b, "room-message");
            a.emit("others-in-room", "r1", "room-message", "hi");
            assert.deepEqual(await arrived, ["hi"]);
            await sleep(QUIET_MS);
            assert.deepEqual(got.a, [], "the sender must not get its own room message");
            assert.deepEqual(got.c, [], "a socket outside the room must not get it");
            assert.deepEqual(got.b, [["hi"]]);
        });
    });
}
