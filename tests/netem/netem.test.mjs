// Faults on the network between the official socket.io-client and our conformance server, each
// on a link of the test's own: the server runs in one network namespace, the clients in others
// (`ip netns exec`), every pair joined by a veth (or, for delay/loss/reordering on a kernel
// without sch_netem, by impair.py's TUN link), and tc does the damage.
//
//   CONFORMANCE_BIN=target/release/conformance node --test --test-reporter=spec tests/netem/netem.test.mjs
//
// Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns add`), iproute2 and python3; every
// test skips with the reason where the machine refuses network namespaces. Nothing touches the
// host's own namespace: the 10.77.x.y addresses exist only inside namespaces made here, and
// the namespaces and every process started here (killed by PID) go in after(), at exit and on
// SIGINT/SIGTERM. Should this process die by SIGKILL, what it started ends by itself (the
// drivers and impair.py when their stdin closes, the servers under `timeout 300`), and the next
// run deletes the namespaces left behind by runs whose PID is gone.
//
// The conformance server: pingInterval 300 ms, pingTimeout 200 ms, so either side should find a
// dead peer within 500 ms; the tests allow 3x that (1.5 s) for a loaded CI machine, the time
// tc and ip take, and the 25 ms between two looks. Connection state recovery is on
// (--recovery-ms 5000); max_buffer is the default 1 MiB.
//
// Where the kernel has sch_netem, delay, loss and reordering come from
// `tc qdisc ... netem delay 10ms 5ms loss 2% reorder 25%` on both ends of a veth; where it has
// not (CONFIG_NET_SCH_NETEM unset, as on many VM kernels), from impair.py with the same
// profile. NETEM_LINK=relay forces impair.py. Linux never retransmits sooner than its minimum
// RTO, 200 ms: as long as the conformance pingTimeout, so one lost segment under a ping or a
// pong would end the session whatever the server does. The lossy link's routes get
// `rto_min 10ms quickack 1` (what a LAN-tuned host has), so TCP repairs a loss within the
// heartbeat and what is left to test is the server under loss, delay and reordering. The other faults use qdiscs every kernel with tc
// has: a partition and a vanished client are `pfifo limit 0` (a queue of length 0 drops every
// packet, silently: no RST, no FIN, no error on either side), the slow consumer is `tbf`.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Driver } from "./support/clients.mjs";
import {
    blackhole, cleanup, dropNamespace, inNs, kernelNetem, kill, namespace, qdisc, refusal, rss, start,
    sweep, tunLink, veth, waitLine,
} from "./support/net.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const CONFORMANCE = process.env.CONFORMANCE_BIN ?? join(ROOT, "target/release/conformance");
const PORT = 3000;
const HEARTBEAT_MS = 300 + 200;
const BOUND_MS = 3 * HEARTBEAT_MS;
const RECOVERY_MS = 5000;
// The impairment of the lossy link: each way 10 ms +- 5 ms, 2 % lost, 25 % reordered.
const PROFILE = { delay_ms: 10, jitter_ms: 5, loss: 0.02, reorder: 0.25, seed: 7 };
const NETEM = ["netem", "delay", "10ms", "5ms", "loss", "2%", "reorder", "25%"];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `probe` every `every` ms until it returns a truthy value; resolves with it and when
// (`at`, Date.now()), or with null after `within` ms.
async function until(probe, within, every = 25) {
    const t0 = Date.now();
    while (Date.now() - t0 < within) {
        const v = await probe();
        if (v) return { value: v, at: Date.now() };
        await sleep(every);
    }
    return null;
}

let skip = null;
let srv; // the server's namespace
let server; // the conformance process (with connection state recovery)
let obs; // the observers' driver (its own namespace, a clean link)
let obsLink;

// The socket ids in `room`, as the server sees them (asked by the observer's socket `asker`).
async function membersOf(room, asker = "q") {
    const found = await obs.call(asker, "fetch-sockets", [room]);
    return found.map((s) => s.id);
}

function url(link, port = PORT) {
    return `http://${link.serverAddr}:${port}`;
}

// Starts a conformance server in the server's namespace on `port` (every address), under
// `timeout` so that it ends by itself even if this process is killed with SIGKILL (the drivers
// and impair.py end when their stdin closes). `server.pid` is timeout's (a SIGTERM to it reaches
// the server); `server.serverPid` is the server's own, for its RSS.
async function startServer(port, args = []) {
    const child = start(srv, "timeout", ["-k", "5", "300", CONFORMANCE, "--listen", `0.0.0.0:${port}`, ...args]);
    child.log = "";
    child.stderr.on("data", (d) => (child.log = (child.log + d).slice(-8000)));
    await waitLine(child, (l) => l.startsWith("listening on"), 10000, "conformance");
    const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(/\s+/);
    child.serverPid = Number(children[0]);
    return child;
}

