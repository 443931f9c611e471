// "io server disconnect": the conformance server cannot disconnect a socket, so a scripted
// Engine.IO polling server (node:http, loopback) plays the server's side: it accepts the session
// and the CONNECT of "/", then sends DISCONNECT ("41"). Both clients, polling only.
//
//   node --test test/kick.test.mjs      (from js-client/)

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, it } from "node:test";
import * as ours from "../client.js";
import * as official from "socket.io-client";
import { next, sleep, withTimeout } from "./server.mjs";

let srv, url;
const queues = new Map(); // sid → packets waiting for the next GET
let n = 0;

before(async () => {
    srv = http.createServer(async (req, res) => {
        const q = new URL(req.url, "http://x").searchParams;
        const sid = q.get("sid");
        res.setHeader("content-type", "text/plain; charset=UTF-8");
        if (!sid) {
            const id = `s${++n}`;
            queues.set(id, []);
            const open = { sid: id, upgrades: [], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1e6 };
            return res.end("0" + JSON.stringify(open));
        }
        const queue = queues.get(sid);
        if (req.method === "POST") {
            let body = "";
            for await (const chunk of req) body += chunk;
            for (const p of body.split("\x1e"))
                if (p.startsWith("40")) queue.push(`40{"sid":"ns-${sid}"}`, "41"); // accept, then kick
            return res.end("ok");
        }
        for (let i = 0; i < 100 && !queue.length; i++) await sleep(10); // a short long-poll
        res.end(queue.length ? queue.splice(0).join("\x1e") : "6");
    });
    await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${srv.address().port}`;
});
after(() => {
    srv.closeAllConnections();
    srv.close();
});

for (const [name, lib] of Object.entries({ ours, official })) {
    it(`${name}: a DISCONNECT from the server → 'io server disconnect', and no reconnection`, async () => {
        const socket = lib.io(url, { forceNew: true, transports: ["polling"], reconnectionDelay: 10 });
        try {
            const gone = next(socket, "disconnect"); // 40 and 41 may come in one poll
            await next(socket, "connect");
            const [reason] = await gone;
            assert.equal(reason, "io server disconnect");
            assert.equal(socket.connected, false);
            assert.equal(socket.active, false, "a socket the server disconnected does not come back");
            await sleep(100);
            assert.equal(socket.connected, false);
        } finally {
            socket.disconnect();
            socket.io.engine?.close();
        }
    });
}
