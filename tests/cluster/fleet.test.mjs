// A fleet of Socket.IO nodes on Redis, ours (Rust) and Node's, tested from every node against
// every other: room broadcasts, fetchSockets, socketsJoin/Leave, disconnectSockets,
// serverSideEmit, broadcasts with acks (binary answers too), allRooms and @socket.io/redis-emitter.
//
//   FLEET=rust,rust,node MODES=classic,sharded node --test --test-reporter=spec tests/cluster/fleet.test.mjs
//
// FLEET   the node kinds, in order (default rust,rust,node): `rust` is $CONFORMANCE_BIN
//         (default target/release/conformance), `node` is node-server.mjs (socket.io 4.8 with
//         @socket.io/redis-adapter 8.3.0).
// MODES   classic (one redis-server, PUBLISH/PSUBSCRIBE, default key "socket.io") and/or sharded
//         (a three-master Redis Cluster, SPUBLISH/SSUBSCRIBE, channel prefix "fleet-sharded").
//
// Every node connects one WebSocket and one polling client (official socket.io-client). Each
// client keeps a model of its rooms; fetch-sockets and all-rooms are compared with it exactly.
// Node logs and a MONITOR of every Redis port are in target/cluster-logs/.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";
import { clearTimers, sleep } from "../support/wait.mjs";
import { startRedis, startRedisCluster } from "./support/redis.mjs";
import { startWiretap } from "./support/wiretap.mjs";
import {
    alive, bytes, call, closeClients, connectClient, eventually, expectDelivery, expectedSockets,
    parseKinds, parseModes, startNode, stopNode,
} from "./support/fleet.mjs";

const KINDS = parseKinds(process.env.FLEET, "rust,rust,node");
const MODES = parseModes(process.env.MODES);
const NAMES = KINDS.map((kind, i) => `${kind}${i}`);
const N = KINDS.length;
const SHARDED_KEY = "fleet-sharded";

const sortedIds = (clients) => clients.map((c) => c.id).sort();

