// One Node socket.io 4.8 node of a fleet on Redis, answering the cluster events of
// tests/cluster/README.md on namespace "/" like the Rust conformance binary does.
//
//   node node-server.mjs --listen 127.0.0.1:0 --redis redis://127.0.0.1:6379 --node n1 [--key socket.io]
//   node node-server.mjs --listen 127.0.0.1:0 --redis redis://127.0.0.1:7000 --redis-sharded --node n1
//
// Classic mode: @socket.io/redis-adapter's createAdapter(pub, sub, {key}) on one redis-server.
// Sharded mode: createShardedAdapter(pub, sub, {channelPrefix: key}) on a node-redis cluster
// client whose root node is the --redis URL. Prints "listening on 127.0.0.1:PORT" once it accepts
// connections.
//
// The shipped adapter does not survive garbage on its channels (see faults.test.mjs for what
// each payload does): a throw from notepack's decode() or from a field access on a message of
// the wrong shape either leaves the subscriber connection out of step (node-redis resets its
// decoder) or, from the async request handler, ends the process. This node guards it: every
// message handler runs inside try/catch, publish/subscribe calls never reject (failures are
// logged), the redis clients have 'error' listeners, and a failing PUBSUB NUMSUB/SHARDNUMSUB
// counts this node alone. Anything that still escapes is logged as "node-server: UNHANDLED ..."
// and the process goes on; the tests look for that marker. --unguarded drops all of this.

import http from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createClient, createCluster } from "redis";

const { values: opt } = parseArgs({
    options: {
        listen: { type: "string", default: "127.0.0.1:0" },
        redis: { type: "string" },
        "redis-sharded": { type: "boolean", default: false },
        key: { type: "string", default: "socket.io" },
        node: { type: "string", default: `node-${process.pid}` },
        // The shipped adapter and clients as they are, without the guards below (to see what
        // the faults do to a plain Node app; the tests never pass it).
        unguarded: { type: "boolean", default: false },
    },
    strict: true,
});
if (!opt.redis) {
    console.error("node-server: --redis URL is required");
    process.exit(2);
}
const NAME = opt.node;

const log = (...args) => console.error(`node-server[${NAME}]:`, ...args);

// Last resort: log what escaped every guard below and keep running. After SIGTERM, errors of
// the redis clients being torn down are expected and not marked.
let closing = false;
const mark = () => (closing ? "(while closing)" : "UNHANDLED");
if (!opt.unguarded) {
    process.on("unhandledRejection", (e) => log(`${mark()} rejection (kept running):`, e?.stack || e));
    process.on("uncaughtException", (e) => log(`${mark()} exception (kept running):`, e?.stack || e));
}

// ------------------------------------------------------------------ redis clients

// Reconnect fast (the fault tests restart redis-server and expect service back within seconds).
const reconnectStrategy = (retries) => Math.min(100 + retries * 100, 1000);

// Logs a client's errors, at most once a second per distinct message, instead of letting an
// 'error' event without a listener end the process.
function quietErrors(client, label) {
    const last = new Map();
    client.on("error", (e) => {
        const msg = e?.message || String(e);
        const now = Date.now();
        if ((last.get(msg) ?? 0) + 1000 < now) {
            last.set(msg, now);
            log(`redis ${label} error: ${msg}`);
        }
    });
    return client;
}

// Makes these methods of `client` never throw and never reject: the adapters call publish,
// (s)subscribe and (s)unsubscribe without handling the promise (classic) or only partly
// (sharded); a failure is logged and resolves to 0.
function guardCalls(client, methods) {
    for (const method of methods) {
        const original = client[method];
        if (typeof original !== "function") continue;
        client[method] = function (...args) {
            let result;
            try {
                result = original.apply(this, args);
            } catch (e) {
                log(`${method} threw: ${e?.message || e}`);
                return Promise.resolve(0);
            }
            return Promise.resolve(result).catch((e) => {
                log(`${method} ${JSON.stringify(String(args[0])).slice(0, 80)} failed: ${e?.message || e}`);
                return 0;
            });
        };
    }
}

let pub;
let sub;
if (opt["redis-sharded"]) {
    pub = createCluster({
        rootNodes: [{ url: opt.redis }],
        defaults: { socket: { reconnectStrategy } },
    });
    sub = pub.duplicate();
} else {
    pub = createClient({ url: opt.redis, socket: { reconnectStrategy } });
    sub = pub.duplicate();
}
for (const client of opt.unguarded ? [] : [pub, sub]) {
    guardCalls(client, ["publish", "PUBLISH", "sPublish", "SPUBLISH",
        "subscribe", "SUBSCRIBE", "pSubscribe", "PSUBSCRIBE", "sSubscribe", "SSUBSCRIBE",
        "unsubscribe", "UNSUBSCRIBE", "pUnsubscribe", "PUNSUBSCRIBE", "sUnsubscribe", "SUNSUBSCRIBE"]);
}
if (!opt.unguarded) {
    quietErrors(pub, "pub");
    quietErrors(sub, "sub");
}
await Promise.all([pub.connect(), sub.connect()]);

// ------------------------------------------------------------------ the guarded adapter

// Message handlers of RedisAdapter (classic) and ShardedRedisAdapter/ClusterAdapter (sharded);
// the adapters look them up on `this` when a message comes, so replacing them on the instance
// covers every message.
const HANDLERS = ["onmessage", "onrequest", "onresponse", "onRawMessage", "onMessage", "onResponse"];

