// The test's handle on a driver.mjs process in a namespace: requests over its stdin, answers
// from its stdout.

import { createInterface } from "node:readline";
import { join } from "node:path";
import { NETEM_DIR, kill, start } from "./net.mjs";

const DRIVER = join(NETEM_DIR, "driver.mjs");

export class Driver {
    // Starts driver.mjs in namespace `ns` and waits until it is ready.
    static async start(ns, label) {
        const child = start(ns, process.execPath, [DRIVER], { cwd: NETEM_DIR });
        const driver = new Driver(child, label);
        await driver.ready;
        return driver;
    }

    constructor(child, label) {
        this.child = child;
        this.label = label;
        this.next = 1;
        this.waiting = new Map();
        this.stderr = "";
        child.stderr.on("data", (d) => {
            this.stderr = (this.stderr + d).slice(-4000);
        });
        let markReady;
        this.ready = new Promise((resolve, reject) => {
            markReady = resolve;
            child.once("exit", (code, signal) => reject(new Error(`${label}: driver exited (${code ?? signal}) ${this.stderr}`)));
        });
        this.ready.catch(() => {});
        createInterface({ input: child.stdout }).on("line", (line) => {
            let msg;
            try {
                msg = JSON.parse(line);
            } catch {
                return;
            }
            if (msg.ready) return markReady();
            const w = this.waiting.get(msg.id);
            if (!w) return;
            this.waiting.delete(msg.id);
            clearTimeout(w.timer);
            if (msg.ok) w.resolve(msg.value);
            else w.reject(new Error(`${label}: ${msg.error}`));
        });
        child.on("exit", (code, signal) => {
            for (const w of this.waiting.values()) {
                clearTimeout(w.timer);
                w.reject(new Error(`${label}: driver exited (${code ?? signal}) ${this.stderr}`));
            }
            this.waiting.clear();
        });
    }

    // Sends one request; rejects after `within` ms without an answer.
    request(op, args = {}, within = 30000) {
        const id = this.next++;
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                this.waiting.delete(id);
                reject(new Error(`${this.label}: ${op} unanswered after ${within} ms`));
            }, within);
            this.waiting.set(id, { resolve, reject, timer });
            this.child.stdin.write(JSON.stringify({ id, op, ...args }) + "\n");
        });
    }

    connect(name, url, opts = {}, within = 5000) {
        return this.request("connect", { name, url, opts, within }, within + 1000);
    }

    listen(name, event, keep = "args") {
        return this.request("listen", { name, event, keep });
    }

    call(name, event, args = [], within = 3000) {
        return this.request("call", { name, event, args, within }, within + 2000);
    }

    state(name) {
        return this.request("state", { name });
    }

    burst(name, opts) {
        return this.request("burst", { name, ...opts }, 120000);
    }

    close(name) {
        return this.request("close", { name });
    }

    // Kills the driver (SIGKILL: its sockets get no chance to say goodbye).
    kill() {
        kill(this.child);
    }

    stop() {
        this.child.stdin.end();
        kill(this.child, "SIGTERM");
    }
}
