// Compile-time checks of client.d.ts (npx tsc --noEmit -p js-client): typed event maps, acks,
// emitWithAck, timeout(). Each @ts-expect-error must be an error, so a too-loose type fails too.

import io, { Manager, Socket, connect } from "../client.js";

interface ServerToClient {
    "message-back": (text: string, n: number) => void;
    auth: (data: Record<string, unknown>) => void;
    "server-ack": (a: string, cb: (answer: number) => void) => void;
}
interface ClientToServer {
    message: (text: string, n: number) => void;
    "message-with-ack": (text: string, cb: (echo: string) => void) => void;
    upload: (data: ArrayBuffer | Uint8Array) => void;
}

const socket: Socket<ServerToClient, ClientToServer> = io<ServerToClient, ClientToServer>("http://127.0.0.1:3000", {
    auth: (cb) => cb({ token: "abc" }),
    transports: ["websocket"],
    reconnectionDelayMax: 2000,
    ackTimeout: 1000,
    retries: 3,
});
const recovered: boolean = socket.recovered;
void recovered;

socket.on("message-back", (text, n) => {
    const s: string = text;
    const k: number = n;
    void s, k;
});
socket.on("server-ack", (a, cb) => cb(a.length));
socket.on("connect_error", (err) => console.log(err.message, err.data));
socket.on("disconnect", (reason) => {
    // @ts-expect-error: not a disconnect reason
    const r: "kicked" = reason;
    void r;
});

socket.emit("message", "hi", 1);
socket.emit("message-with-ack", "hi", (echo) => echo.toUpperCase());
socket.emit("upload", new Uint8Array([1, 2]));
// @ts-expect-error: n must be a number
socket.emit("message", "hi", "1");
// @ts-expect-error: unknown event
socket.emit("no-such-event");

async function acks() {
    const echo: string = await socket.emitWithAck("message-with-ack", "x");
    const timed: string = await socket.timeout(500).emitWithAck("message-with-ack", "x");
    socket.timeout(500).emit("message-with-ack", "x", (err, echo) => {
        const e: Error = err;
        const s: string = echo;
        void e, s;
    });
    // @ts-expect-error: the ack is a string, not a number
    const wrong: number = await socket.emitWithAck("message-with-ack", "x");
    void echo, timed, wrong;
}
void acks;

socket.volatile.emit("message", "maybe", 2);
socket.onAny((event, ...args) => console.log(event, args));
socket.io.on("reconnect", (attempt) => console.log(attempt + 1));
socket.io.engine.on("upgrade", (t) => console.log(t.name));

const manager = new Manager("http://127.0.0.1:3000", { reconnection: false });
const custom: Socket = manager.socket("/custom", { auth: { user: "u" } });
custom.emit("anything", 1, { a: [1] }, () => {});
manager.reconnectionDelay(500).timeout(1000);
const plain = connect({ forceNew: true, autoConnect: false });
plain.connect().disconnect();
