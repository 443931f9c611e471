// Writes tests/cluster/vectors.json: wire vectors of the Redis adapters for the Rust unit tests.
//
//   node tests/cluster/make-vectors.mjs            (about 15 s: it starts redis-server and a cluster)
//
// Each entry is { name, hex | text, json } and, for captured ones, { channel }:
//  - `hex`: the bytes notepack.io 3.0.1 (the adapter's own msgpack) makes of the value `json`;
//  - `text`: a message the Node adapter published as JSON text (requests and responses);
//  - `json`: the value in JSON form, binary written {"$bin": "<hex>"} (and a Date, decoded from
//    msgpack's timestamp extension -1, {"$date": "<ISO 8601>"}).
// Names "captured:<mode>:<what>[:<n>]" are messages taken live from Redis while two socket.io
// servers with @socket.io/redis-adapter 8.3.0 (and @socket.io/redis-emitter 5.1.0) did <what>:
// PSUBSCRIBE "*" (classic) or SSUBSCRIBE on every channel the sharded adapter uses, in buffer
// mode; no MONITOR. Their uids and request ids are random, so they change on every run.

import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { decode, encode } from "notepack.io";
import { createClient, createCluster } from "redis";
import { Server } from "socket.io";
import { io as connect } from "socket.io-client";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { startRedis, startRedisCluster } from "./support/redis.mjs";
import { sleep } from "../support/wait.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.join(HERE, "vectors.json");

// ------------------------------------------------------------------ JSON form

function isBinary(v) {
    return Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

function hexOf(v) {
    if (Buffer.isBuffer(v)) return v.toString("hex");
    if (v instanceof ArrayBuffer) return Buffer.from(v).toString("hex");
    return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex");
}

// The value as JSON can hold it: binary as {"$bin": hex}; object keys whose value is undefined
// left out (as notepack leaves them out); undefined elsewhere as null (notepack's nil).
function jsonForm(v) {
    if (v === undefined || v === null) return null;
    if (v instanceof Date) return { $date: v.toISOString() };
    if (isBinary(v)) return { $bin: hexOf(v) };
    if (Array.isArray(v)) return v.map(jsonForm);
    if (typeof v === "object") {
        const out = {};
        for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = jsonForm(x);
        return out;
    }
    if (typeof v === "number" && !Number.isFinite(v)) throw new Error(`no JSON form for ${v}`);
    return v;
}

// ------------------------------------------------------------------ encoded vectors

const vectors = [];

function add(name, value) {
    const bytes = encode(value);
    // What goes in must come back out (as JSON form), or the vector would lie.
    assert.deepStrictEqual(jsonForm(decode(bytes)), jsonForm(value), `${name}: decode(encode(v)) differs`);
    vectors.push({ name, hex: bytes.toString("hex"), json: jsonForm(value) });
}

// Text of `n` characters cycling through the lowercase alphabet.
const letters = (n) => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");

function encodedVectors() {
    add("broadcast io.emit(hello, world)",
        ["abc123", { type: 2, data: ["hello", "world"], nsp: "/" }, { rooms: [], except: [], flags: {} }]);
    add("broadcast to r1 except s1, volatile",
        ["abc123", { type: 2, data: ["hello", "world"], nsp: "/" }, { rooms: ["r1"], except: ["s1"], flags: { volatile: true } }]);
    add("broadcast with binary nested in an object",
        ["abc123", { type: 2, data: ["file", { name: "a.bin", content: Buffer.from([0, 1, 2, 0xfe, 0xff]) }], nsp: "/" },
            { rooms: [], except: [], flags: {} }]);
    add("broadcast to two rooms, compress false, in /chat",
        ["abc123", { type: 2, data: ["msg", 1, 2.5, null, true], nsp: "/chat" }, { rooms: ["a", "b"], except: [], flags: { compress: false } }]);
    add("emitter broadcast (uid \"emitter\", flags before except)",
        ["emitter", { type: 2, data: ["hello"], nsp: "/" }, { rooms: ["r1"], flags: {}, except: [] }]);

    for (const n of [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1,
        -1, -32, -33, -128, -129, -32768, -32769, -40000, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 33)]) {
        add(`int ${n}`, n);
    }
    for (const f of [1.5, -0.25, 0.1, Math.PI, 1e-300, 2.5e-8]) add(`float ${f}`, f);
    add("nil", null);
    add("true", true);
    add("false", false);
    for (const s of ["", "é", "😀", "héllo wörld 😀", "日本語"]) add(`string ${JSON.stringify(s)}`, s);
    for (const n of [31, 32, 255, 256, 65535, 65536]) add(`string of length ${n}`, letters(n));
    for (const n of [0, 1, 255, 256, 65536]) add(`binary of length ${n}`, Buffer.from(Array.from({ length: n }, (_, i) => i % 256)));
    for (const n of [0, 15, 16]) add(`array of length ${n}`, Array.from({ length: n }, (_, i) => i));
    add("array of length 65536 (zeros)", Array.from({ length: 65536 }, () => 0));
    for (const n of [0, 15, 16]) add(`map of size ${n}`, Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i])));
    add("nested: map in array in map", { a: [{ b: [1, { c: "d" }] }], e: {} });

    add("ack broadcast request (type 7)", {
        uid: "abc123",
        requestId: "req001",
        type: 7,
        packet: { type: 2, data: ["question", 1], nsp: "/" },
        opts: { rooms: ["r1"], except: ["s1"], flags: { timeout: 1000 } },
    });
    add("ack broadcast response (type 9)", { type: 9, requestId: "x", packet: ["answer"] });
    add("ack broadcast response (type 9) with a binary answer", { type: 9, requestId: "x", packet: { file: Buffer.from([1, 2, 3]) } });
}

