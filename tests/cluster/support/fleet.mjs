// Fleet nodes and their clients for the cluster tests.
//
//   const node = await startNode("rust", { name: "rust0", redis: url, sharded, key });
//   const c = await connectClient(node, "websocket");     // c.arrivals, c.rooms (the model)
//   await call(c, "join", "room");                        // a cluster event, its ack, or a failure
//   await expectDelivery(everyone, members, event, args); // each member once, nobody else
//
// A `rust` node is $CONFORMANCE_BIN (default target/release/conformance), a `node` node is
// node-server.mjs; both take --listen 127.0.0.1:0 --redis URL --node NAME [--key K]
// [--redis-sharded] and print "listening on ADDR". Each node's output goes to
// target/cluster-logs/<name>.log (and stays in node.log).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { track, untrack } from "./procs.mjs";
import { sleep, withTimeout } from "../../support/wait.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CLUSTER_DIR = path.resolve(HERE, "..");
export const ROOT = path.resolve(CLUSTER_DIR, "..", "..");
export const LOG_DIR = path.join(ROOT, "target", "cluster-logs");
export const RUST_BIN = path.resolve(ROOT, process.env.CONFORMANCE_BIN || "target/release/conformance");

// "rust,rust,node" -> ["rust", "rust", "node"]; unknown kinds fail at once.
export function parseKinds(text, fallback) {
    const kinds = (text || fallback).split(",").map((k) => k.trim()).filter(Boolean);
    for (const k of kinds) {
        if (k !== "rust" && k !== "node") throw new Error(`unknown node kind "${k}" (rust or node) in "${text}"`);
    }
    return kinds;
}

// "classic,sharded" -> ["classic", "sharded"].
export function parseModes(text, fallback = "classic,sharded") {
    const modes = (text || fallback).split(",").map((m) => m.trim()).filter(Boolean);
    for (const m of modes) {
        if (m !== "classic" && m !== "sharded") throw new Error(`unknown mode "${m}" (classic or sharded)`);
    }
    return modes;
}

// ------------------------------------------------------------------ nodes

export async function startNode(kind, { name, redis, sharded = false, key, logTag = "", extraArgs = [] }) {
    const args = ["--listen", "127.0.0.1:0", "--redis", redis, "--node", name];
    if (key !== undefined) args.push("--key", key);
    if (sharded) args.push("--redis-sharded");
    args.push(...extraArgs);
    // NODE_SERVER_ARGS="--unguarded": extra flags for every `node` node (see node-server.mjs).
    if (kind === "node" && process.env.NODE_SERVER_ARGS) args.push(...process.env.NODE_SERVER_ARGS.split(/\s+/).filter(Boolean));
    const [cmd, argv] = kind === "rust"
        ? [RUST_BIN, args]
        : [process.execPath, [path.join(CLUSTER_DIR, "node-server.mjs"), ...args]];
    if (kind === "rust" && !fs.existsSync(RUST_BIN)) {
        throw new Error(`no Rust conformance binary at ${RUST_BIN} (set CONFORMANCE_BIN)`);
    }
    fs.mkdirSync(LOG_DIR, { recursive: true });
    const logPath = path.join(LOG_DIR, `${logTag}${name}.log`);
    const logFile = fs.createWriteStream(logPath);
    logFile.write(`$ ${cmd} ${argv.join(" ")}\n`);
    const proc = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"], cwd: CLUSTER_DIR });
    track(proc, name);
    const node = { kind, name, proc, log: "", logPath, url: null, addr: null };
    const keep = (chunk) => {
        node.log = (node.log + chunk.toString()).slice(-200000);
        logFile.write(chunk);
    };
    proc.stdout.on("data", keep);
    proc.stderr.on("data", keep);
    proc.once("exit", (code, sig) => {
        logFile.end(`\n[exited: ${code ?? sig}]\n`);
        node.exit = code ?? sig;
    });
    const listening = new Promise((resolve, reject) => {
        const check = () => {
            const m = /listening on (\S+)/.exec(node.log);
            if (m) resolve(m[1]);
        };
        proc.stdout.on("data", check);
        proc.stderr.on("data", check);
        proc.once("error", (e) => reject(new Error(`${name}: cannot run ${cmd}: ${e.message}`)));
        proc.once("exit", (code, sig) =>
            reject(new Error(`${name} (${kind}) exited (${code ?? sig}) before listening:\n${node.log}`)));
    });
    node.addr = await withTimeout(listening, `"listening on" from ${name} (${kind}: ${cmd})`, 15000);
    node.url = `http://${node.addr}`;
    return node;
}

export function alive(node) {
    return node.proc.exitCode === null && node.proc.signalCode === null;
}

// SIGTERM, then SIGKILL after a grace period.
export async function stopNode(node, graceMs = 2000) {
    const proc = node.proc;
    if (alive(node)) {
        const exited = once(proc, "exit");
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(t);
    }
    untrack(proc);
}

