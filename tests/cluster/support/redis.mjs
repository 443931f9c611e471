// Redis for the fleet tests: Debian's redis-server on free loopback ports, one alone (classic
// pub/sub) or three masters in a Redis Cluster (sharded pub/sub), stopped by the PIDs started
// here and by nothing else.
//
//   const redis = await startRedis();          // redis.url, redis.port
//   await redis.stop(); await redis.start();   // an outage, then the same port again
//   const cluster = await startRedisCluster(); // cluster.urls[0..2], cluster.stop()
//
// Every wait is bounded. Whatever is still running when this process exits (a failed test, a
// SIGTERM from `timeout`) is killed by the exit hook of support/procs.mjs.

import { spawn, execFile } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { track, trackDir, untrack, untrackDir } from "./procs.mjs";
import { sleep } from "../../support/wait.mjs";

const HOST = "127.0.0.1";
const SERVER = process.env.REDIS_SERVER || "redis-server";
const CLI = process.env.REDIS_CLI || "redis-cli";

// A TCP port on the loopback that was free a moment ago (the kernel picked it).
export async function freePort() {
    const srv = net.createServer();
    srv.listen(0, HOST);
    await once(srv, "listening");
    const { port } = srv.address();
    srv.close();
    await once(srv, "close");
    return port;
}

// ------------------------------------------------------------------ a tiny RESP client

function encodeCommand(args) {
    const parts = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
        const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
        parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n"));
    }
    return Buffer.concat(parts);
}

// Parses one RESP2 reply at `pos`; returns [value, nextPos] or null while incomplete.
// Errors come back as Error objects (not thrown), bulk strings as text.
function parseReply(buf, pos = 0) {
    const eol = buf.indexOf("\r\n", pos);
    if (eol < 0) return null;
    const kind = String.fromCharCode(buf[pos]);
    const line = buf.toString("utf8", pos + 1, eol);
    const after = eol + 2;
    switch (kind) {
        case "+": return [line, after];
        case "-": return [new Error(line), after];
        case ":": return [Number(line), after];
        case "$": {
            const n = Number(line);
            if (n < 0) return [null, after];
            if (buf.length < after + n + 2) return null;
            return [buf.toString("utf8", after, after + n), after + n + 2];
        }
        case "*": {
            const n = Number(line);
            if (n < 0) return [null, after];
            const items = [];
            let p = after;
            for (let i = 0; i < n; i++) {
                const r = parseReply(buf, p);
                if (!r) return null;
                items.push(r[0]);
                p = r[1];
            }
            return [items, p];
        }
        default:
            throw new Error(`unexpected RESP reply ${JSON.stringify(buf.toString("utf8", pos, eol))}`);
    }
}

// Sends one command to 127.0.0.1:port on a fresh connection and resolves with its reply
// (an Error object for a Redis error). Rejects on connection failure or after `ms`.
export function redisCommand(port, args, ms = 2000) {
    return new Promise((resolve, reject) => {
        const sock = net.createConnection({ host: HOST, port });
        let data = Buffer.alloc(0);
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error(`redis ${HOST}:${port}: no reply to ${args[0]} within ${ms} ms`));
        }, ms);
        const done = (fn, v) => {
            clearTimeout(timer);
            sock.destroy();
            fn(v);
        };
        sock.on("connect", () => sock.write(encodeCommand(args)));
        sock.on("data", (chunk) => {
            data = Buffer.concat([data, chunk]);
            let r;
            try {
                r = parseReply(data);
            } catch (e) {
                return done(reject, e);
            }
            if (r) done(resolve, r[0]);
        });
        sock.on("error", (e) => done(reject, e));
        sock.on("close", () => done(reject, new Error(`redis ${HOST}:${port} closed before replying`)));
    });
}

// Resolves once `check()` resolves truthy; tries every `every` ms for at most `ms`.
async function until(label, check, ms, every = 100) {
    const deadline = Date.now() + ms;
    let last;
    while (Date.now() < deadline) {
        try {
            if (await check()) return;
        } catch (e) {
            last = e;
        }
        await sleep(every);
    }
    throw new Error(`timed out after ${ms} ms: ${label}${last ? ` (last error: ${last.message})` : ""}`);
}

// ------------------------------------------------------------------ one redis-server

class RedisServer {
    constructor({ port, dir, extraArgs = [], label }) {
        this.port = port;
        this.dir = dir;
        this.extraArgs = extraArgs;
        this.label = label;
        this.proc = null;
        this.log = "";
    }

    get url() {
        return `redis://${HOST}:${this.port}`;
    }

    get running() {
        return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
    }

