// The Node socket.io peer of the benchmarks: the same events as `hunchensocket-bench serve-io`.
//
//   node --expose-gc server.js [PORT]   prints "listening on 127.0.0.1:PORT" once ready
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

const port = Number(process.argv[2] || 0);
httpServer.listen(port, "127.0.0.1", () => {
  const addr = httpServer.address();
  console.log(`listening on ${addr.address}:${addr.port}`);
});

process.on("SIGTERM", () => process.exit(0));
