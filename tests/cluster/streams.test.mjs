// Connection state recovery across nodes on the Redis Streams adapter: two of our conformance
// nodes (--redis-streams) and one Node socket.io node with @socket.io/redis-streams-adapter 0.3
// on one redis-server. A client drops on one node and recovers on another, in every direction;
// then a randomized run: clients in a room (on every node), a producer, transports killed at
// random, each client reconnecting to a random node of ours, and every client ends with every
// event exactly once, in order.
//
// Why the randomized run recovers on our nodes only: @socket.io/redis-streams-adapter 0.3.1 reads
// the missed entries with XRANGE until it finds none, and only then does socket.io put the socket
// back in its rooms, while its stream reader goes on delivering. An event added in that window
// reaches neither the replay nor the socket (CI saw a client recovered on the Node node miss one
// such event). Ours pauses its reader during a restore. The directional tests above recover on the
// Node node too, with no event in flight during the restore.
//
//   CONFORMANCE_BIN=target/release/conformance node --test tests/cluster/streams.test.mjs
//   STREAMS_FLEET=rust,rust,node (default)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { io } from "socket.io-client";
import { startRedis } from "./support/redis.mjs";
import { track, killAll } from "./support/procs.mjs";
import { CLUSTER_DIR, LOG_DIR, RUST_BIN, parseKinds } from "./support/fleet.mjs";
import { sleep, withTimeout } from "../support/wait.mjs";

const RECOVERY_MS = 10_000;
const kinds = parseKinds(process.env.STREAMS_FLEET, "rust,rust,node");
let redis;
const nodes = [];
const clients = new Set();

async function start(kind, name, url) {
    const args = ["--listen", "127.0.0.1:0", "--node", name, "--recovery-ms", String(RECOVERY_MS)];
    const [cmd, argv] = kind === "rust"
        ? [RUST_BIN, [...args, "--redis-streams", url]]
        : [process.execPath, [path.join(CLUSTER_DIR, "streams-node.mjs"), ...args, "--redis", url]];
    fs.mkdirSync(LOG_DIR, { recursive: true });
    const logFile = fs.createWriteStream(path.join(LOG_DIR, `streams-${name}.log`));
    const proc = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"], cwd: CLUSTER_DIR });
    track(proc, name);
    let out = "";
    const keep = (chunk) => { out += chunk; logFile.write(chunk); };
    proc.stdout.on("data", keep);
    proc.stderr.on("data", keep);
    const addr = await withTimeout(new Promise((ok, fail) => {
        const check = () => { const m = /listening on (\S+)/.exec(out); if (m) ok(m[1]); };
        proc.stdout.on("data", check);
        proc.once("exit", (code) => fail(new Error(`${name} exited (${code}):\n${out}`)));
    }), `${name} listening`, 15_000);
    return { kind, name, proc, url: `http://${addr}`, log: () => out };
}

before(async () => {
    redis = await startRedis({ label: "streams" });
    const url = `redis://127.0.0.1:${redis.port}`;
    for (const [i, kind] of kinds.entries()) nodes.push(await start(kind, `${kind}${i}`, url));
    // Let every reader start on the stream before anything is written.
    await sleep(300);
});

after(async () => {
    for (const c of clients) c.close();
    for (const n of nodes) n.proc.kill("SIGTERM");
    await sleep(300);
    // Whatever has not exited by now is still tracked: killAll ends it (SIGKILL).
    killAll();
    await redis?.cleanup();
});

/**
 * Polls `cond` every 20 ms until it holds; rejects with `label` after `ms`. The polling stops
 * then too, so a failed wait keeps nothing running that would hold the test process open.
 */