    // Starts redis-server (again, after stop(): same port, same directory) and waits for PONG.
    async start() {
        if (this.running) throw new Error(`${this.label} already running`);
        const args = [
            "--port", String(this.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", this.dir,
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", "",
            ...this.extraArgs,
        ];
        const proc = spawn(SERVER, args, { stdio: ["ignore", "pipe", "pipe"] });
        track(proc, this.label);
        this.proc = proc;
        const keep = (chunk) => {
            this.log = (this.log + chunk.toString()).slice(-20000);
        };
        proc.stdout.on("data", keep);
        proc.stderr.on("data", keep);
        const spawnError = new Promise((_, reject) => {
            proc.once("error", (e) => reject(new Error(`${this.label}: cannot run ${SERVER}: ${e.message}`)));
            proc.once("exit", (code, sig) =>
                reject(new Error(`${this.label} exited (${code ?? sig}) before answering PING:\n${this.log}`)));
        });
        spawnError.catch(() => {});
        await Promise.race([
            spawnError,
            until(`${this.label} answers PING on port ${this.port}`,
                async () => (await redisCommand(this.port, ["PING"], 500)) === "PONG", 10000),
        ]);
        return this;
    }

    // SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone.
    async stop(graceMs = 3000) {
        const proc = this.proc;
        if (!proc) return;
        if (proc.exitCode === null && proc.signalCode === null) {
            const exited = once(proc, "exit");
            proc.kill("SIGTERM");
            const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
            await exited;
            clearTimeout(t);
        }
        untrack(proc);
        this.proc = null;
    }

    command(...args) {
        return redisCommand(this.port, args);
    }
}

// A fresh directory under the system's temporary one, removed when this process exits (if the
// cleanup below has not removed it already).
function tempDir(label) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hs-${label}-`));
    trackDir(dir);
    return dir;
}

function removeDir(dir) {
    fs.rmSync(dir, { recursive: true, force: true });
    untrackDir(dir);
}

// One redis-server alone on a free port, with no persistence.
export async function startRedis({ label = "redis" } = {}) {
    const dir = tempDir(label);
    const server = new RedisServer({ port: await freePort(), dir, label });
    await server.start();
    server.cleanup = async () => {
        await server.stop();
        removeDir(dir);
    };
    return server;
}

// Three masters on free ports (each with its own free cluster-bus port) made one Redis Cluster
// by `redis-cli --cluster create`; resolves once every node reports cluster_state:ok.
export async function startRedisCluster({ label = "redis-cluster", masters = 3 } = {}) {
    const dir = tempDir(label);
    const servers = [];
    const cluster = {
        servers,
        dir,
        get urls() {
            return servers.map((s) => s.url);
        },
        get ports() {
            return servers.map((s) => s.port);
        },
        async stop() {
            await Promise.all(servers.map((s) => s.stop()));
        },
        async cleanup() {
            await cluster.stop();
            removeDir(dir);
        },
    };
    try {
        for (let i = 0; i < masters; i++) {
            const port = await freePort();
            let bus = await freePort();
            while (bus === port) bus = await freePort();
            const server = new RedisServer({
                port,
                dir,
                label: `${label}-${i}`,
                extraArgs: [
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", path.join(dir, `nodes-${port}.conf`),
                    "--cluster-port", String(bus),
                    "--cluster-node-timeout", "3000",
                ],
            });
            servers.push(server);
            await server.start();
        }
        await runCli(["--cluster", "create", ...servers.map((s) => `${HOST}:${s.port}`),
            "--cluster-replicas", "0", "--cluster-yes"], 30000);
        for (const s of servers) {
            await until(`${s.label}: cluster_state:ok`, async () => {
                const info = await redisCommand(s.port, ["CLUSTER", "INFO"], 1000);
                return typeof info === "string" && /cluster_state:ok/.test(info);
            }, 20000, 200);
        }
        // Every master must also know every other one (slots of all three), or a client that
        // asks one node for the slot map may get a partial one.
        for (const s of servers) {
            await until(`${s.label}: knows ${masters} masters`, async () => {
                const nodes = await redisCommand(s.port, ["CLUSTER", "NODES"], 1000);
                if (typeof nodes !== "string") return false;
                const live = nodes.trim().split("\n").filter((line) => {
                    const [, , flags, , , , , state] = line.split(" ");
                    return flags.split(",").includes("master") && state === "connected";
                });
                return live.length === masters;
            }, 20000, 200);
        }
    } catch (e) {
        await cluster.cleanup().catch(() => {});
        throw e;
    }
    return cluster;
}

// Runs redis-cli with `args`, bounded by `ms`; rejects with its output when it fails.
export function runCli(args, ms = 10000) {
    return new Promise((resolve, reject) => {
        const child = execFile(CLI, args, { timeout: ms, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
            untrack(child);
            if (err) reject(new Error(`${CLI} ${args.join(" ")} failed: ${err.message}\n${stdout}${stderr}`));
            else resolve(stdout);
        });
        track(child, "redis-cli");
    });
}

export { until };
