// Faults under a fleet on Redis: a redis-server restart, a node killed with SIGKILL, and garbage
// published onto the adapter's channels. Every node must go on serving.
//
//   FAULT_FLEET=rust,rust MODES=classic,sharded node --test --test-reporter=spec tests/cluster/faults.test.mjs
//
// FAULT_FLEET  node kinds (default rust,rust; see fleet.test.mjs). The kill test needs three
//              nodes: it takes the kinds in turn from this list until it has three.
// MODES        classic and/or sharded (default both). The restart test runs in classic mode
//              only (one redis-server to stop and start; restarting a cluster master is another
//              matter).
//
// A `node` node here is node-server.mjs, which guards the shipped @socket.io/redis-adapter 8.3.0
// (see its header). What the shipped adapter does alone (node-server.mjs --unguarded, node-redis
// 5.10, measured one payload at a time):
//  - (c) classic: ANY payload on `socket.io#/#` or on the channel of a room the node has
//    (`socket.io#/#room#`) that is not a well-formed broadcast (empty, garbage, truncated,
//    `[1,2,3]`, nil, a map, JSON, 5 MB of 0xc1) throws out of the subscriber's message callback;
//    node-redis catches it, resets its RESP decoder (dropping the rest of the chunk) and emits
//    'error' (the adapter's listener prints "missing 'error' handler"): the process lives on but
//    its subscriber connection is out of step and hears neither broadcasts nor requests any
//    more. On `socket.io-request#/#`, msgpack nil, `{"type":5}` without opts and
//    `{"type":6,"data":"x"}` reject inside the async onrequest(): an unhandled rejection, the
//    process exits. On `socket.io-response#/#`, msgpack nil does the same.
//  - (c) sharded: decoding is inside try/catch, but msgpack nil, `{"uid":"x","nsp":"/","type":3}`
//    (no data) and `{"uid":"x","nsp":"/","type":9,"data":{"packet":"x"}}` throw in
//    ClusterAdapter.onMessage(): the subscriber goes deaf as above.
//  - (a) and (b) pass: node-redis queues commands while it reconnects, so nothing rejects during
//    a short outage. (The unguarded node may still die at SIGTERM: node-redis's cluster client
//    throws ClientClosedError from an SUNSUBSCRIBE that lands after close().)
// So `FAULT_FLEET=node,...` passes only with the guards, and (c) fails with --unguarded.
// node-server.mjs --unguarded runs the shipped adapter as it is, to see these for yourself.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient, createCluster } from "redis";
import { encode } from "notepack.io";
import { clearTimers, sleep } from "../support/wait.mjs";
import { startRedis, startRedisCluster } from "./support/redis.mjs";
import {
    alive, arrivalsOf, call, callWithin, closeClients, connectClient, eventually, expectDelivery,
    expectedSockets, killNode, parseKinds, parseModes, startNode, stopNode,
} from "./support/fleet.mjs";

const KINDS = parseKinds(process.env.FAULT_FLEET, "rust,rust");
const MODES = parseModes(process.env.MODES);
const RECOVERY_MS = 20000;

let seq = 0;
const fresh = (what) => `${what}-${++seq}`;

// Kinds for `count` nodes, taken in turn from KINDS.
const kindsFor = (count) => Array.from({ length: Math.max(count, KINDS.length) }, (_, i) => KINDS[i % KINDS.length]);

// Redis (one server or a cluster), `kinds.length` nodes on it and one WebSocket client per node.
async function setUp(mode, kinds, tag) {
    const sharded = mode === "sharded";
    const ctx = { sharded, nodes: [], clients: [], extra: [] };
    ctx.redis = sharded ? await startRedisCluster({ label: `${tag}-cluster` }) : await startRedis({ label: `${tag}-redis` });
    for (let i = 0; i < kinds.length; i++) {
        ctx.nodes.push(await startNode(kinds[i], {
            name: `${kinds[i]}${i}`,
            redis: sharded ? ctx.redis.urls[i % 3] : ctx.redis.url,
            sharded,
            logTag: `faults-${tag}-${mode}-`,
        }));
    }
    for (const node of ctx.nodes) ctx.clients.push(await connectClient(node, "websocket"));
    await sleep(300);
    return ctx;
}

