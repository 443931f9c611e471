// The clients' side of netem.test.mjs: run inside a network namespace
// (`ip netns exec NS node driver.mjs`), it holds socket.io-client sockets and does what the
// test asks on stdin, one JSON request a line ({id, op, ...}), answering each on stdout
// ({id, ok, value} or {id, ok: false, error}). It exits when stdin closes or after 10 minutes.

import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const sockets = new Map(); // name -> { socket, log, events, rawAcks, duplicateAcks }

function record(entry, type, extra = {}) {
    entry.log.push({ t: Date.now(), type, ...extra });
}

// Connects socket `name` to `url` with `opts`; resolves once connected.
function connect({ name, url, opts = {}, within = 5000 }) {
    const socket = io(url, { forceNew: true, ...opts });
    const entry = { socket, log: [], events: {}, rawAcks: new Map(), duplicateAcks: 0 };
    sockets.set(name, entry);
    socket.on("connect", () => record(entry, "connect", { id: socket.id, recovered: socket.recovered }));
    socket.on("disconnect", (reason) => record(entry, "disconnect", { reason }));
    socket.on("connect_error", (err) => record(entry, "connect_error", { message: err.message }));
    // Every ack packet the client receives, by id, before socket.io-client drops those it does
    // not wait for: the same id twice is a duplicate from the server.
    socket.io.on("open", () => {
        socket.io.engine.on("message", (data) => {
            if (typeof data !== "string") return;
            const m = /^3(\d+)/.exec(data);
            if (!m) return;
            const n = (entry.rawAcks.get(m[1]) ?? 0) + 1;
            entry.rawAcks.set(m[1], n);
            if (n > 1) entry.duplicateAcks++;
        });
    });
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: not connected within ${within} ms`)), within);
        socket.once("connect", () => {
            clearTimeout(timer);
            resolve({ id: socket.id, transport: socket.io.engine.transport.name });
        });
    });
}

function get(name) {
    const entry = sockets.get(name);
    if (!entry) throw new Error(`no socket ${name}`);
    return entry;
}

// Records every `event` on socket `name` from now on: its arguments, or (keep: "length") the
// length of each string argument instead of the string.
function listen({ name, event, keep = "args" }) {
    const entry = get(name);
    entry.events[event] ??= [];
    entry.socket.on(event, (...args) => {
        entry.events[event].push(keep === "length" ? args.map((a) => (typeof a === "string" ? a.length : a)) : args);
    });
    return true;
}

// One acked emit; resolves with its arguments or an error message.
async function call({ name, event, args = [], within = 3000 }) {
    const { socket } = get(name);
    return socket.timeout(within).emitWithAck(event, ...args);
}

// `count` acked `message-with-ack` emits, each with a number of its own, `parallel` at a time,
// each with a timeout of `within` ms. Every emit must end exactly once: answered with its own
// number, or failed (timeout, or the connection dropped while it was in flight).
async function burst({ name, count, parallel = 20, within = 8000, tag = "n" }) {
    const { socket } = get(name);
    const outcome = { sent: 0, acked: 0, wrong: 0, failed: 0, twice: 0, errors: {} };
    const seen = new Set();
    let next = 0;
    async function worker() {
        while (next < count) {
            const i = next++;
            const number = `${tag}-${i}`;
            outcome.sent++;
            let settled = 0;
            await new Promise((resolve) => {
                socket.timeout(within).emit("message-with-ack", number, (err, answer) => {
                    settled++;
                    if (settled > 1 || seen.has(number)) {
                        outcome.twice++;
                        return;
                    }
                    seen.add(number);
                    if (err) {
                        outcome.failed++;
                        outcome.errors[err.message] = (outcome.errors[err.message] ?? 0) + 1;
                    } else if (answer === number) {
                        outcome.acked++;
                    } else {
                        outcome.wrong++;
                    }
                    resolve();
                });
            });
        }
    }
    await Promise.all(Array.from({ length: parallel }, worker));
    return outcome;
}

function state({ name }) {
    const { socket, log, events, duplicateAcks } = get(name);
    return { connected: socket.connected, id: socket.id, recovered: socket.recovered, log, events, duplicateAcks };
}

function close({ name }) {
    const entry = sockets.get(name);
    entry?.socket.disconnect();
    sockets.delete(name);
    return true;
}

const ops = { connect, listen, call, burst, state, close };

const rl = createInterface({ input: process.stdin });
rl.on("line", async (line) => {
    let req;
    try {
        req = JSON.parse(line);
    } catch {
        return;
    }
    try {
        const op = ops[req.op];
        if (!op) throw new Error(`unknown op ${req.op}`);
        const value = await op(req);
        process.stdout.write(JSON.stringify({ id: req.id, ok: true, value }) + "\n");
    } catch (err) {
        process.stdout.write(JSON.stringify({ id: req.id, ok: false, error: String(err?.message ?? err) }) + "\n");
    }
});
rl.on("close", () => process.exit(0));
setTimeout(() => process.exit(3), 600_000).unref();
process.stdout.write(JSON.stringify({ ready: true }) + "\n");
