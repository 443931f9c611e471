// Network namespaces of the test's own, the links between them, and the processes run in
// them. Nothing here touches the host's own namespace: every address and qdisc is on an
// interface inside a namespace this module created, and cleanup() deletes them all.

import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
export const NETEM_DIR = join(HERE, "..");

// The prefix of this run's names: "hn" and our PID (interface names have 15 characters at
// most: "hn" + 7 digits + 3 leaves room).
const PREFIX = `hn${process.pid}`;

const namespaces = new Set();
const processes = new Set();

export function ip(...args) {
    return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

export function inNs(ns, cmd, ...args) {
    return execFileSync("ip", ["netns", "exec", ns, cmd, ...args], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
    });
}

// Why this machine cannot run the test, or null. Tries to create (and deletes) a namespace.
export function refusal() {
    if (process.platform !== "linux") return "network namespaces are Linux only";
    if (typeof process.getuid === "function" && process.getuid() !== 0) {
        return "not root: `ip netns add` needs CAP_SYS_ADMIN and CAP_NET_ADMIN";
    }
    const probe = `${PREFIX}-probe`;
    try {
        ip("netns", "add", probe);
    } catch (err) {
        return `\`ip netns add\` failed: ${String(err.stderr || err.message).trim()}`;
    }
    try {
        ip("-n", probe, "link", "set", "lo", "up");
    } catch (err) {
        return `cannot configure a namespace: ${String(err.stderr || err.message).trim()}`;
    } finally {
        try {
            ip("netns", "del", probe);
        } catch {
            // already gone
        }
    }
    return null;
}

// Deletes the namespaces of earlier runs that died without cleaning up (killed with SIGKILL):
// those named hnPID-... whose PID is no longer a running process.
export function sweep() {
    let names = [];
    try {
        names = ip("netns", "list").split("\n").map((l) => l.split(" ")[0]);
    } catch {
        return;
    }
    for (const name of names) {
        const m = /^hn(\d+)-/.exec(name);
        if (!m || Number(m[1]) === process.pid) continue;
        try {
            process.kill(Number(m[1]), 0);
            continue; // its run is still going
        } catch (err) {
            if (err.code !== "ESRCH") continue;
        }
        try {
            ip("netns", "del", name);
        } catch {
            // gone meanwhile
        }
    }
}

// A new namespace with its loopback up.
export function namespace(tag) {
    const name = `${PREFIX}-${tag}`;
    ip("netns", "add", name);
    namespaces.add(name);
    ip("-n", name, "link", "set", "lo", "up");
    return name;
}

// A veth pair between namespaces `server` and `client`, on 10.77.SUBNET.0/24: the server's end
// .1, the client's .2. Returns the interface names and addresses.
export function veth(server, client, subnet) {
    const s = `${PREFIX}s${subnet}`;
    const c = `${PREFIX}c${subnet}`;
    // Made inside the server's namespace, then one end moved: the host's never sees them.
    ip("-n", server, "link", "add", s, "type", "veth", "peer", "name", c);
    ip("-n", server, "link", "set", c, "netns", client);
    ip("-n", server, "addr", "add", `10.77.${subnet}.1/24`, "dev", s);
    ip("-n", client, "addr", "add", `10.77.${subnet}.2/24`, "dev", c);
    ip("-n", server, "link", "set", s, "up");
    ip("-n", client, "link", "set", c, "up");
    return { server, client, serverDev: s, clientDev: c, serverAddr: `10.77.${subnet}.1` };
}