async function tearDown(ctx) {
    if (!ctx) return;
    closeClients();
    await Promise.allSettled(ctx.nodes.map((n) => stopNode(n)));
    await ctx.redis?.cleanup();
}

async function joinAll(ctx, room, clients) {
    for (const c of clients) {
        assert.equal(await call(c, "join", room), "ok");
        c.rooms.add(room);
    }
    await sleep(ctx.sharded ? 150 : 0);
}

// Whether a to-room from `from` reaches `to` within `ms` (a fresh event each time).
async function reaches(from, to, room, ms = 600) {
    const event = fresh("probe");
    await callWithin(3000, from, "to-room", room, event, "probe");
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (arrivalsOf(to, event).length > 0) return true;
        await sleep(20);
    }
    return false;
}

function assertAllUp(ctx, nodes = ctx.nodes) {
    for (const n of nodes) {
        assert.ok(alive(n), `${n.name} exited (${n.exit}); its log: ${n.logPath}\n${n.log.slice(-3000)}`);
        assert.ok(!/UNHANDLED/.test(n.log), `${n.name} logged an UNHANDLED error; its log: ${n.logPath}`);
    }
}

// Each node takes a new client, and a broadcast from each node reaches every other node once.
async function assertServing(ctx, nodes = ctx.nodes) {
    const fresh_ = [];
    for (const node of nodes) fresh_.push(await connectClient(node, "websocket", `${node.name}/new`));
    const room = fresh("after");
    await joinAll(ctx, room, fresh_);
    for (let i = 0; i < fresh_.length; i++) {
        const event = fresh("serving");
        assert.equal(await call(fresh_[i], "to-room", room, event, "still here", i), "ok");
        await expectDelivery(fresh_, fresh_, event, ["still here", i]);
    }
    for (const c of fresh_) c.disconnect();
}