export async function killNode(node) {
    if (!alive(node)) return;
    const exited = once(node.proc, "exit");
    node.proc.kill("SIGKILL");
    await withTimeout(exited, `${node.name} exit after SIGKILL`, 5000);
    untrack(node.proc);
}

// ------------------------------------------------------------------ clients

const openClients = new Set();

// An official socket.io-client on `node` over one transport ("websocket" or "polling"), no
// reconnection. It records every event it gets (c.arrivals), answers the server's `question`
// with its own id, and carries the model of its rooms (c.rooms: its id and what it joined).
export async function connectClient(node, transport, label) {
    const socket = io(node.url, {
        forceNew: true,
        reconnection: false,
        transports: [transport],
        timeout: 5000,
    });
    openClients.add(socket);
    socket.node = node;
    socket.transport = transport;
    socket.label = label || `${node.name}/${transport === "websocket" ? "ws" : "poll"}`;
    socket.arrivals = [];
    socket.onAny((event, ...args) => socket.arrivals.push({ event, args, at: Date.now() }));
    socket.on("question", (cb) => {
        if (typeof cb === "function") cb(socket.id);
    });
    socket.on("binary-question", (cb) => {
        if (typeof cb === "function") cb(Buffer.from(socket.id));
    });
    await withTimeout(new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", (e) => reject(new Error(`${socket.label}: connect_error: ${e.message}`)));
    }), `${socket.label} connects to ${node.url}`, 8000);
    socket.rooms = new Set([socket.id]);
    return socket;
}

export function closeClients() {
    for (const s of openClients) s.disconnect();
    openClients.clear();
}

// Emits a cluster event and resolves with its ack. An ack of the shape {error} fails, naming
// the node that sent it; so does no ack within `ms`.
export async function call(client, event, ...args) {
    return callWithin(8000, client, event, ...args);
}

export async function callWithin(ms, client, event, ...args) {
    let result;
    try {
        result = await client.timeout(ms).emitWithAck(event, ...args);
    } catch (e) {
        throw new Error(`${client.label}: no ack for ${event}(${args.map((a) => JSON.stringify(a)).join(", ")}) within ${ms} ms (${e.message})`);
    }
    if (result && typeof result === "object" && !Array.isArray(result) && "error" in result) {
        throw new Error(`${client.label}: ${event} answered an error: ${JSON.stringify(result.error)}`);
    }
    return result;
}

export function arrivalsOf(client, event) {
    return client.arrivals.filter((a) => a.event === event);
}

// Waits until every member got `event` at least once (bounded by `waitMs`), then `quietMs`
// more for duplicates and strays; then every member must have it exactly once (with `args`,
// compared after `normalize`) and every other client of `everyone` never.
export async function expectDelivery(everyone, members, event, args, { waitMs = 4000, quietMs = 300, normalize = (x) => x } = {}) {
    const memberSet = new Set(members);
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline && ![...memberSet].every((c) => arrivalsOf(c, event).length > 0)) {
        await sleep(20);
    }
    await sleep(quietMs);
    const problems = [];
    for (const c of everyone) {
        const got = arrivalsOf(c, event);
        const want = memberSet.has(c) ? 1 : 0;
        if (got.length !== want) {
            problems.push(`${c.label} (${c.id}) got "${event}" ${got.length} times, expected ${want}`);
        } else if (want && args !== undefined) {
            try {
                assert.deepStrictEqual(normalize(got[0].args), args);
            } catch {
                problems.push(`${c.label} got "${event}" with ${JSON.stringify(normalize(got[0].args))}, expected ${JSON.stringify(args)}`);
            }
        }
    }
    assert.ok(problems.length === 0, problems.join("\n"));
}

// Polls `probe()` (every `every` ms, for at most `ms`) until it returns a value that
// deepStrictEquals `expected`; fails with the last value otherwise.
export async function eventually(label, probe, expected, ms = 4000, every = 100) {
    const deadline = Date.now() + ms;
    let last;
    let lastError;
    for (;;) {
        try {
            last = await probe();
            assert.deepStrictEqual(last, expected);
            return last;
        } catch (e) {
            lastError = e;
        }
        if (Date.now() >= deadline) break;
        await sleep(every);
    }
    assert.fail(`${label}: not reached within ${ms} ms; last: ${JSON.stringify(last)}; expected ${JSON.stringify(expected)}\n${lastError?.message ?? ""}`);
}

// What fetch-sockets answers for `clients`, by the model: sorted by id, rooms sorted.
export function expectedSockets(clients) {
    return clients
        .map((c) => ({ id: c.id, rooms: [...c.rooms].sort() }))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

// Binary data as a client receives it (Buffer in Node, ArrayBuffer, a view) as a Buffer.
export function bytes(value) {
    if (Buffer.isBuffer(value)) return value;
    if (value instanceof ArrayBuffer) return Buffer.from(value);
    if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return null;
}