async function until(cond, label, ms) {
    const end = Date.now() + ms;
    while (!cond()) {
        if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${label}`);
        await sleep(20);
    }
}

/** A client on `node` that can be moved: its Manager's URL is changed before it reconnects. */
async function client(node, label) {
    const socket = io(node.url, { transports: ["websocket"], forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 200 });
    clients.add(socket);
    socket.label = label;
    socket.got = [];
    socket.on("n", (n) => socket.got.push(n));
    await withTimeout(new Promise((ok) => socket.once("connect", ok)), `${label} connects to ${node.name}`, 5000);
    return socket;
}

const ask = (socket, event, ...args) => withTimeout(socket.emitWithAck(event, ...args), `${socket.label}: ${event}`, 5000);

/** Cuts the client's transport without a close, and lets it reconnect to `node`. */
async function cut(socket, node) {
    socket.io.uri = node.url;
    const back = new Promise((ok) => socket.once("connect", ok));
    socket.io.engine.transport.ws._socket.destroy();
    return back;
}

for (const from of [0, 1, 2]) {
    for (const to of [0, 1, 2]) {
        if (from === to || from >= kinds.length || to >= kinds.length) continue;
        test(`drop on node ${from}, recover on node ${to}: same socket, each missed event once, in order`, async () => {
            const [a, b] = [nodes[from], nodes[to]];
            const c = await client(a, `c${from}${to}`);
            const producer = await client(nodes[(to + 1) % nodes.length], `p${from}${to}`);
            const room = `room-${from}-${to}`;
            assert.equal(await ask(c, "join", room), "ok");
            assert.equal(await ask(producer, "to-room", room, "n", 0), "ok");
            await until(() => c.got.includes(0), "first event", 5000);
            const id = c.id;
            const back = cut(c, b);
            await sleep(100);
            assert.equal(await ask(producer, "to-room", room, "n", 1), "ok");
            assert.equal(await ask(producer, "to-room", id, "n", 2), "ok");
            assert.equal(await ask(producer, "to-room", "elsewhere", "n", 99), "ok");
            await withTimeout(back, "reconnected", 8000);
            assert.equal(c.recovered, true, "recovered");
            assert.equal(c.id, id, "same id");
            assert.equal(await ask(c, "whoami"), b.name, "on the other node");
            const state = await ask(c, "my-state");
            assert.deepEqual(state.rooms, [id, room].sort());
            assert.equal(state.recovered, true);
            assert.equal(await ask(producer, "to-room", room, "n", 3), "ok");
            await until(() => c.got.includes(3), "live again", 5000);
            await sleep(200);
            assert.deepEqual(c.got, [0, 1, 2, 3]);
            c.close();
            producer.close();
        });
    }
}

test("randomized: transports killed at random, every client gets every event once, in order", async () => {
    const N = 6, EVENTS = 120;
    const room = "random-room";
    const members = [];
    for (let i = 0; i < N; i++) {
        const c = await client(nodes[i % nodes.length], `m${i}`);
        assert.equal(await ask(c, "join", room), "ok");
        members.push(c);
    }
    const producer = await client(nodes[0], "producer");
    const ours = nodes.filter((n) => n.kind === "rust");
    let seed = 12345;
    const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const cuts = [];
    for (let n = 0; n < EVENTS; n++) {
        assert.equal(await ask(producer, "to-room", room, "n", n), "ok");
        if (n % 10 === 5) {
            const victim = members[rand(N)];
            if (victim.connected) {
                victim.cuts = (victim.cuts ?? 0) + 1;
                cuts.push(cut(victim, ours[rand(ours.length)]));
            }
        }
        await sleep(10);
    }
    assert.ok(cuts.length >= 5, `transports were cut (${cuts.length})`);
    await withTimeout(Promise.all(cuts), "every cut client back", 15_000);
    const all = Array.from({ length: EVENTS }, (_, i) => i);
    // Whatever arrived by then is compared below; a missing event fails there, with the list.
    await until(() => members.every((m) => m.got.length >= EVENTS), "every event everywhere", 15_000)
        .catch(() => {});
    await sleep(300);
    for (const m of members) {
        if (m.cuts) assert.equal(m.recovered, true, `${m.label} was recovered after its last cut`);
        assert.deepEqual(m.got, all, `${m.label} (${m.id}) got every event once, in order`);
    }
    for (const n of nodes) assert.equal(n.proc.exitCode, null, `${n.name} still up`);
});
