// The chat example as two processes on one Redis, in a real browser: one page on each process,
// and what one page does reaches the other (presence, messages, history, leaving).
//
//   CHAT_BIN=target/release/chat node --test tests/browser/chat-cluster.test.mjs
//
// Starts its own redis-server (Debian's) on a free loopback port and two CHAT_BIN processes
// with `--redis`; stops all three by PID. CHROMIUM overrides /usr/bin/chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CHAT_BIN = resolve(ROOT, process.env.CHAT_BIN || "target/release/chat");
const WAIT = 5000; // every wait on the page

const children = [];
let browser;
const pageErrors = [];
let logs = "";

/** A free loopback port. */
function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Starts `cmd args`, resolves when its output matches `ready` (10 s at most). */
function start(name, cmd, args, ready) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not start in 10 s:\n${out}`)), 10_000);
    const onData = (chunk) => {
      out += chunk;
      logs += `[${name}] ${chunk}`;
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        ok(m);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (e) => { clearTimeout(timer); fail(e); });
    child.on("exit", (code) => { clearTimeout(timer); fail(new Error(`${name} exited (${code}):\n${out}`)); });
  });
}

let nodes;

before(async () => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "chat-cluster-"));
  await start("redis", "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    /Ready to accept connections/);
  const redis = `redis://127.0.0.1:${port}/`;
  nodes = await Promise.all(["one", "two"].map(async (name) => {
    const [, addr] = await start(`chat-${name}`, CHAT_BIN,
      ["--listen", "127.0.0.1:0", "--redis", redis], /listening on (\S+)/);
    return `http://${addr}`;
  }));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
    timeout: 20_000,
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  for (const child of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((ok) => child.once("exit", ok));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  }
});

/** A new page on chat process `base`, in the lobby as `name`. */
async function openChat(base, name) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => pageErrors.push(`${name}: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") pageErrors.push(`${name} console: ${m.text()}`); });
  await page.goto(`${base}/?name=${encodeURIComponent(name)}`);
  try {
    await page.locator("#status[data-state=connected]").waitFor();
    await page.locator("#room-list .room.current:not(.joining)").waitFor();
  } catch (e) {
    throw new Error(`${name}'s page did not connect and join #lobby: ${JSON.stringify(pageErrors)}\n${logs}`, { cause: e });
  }
  return page;
}

const members = (page) => page.locator("#members .member");

let alice;
let bob;

test("a page on each process: each sees the other in the lobby", async () => {
  alice = await openChat(nodes[0], "alice");
  bob = await openChat(nodes[1], "bob");
  await members(bob).filter({ hasText: "alice" }).waitFor();
  await members(alice).filter({ hasText: "bob" }).waitFor();
  assert.equal(await bob.locator("#member-count").textContent(), "2");
});

test("messages cross between the processes, both ways, once each", async () => {
  await alice.locator("#text").fill("from alice on one");
  await alice.locator("#text").press("Enter");
  await bob.locator("#messages .message", { hasText: "from alice on one" }).waitFor();
  await bob.locator("#text").fill("from bob on two");
  await bob.locator("#text").press("Enter");
  await alice.locator("#messages .message", { hasText: "from bob on two" }).waitFor();
  // Both sent messages were acked by their own process (the delivery tick).
  await alice.locator("#messages .message.mine", { hasText: "from alice on one" })
    .locator(".tick", { hasText: "✓" }).waitFor();
  assert.equal(await bob.locator("#messages .message", { hasText: "from alice on one" }).count(), 1);
  assert.equal(await alice.locator("#messages .message", { hasText: "from bob on two" }).count(), 1);
});

test("a page joining later on the other process gets the history of both", async () => {
  const carol = await openChat(nodes[1], "carol");
  await carol.locator("#messages .message", { hasText: "from alice on one" }).waitFor();
  await carol.locator("#messages .message", { hasText: "from bob on two" }).waitFor();
  await members(alice).filter({ hasText: "carol" }).waitFor();
  await carol.context().close();
  await members(alice).filter({ hasText: "carol" }).waitFor({ state: "detached" });
});

test("when a page closes, the page on the other process drops it from presence", async () => {
  await bob.context().close();
  await members(alice).filter({ hasText: "bob" }).waitFor({ state: "detached" });
  assert.equal(await alice.locator("#member-count").textContent(), "1");
});

test("no errors on the pages", () => {
  assert.deepEqual(pageErrors, []);
});
