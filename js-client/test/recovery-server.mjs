// A Node socket.io 4.8 server with connection state recovery, for test/recovery.test.mjs (the
// reference that the Rust conformance server's --recovery-ms mode is checked against).
//
//   node test/recovery-server.mjs [--listen 127.0.0.1:0] [--recovery-ms 5000]
//
// Prints "listening on 127.0.0.1:PORT" once it accepts connections. Events on namespace "/",
// each acked when the client asks for an ack:
//   to-room (room, event, ...args)  io.to(room).emit(event, ...args), ack "ok" (a socket id as
//                                   the room reaches that socket alone)
//   emit-all (event, ...args)       io.emit(event, ...args), ack "ok"
//   join (room)                     socket.join(room), ack "ok"
//   my-state ()                     ack { id, rooms (sorted), recovered }
//   ack-on-second-try (key)         the first delivery of `key` is not acked; each later one is
//                                   acked with the number of deliveries of `key` so far
//   cut-me ()                       destroys the TCP connection under this socket's transport,
//                                   without a close frame or close packet (no ack)

import { createServer } from "node:http";
import { Server } from "socket.io";

function flag(name, fallback) {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : fallback;
}
const [host, port] = flag("--listen", "127.0.0.1:0").split(/:(?=\d+$)/);
const recoveryMs = Number(flag("--recovery-ms", "5000"));

const io = new Server({
    pingInterval: 500,
    pingTimeout: 1000,
    connectionStateRecovery: { maxDisconnectionDuration: recoveryMs, skipMiddlewares: true },
});

const deliveries = new Map(); // ack-on-second-try: key → how many times it arrived
const reply = (args) => (typeof args.at(-1) == "function" ? args.pop() : () => {});

io.on("connection", (socket) => {
    socket.on("to-room", (room, event, ...args) => {
        const ack = reply(args);
        io.to(room).emit(event, ...args);
        ack("ok");
    });
    socket.on("emit-all", (event, ...args) => {
        const ack = reply(args);
        io.emit(event, ...args);
        ack("ok");
    });
    socket.on("join", (room, ack) => {
        socket.join(room);
        ack?.("ok");
    });
    socket.on("my-state", (ack) => ack({ id: socket.id, rooms: [...socket.rooms].sort(), recovered: socket.recovered }));
    socket.on("ack-on-second-try", (key, ack) => {
        const n = (deliveries.get(key) ?? 0) + 1;
        deliveries.set(key, n);
        if (n > 1) ack?.(n);
    });
    socket.on("cut-me", () => {
        const t = socket.conn.transport;
        // WebSocket: the TCP socket under the ws connection. Polling: the pending GET's socket
        // (the event came in a POST; the client keeps a GET open, so there is one, or soon).
        if (t.name === "websocket") return t.socket._socket.destroy();
        let tries = 0;
        const cut = () => (t.req ? t.req.socket.destroy() : ++tries < 100 && setTimeout(cut, 10));
        cut();
    });
});

const http = createServer();
io.attach(http);
http.listen(Number(port), host, () => console.log(`listening on ${host}:${http.address().port}`));