function guardAdapter(adapter) {
    for (const name of HANDLERS) {
        const original = adapter[name];
        if (typeof original !== "function") continue;
        adapter[name] = function (...args) {
            const report = (e) => log(`adapter.${name} dropped a message: ${e?.message || e}`);
            try {
                const result = original.apply(this, args);
                if (result && typeof result.then === "function") return result.catch(report);
                return result;
            } catch (e) {
                report(e);
                return undefined;
            }
        };
    }
    // socket.io's emitWithAck calls serverCount().then() with no catch: during an outage it
    // would reject unhandled. Count this node alone instead (and say so).
    const serverCount = adapter.serverCount;
    adapter.serverCount = function () {
        return Promise.resolve()
            .then(() => serverCount.call(this))
            .catch((e) => {
                log(`serverCount failed (${e?.message || e}): counting this node alone`);
                return 1;
            });
    };
    return adapter;
}

const inner = opt["redis-sharded"]
    ? createShardedAdapter(pub, sub, { channelPrefix: opt.key })
    : createAdapter(pub, sub, { key: opt.key });

// socket.io calls `new Adapter(nsp)`: a plain function that returns an object gives that object.
function GuardedAdapter(nsp) {
    return opt.unguarded ? inner(nsp) : guardAdapter(inner(nsp));
}

// ------------------------------------------------------------------ the server

const httpServer = http.createServer();
const io = new Server(httpServer, {
    adapter: GuardedAdapter,
    cors: { origin: "*" },
});

// Server-side "ping" from another node (serverSideEmitWithAck): answer with our name.
io.on("ping", (cb) => {
    if (typeof cb === "function") cb(NAME);
});

const byString = (a, b) => {
    const x = typeof a === "string" ? a : JSON.stringify(a);
    const y = typeof b === "string" ? b : JSON.stringify(b);
    return x < y ? -1 : x > y ? 1 : 0;
};
const sorted = (list) => [...(list ?? [])].sort(byString);

io.on("connection", (socket) => {
    // Registers a cluster event whose result (or {error}) goes to the event's ack.
    const answer = (event, fn) => {
        socket.on(event, async (...args) => {
            const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
            let result;
            try {
                result = await fn(...args);
            } catch (e) {
                result = { error: e?.message || String(e) };
            }
            if (ack) ack(result);
        });
    };

    answer("whoami", () => NAME);
    answer("join", (room) => {
        socket.join(room);
        return "ok";
    });
    answer("to-room", (room, event, ...args) => {
        io.to(room).emit(event, ...args);
        return "ok";
    });
    answer("others-in-room", (room, event, ...args) => {
        socket.to(room).emit(event, ...args);
        return "ok";
    });
    answer("fetch-sockets", async (room) => {
        const sockets = await io.in(room).fetchSockets();
        return sockets
            .map((s) => ({ id: s.id, rooms: sorted(s.rooms) }))
            .sort((a, b) => byString(a.id, b.id));
    });
    answer("sockets-join", (room, newRoom) => {
        io.in(room).socketsJoin(newRoom);
        return "ok";
    });
    answer("sockets-leave", (room, oldRoom) => {
        io.in(room).socketsLeave(oldRoom);
        return "ok";
    });
    answer("disconnect-room", (room) => {
        io.in(room).disconnectSockets(true);
        return "ok";
    });
    // Node has no io.timeout(ms).serverSideEmitWithAck(): its timeout is the adapter's (5 s).
    answer("server-side-emit", async () => {
        try {
            return sorted(await io.serverSideEmitWithAck("ping"));
        } catch (e) {
            return sorted(e?.responses);
        }
    });
    answer("broadcast-with-ack", async (room) => {
        try {
            return sorted(await io.to(room).timeout(1000).emitWithAck("question"));
        } catch (e) {
            return sorted(e?.responses);
        }
    });
    answer("broadcast-with-binary-ack", async (room) => {
        let responses;
        try {
            responses = await io.to(room).timeout(1000).emitWithAck("binary-question");
        } catch (e) {
            responses = e?.responses ?? [];
        }
        return sorted(responses.map((r) => (Buffer.isBuffer(r) ? r.toString() : { "not bytes": r })));
    });
    answer("all-rooms", async () => {
        const adapter = io.of("/").adapter;
        if (typeof adapter.allRooms !== "function") {
            throw new Error(`${adapter.constructor.name} has no allRooms()`);
        }
        return sorted(await adapter.allRooms());
    });
});

const [host, port] = (() => {
    const i = opt.listen.lastIndexOf(":");
    return [opt.listen.slice(0, i), Number(opt.listen.slice(i + 1))];
})();
httpServer.listen(port, host, () => {
    const addr = httpServer.address();
    console.log(`listening on ${addr.address}:${addr.port}`);
    log(`adapter ${io.of("/").adapter.constructor.name} uid ${io.of("/").adapter.uid}`);
});

// SIGTERM: close the server and the redis clients; whatever hangs is cut after a second.
const shutdown = async () => {
    closing = true;
    setTimeout(() => process.exit(0), 1000).unref();
    io.close();
    await Promise.allSettled([pub, sub].map((c) => (c.close ?? c.quit).call(c)));
    process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