for (const mode of MODES) {
    describe(`faults, ${mode}`, () => {
        if (mode === "classic") {
            describe(`(a) redis-server restart under ${kindsFor(2).join(",")}`, () => {
                let ctx;
                before(async () => {
                    ctx = await setUp(mode, kindsFor(2), "restart");
                }, { timeout: 60000 });
                after(() => tearDown(ctx));

                it("local delivery goes on during the outage and cross-node broadcasts resume after it", async (t) => {
                    const { clients, nodes, redis } = ctx;
                    // A second client per node, so that local delivery has a receiver besides the sender.
                    const locals = [];
                    for (const node of nodes) locals.push(await connectClient(node, "polling", `${node.name}/local`));
                    const room = fresh("r");
                    await joinAll(ctx, room, [...clients, ...locals]);
                    for (let i = 0; i < clients.length; i++) {
                        for (let j = 0; j < clients.length; j++) {
                            if (i !== j) assert.ok(await reaches(clients[i], clients[j], room, 2000), `before the outage: ${nodes[i].name} -> ${nodes[j].name}`);
                        }
                    }

                    await redis.stop();
                    t.diagnostic(`redis-server on port ${redis.port} stopped`);
                    await sleep(500);
                    for (let i = 0; i < clients.length; i++) {
                        const event = fresh("outage");
                        assert.equal(await callWithin(3000, clients[i], "to-room", room, event, "local"), "ok",
                            `${nodes[i].name} must still ack to-room while Redis is down`);
                        await expectDelivery([clients[i], locals[i]], [clients[i], locals[i]], event, ["local"], { quietMs: 100 });
                    }
                    // A new client can still connect to every node.
                    for (const node of nodes) (await connectClient(node, "websocket", `${node.name}/during`)).disconnect();
                    assertAllUp(ctx);

                    await redis.start();
                    const back = Date.now();
                    t.diagnostic(`redis-server on port ${redis.port} started again`);
                    for (let i = 0; i < clients.length; i++) {
                        for (let j = 0; j < clients.length; j++) {
                            if (i === j) continue;
                            let ok = false;
                            while (!ok && Date.now() - back < RECOVERY_MS) ok = await reaches(clients[i], clients[j], room);
                            assert.ok(ok, `${nodes[i].name} -> ${nodes[j].name}: no broadcast came through within ${RECOVERY_MS} ms after Redis was back`);
                        }
                    }
                    t.diagnostic(`cross-node broadcasts resumed ${Date.now() - back} ms after Redis was back`);
                    // Requests work again too (every node subscribed again to its request channel).
                    const all = [...clients, ...locals];
                    for (const c of clients) {
                        await eventually(`fetch-sockets(${room}) from ${c.label} after the restart`,
                            () => call(c, "fetch-sockets", room), expectedSockets(all), RECOVERY_MS, 500);
                    }
                    // And no broadcast arrives twice from here on.
                    const event = fresh("after-restart");
                    assert.equal(await call(clients[0], "to-room", room, event, "once"), "ok");
                    await expectDelivery(all, all, event, ["once"]);
                    assertAllUp(ctx);
                });
            });
        }

        describe(`(b) kill -9 one of three nodes ${kindsFor(3).slice(0, 3).join(",")}`, () => {
            let ctx;
            before(async () => {
                ctx = await setUp(mode, kindsFor(3).slice(0, 3), "kill");
            }, { timeout: 60000 });
            after(() => tearDown(ctx));

            it("fetch-sockets from a survivor returns the survivors' sockets within the timeout", async (t) => {
                const { clients, nodes } = ctx;
                const room = fresh("k");
                await joinAll(ctx, room, clients);
                assert.deepEqual(await call(clients[0], "fetch-sockets", room), expectedSockets(clients));

                await killNode(nodes[2]);
                const survivors = clients.slice(0, 2);
                for (const c of survivors) {
                    const start = Date.now();
                    const answer = await callWithin(9000, c, "fetch-sockets", room);
                    const took = Date.now() - start;
                    t.diagnostic(`fetch-sockets from ${c.label} after the kill: ${took} ms`);
                    assert.ok(took <= 7000, `fetch-sockets from ${c.label} took ${took} ms`);
                    assert.deepEqual(answer, expectedSockets(survivors));
                }
                const start = Date.now();
                assert.deepEqual(await callWithin(9000, clients[0], "server-side-emit"), [nodes[1].name]);
                t.diagnostic(`server-side-emit from ${clients[0].label} after the kill: ${Date.now() - start} ms`);
                assertAllUp(ctx, nodes.slice(0, 2));
                await assertServing(ctx, nodes.slice(0, 2));
            });
        });

        describe(`(c) garbage on the adapter's channels under ${kindsFor(2).join(",")}`, () => {
            let ctx;
            let publisher;
            before(async () => {
                ctx = await setUp(mode, kindsFor(2), "garbage");
                if (ctx.sharded) {
                    publisher = createCluster({ rootNodes: [{ url: ctx.redis.urls[0] }] });
                } else {
                    publisher = createClient({ url: ctx.redis.url });
                }
                publisher.on("error", () => {});
                await publisher.connect();
            }, { timeout: 60000 });
            after(async () => {
                await publisher?.close().catch(() => {});
                await tearDown(ctx);
            });

            // Payloads that no adapter should act on. Each is published onto every channel.
            const BIG = 5 * 1024 * 1024;
            const valid = encode(["abcdef", { type: 2, data: ["garbage-event", "x"], nsp: "/" }, { rooms: [], except: [], flags: {} }]);
            const payloads = [
                ["empty", Buffer.alloc(0)],
                ["garbage bytes", Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37, 0xde, 0xad])],
                ["truncated msgpack", valid.subarray(0, Math.floor(valid.length / 2))],
                ["msgpack [1,2,3]", encode([1, 2, 3])],
                ["msgpack nil", encode(null)],
                ["msgpack 42", encode(42)],
                ["msgpack map with a string type", encode({ type: "2", requestId: "x", uid: "x", nsp: "/" })],
                ["msgpack [uid, 1, 2]", encode(["abcdef", 1, 2])],
                ["msgpack [uid, {type:2}, null]", encode(["abcdef", { type: 2, nsp: "/" }, null])],
                ["invalid JSON", Buffer.from("{not json at all")],
                ["JSON null", Buffer.from("null")],
                ["JSON {}", Buffer.from("{}")],
                ["JSON type 5 without opts", Buffer.from(JSON.stringify({ uid: "x", requestId: "r1", type: 5 }))],
                ["JSON type 6 with a string data", Buffer.from(JSON.stringify({ uid: "x", requestId: "r2", type: 6, data: "x" }))],
                ["JSON type 2 with opts null", Buffer.from(JSON.stringify({ uid: "x", type: 2, opts: null, rooms: 7 }))],
                ["JSON sharded broadcast without data", Buffer.from(JSON.stringify({ uid: "x", nsp: "/", type: 3 }))],
                ["JSON sharded fetch with a string opts", Buffer.from(JSON.stringify({ uid: "x", nsp: "/", type: 7, data: { opts: "x", requestId: "r3" } }))],
                ["JSON response with a string requestId of no request", Buffer.from(JSON.stringify({ requestId: "nobody", rooms: 5, sockets: "x" }))],
                ["5 MB of 0xc1", Buffer.alloc(BIG, 0xc1)],
                ["5 MB JSON of an unknown type", Buffer.from(JSON.stringify({ uid: "x", nsp: "/", type: 99, pad: "a".repeat(BIG) }))],
                ["5 MB truncated msgpack str32", Buffer.concat([Buffer.from([0x93, 0xa6]), Buffer.from("abcdef"), Buffer.from([0xdb, 0x7f, 0xff, 0xff, 0xff]), Buffer.alloc(BIG, 0x61)])],
            ];

            it("every node still serves after garbage on every channel", async (t) => {
                const { clients, sharded } = ctx;
                // The literal room "room" exists on every node, so its channel's messages get decoded.
                await joinAll(ctx, "room", clients);
                const channels = sharded
                    ? ["socket.io#/#", "socket.io#/#room#"]
                    : ["socket.io#/#", "socket.io-request#/#", "socket.io-response#/#", "socket.io#/#room#"];
                const before_ = clients.map((c) => c.arrivals.length);
                let receivers = 0;
                for (const channel of channels) {
                    for (const [, payload] of payloads) {
                        receivers += Number(sharded ? await publisher.sPublish(channel, payload) : await publisher.publish(channel, payload));
                    }
                }
                t.diagnostic(`${channels.length * payloads.length} messages published on ${channels.join(", ")} (${receivers} deliveries)`);
                assert.ok(receivers > 0, "nobody was subscribed to the channels that got garbage");
                await sleep(1000);
                assertAllUp(ctx);
                clients.forEach((c, i) => {
                    const got = c.arrivals.slice(before_[i]).map((a) => a.event);
                    assert.deepEqual(got, [], `${c.label} got events from garbage`);
                    assert.ok(c.connected, `${c.label} was disconnected`);
                });
                await assertServing(ctx);
                // Requests still work: every node answers fetch-sockets.
                for (const c of clients) {
                    assert.deepEqual(await call(c, "fetch-sockets", "room"), expectedSockets(clients));
                }
                assertAllUp(ctx);
            });
        });
    });
}

after(() => clearTimers());
