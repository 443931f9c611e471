// One Node socket.io 4.8 node with @socket.io/redis-streams-adapter 0.3 and connection state
// recovery, answering what the recovery tests ask of every node on "/":
//   whoami → ack the node name; join room → ack "ok"; to-room (room, event, ...args) →
//   io.to(room).emit(event, ...args), ack "ok"; emit-all (event, ...args) → io.emit(...), ack
//   "ok"; my-state → ack { id, rooms (sorted), recovered }.
//
//   node streams-node.mjs --listen 127.0.0.1:0 --redis redis://127.0.0.1:6379 --recovery-ms N --node NAME
//
// Prints "listening on 127.0.0.1:PORT" once it accepts connections.

import http from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";

const { values: opt } = parseArgs({
    options: {
        listen: { type: "string", default: "127.0.0.1:0" },
        redis: { type: "string" },
        "recovery-ms": { type: "string", default: "120000" },
        node: { type: "string", default: `node-${process.pid}` },
    },
    strict: true,
});
const log = (...args) => console.error(`streams-node[${opt.node}]:`, ...args);
process.on("unhandledRejection", (e) => log("unhandled rejection:", e?.message ?? e));
process.on("uncaughtException", (e) => log("uncaught exception:", e?.message ?? e));

const redis = createClient({ url: opt.redis });
redis.on("error", (e) => log("redis:", e.message));
await redis.connect();

const httpServer = http.createServer();
const io = new Server(httpServer, {
    adapter: createAdapter(redis),
    connectionStateRecovery: { maxDisconnectionDuration: Number(opt["recovery-ms"]), skipMiddlewares: true },
    pingInterval: 300,
    pingTimeout: 200,
    cors: { origin: "*" },
});

io.on("connection", (socket) => {
    const ack = (cb, value) => typeof cb === "function" && cb(value);
    socket.on("whoami", (cb) => ack(cb, opt.node));
    socket.on("join", (room, cb) => {
        socket.join(room);
        ack(cb, "ok");
    });
    socket.on("to-room", (room, event, ...rest) => {
        const cb = typeof rest[rest.length - 1] === "function" ? rest.pop() : undefined;
        io.to(room).emit(event, ...rest);
        ack(cb, "ok");
    });
    socket.on("emit-all", (event, ...rest) => {
        const cb = typeof rest[rest.length - 1] === "function" ? rest.pop() : undefined;
        io.emit(event, ...rest);
        ack(cb, "ok");
    });
    socket.on("my-state", (cb) => ack(cb, { id: socket.id, rooms: [...socket.rooms].sort(), recovered: socket.recovered }));
});

const [host, port] = opt.listen.split(":");
httpServer.listen(Number(port), host, () => {
    const a = httpServer.address();
    console.log(`listening on ${a.address}:${a.port}`);
});
process.on("SIGTERM", () => {
    io.close();
    redis.quit().catch(() => {}).finally(() => process.exit(0));
});
