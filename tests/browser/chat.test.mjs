// The chat example in a real browser: Debian's Chromium, driven by playwright-core.
//
//   CHAT_BIN=target/release/chat node --test tests/browser/chat.test.mjs
//
// Builds nothing: CHAT_BIN (default target/release/chat from the repo root) is started on a free
// loopback port. CHAT_CLIENT_JS=PATH runs it with `--client-js PATH` (another Socket.IO client
// than the bundled one, to compare). CHROMIUM overrides /usr/bin/chromium. A screenshot of the
// second page goes to target/artifacts/chat.png (and
// chat-narrow.png, on a phone-sized viewport) (CHAT_SCREENSHOT_DIR overrides the folder).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CHAT_BIN = resolve(ROOT, process.env.CHAT_BIN || "target/release/chat");
const ARTIFACTS = resolve(ROOT, process.env.CHAT_SCREENSHOT_DIR || "target/artifacts");
const WAIT = 5000; // every wait on the page

let server;
let serverLog = "";
let base;
let browser;
const pageErrors = [];

/** Starts the chat server (on a free port by default); resolves with its base URL. */
function startServer(listen = "127.0.0.1:0") {
  const args = ["--listen", listen];
  serverLog = "";
  if (process.env.CHAT_CLIENT_JS) args.push("--client-js", resolve(process.env.CHAT_CLIENT_JS));
  server = spawn(CHAT_BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`chat did not start in 10 s:\n${serverLog}`)), 10_000);
    const onData = (chunk) => {
      serverLog += chunk;
      const m = /listening on (\S+)/.exec(serverLog);
      if (m) {
        clearTimeout(timer);
        ok(`http://${m[1]}`);
      }
    };
    server.stdout.on("data", onData);
    server.stderr.on("data", (chunk) => { serverLog += chunk; });
    server.on("error", (e) => { clearTimeout(timer); fail(e); });
    server.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`chat exited (${code}) before listening:\n${serverLog}`));
    });
  });
}

/** A new page (its own browser context: its own storage) in the chat as `name`. */
async function openChat(name) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => pageErrors.push(`${name}: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") pageErrors.push(`${name} console: ${m.text()}`); });
  page.on("response", (r) => { if (r.status() >= 400) pageErrors.push(`${name}: ${r.status()} for ${r.url()}`); });
  await page.goto(`${base}/?name=${encodeURIComponent(name)}`);
  try {
    await page.locator("#status[data-state=connected]").waitFor();
    await page.locator("#room-list .room.current:not(.joining)").waitFor();
  } catch (e) {
    throw new Error(`${name}'s page did not connect and join #lobby within ${WAIT} ms; ` +
      `page errors: ${JSON.stringify(pageErrors)}; server output:\n${serverLog}`, { cause: e });
  }
  return page;
}

const members = (page) => page.locator("#members .member");

before(async () => {
  base = await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
    timeout: 20_000,
  });
});

/** Stops the server with SIGTERM (SIGKILL after 3 s); resolves with its exit code or signal. */
async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return server?.exitCode;
  const exited = new Promise((ok) => server.once("exit", (code, signal) => ok(code ?? signal)));
  server.kill("SIGTERM");
  const timer = setTimeout(() => server.kill("SIGKILL"), 3000);
  const result = await exited;
  clearTimeout(timer);
  return result;
}

after(async () => {
  await browser?.close().catch(() => {});
  await stopServer();
});

let alice;
let bob;

test("two pages in the lobby see each other", async () => {
  alice = await openChat("alice");
  bob = await openChat("bob");
  assert.equal(await bob.locator("#room-title").textContent(), "#lobby");
  await members(bob).filter({ hasText: "alice" }).waitFor();
  await members(alice).filter({ hasText: "bob" }).waitFor();
  await bob.locator("#members .member.me", { hasText: "bob" }).waitFor();
  assert.equal(await bob.locator("#member-count").textContent(), "2");
});

test("a message from one page reaches the other, and is ticked when acked", async () => {
  const text = "hello <b>bob</b> & co";
  await alice.locator("#text").fill(text);
  await alice.locator("#text").press("Enter");
  const received = bob.locator("#messages .message", { hasText: "hello" });
  await received.waitFor();
  // Shown as text, never as HTML.
  assert.equal(await received.locator(".text").textContent(), text);
  assert.equal(await received.locator(".from").textContent(), "alice");
  assert.equal(await bob.locator("#messages b").count(), 0);
  const mine = alice.locator("#messages .message.mine", { hasText: "hello" });
  await mine.locator(".tick", { hasText: "✓" }).waitFor();
  assert.equal(await mine.getAttribute("data-state"), "sent");
});

test("typing in one page shows in the other", async () => {
  await bob.locator("#text").pressSequentially("hi ali", { delay: 20 });
  await alice.locator("#typing", { hasText: "bob is typing" }).waitFor();
  await bob.locator("#text").press("Enter");
  await alice.locator("#messages .message", { hasText: "hi ali" }).waitFor();
  // Cleared by the message itself.
  await alice.locator("#typing:empty").waitFor();
});

test("a name change shows in the others' presence list, and survives a reconnect", async () => {
  await bob.locator("#name").fill("bobby");
  await bob.locator("#name").press("Enter");
  await members(alice).filter({ hasText: "bobby" }).waitFor();
  await bob.locator("#members .member.me", { hasText: "bobby" }).waitFor();
  // An empty name is put back at once; one the server refuses (too long) after its answer.
  await bob.locator("#name").fill("   ");
  await bob.locator("#name").press("Enter");
  assert.equal(await bob.locator("#name").inputValue(), "bobby");
  // (The input holds 24 characters at most: lift that, as a page that skips it would.)
  await bob.locator("#name").evaluate((input) => input.removeAttribute("maxlength"));
  await bob.locator("#name").fill("b".repeat(30));
  await bob.locator("#name").press("Enter");
  await bob.locator("#notice", { hasText: "Cannot rename: the name is too long" }).waitFor();
  assert.equal(await bob.locator("#name").inputValue(), "bobby");
});