for (const mode of MODES) {
    describe(`${mode} fleet ${NAMES.join(",")}`, () => {
        const sharded = mode === "sharded";
        let redis; // one RedisServer (classic) or a cluster
        let tap;
        let emitterRedis;
        const nodes = [];
        const ws = []; // ws[i]: the WebSocket client of node i
        const poll = []; // poll[i]: the polling client of node i
        const everyone = () => [...ws, ...poll];
        let seq = 0;
        const fresh = (what) => `${mode}-${what}-${++seq}`;
        // Sharded "dynamic" mode subscribes a node to a room's channel when the room appears
        // there (SSUBSCRIBE, not awaited by join): give it a moment before publishing to it.
        const settle = () => sleep(sharded ? 150 : 0);

        async function joinAll(room, clients) {
            for (const c of clients) {
                assert.equal(await call(c, "join", room), "ok");
                c.rooms.add(room);
            }
            await settle();
        }

        before(async () => {
            redis = sharded ? await startRedisCluster({ label: "fleet-cluster" }) : await startRedis({ label: "fleet-redis" });
            const ports = sharded ? redis.ports : [redis.port];
            tap = startWiretap(ports, `fleet-${mode}-`);
            const url = sharded ? redis.urls[0] : redis.url;
            for (let i = 0; i < N; i++) {
                nodes.push(await startNode(KINDS[i], {
                    name: NAMES[i],
                    redis: sharded ? redis.urls[i % redis.urls.length] : url,
                    sharded,
                    key: sharded ? SHARDED_KEY : undefined,
                    logTag: `fleet-${mode}-`,
                }));
            }
            for (const node of nodes) {
                ws.push(await connectClient(node, "websocket"));
                poll.push(await connectClient(node, "polling"));
            }
            // Let every node's subscriptions reach Redis before the first request counts them.
            await sleep(300);
        }, { timeout: 90000 });

        after(async () => {
            closeClients();
            await emitterRedis?.close().catch(() => {});
            await Promise.allSettled(nodes.map((n) => stopNode(n)));
            tap?.stop();
            await redis?.cleanup();
            clearTimers();
        });

        it("every node answers whoami with its own name", async () => {
            for (let i = 0; i < N; i++) {
                assert.equal(await call(ws[i], "whoami"), NAMES[i]);
                assert.equal(await call(poll[i], "whoami"), NAMES[i]);
            }
        });

        for (let i = 0; i < N; i++) {
            const from = NAMES[i];
            const next = (i + 1) % N;

            it(`to-room from ${from}: each member on every node gets it once, non-members never`, async () => {
                const room = fresh("room");
                const members = [...ws, poll[next]];
                await joinAll(room, members);
                const event = fresh("to-room");
                const args = ["hello", i, { from, list: [1, "two", null, true] }];
                assert.equal(await call(ws[i], "to-room", room, event, ...args), "ok");
                await expectDelivery(everyone(), members, event, args);
            });

            it(`others-in-room from ${from}: every other member once, never the sender`, async () => {
                const room = fresh("room");
                const sender = poll[i];
                const members = [...ws, sender];
                await joinAll(room, members);
                const event = fresh("others");
                const args = [{ from, n: 1.5 }];
                assert.equal(await call(sender, "others-in-room", room, event, ...args), "ok");
                await expectDelivery(everyone(), ws, event, args);
            });

            it(`to-room from ${from} with binary arguments: the bytes arrive intact on every node`, async () => {
                const room = fresh("room");
                await joinAll(room, ws);
                const event = fresh("binary");
                const payload = Buffer.from([0, 1, 2, 127, 128, 255, i]);
                assert.equal(await call(ws[i], "to-room", room, event, { bin: payload, n: i }, "tail"), "ok");
                await expectDelivery(everyone(), ws, event, [{ bin: [...payload], n: i }, "tail"], {
                    normalize: ([obj, tail]) => [{ ...obj, bin: bytes(obj?.bin) ? [...bytes(obj.bin)] : obj?.bin }, tail],
                });
            });

            it(`fetch-sockets from ${from} sees the sockets of every node with their rooms`, async () => {
                const room = fresh("fetch");
                const members = [...ws, poll[next]];
                await joinAll(room, members);
                for (const c of members) {
                    const own = `${room}-only-${c.label}`;
                    assert.equal(await call(c, "join", own), "ok");
                    c.rooms.add(own);
                }
                await settle();
                assert.deepEqual(await call(poll[i], "fetch-sockets", room), expectedSockets(members));
                // A room that exists nowhere: an empty answer (every node replies, none hangs).
                assert.deepEqual(await call(ws[i], "fetch-sockets", fresh("nowhere")), []);
            });

            it(`sockets-join and sockets-leave from ${from} act on sockets of every node`, async () => {
                const room = fresh("src");
                const target = fresh("joined");
                const members = [...ws];
                await joinAll(room, members);
                assert.equal(await call(poll[i], "sockets-join", room, target), "ok");
                for (const c of members) c.rooms.add(target);
                for (let j = 0; j < N; j++) {
                    await eventually(`fetch-sockets(${target}) from ${NAMES[j]} after sockets-join from ${from}`,
                        () => call(poll[j], "fetch-sockets", target), expectedSockets(members));
                }
                await settle();
                // The joined room is a real room: a broadcast to it from another node reaches them.
                const event = fresh("after-join");
                assert.equal(await call(poll[next], "to-room", target, event, "joined"), "ok");
                await expectDelivery(everyone(), members, event, ["joined"]);

                assert.equal(await call(poll[i], "sockets-leave", room, target), "ok");
                for (const c of members) c.rooms.delete(target);
                for (let j = 0; j < N; j++) {
                    await eventually(`fetch-sockets(${target}) from ${NAMES[j]} after sockets-leave from ${from}`,
                        () => call(poll[j], "fetch-sockets", target), []);
                    // ...and the source room is untouched.
                    assert.deepEqual(await call(poll[j], "fetch-sockets", room), expectedSockets(members));
                }
                const gone = fresh("after-leave");
                assert.equal(await call(poll[next], "to-room", target, gone, "left"), "ok");
                await expectDelivery(everyone(), [], gone);
            });

            it(`disconnect-room from ${from} disconnects its sockets on every node, nobody else`, async () => {
                const room = fresh("doomed");
                const doomed = [];
                for (const node of nodes) doomed.push(await connectClient(node, "websocket", `${node.name}/doomed`));
                await joinAll(room, doomed);
                const reasons = doomed.map((c) => new Promise((resolve) => c.once("disconnect", resolve)));
                assert.equal(await call(ws[i], "disconnect-room", room), "ok");
                const got = await Promise.race([
                    Promise.all(reasons),
                    sleep(4000).then(() => null),
                ]);
                const still = doomed.filter((c) => c.connected).map((c) => c.label);
                assert.ok(got, `still connected 4 s after disconnect-room from ${from}: ${still.join(", ")}`);
                assert.deepEqual(got, doomed.map(() => "io server disconnect"));
                for (const c of everyone()) assert.ok(c.connected, `${c.label} was disconnected too`);
                for (let j = 0; j < N; j++) {
                    await eventually(`fetch-sockets(${room}) from ${NAMES[j]} after disconnect-room`,
                        () => call(ws[j], "fetch-sockets", room), []);
                }
            });

            it(`server-side-emit from ${from} returns the names of every other node`, async () => {
                const others = NAMES.filter((_, j) => j !== i).sort();
                assert.deepEqual(await call(ws[i], "server-side-emit"), others);
            });

            it(`broadcast-with-ack from ${from} collects the answers of clients on every node`, async () => {
                const room = fresh("asked");
                const members = [...ws, poll[next]];
                await joinAll(room, members);
                assert.deepEqual(await call(ws[i], "broadcast-with-ack", room), sortedIds(members));
            });

            it(`broadcast-with-binary-ack from ${from} gets binary answers back as binary`, async () => {
                const room = fresh("asked-binary");
                const members = [...ws, poll[next]];
                await joinAll(room, members);
                assert.deepEqual(await call(ws[i], "broadcast-with-binary-ack", room), sortedIds(members));
            });

            if (!sharded) {
                it(`all-rooms from ${from} is the union of every node's rooms, socket ids included`, async () => {
                    const union = new Set();
                    for (const c of everyone()) for (const r of c.rooms) union.add(r);
                    assert.deepEqual(await call(poll[i], "all-rooms"), [...union].sort());
                });
            } else {
                // The sharded protocol has no ALL_ROOMS request and Node's ClusterAdapter has no
                // allRooms(): a node answers {error} or a list holding at least its own rooms.
                it(`all-rooms from ${from} (sharded: no cluster request) answers an error or at least the local rooms`, async (t) => {
                    const answer = await ws[i].timeout(8000).emitWithAck("all-rooms");
                    if (Array.isArray(answer)) {
                        const local = new Set([...ws[i].rooms, ...poll[i].rooms]);
                        for (const r of local) assert.ok(answer.includes(r), `all-rooms from ${from} lacks its own room ${r}`);
                        t.diagnostic(`${from} answered a list of ${answer.length} rooms`);
                    } else {
                        assert.equal(typeof answer?.error, "string", `neither a list nor {error}: ${JSON.stringify(answer)}`);
                        t.diagnostic(`${from} answered ${JSON.stringify(answer)}`);
                    }
                });
            }
        }

        if (!sharded) {
            describe("@socket.io/redis-emitter (classic format, PUBLISH)", () => {
                let emitter;
                before(async () => {
                    emitterRedis = createClient({ url: redis.url });
                    emitterRedis.on("error", () => {});
                    await emitterRedis.connect();
                    emitter = new Emitter(emitterRedis);
                });

                it("emitter.to(room).emit reaches the room's members on every node once", async () => {
                    const room = fresh("emitted");
                    const members = [...ws, poll[0]];
                    await joinAll(room, members);
                    const event = fresh("emitter-room");
                    emitter.to(room).emit(event, "from emitter", { n: 42, bin: Buffer.from([9, 8, 7]) });
                    await expectDelivery(everyone(), members, event, ["from emitter", { n: 42, bin: [9, 8, 7] }], {
                        normalize: ([s, obj]) => [s, { ...obj, bin: bytes(obj?.bin) ? [...bytes(obj.bin)] : obj?.bin }],
                    });
                });

                it("emitter.emit reaches every client of every node once", async () => {
                    const event = fresh("emitter-all");
                    emitter.emit(event, 1, "two");
                    await expectDelivery(everyone(), everyone(), event, [1, "two"]);
                });

                it("emitter.except(room).emit skips the room's members on every node", async () => {
                    const room = fresh("spared");
                    await joinAll(room, ws);
                    const event = fresh("emitter-except");
                    emitter.except(room).emit(event, "not you");
                    await expectDelivery(everyone(), poll, event, ["not you"]);
                });

                it("emitter.in(room).socketsJoin / socketsLeave act on every node", async () => {
                    const room = fresh("em-src");
                    const target = fresh("em-joined");
                    await joinAll(room, ws);
                    emitter.in(room).socketsJoin(target);
                    for (const c of ws) c.rooms.add(target);
                    for (let j = 0; j < N; j++) {
                        await eventually(`fetch-sockets(${target}) from ${NAMES[j]} after emitter socketsJoin`,
                            () => call(poll[j], "fetch-sockets", target), expectedSockets(ws));
                    }
                    emitter.in(room).socketsLeave(target);
                    for (const c of ws) c.rooms.delete(target);
                    for (let j = 0; j < N; j++) {
                        await eventually(`fetch-sockets(${target}) from ${NAMES[j]} after emitter socketsLeave`,
                            () => call(poll[j], "fetch-sockets", target), []);
                    }
                });

                it("all-rooms still matches the model after the emitter's joins and leaves", async () => {
                    const union = new Set();
                    for (const c of everyone()) for (const r of c.rooms) union.add(r);
                    for (let j = 0; j < N; j++) assert.deepEqual(await call(ws[j], "all-rooms"), [...union].sort());
                });
            });
        }

        it("every node is still up, every client still connected, no node logged an UNHANDLED error", () => {
            for (const n of nodes) {
                assert.ok(alive(n), `${n.name} exited (${n.exit}); log: ${n.logPath}`);
                assert.ok(!/UNHANDLED/.test(n.log), `${n.name} logged an UNHANDLED error; log: ${n.logPath}`);
            }
            for (const c of everyone()) assert.ok(c.connected, `${c.label} is disconnected`);
        });
    });
}
