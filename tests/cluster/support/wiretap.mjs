// What went over Redis during a test run, for reading when a test fails: `redis-cli MONITOR` on
// each Redis port, written to target/cluster-logs/<tag>wire-<port>.log. MONITOR shows every
// command with its arguments (PUBLISH/SPUBLISH payloads escaped, SUBSCRIBE/SSUBSCRIBE/PUBSUB
// too), on a cluster per master. Stopped with the rest by support/procs.mjs.

import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { track } from "./procs.mjs";
import { LOG_DIR } from "./fleet.mjs";

export function startWiretap(ports, tag = "") {
    fs.mkdirSync(LOG_DIR, { recursive: true });
    for (const old of fs.readdirSync(LOG_DIR)) {
        if (old.startsWith(`${tag}wire-`)) fs.rmSync(path.join(LOG_DIR, old), { force: true });
    }
    const taps = ports.map((port) => {
        const file = path.join(LOG_DIR, `${tag}wire-${port}.log`);
        const out = fs.openSync(file, "w");
        const proc = spawn(process.env.REDIS_CLI || "redis-cli", ["-h", "127.0.0.1", "-p", String(port), "monitor"], {
            stdio: ["ignore", out, out],
        });
        fs.closeSync(out);
        proc.on("error", () => {}); // no redis-cli: no wire log, the tests go on
        track(proc, `monitor:${port}`);
        return { proc, file };
    });
    return {
        files: taps.map((t) => t.file),
        stop() {
            for (const t of taps) {
                if (t.proc.exitCode === null && t.proc.signalCode === null) t.proc.kill("SIGTERM");
            }
        },
    };
}
