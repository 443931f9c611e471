// The child processes this test process started (redis-server, fleet nodes, redis-cli), so that
// they die with it: on a normal exit, on a failed test, on SIGTERM from `timeout` or on ^C.
// Only these PIDs are ever signalled. The temporary directories made for them go too.

import fs from "node:fs";

const children = new Map(); // ChildProcess -> label
const tempDirs = new Set();

export function trackDir(dir) {
    tempDirs.add(dir);
}

export function untrackDir(dir) {
    tempDirs.delete(dir);
}

export function track(child, label) {
    children.set(child, label);
    child.once("exit", () => children.delete(child));
}

export function untrack(child) {
    children.delete(child);
}

export function killAll() {
    for (const child of children.keys()) {
        if (child.exitCode === null && child.signalCode === null) {
            try {
                child.kill("SIGKILL");
            } catch {
                // already gone
            }
        }
    }
    children.clear();
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
    tempDirs.clear();
}

process.on("exit", killAll);
for (const [sig, code] of [["SIGTERM", 143], ["SIGINT", 130], ["SIGHUP", 129]]) {
    process.on(sig, () => {
        killAll();
        process.exit(code);
    });
}
