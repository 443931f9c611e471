// The conformance example server for the tests: start (on a given port, for restarts), stop,
// signal (SIGSTOP/SIGCONT), and bounded waits. Binary from $CONFORMANCE_BIN, default
// ../target/release/conformance relative to js-client/.

import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { withTimeout } from "../../tests/support/wait.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(HERE, "..", process.env.CONFORMANCE_BIN || "../target/release/conformance");
// The bounded waits live in tests/support/wait.mjs, shared with the Socket.IO peer suite.
export { WAIT_MS, clearTimers, next, sleep, withTimeout } from "../../tests/support/wait.mjs";

let child = null;
let log = "";
export let baseUrl = "";

// Starts the server on 127.0.0.1:port (0: any free port; the same port again after a restart).
export async function start(port = 0) {
    log = "";
    const proc = spawn(BIN, ["--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    const listening = new Promise((resolve, reject) => {
        const onData = (chunk) => {
            log += chunk.toString();
            const m = /listening on (\S+)/.exec(log);
            if (m) resolve(m[1]);
        };
        proc.stdout.on("data", onData);
        proc.stderr.on("data", onData);
        proc.once("error", reject);
        proc.once("exit", (code, signal) =>
            reject(new Error(`conformance exited (${code ?? signal}) before listening:\n${log}`)));
    });
    baseUrl = `http://${await withTimeout(listening, `"listening on" from ${BIN}`, 10000)}`;
    return baseUrl;
}

export const port = () => Number(new URL(baseUrl).port);

export async function stop() {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, "exit");
    proc.kill("SIGCONT"); // in case a test left it stopped
    proc.kill("SIGTERM");
    try {
        await withTimeout(exited, "conformance exit after SIGTERM", 2000);
    } catch {
        proc.kill("SIGKILL");
        await withTimeout(once(proc, "exit"), "conformance exit after SIGKILL", 2000).catch(() => {});
    }
}

export const signal = (sig) => child.kill(sig);

// If this process is ended early (a SIGTERM from `timeout`, ^C), the server goes with it.
function killNow() {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}
process.on("exit", killNow);
for (const sig of ["SIGTERM", "SIGINT"]) {
    process.on(sig, () => {
        killNow();
        process.exit(128 + (sig === "SIGTERM" ? 15 : 2));
    });
}