// A point-to-point link between `server` and `client` on 10.77.SUBNET.1 and .2 whose packets
// impair.py (a userspace netem) forwards: two TUN devices made by that process in `client`'s
// namespace, one of them then moved into `server`'s. Returns the link with `profile(p)`, which
// sets the delay, loss and reordering and resolves with the relay's counters so far.
export async function tunLink(server, client, subnet) {
    const s = `${PREFIX}s${subnet}`;
    const c = `${PREFIX}c${subnet}`;
    const relay = start(client, "python3", [join(NETEM_DIR, "impair.py"), c, s]);
    let stderr = "";
    relay.stderr.on("data", (d) => (stderr += d));
    try {
        await waitLine(relay, (l) => l === "ready", 10000, "impair.py");
    } catch (err) {
        throw new Error(`${err.message}: ${stderr}`);
    }
    ip("-n", client, "link", "set", s, "netns", server);
    ip("-n", server, "addr", "add", `10.77.${subnet}.1`, "peer", `10.77.${subnet}.2`, "dev", s);
    ip("-n", client, "addr", "add", `10.77.${subnet}.2`, "peer", `10.77.${subnet}.1`, "dev", c);
    ip("-n", server, "link", "set", s, "up");
    ip("-n", client, "link", "set", c, "up");
    const answers = createInterface({ input: relay.stdout });
    const profile = (p) =>
        new Promise((resolve) => {
            answers.once("line", (line) => resolve(JSON.parse(line)));
            relay.stdin.write(JSON.stringify(p) + "\n");
        });
    return { server, client, serverDev: s, clientDev: c, serverAddr: `10.77.${subnet}.1`, relay, profile };
}

// The resident set of process `pid`, in bytes (VmRSS).
export function rss(pid) {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /VmRSS:\s+(\d+)/.exec(status);
    return kb ? Number(kb[1]) * 1024 : 0;
}

// Replaces the root qdisc of `dev` in `ns` (`spec`: the words after `root`), or removes it.
export function qdisc(ns, dev, spec) {
    if (spec) {
        inNs(ns, "tc", "qdisc", "replace", "dev", dev, "root", ...spec);
    } else {
        try {
            inNs(ns, "tc", "qdisc", "del", "dev", dev, "root");
        } catch {
            // none was set
        }
    }
}

// Drops every packet leaving `dev` (a FIFO of length 0: works on every kernel with tc, netem
// or not), or lets them through again.
export function blackhole(ns, dev, on) {
    qdisc(ns, dev, on ? ["pfifo", "limit", "0"] : null);
}

// Whether this kernel has sch_netem (many VM kernels are built without it).
export function kernelNetem(ns) {
    try {
        inNs(ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms");
        inNs(ns, "tc", "qdisc", "del", "dev", "lo", "root");
        return true;
    } catch {
        return false;
    }
}

// Starts `cmd args` in `ns`; kept to be killed by PID at cleanup. `ip netns exec` execs the
// command itself, so the PID is the command's.
export function start(ns, cmd, args, opts = {}) {
    const child = spawn("ip", ["netns", "exec", ns, cmd, ...args], {
        stdio: ["pipe", "pipe", "pipe"],
        ...opts,
    });
    processes.add(child);
    child.on("exit", () => processes.delete(child));
    return child;
}

// Resolves with the first stdout line of `child` that `match` accepts (rejects on exit or
// after `within` ms).
export function waitLine(child, match, within = 10000, label = "line") {
    return new Promise((resolve, reject) => {
        const rl = createInterface({ input: child.stdout });
        const done = (fn, v) => {
            clearTimeout(timer);
            rl.off("line", onLine);
            child.off("exit", onExit);
            fn(v);
        };
        const onLine = (line) => {
            const m = match(line);
            if (m) done(resolve, m);
        };
        const onExit = (code) => done(reject, new Error(`${label}: process exited (${code})`));
        const timer = setTimeout(() => done(reject, new Error(`${label}: nothing within ${within} ms`)), within);
        rl.on("line", onLine);
        child.on("exit", onExit);
    });
}

// Sends `signal` to a process we started and to its own children (the server runs under
// `timeout`, which would not pass a SIGKILL on).
export function kill(child, signal = "SIGKILL") {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    let children = [];
    try {
        children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    } catch {
        // no /proc entry: it is gone
    }
    for (const pid of [...children.map(Number), child.pid]) {
        try {
            process.kill(pid, signal);
        } catch {
            // already gone
        }
    }
}

// Kills every process this module started (by PID) and deletes every namespace it made
// (which removes their interfaces). Synchronous, so that an exit handler can run it too.
export function cleanup() {
    for (const child of processes) kill(child);
    processes.clear();
    for (const ns of namespaces) {
        try {
            ip("netns", "del", ns);
        } catch {
            // already gone
        }
    }
    namespaces.clear();
}

// Deletes one namespace now (its processes must be gone first).
export function dropNamespace(ns) {
    ip("netns", "del", ns);
    namespaces.delete(ns);
}

process.on("exit", cleanup);
for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, () => {
        cleanup();
        process.exit(130);
    });
}