function firstAfter(log, type, t0) {
    return log.find((e) => e.type === type && e.t >= t0);
}

describe("network faults (network namespaces)", () => {
    before(async () => {
        skip = refusal();
        if (skip) return;
        sweep();
        srv = namespace("srv");
        const o = namespace("obs");
        obsLink = veth(srv, o, 1);
        server = await startServer(PORT, ["--recovery-ms", String(RECOVERY_MS)]);
        obs = await Driver.start(o, "observer");
        // q asks the server questions; f is a fast member of rooms; s sends the room emits.
        for (const name of ["q", "f", "s"]) {
            await obs.connect(name, url(obsLink), { transports: ["websocket"] });
        }
    });

    after(() => {
        if (server && server.exitCode !== null) console.log(`conformance exited (${server.exitCode}):\n${server.log}`);
        obs?.stop();
        kill(server, "SIGTERM");
        cleanup();
    });

    it("delay, loss and reordering: every ack arrives, once, with its own answer", async (t) => {
        if (skip) return t.skip(skip);
        const ns = namespace("lossy");
        let link;
        let counters = () => null;
        if (process.env.NETEM_LINK !== "relay" && kernelNetem(srv)) {
            link = veth(srv, ns, 5);
            qdisc(srv, link.serverDev, NETEM);
            qdisc(ns, link.clientDev, NETEM);
        } else {
            link = await tunLink(srv, ns, 5);
            await link.profile(PROFILE);
            counters = () => link.profile({});
        }
        for (const [where, dev, peer] of [[srv, link.serverDev, "10.77.5.2"], [ns, link.clientDev, "10.77.5.1"]]) {
            inNs(where, "ip", "route", "replace", peer, "dev", dev, "rto_min", "10ms", "quickack", "1");
        }
        const c = await Driver.start(ns, "lossy");
        try {
            await c.connect("ws", url(link), { transports: ["websocket"] }, 10000);
            await c.connect("poll", url(link), { transports: ["polling"] }, 10000);
            const t0 = Date.now();
            const [ws, poll] = await Promise.all([
                c.burst("ws", { count: 300, parallel: 30, within: 10000, tag: "ws" }),
                c.burst("poll", { count: 150, parallel: 15, within: 10000, tag: "poll" }),
            ]);
            const elapsed = Date.now() - t0;
            const seen = await counters();
            const states = { ws: await c.state("ws"), poll: await c.state("poll") };
            const report = JSON.stringify({ ws, poll, elapsed, relay: seen, logs: { ws: states.ws.log, poll: states.poll.log } });
            for (const [name, outcome, count] of [["ws", ws, 300], ["poll", poll, 150]]) {
                assert.equal(outcome.sent, count);
                assert.equal(outcome.twice, 0, `${name}: an emit ended twice: ${report}`);
                assert.equal(outcome.wrong, 0, `${name}: an answer carried another emit's number: ${report}`);
                assert.equal(states[name].duplicateAcks, 0, `${name}: the server sent an ack id twice: ${report}`);
            }
            // Over one WebSocket, TCP hides the damage: every ack arrives, no disconnect.
            assert.equal(ws.acked, 300, `ws: not every ack arrived: ${report}`);
            assert.ok(!states.ws.log.some((e) => e.type === "disconnect"), `ws: disconnected: ${report}`);
            // Over polling, each request may need a new TCP connection, and a lost SYN waits 1 s
            // for its retransmission: longer than the 200 ms pingTimeout, so the server may drop
            // the session (and the client recover it). Then what was in flight fails on the
            // client, once, as "socket has been disconnected"; nothing is answered twice or wrong.
            const pollDrops = states.poll.log.filter((e) => e.type === "disconnect").length;
            assert.equal(poll.acked + poll.failed, 150, `poll: an emit never ended: ${report}`);
            if (pollDrops === 0) assert.equal(poll.acked, 150, `poll: not every ack arrived: ${report}`);
            for (const message of Object.keys(poll.errors)) {
                assert.equal(message, "socket has been disconnected", `poll: ${report}`);
            }
            // Whatever happened, it is connected again and answers.
            const again = await until(async () => (await c.state("poll")).connected, 8000, 50);
            assert.ok(again, `poll: not connected again: ${report}`);
            assert.equal(await c.call("poll", "message-with-ack", ["after"], 10000), "after");
            if (seen) {
                // The link really did lose and reorder packets.
                assert.ok(seen.dropped > 0 && seen.reordered > 0, `impair.py did nothing: ${report}`);
            }
            t.diagnostic(
                `${ws.acked + poll.acked} of 450 acked through ${seen ? "impair.py" : "netem"} in ${elapsed} ms ` +
                    `(polling: ${pollDrops} session(s) dropped, ${poll.failed} emits failed cleanly); link: ${JSON.stringify(seen)}`,
            );
        } finally {
            c.stop();
        }
    });

    it(`a partition: both sides find the dead peer within ${BOUND_MS} ms; the client recovers its session and every missed event, once, in order`, async (t) => {
        if (skip) return t.skip(skip);
        const ns = namespace("part");
        const link = veth(srv, ns, 2);
        const c = await Driver.start(ns, "partitioned");
        try {
            await c.connect("r", url(link), {
                transports: ["websocket"],
                reconnectionDelay: 100,
                reconnectionDelayMax: 200,
                randomizationFactor: 0,
                timeout: 1000,
            });
            await c.listen("r", "missed");
            assert.equal(await c.call("r", "join", ["part-room"]), "ok");
            const before = await c.state("r");
            assert.ok((await membersOf("part-room")).includes(before.id));

            const t0 = Date.now();
            blackhole(srv, link.serverDev, true);
            blackhole(ns, link.clientDev, true);
            // Two events while the server still holds the socket (they go into a connection that
            // no longer delivers), three once it has let it go: all five must come back.
            for (const n of [1, 2]) assert.equal(await obs.call("s", "to-room", ["part-room", "missed", n]), "ok");
            const serverSaw = await until(async () => !(await membersOf("part-room")).includes(before.id), 5000);
            const clientSaw = await until(async () => firstAfter((await c.state("r")).log, "disconnect", t0), 5000);
            for (const n of [3, 4, 5]) assert.equal(await obs.call("s", "to-room", ["part-room", "missed", n]), "ok");
            assert.ok(serverSaw, "the server never let the partitioned socket go");
            assert.ok(clientSaw, "the client never noticed the partition");
            const serverMs = serverSaw.at - t0;
            const clientMs = clientSaw.value.t - t0;
            t.diagnostic(`server let go after ${serverMs} ms, client saw "${clientSaw.value.reason}" after ${clientMs} ms`);
            assert.ok(serverMs <= BOUND_MS, `server took ${serverMs} ms`);
            assert.ok(clientMs <= BOUND_MS, `client took ${clientMs} ms`);
            assert.equal(clientSaw.value.reason, "ping timeout");

            // Keep the link cut for 1.5 s in all (reconnection attempts fail meanwhile), then heal.
            await sleep(Math.max(0, 1500 - (Date.now() - t0)));
            const healed = Date.now();
            blackhole(srv, link.serverDev, false);
            blackhole(ns, link.clientDev, false);
            const back = await until(async () => firstAfter((await c.state("r")).log, "connect", healed), 8000, 50);
            assert.ok(back, `no reconnection within 8 s of the heal: ${JSON.stringify((await c.state("r")).log)}`);
            const after = await c.state("r");
            assert.equal(back.value.recovered, true, `not recovered: ${JSON.stringify(after.log)}`);
            assert.equal(after.id, before.id, "a new socket id after recovery");
            // (Each comes with its offset, which socket.io-client leaves as the last argument.)
            assert.deepEqual(after.events.missed.map((args) => args[0]), [1, 2, 3, 4, 5], "missed events: each once, in order");
            const mine = await c.call("r", "my-state");
            assert.equal(mine.recovered, true);
            assert.ok(mine.rooms.includes("part-room"), `rooms after recovery: ${mine.rooms}`);
            assert.ok((await membersOf("part-room")).includes(before.id));
            t.diagnostic(`back ${back.value.t - healed} ms after the heal, recovered with 5 missed events`);
        } finally {
            c.stop();
            blackhole(srv, link.serverDev, false);
        }
    });

    it(`a client that vanishes without a FIN: the server frees its session within ${BOUND_MS} ms`, async (t) => {
        if (skip) return t.skip(skip);
        const ns = namespace("gone");
        const link = veth(srv, ns, 3);
        const c = await Driver.start(ns, "vanishing");
        await c.connect("v", url(link), { transports: ["websocket"], reconnection: false });
        assert.equal(await c.call("v", "join", ["gone-room"]), "ok");
        const { id } = await c.state("v");
        assert.deepEqual(await membersOf("gone-room"), [id]);

        // Everything from its side is dropped, then the process dies (its FIN and any RST die
        // in the queue of length 0), then its link goes altogether.
        const t0 = Date.now();
        blackhole(ns, link.clientDev, true);
        c.kill();
        inNs(ns, "ip", "link", "del", "dev", link.clientDev);
        const freed = await until(async () => (await membersOf("gone-room")).length === 0, 5000);
        assert.ok(freed, "the server kept the vanished socket for 5 s");
        const ms = freed.at - t0;
        t.diagnostic(`session freed ${ms} ms after the client vanished`);
        assert.ok(ms <= BOUND_MS, `took ${ms} ms`);
        const rooms = await obs.call("q", "all-rooms");
        assert.ok(!rooms.includes("gone-room"), `the room outlived its last member: ${rooms}`);
        // The server goes on serving.
        assert.deepEqual(await obs.call("q", "message-with-ack", ["still here"]), "still here");
        await sleep(100);
        dropNamespace(ns);
    });

    it("a slow consumer is disconnected once past max_buffer, and the server's memory stays bounded", async (t) => {
        if (skip) return t.skip(skip);
        // A server of its own, without connection state recovery: recovery keeps up to 16 MiB
        // of broadcasts for clients that come back, which would blur what this measures.
        const PLAIN = PORT + 1;
        const plain = await startServer(PLAIN);
        const ns = namespace("slow");
        const link = veth(srv, ns, 4);
        const c = await Driver.start(ns, "slow");
        try {
            await c.connect("l", url(link, PLAIN), { transports: ["websocket"], reconnection: false });
            assert.equal(await c.call("l", "join", ["flood"]), "ok");
            for (const name of ["q2", "f2", "s2"]) {
                await obs.connect(name, url(obsLink, PLAIN), { transports: ["websocket"] });
            }
            assert.equal(await obs.call("f2", "join", ["flood"]), "ok");
            await obs.listen("f2", "big", "length");
            const { id } = await c.state("l");
            // What the server sends to the slow client: 32 kB/s.
            qdisc(srv, link.serverDev, ["tbf", "rate", "256kbit", "burst", "16kb", "limit", "64kb"]);
            await sleep(100);
            const rss0 = rss(plain.serverPid);

            // 200 events of 128 kB to the room (25.6 MB), one after the other (each acked once
            // the server has queued it for every member): the fast member keeps up, the slow
            // one passes 1 MiB after about ten.
            const COUNT = 200;
            const big = "x".repeat(128_000);
            const t0 = Date.now();
            let gone = null;
            for (let i = 0; i < COUNT; i++) {
                assert.equal(await obs.call("s2", "to-room", ["flood", "big", big], 10000), "ok");
                if (!gone && (i < 20 || i % 10 === 0) && !(await membersOf("flood", "q2")).includes(id)) {
                    gone = { at: Date.now(), after: i + 1 };
                }
            }
            gone ??= await until(async () => !(await membersOf("flood", "q2")).includes(id), 5000, 10);
            await sleep(300);
            const rss1 = rss(plain.serverPid);
            const fast = (await obs.state("f2")).events.big ?? [];

            assert.ok(gone, "the slow consumer was never disconnected");
            const goneMs = gone.at - t0;
            t.diagnostic(
                `slow consumer gone ${goneMs} ms after the flood began (after ${gone.after ?? "all"} events; ` +
                    `${Date.now() - t0} ms for all ${COUNT}); server RSS ${(rss0 / 2 ** 20).toFixed(1)} -> ` +
                    `${(rss1 / 2 ** 20).toFixed(1)} MiB; fast member got ${fast.length}`,
            );
            // Heartbeats cannot be the cause so early: a ping sent after the flood began waits
            // behind the data, but the server gives up on it only 200 ms after sending it.
            assert.ok(goneMs < 200, `disconnected after ${goneMs} ms: too late to tell max_buffer from a ping timeout`);
            assert.equal(fast.length, COUNT, "the fast member missed events");
            assert.ok(fast.every(([len]) => len === 128_000));
            // 25.6 MB went to the room; the slow client held at most max_buffer (1 MiB) of it.
            assert.ok(rss1 - rss0 < 8 * 2 ** 20, `server RSS grew by ${((rss1 - rss0) / 2 ** 20).toFixed(1)} MiB`);
            assert.equal(plain.exitCode, null, `the server died: ${plain.log}`);
        } finally {
            c.stop();
            for (const name of ["q2", "f2", "s2"]) await obs.close(name).catch(() => {});
            kill(plain, "SIGTERM");
            qdisc(srv, link.serverDev, null);
        }
    });
});
