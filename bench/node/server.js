// The Node socket.io peer of the benchmarks: the same events as `hunchensocket-bench serve-io`.
//
//   node --expose-gc server.js [PORT] [--redis URL]   prints "listening on 127.0.0.1:PORT" once ready
//
// With --redis URL (or REDIS_URL in the environment), rooms and broadcasts span every server on
// that Redis: @socket.io/redis-adapter (classic pub/sub) over two `redis` clients, connected
// before the server listens.
//
// Events on "/":  echo(...args, ack) -> ack(...args);  echo-emit(...args) -> emit("echo", ...args);
// join(room, ack) -> join, ack("ok");  bcast(room, payload) -> to(room).emit("tick", payload);
// gc(ack) -> global.gc() when exposed, then ack("ok") (the harness reads RSS after that).
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end("not found\n");
});
const io = new Server(httpServer, { serveClient: false });

function split(args) {
  const last = args[args.length - 1];
  if (typeof last === "function") return [args.slice(0, -1), last];
  return [args, null];
}

io.on("connection", (socket) => {
  socket.on("echo", (...all) => {
    const [args, ack] = split(all);
    if (ack) ack(...args);
  });
  socket.on("echo-emit", (...all) => {
    const [args] = split(all);
    socket.emit("echo", ...args);
  });
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack("ok");
  });
  socket.on("bcast", (room, payload) => {
    io.to(room).emit("tick", payload);
  });
  socket.on("gc", (ack) => {
    if (typeof global.gc === "function") global.gc();
    if (typeof ack === "function") ack("ok");
  });
});

let port = 0;
let redisUrl = process.env.REDIS_URL || null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--redis") {
    redisUrl = argv[++i];
    if (!redisUrl) throw new Error("--redis needs a URL");
  } else {
    port = Number(argv[i]);
  }
}

async function useRedis(url) {
  const { createClient } = require("redis");
  const { createAdapter } = require("@socket.io/redis-adapter");
  const pubClient = createClient({ url });
  const subClient = pubClient.duplicate();
  for (const c of [pubClient, subClient]) {
    c.on("error", (err) => console.error(`redis: ${err.message}`));
  }
  await Promise.all([pubClient.connect(), subClient.connect()]);
  io.adapter(createAdapter(pubClient, subClient));
}

(redisUrl ? useRedis(redisUrl) : Promise.resolve())
  .then(() => {
    httpServer.listen(port, "127.0.0.1", () => {
      const addr = httpServer.address();
      console.log(`listening on ${addr.address}:${addr.port}`);
    });
  })
  .catch((err) => {
    console.error(`server: ${err.stack || err}`);
    process.exit(1);
  });

process.on("SIGTERM", () => process.exit(0));