// ------------------------------------------------------------------ captured vectors

// Records every message on Redis as { channel, raw } while `fn` runs (plus `quietMs`), then adds
// them as vectors named captured:<tag>:<kind of channel>[:n].
function makeRecorder(classify) {
    let current = null;
    return {
        onMessage(message, channel) {
            if (current) current.push({ channel: channel.toString(), raw: Buffer.from(message) });
        },
        async capture(tag, fn, quietMs = 400) {
            current = [];
            await fn();
            await sleep(quietMs);
            const got = current;
            current = null;
            const seen = new Map();
            for (const { channel, raw } of got) {
                const kind = classify(channel);
                const n = (seen.get(kind) ?? 0) + 1;
                seen.set(kind, n);
                const name = `captured:${tag}:${kind}${n > 1 ? `:${n}` : ""}`;
                const entry = { name, channel };
                if (raw[0] === 0x7b) {
                    entry.text = raw.toString("utf8");
                    entry.json = JSON.parse(entry.text);
                } else {
                    entry.hex = raw.toString("hex");
                    entry.json = jsonForm(decode(raw));
                }
                vectors.push(entry);
            }
            if (got.length === 0) throw new Error(`captured:${tag}: nothing was published`);
            return got;
        },
    };
}

async function listen(io, server) {
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${server.address().port}`;
}

async function client(url, auth) {
    const socket = connect(url, { transports: ["websocket"], forceNew: true, reconnection: false, auth });
    await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
    });
    return socket;
}

// Two servers A and B on the adapter `factory` makes, one client on each (in room1; B's also in
// room2), both answering "question" and the servers answering the server-side "ping".
async function twoServers(factoryA, factoryB) {
    const servers = [];
    for (const [name, factory] of [["A", factoryA], ["B", factoryB]]) {
        const httpServer = http.createServer();
        const io = new Server(httpServer, { adapter: factory });
        io.on("ping", (cb) => cb?.(`pong from ${name}`));
        io.on("connection", (socket) => {
            socket.join("room1");
            if (name === "B") socket.join("room2");
        });
        const url = await listen(io, httpServer);
        servers.push({ name, io, httpServer, url });
    }
    const clients = [];
    for (const s of servers) {
        const c = await client(s.url, { token: `t-${s.name}` });
        c.on("question", (cb) => cb(`answer from client of ${s.name}`));
        clients.push(c);
    }
    await sleep(300);
    return { servers, clients };
}

// When rooms disappear (a socket leaves, the servers close) the sharded adapter sends one
// SUNSUBSCRIBE per room without waiting, and node-redis 5's cluster client, when two of them
// empty the same shard's pub/sub client, destroys it twice: ClientClosedError, unhandled (it
// would end a plain Node app). That one is noted and let go; any other rejection ends the run.
process.on("unhandledRejection", (e) => {
    if (e?.constructor?.name === "ClientClosedError") {
        console.error("make-vectors: node-redis ClientClosedError after an SUNSUBSCRIBE (its known race), ignored");
        return;
    }
    console.error("make-vectors: unhandled rejection:", e);
    process.exit(1);
});

async function closeAll({ servers, clients }) {
    for (const c of clients) c.disconnect();
    await sleep(200);
    for (const s of servers) s.io.close();
    await sleep(300);
}

async function capturedClassic() {
    const redis = await startRedis({ label: "vectors-redis" });
    const opened = [];
    const redisClient = async () => {
        const c = createClient({ url: redis.url });
        c.on("error", () => {});
        await c.connect();
        opened.push(c);
        return c;
    };
    try {
        const classify = (ch) => (ch.includes("-request#") ? "request"
            : ch.includes("-response#") ? "response"
            : ch === "socket.io#/#" ? "broadcast" : "room-broadcast");
        const rec = makeRecorder(classify);
        const tap = await redisClient();
        await tap.pSubscribe("*", (message, channel) => rec.onMessage(message, channel), true);

        const pubA = await redisClient();
        const subA = await redisClient();
        const pubB = await redisClient();
        const subB = await redisClient();
        const fleet = await twoServers(createAdapter(pubA, subA), createAdapter(pubB, subB));
        const [A, B] = fleet.servers;

        await rec.capture("classic:io.emit(hello,world)", () => A.io.emit("hello", "world"));
        await rec.capture("classic:io.to(room1).emit(hello,1)", () => A.io.to("room1").emit("hello", 1));
        await rec.capture("classic:io.to(room1).to(room2).except(room3).emit", () =>
            A.io.to("room1").to("room2").except("room3").emit("multi", { a: [1, 2] }));
        await rec.capture("classic:io.volatile.compress(false).emit", () => A.io.volatile.compress(false).emit("v", 1));
        await rec.capture("classic:io.emit with binary", () => A.io.emit("bin", Buffer.from([1, 2, 3]), { nested: Buffer.from([255]) }));
        await rec.capture("classic:io.emit with a Date", () => A.io.emit("date", new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678))));
        await rec.capture("classic:fetchSockets(room1)", () => A.io.in("room1").fetchSockets());
        await rec.capture("classic:allRooms", () => A.io.of("/").adapter.allRooms());
        await rec.capture("classic:socketsJoin(room1 -> room3)", () => A.io.in("room1").socketsJoin("room3"));
        await rec.capture("classic:socketsLeave(room1 -> room3)", () => A.io.in("room1").socketsLeave("room3"));
        await rec.capture("classic:serverSideEmit(hello,world)", () => A.io.serverSideEmit("hello", "world"));
        await rec.capture("classic:serverSideEmitWithAck(ping)", () => A.io.serverSideEmitWithAck("ping"));
        await rec.capture("classic:timeout(1000).emitWithAck(question)", () => A.io.timeout(1000).emitWithAck("question"));
        await rec.capture("classic:socket.to(room1).emit (except the sender)", async () => {
            const socketA = [...A.io.of("/").sockets.values()][0];
            socketA.to("room1").emit("from-socket", "x");
        });

        const emitter = new Emitter(await redisClient());
        await rec.capture("classic:emitter.emit(hello,world)", () => emitter.emit("hello", "world"));
        await rec.capture("classic:emitter.to(room1).emit", () => emitter.to("room1").emit("hello", 1));
        await rec.capture("classic:emitter.serverSideEmit(hello)", () => emitter.serverSideEmit("hello", 1));
        await rec.capture("classic:emitter.in(room1).socketsJoin(room4)", () => emitter.in("room1").socketsJoin("room4"));
        await rec.capture("classic:emitter.in(room2).disconnectSockets(true)", () => emitter.in("room2").disconnectSockets(true));
        await rec.capture("classic:disconnectSockets(room1, close=false)", () => A.io.in("room1").disconnectSockets());
        await closeAll(fleet);
    } finally {
        for (const c of opened) await c.close().catch(() => {});
        await redis.cleanup();
    }
}

async function capturedSharded() {
    const cluster = await startRedisCluster({ label: "vectors-cluster" });
    const opened = [];
    const clusterClient = async () => {
        const c = createCluster({ rootNodes: [{ url: cluster.urls[0] }] });
        c.on("error", () => {});
        await c.connect();
        opened.push(c);
        return c;
    };
    try {
        let uids = [];
        const classify = (ch) => {
            if (ch === "socket.io#/#") return "main";
            const who = uids.findIndex((u) => ch === `socket.io#/#${u}#`);
            if (who >= 0) return `response-to-${"AB"[who]}`;
            return "room-channel";
        };
        const rec = makeRecorder(classify);
        const tap = await clusterClient();
        const listen_ = (message, channel) => rec.onMessage(message, channel);

        const pubA = await clusterClient();
        const subA = await clusterClient();
        const pubB = await clusterClient();
        const subB = await clusterClient();
        const fleet = await twoServers(createShardedAdapter(pubA, subA), createShardedAdapter(pubB, subB));
        const [A] = fleet.servers;
        uids = fleet.servers.map((s) => s.io.of("/").adapter.uid);
        for (const ch of ["socket.io#/#", ...uids.map((u) => `socket.io#/#${u}#`), "socket.io#/#room1#", "socket.io#/#room3#"]) {
            await tap.sSubscribe(ch, listen_, true);
        }
        await sleep(200);

        await rec.capture("sharded:io.emit(hello,world)", () => A.io.emit("hello", "world"));
        await rec.capture("sharded:io.to(room1).emit(hello,1)", () => A.io.to("room1").emit("hello", 1));
        await rec.capture("sharded:io.to(room1).to(room2).emit", () => A.io.to("room1").to("room2").emit("multi", 2));
        await rec.capture("sharded:io.emit with binary", () => A.io.emit("bin", Buffer.from([1, 2, 3])));
        // The tap's SSUBSCRIBE on socket.io#/# counts as one more server in PUBSUB SHARDNUMSUB,
        // so requests that wait for every server would time out: take the messages and do not
        // wait for the result (the bytes do not depend on the count).
        const noWait = (promise) => {
            promise.catch(() => {});
        };
        await rec.capture("sharded:fetchSockets(room1)", () => noWait(A.io.in("room1").fetchSockets()));
        await rec.capture("sharded:socketsJoin(room1 -> room3)", () => A.io.in("room1").socketsJoin("room3"));
        await rec.capture("sharded:socketsLeave(room1 -> room3)", () => A.io.in("room1").socketsLeave("room3"));
        await rec.capture("sharded:serverSideEmit(hello,world)", () => A.io.serverSideEmit("hello", "world"));
        await rec.capture("sharded:serverSideEmitWithAck(ping)", () => noWait(A.io.serverSideEmitWithAck("ping")));
        await rec.capture("sharded:timeout(1000).emitWithAck(question)", () => noWait(A.io.timeout(1000).emitWithAck("question")));
        await rec.capture("sharded:disconnectSockets(room2, close=true)", () => A.io.in("room2").disconnectSockets(true));
        await closeAll(fleet);
    } finally {
        for (const c of opened) await c.close().catch(() => {});
        await cluster.cleanup();
    }
}

encodedVectors();
await capturedClassic();
await capturedSharded();
fs.writeFileSync(OUT, `[\n${vectors.map((v) => JSON.stringify(v)).join(",\n")}\n]\n`);
console.log(`wrote ${vectors.length} vectors to ${path.relative(process.cwd(), OUT)}`);
process.exit(0);
