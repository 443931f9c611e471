// Our client (client.js) and the official socket.io-client, the same scenario each, against the
// conformance example server, over WebSocket only, polling only, and polling then upgrade.
//
//   node --experimental-websocket --test test/client.test.mjs      (from js-client/)
//
// Node 20 has a global WebSocket only with --experimental-websocket: our client uses it (its
// default is globalThis.WebSocket; the `WebSocket` option injects another constructor). The
// official client brings the `ws` package. Every wait is bounded (server.mjs withTimeout).

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import * as ours from "../client.js";
import * as official from "socket.io-client";
import * as server from "./server.mjs";
import { next, sleep, withTimeout, WAIT_MS } from "./server.mjs";

const CLIENTS = { ours, official };
const MODES = {
    websocket: { transports: ["websocket"] },
    polling: { transports: ["polling"] },
    upgrade: {}, // the default: polling first, then upgrade to WebSocket
};

// Binary data as received: ArrayBuffer (ours), Buffer (official in Node) or another view.
function bytesOf(value, what) {
    if (value instanceof ArrayBuffer) return Buffer.from(value);
    if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    assert.fail(`${what}: expected binary data, got ${JSON.stringify(value)}`);
}

before(() => server.start());
after(() => server.stop());

for (const [clientName, lib] of Object.entries(CLIENTS)) {
    for (const [mode, transports] of Object.entries(MODES)) {
        describe(`${clientName} client over ${mode}`, () => {
            const open = new Set();
            after(() => {
                for (const s of open) s.disconnect();
                open.clear();
            });

            // A socket on a Manager of its own; no reconnection unless asked, so failures show at once.
            function client(nsp = "/", extra = {}) {
                const socket = lib.io(server.baseUrl + nsp, {
                    forceNew: true,
                    reconnection: false,
                    timeout: WAIT_MS,
                    ...transports,
                    ...extra,
                });
                track(socket);
                return socket;
            }
            function track(socket) {
                open.add(socket);
                socket.authEvent = next(socket, "auth");
                socket.authEvent.catch(() => {}); // not every test awaits it
                // The engine exists as soon as io() returns (autoConnect): catch its upgrade early.
                const engine = socket.io.engine;
                socket.upgraded = mode !== "upgrade" || !engine ? null
                    : engine.transport?.name === "websocket" ? Promise.resolve(engine.transport) // already upgraded
                    : next(engine, "upgrade").then(([t]) => t);
                socket.upgraded?.catch(() => {});
                return socket;
            }
            async function connected(socket) {
                await withTimeout(new Promise((resolve, reject) => {
                    if (socket.connected) return resolve();
                    socket.once("connect", resolve);
                    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
                }), `connect to ${socket.nsp} (${mode})`);
                if (mode === "upgrade") {
                    const transport = await socket.upgraded;
                    assert.equal(transport.name, "websocket");
                    assert.equal(socket.io.engine.transport.name, "websocket");
                } else {
                    assert.equal(socket.io.engine.transport.name, transports.transports[0]);
                }
                return socket;
            }
            const connect = (nsp, extra) => connected(client(nsp, extra));

            it("connects with auth as an object and as a callback", async () => {
                const plain = await connect();
                assert.ok(plain.connected && !plain.disconnected && plain.active);
                assert.equal(typeof plain.id, "string");
                assert.deepEqual(await plain.authEvent, [{}]);
                const obj = await connect("/", { auth: { token: "abc" } });
                assert.deepEqual(await obj.authEvent, [{ token: "abc" }]);
                const cb = await connect("/custom", { auth: (send) => send({ user: "u", n: [1, 2] }) });
                assert.deepEqual(await cb.authEvent, [{ user: "u", n: [1, 2] }]);
            });

            it("multiplexes / and /custom over one Manager and one Engine.IO session", async () => {
                const manager = new lib.Manager(server.baseUrl, { reconnection: false, ...transports });
                const a = track(manager.socket("/", { auth: { who: "a" } }));
                const b = track(manager.socket("/custom", { auth: { who: "b" } }));
                await connected(a);
                await connected(b);
                assert.equal(a.io, b.io);
                assert.equal(a.io, manager);
                assert.equal(typeof manager.engine.id, "string");
                assert.deepEqual(await a.authEvent, [{ who: "a" }]);
                assert.deepEqual(await b.authEvent, [{ who: "b" }]);
                assert.notEqual(a.id, b.id);
                // Leaving one namespace keeps the other (and the session).
                b.disconnect();
                assert.equal(await withTimeout(a.emitWithAck("message-with-ack", 1), "ack on /"), 1);
                assert.ok(a.connected);
                const other = await connect();
                assert.notEqual(other.io.engine.id, manager.engine.id, "forceNew gives another session");
            });

            it("message → message-back with the same arguments", async () => {
                const socket = await connect();
                const args = ["text é ✓", 42, -1.5, true, null, { a: { b: [1, "two", { c: null }] }, empty: {} }, [[], [1, [2]]]];
                const back = next(socket, "message-back");
                socket.emit("message", ...args);
                assert.deepEqual(await back, args);
                const sent = next(socket, "message-back");
                socket.send("via send()");
                assert.deepEqual(await sent, ["via send()"]);
            });

            it("acks both ways: emitWithAck, callbacks, server-ack round trip", async () => {
                const socket = await connect();
                assert.deepEqual(await withTimeout(socket.emitWithAck("message-with-ack", { x: [1, 2] }), "emitWithAck"),
                    { x: [1, 2] });
                const all = await withTimeout(new Promise((resolve) =>
                    socket.emit("message-with-ack", 1, "2", { three: 3 }, (...got) => resolve(got))), "callback ack");
                assert.deepEqual(all, [1, "2", { three: 3 }]);

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

            it("timeouts: timeout(ms).emit, timeout(ms).emitWithAck, ackTimeout", async () => {
                const socket = await connect();
                const [err] = await withTimeout(new Promise((resolve) =>
                    socket.timeout(50).emit("no-such-event-acked", (...a) => resolve(a))), "timeout callback");
                assert.ok(err instanceof Error, "the callback gets an Error");
                await assert.rejects(withTimeout(socket.timeout(50).emitWithAck("no-such-event-acked"), "reject"),
                    (e) => e instanceof Error && !/timed out after/.test(e.message));
                // Answered in time: error-first callback with null, emitWithAck resolves.
                const ok = await withTimeout(new Promise((resolve) =>
                    socket.timeout(WAIT_MS).emit("message-with-ack", "v", (...a) => resolve(a))), "ack in time");
                assert.deepEqual(ok, [null, "v"]);
                assert.equal(await withTimeout(socket.timeout(WAIT_MS).emitWithAck("message-with-ack", 7), "ok"), 7);
                // ackTimeout: the default timeout of every emit with an ack.
                const timed = await connect("/", { ackTimeout: 50 });
                const got = await withTimeout(new Promise((resolve) =>
                    timed.emit("message-with-ack", 1, (...a) => resolve(a))), "ackTimeout answered");
                assert.deepEqual(got, [null, 1]);
                const [late] = await withTimeout(new Promise((resolve) =>
                    timed.emit("no-such-event-acked", (...a) => resolve(a))), "ackTimeout expired");
                assert.ok(late instanceof Error);
            });

            it("binary both ways: ArrayBuffer, typed arrays, DataView, Blob, nested, through acks", async () => {
                const socket = await connect();
                const top = new Uint8Array([0, 1, 2, 127, 128, 254, 255]);
                const nested = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
                const ab = new Uint8Array([9, 8, 7]).buffer;
                const view = new DataView(new Uint8Array([5, 6, 7, 8]).buffer, 1, 2);
                const back = next(socket, "message-back");
                socket.emit("message", top, { label: "n", data: { bytes: nested, list: [new ArrayBuffer(0), ab] } }, view, "tail");
                const [gotTop, gotObj, gotView, gotTail] = await back;
                assert.deepEqual(bytesOf(gotTop, "top-level"), Buffer.from(top));
                assert.equal(gotObj.label, "n");
                assert.deepEqual(bytesOf(gotObj.data.bytes, "nested"), Buffer.from(nested));
                assert.deepEqual(bytesOf(gotObj.data.list[0], "nested empty"), Buffer.alloc(0));
                assert.deepEqual(bytesOf(gotObj.data.list[1], "nested ArrayBuffer"), Buffer.from([9, 8, 7]));
                assert.deepEqual(bytesOf(gotView, "DataView"), Buffer.from([6, 7]));
                assert.equal(gotTail, "tail");
                if (clientName === "ours") {
                    assert.ok(gotTop instanceof ArrayBuffer, "ours gives ArrayBuffer");
                    const blobBack = next(socket, "message-back");
                    socket.emit("message", { blob: new Blob([new Uint8Array([1, 2, 3])]) });
                    const [{ blob }] = await blobBack;
                    assert.deepEqual(bytesOf(blob, "Blob"), Buffer.from([1, 2, 3]));
                }
                const acked = await withTimeout(new Promise((resolve) =>
                    socket.emit("message-with-ack", { bin: top }, nested, (...got) => resolve(got))), "binary ack");
                assert.equal(acked.length, 2);
                assert.deepEqual(bytesOf(acked[0].bin, "ack nested"), Buffer.from(top));
                assert.deepEqual(bytesOf(acked[1], "ack top-level"), Buffer.from(nested));
            });

            it("onAny / prependAny / offAny / onAnyOutgoing", async () => {
                const socket = await connect();
                // The server's `auth` event may come in a later poll than the CONNECT answer:
                // let it pass before listening to every event.
                await socket.authEvent;
                const seen = [];
                const any = (ev, ...args) => seen.push(["any", ev, ...args]);
                socket.onAny(any);
                socket.prependAny((ev) => seen.push(["first", ev]));
                const out = [];
                socket.onAnyOutgoing((ev, ...args) => out.push([ev, ...args]));
                const back = next(socket, "message-back");
                socket.emit("message", 1, "x");
                await back;
                assert.deepEqual(seen, [["first", "message-back"], ["any", "message-back", 1, "x"]]);
                assert.deepEqual(out, [["message", 1, "x"]]);
                assert.equal(socket.listenersAny().length, 2);
                socket.offAny(any);
                socket.offAny();
                assert.equal(socket.listenersAny().length, 0);
            });

            it("volatile emits are dropped while disconnected, others are buffered", async () => {
                const socket = client("/", { autoConnect: false });
                const got = [];
                socket.on("message-back", (...a) => got.push(a));
                socket.volatile.emit("message", "dropped");
                socket.emit("message", "kept");
                assert.equal(socket.active, false);
                socket.connect();
                if (transports.transports) await connected(socket);
                else await withTimeout(new Promise((r) => socket.once("connect", r)), "connect");
                await withTimeout(socket.emitWithAck("message-with-ack", "sync"), "sync");
                await sleep(100);
                assert.deepEqual(got, [["kept"]]);
            });

            it("unknown namespace /random → connect_error 'Invalid namespace'", async () => {
                const socket = client("/random");
                const [err] = await next(socket, "connect_error");
                assert.ok(err instanceof Error);
                assert.equal(err.message, "Invalid namespace");
                assert.equal(socket.connected, false);
                assert.equal(socket.active, false, "a refused namespace is not retried");
            });

            it("socket.disconnect() → 'io client disconnect'", async () => {
                const socket = await connect();
                const gone = next(socket, "disconnect");
                socket.disconnect();
                assert.deepEqual((await gone).slice(0, 1), ["io client disconnect"]);
                assert.equal(socket.connected, false);
                assert.equal(socket.active, false);
                assert.equal(socket.id, undefined);
            });

            it("the server disconnects the socket → 'io server disconnect', and no reconnection", async () => {
                // Reconnection on: a server disconnect must still not bring the socket back.
                const socket = await connected(client("/", { reconnection: true }));
                const room = `kick-${Math.random().toString(36).slice(2)}`;
                assert.equal(await socket.emitWithAck("join", room), "ok");
                const gone = next(socket, "disconnect");
                socket.emit("disconnect-room", room);
                assert.deepEqual((await gone).slice(0, 1), ["io server disconnect"]);
                assert.equal(socket.connected, false);
                assert.equal(socket.active, false, "not reconnecting");
            });

            it("reconnects by itself after a server restart; emits made meanwhile are delivered", async () => {
                const socket = await connect("/", {
                    reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 200, auth: { again: 1 },
                });
                const custom = track(socket.io.socket("/custom"));
                await connected(custom);
                const firstId = socket.id;
                const gone = next(socket, "disconnect", 5000);
                const port = server.port();
                await server.stop();
                const [reason] = await gone;
                assert.ok(["transport close", "transport error"].includes(reason), `reason ${reason}`);
                assert.ok(socket.active, "still active: it will reconnect");
                const back = [];
                socket.on("message-back", (...a) => back.push(a));
                socket.emit("message", "while down", 1);
                socket.emit("message", "while down", 2);
                const reconnected = next(socket.io, "reconnect", 8000);
                const customBack = next(custom, "connect", 8000);
                const authAgain = next(socket, "auth", 8000);
                await server.start(port);
                await reconnected;
                await customBack;
                assert.deepEqual(await authAgain, [{ again: 1 }]);
                assert.ok(socket.connected && custom.connected);
                assert.notEqual(socket.id, firstId);
                await withTimeout(socket.emitWithAck("message-with-ack", "sync"), "sync after reconnect");
                await sleep(50);
                assert.deepEqual(back, [["while down", 1], ["while down", 2]]);
            });

            it("the server handles one socket's events in the order they were sent", async () => {
                const socket = await connect();
                const back = [];
                socket.on("message-back", (n) => back.push(n));
                for (let i = 0; i < 20; i++) socket.emit("message", i);
                await withTimeout((async () => { while (back.length < 20) await sleep(10); })(), "20 message-back");
                assert.deepEqual(back, [...Array(20).keys()]);
            });

            it("detects a dead server: SIGSTOP → 'ping timeout' within 1.5 s", async () => {
                const socket = await connect();
                const gone = next(socket, "disconnect", 1500);
                const t0 = Date.now();
                server.signal("SIGSTOP");
                try {
                    const [reason] = await gone;
                    assert.equal(reason, "ping timeout");
                    assert.ok(Date.now() - t0 < 1500);
                } finally {
                    server.signal("SIGCONT");
                }
            });
        });
    }
}

describe("io() caching", () => {
    for (const [clientName, lib] of Object.entries(CLIENTS)) {
        it(`${clientName}: io(url) and io(url/custom) share one Manager; forceNew does not`, async () => {
            // The only test that lets io() cache Managers (the others use forceNew or a Manager).
            const url = server.baseUrl;
            const a = lib.io(url, { transports: ["websocket"], reconnection: false });
            const b = lib.io(url + "/custom", { transports: ["websocket"], reconnection: false });
            const c = lib.io(url, { transports: ["websocket"], reconnection: false });
            try {
                assert.equal(a.io, b.io);
                assert.notEqual(a.io, c.io, "a namespace already open on the cached Manager → a new one");
                await withTimeout(Promise.all([a, b].map((s) => s.connected || next(s, "connect"))), "connect");
                assert.equal(a.io.engine.id, b.io.engine.id);
            } finally {
                for (const s of [a, b, c]) s.disconnect();
            }
        });
    }
    it("ours: the server serves this client.js at /socket.io/client.js, and it works from there", async () => {
        const res = await withTimeout(fetch(`${server.baseUrl}/socket.io/client.js`), "GET client.js");
        assert.equal(res.status, 200);
        assert.match(res.headers.get("content-type"), /javascript/);
        const served = await res.text();
        const local = await readFile(new URL("../client.js", import.meta.url), "utf8");
        assert.equal(served, local, "the server binary holds another client.js: rebuild it");
        const lib = await import("data:text/javascript," + encodeURIComponent(served));
        const socket = lib.io(server.baseUrl, { forceNew: true, reconnection: false });
        try {
            await next(socket, "connect");
            assert.equal(await withTimeout(socket.emitWithAck("message-with-ack", "served"), "ack"), "served");
        } finally {
            socket.disconnect();
        }
    });
    it("ours: a probe WebSocket that fails while connecting ends the upgrade once; polling goes on", async () => {
        // As Node's WebSocket (undici) does: close() on a socket still connecting fires its error
        // event from inside close(), again on every call. The upgrade's probe fails that way.
        let made = 0;
        const WS = class {
            readyState = 0;
            constructor() {
                made++;
                setTimeout(() => this.onerror?.({}), 0);
            }
            close() {
                if (this.readyState == 0) this.onerror?.({});
            }
            send() {}
        };
        const socket = ours.io(server.baseUrl, { forceNew: true, reconnection: false, WebSocket: WS });
        try {
            await next(socket, "connect");
            for (let i = 0; !made && i < WAIT_MS / 10; i++) await sleep(10);
            assert.ok(made, "an upgrade was tried");
            await sleep(50);
            assert.equal(socket.connected, true);
            assert.equal(socket.io.engine.transport.name, "polling");
            assert.equal(await withTimeout(socket.emitWithAck("message-with-ack", 5), "ack over polling"), 5);
        } finally {
            socket.disconnect();
        }
    });
    it("ours: the WebSocket option injects the constructor", async () => {
        let made = 0;
        const WS = class extends globalThis.WebSocket {
            constructor(url) {
                super(url);
                made++;
            }
        };
        const socket = ours.io(server.baseUrl, { forceNew: true, reconnection: false, transports: ["websocket"], WebSocket: WS });
        try {
            await next(socket, "connect");
            assert.equal(made, 1);
        } finally {
            socket.disconnect();
        }
    });
});