test("a page joining later gets the history replayed", async () => {
  const carol = await openChat("carol");
  await carol.locator("#messages .message", { hasText: "hello <b>bob</b> & co" }).waitFor();
  await carol.locator("#messages .message", { hasText: "hi ali" }).waitFor();
  await members(bob).filter({ hasText: "carol" }).waitFor();
  // A second room, joined from the sidebar.
  await carol.locator("#join-name").fill("Rust");
  await carol.locator("#join-name").press("Enter");
  await carol.locator("#room-list .room.current:not(.joining)", { hasText: "#rust" }).waitFor();
  assert.equal(await carol.locator("#member-count").textContent(), "1");
  await carol.context().close();
  await expectGone(bob, "carol");
});

test("a page cut off the network gets the messages sent meanwhile, once each, on the same socket", async () => {
  const before = await bob.evaluate(() => document.body.dataset.socketId);
  const cdp = await bob.context().newCDPSession(bob);
  await cdp.send("Network.enable");
  const network = (offline) => cdp.send("Network.emulateNetworkConditions",
    { offline, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  const errorsBefore = pageErrors.length;
  await network(true);
  await bob.locator("#status[data-state=reconnecting]").waitFor({ timeout: 60_000 });
  const texts = ["while away 1", "while away 2", "while away 3"];
  for (const text of texts) {
    await alice.locator("#text").fill(text);
    await alice.locator("#text").press("Enter");
    await alice.locator("#messages .message.mine", { hasText: text }).locator(".tick", { hasText: "✓" }).waitFor();
  }
  await network(false);
  await bob.locator("#status[data-state=connected]").waitFor({ timeout: 15_000 });
  // Reconnection attempts while offline fail, and Chromium logs each one: expected here.
  const offline = /ERR_INTERNET_DISCONNECTED|WebSocket connection to .* failed|Failed to load resource/;
  const during = pageErrors.splice(errorsBefore);
  pageErrors.push(...during.filter((e) => !(e.startsWith("bob") && offline.test(e))));
  assert.equal(await bob.evaluate(() => document.body.dataset.recovered), "true", "recovered");
  assert.equal(await bob.evaluate(() => document.body.dataset.socketId), before, "the same socket");
  for (const text of texts) {
    await bob.locator("#messages .message", { hasText: text }).waitFor();
  }
  // Once each, in the order they were sent.
  const shown = await bob.locator("#messages .message .text").allTextContents();
  assert.deepEqual(shown.filter((t) => t.startsWith("while away")), texts);
  await cdp.detach();
});

test("screenshots of the second page, wide and narrow", async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  if (await bob.locator("#notice").isVisible()) await bob.locator("#notice").click();
  const wide = await bob.screenshot({ path: join(ARTIFACTS, "chat.png") });
  assert.deepEqual(pngSize(wide), [1100, 700], "the wide screenshot");
  // Narrow, the page still shows what matters: the messages and where to type.
  await bob.setViewportSize({ width: 390, height: 700 });
  const narrow = await bob.screenshot({ path: join(ARTIFACTS, "chat-narrow.png") });
  assert.deepEqual(pngSize(narrow), [390, 700], "the narrow screenshot");
  for (const part of ["#messages", "#text"]) {
    const box = await bob.locator(part).boundingBox();
    assert.ok(box && box.width > 0 && box.height > 0, `${part} is shown on a narrow screen`);
    assert.ok(box.x >= 0 && box.x + box.width <= 390 + 1, `${part} fits the narrow screen: ${JSON.stringify(box)}`);
  }
  assert.ok(wide.length > 10_000 && narrow.length > 5_000, "screenshots with something in them");
  await bob.setViewportSize({ width: 1100, height: 700 });
});

/** Width and height of a PNG, from its IHDR chunk. */
function pngSize(png) {
  assert.equal(png.subarray(1, 4).toString("latin1"), "PNG", "a PNG");
  return [png.readUInt32BE(16), png.readUInt32BE(20)];
}

test("when a page closes, the others' presence list drops it", async () => {
  await alice.context().close();
  await expectGone(bob, "alice");
  assert.equal(await bob.locator("#member-count").textContent(), "1");
});

test("the page shows a lost connection, reconnects and joins its rooms again", async () => {
  const listen = new URL(base).host;
  assert.equal(await stopServer(), 0, `graceful shutdown on SIGTERM; server output:\n${serverLog}`);
  await bob.locator("#status[data-state=reconnecting]").waitFor();
  await startServer(listen);
  // socket.io-client waits up to ~5 s between attempts: allow two of them.
  await bob.locator("#status[data-state=connected]").waitFor({ timeout: 12_000 });
  await bob.locator("#room-list .room.current:not(.joining)", { hasText: "#lobby" }).waitFor();
  // The name the page has now is the one it connects with again.
  await bob.locator("#members .member.me", { hasText: "bobby" }).waitFor();
  await bob.locator("#text").fill("back again");
  await bob.locator("#text").press("Enter");
  await bob.locator("#messages .message.mine", { hasText: "back again" }).locator(".tick", { hasText: "✓" }).waitFor();
});

test("no errors on the pages", () => {
  assert.deepEqual(pageErrors, []);
});

async function expectGone(page, name) {
  await page.waitForFunction(
    (n) => ![...document.querySelectorAll("#members .member")].some((li) => li.textContent.startsWith(n)),
    name,
    { timeout: WAIT },
  );
}
