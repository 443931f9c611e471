// hunchensocket's Socket.IO client: one dependency-free ES module with socket.io-client's API
// (io, Manager, Socket), speaking Engine.IO v4 / Socket.IO v5 over fetch polling and WebSocket.
// Served by the server at /socket.io/client.js. Types: client.d.ts. Differences: README.md.

// ------------------------------------------------------------------ helpers

const isBin = (x) =>
  x instanceof ArrayBuffer || ArrayBuffer.isView(x) || (typeof Blob != "undefined" && x instanceof Blob);

// Bytes of an ArrayBuffer or a view, as base64 (polling carries binary packets as "b" + base64).
const toB64 = (x) => {
  let s = "";
  for (const c of new Uint8Array(x.buffer || x, x.byteOffset, x.byteLength)) s += String.fromCharCode(c);
  return btoa(s);
};
const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer;

// Binary values anywhere in `x` become placeholders; the values go to `bufs` (sent after the packet).
const deconstruct = (x, bufs) =>
  isBin(x)
    ? { _placeholder: true, num: bufs.push(x) - 1 }
    : Array.isArray(x)
      ? x.map((v) => deconstruct(v, bufs))
      : x && typeof x == "object" && !x.toJSON
        ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, deconstruct(v, bufs)]))
        : x;

// The reverse, in place; a placeholder without its attachment is a parse error.
const reconstruct = (x, bufs) => {
  if (x && typeof x == "object") {
    if (x._placeholder) {
      if (!(typeof x.num == "number" && x.num in bufs)) throw Error("bad placeholder");
      return bufs[x.num];
    }
    for (const k in x) x[k] = reconstruct(x[k], bufs);
  }
  return x;
};

const RESERVED = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

// ------------------------------------------------------------------ Emitter

// The event emitter under Manager, Socket and the Engine.IO connection.
class Emitter {
  #l = {};
  on(ev, fn) {
    (this.#l[ev] ||= []).push(fn);
    return this;
  }
  once(ev, fn) {
    const w = (...a) => {
      this.off(ev, w);
      fn.apply(this, a);
    };
    w.fn = fn;
    return this.on(ev, w);
  }
  off(ev, fn) {
    if (ev === undefined) this.#l = {};
    else if (!fn) delete this.#l[ev];
    else this.#l[ev] = this.listeners(ev).filter((f) => f != fn && f.fn != fn);
    return this;
  }
  listeners(ev) {
    return this.#l[ev] || [];
  }
  hasListeners(ev) {
    return !!this.listeners(ev).length;
  }
  // Calls the local listeners (Socket#emit sends to the server instead).
  emitReserved(ev, ...a) {
    for (const f of [...this.listeners(ev)]) f.apply(this, a);
    return this;
  }
}
Emitter.prototype.addEventListener = Emitter.prototype.addListener = Emitter.prototype.on;
Emitter.prototype.removeListener = Emitter.prototype.removeAllListeners = Emitter.prototype.off;

// ------------------------------------------------------------------ Engine.IO connection

// One Engine.IO v4 session: fetch polling and/or WebSocket, the upgrade, the heartbeat.
// Events: open, message (string or ArrayBuffer), ping, upgrade, close (reason; after open),
// error (Error; when it never opened). close() ends it without an event.
class Engine extends Emitter {
  #o;
  #state = 1; // 0 closed, 1 opening, 2 open
  #wb = []; // packets waiting for the transport
  #ws; // the WebSocket when it is the transport
  #probe; // the WebSocket being probed during an upgrade
  #upgrading; // probe answered: waiting for polling to be idle to switch
  #getting;
  #posting;
  #pingTimer;
  #pingWait;
  #deadline = Infinity; // when the heartbeat is overdue (timers lag in a sleeping laptop or tab)
  #abort = new AbortController();
  constructor(uri, o) {
    super();
    this.uri = uri;
    this.#o = o;
    this.transport = { name: o.transports[0] };
  }
  open() {
    this.transport.name == "websocket" ? this.#websocket() : this.#poll();
  }
  get writable() {
    return this.#state == 2 && !this.#upgrading && (this.#ws ? this.#ws.readyState == 1 : !this.#posting);
  }
  send(p) {
    if (this.#state) {
      this.#wb.push(p);
      this.#flush();
    }
  }
  close() {
    if (this.#state == 2) this.#ws ? this.#ws.send("1") : this.#post([...this.#wb.splice(0), "1"]);
    this.#close();
  }

  #url(t) {
    const o = this.#o,
      u = new URL(o.path, this.uri),
      s = u.searchParams;
    u.protocol = t == "polling" ? u.protocol.replace("ws", "http") : u.protocol.replace("http", "ws");
    new URLSearchParams(o.query || "").forEach((v, k) => s.set(k, v));
    s.set("EIO", 4);
    s.set("transport", t);
    if (this.id) s.set("sid", this.id);
    if (t == "polling") s.set("t", Math.random().toString(36).slice(2));
    return u;
  }
  #fetch(body) {
    return fetch(this.#url("polling"), {
      method: body ? "POST" : "GET",
      body,
      headers: { "content-type": "text/plain;charset=UTF-8", ...this.#o.extraHeaders },
      credentials: this.#o.withCredentials ? "include" : "same-origin",
      signal: body ? null : this.#abort.signal,
    }).then((r) => {
      if (!r.ok) throw Error("HTTP " + r.status);
      return r.text();
    });
  }

  async #poll() {
    if (this.#getting) return;
    this.#getting = 1;
    while (this.#state && !this.#upgrading && !this.#ws) {
      let body;
      try {
        body = await this.#fetch();
      } catch (e) {
        this.#close("transport error", e);
        break;
      }
      for (const p of body.split("\x1e")) this.#onPacket(p[0] == "b" ? fromB64(p.slice(1)) : p);
    }
    this.#getting = 0;
    this.#switch();
  }
  async #post(packets) {
    this.#posting = 1;
    try {
      const parts = packets.map(async (p) =>
        typeof p == "string" ? p : "b" + toB64(p.arrayBuffer ? await p.arrayBuffer() : p));
      await this.#fetch((await Promise.all(parts)).join("\x1e"));
    } catch (e) {
      return this.#close("transport error", e);
    }
    this.#posting = 0;
    this.#flush();
    this.#switch();
  }
  #flush() {
    const ws = this.#ws;
    if (this.#upgrading || !this.#wb.length) return;
    if (ws) {
      if (ws.readyState == 1) for (const p of this.#wb.splice(0)) ws.send(p);
    } else if (this.#state == 2 && !this.#posting) this.#post(this.#wb.splice(0));
  }

  // The WebSocket transport (probe: the upgrade of a polling session).
  #websocket(probe) {
    let ws;
    try {
      ws = new (this.#o.WebSocket || globalThis.WebSocket)(this.#url("websocket"));
    } catch (e) {
      return probe || this.#close("transport error", e);
    }
    ws.binaryType = "arraybuffer";
    const fail = (reason) => () => (this.#ws == ws ? this.#close(reason) : this.#probe == ws && this.#unprobe());
    ws.onclose = fail("transport close");
    ws.onerror = fail("transport error");
    if (probe) {
      this.#probe = ws;
      ws.onopen = () => ws.send("2probe");
      ws.onmessage = ({ data }) => (data == "3probe" ? ((this.#upgrading = 1), this.#switch()) : this.#unprobe());
    } else this.#use(ws);
  }
  #use(ws) {
    this.#ws = ws;
    ws.onmessage = ({ data }) => this.#onPacket(data);
  }
  // Ends the upgrade once polling is idle: "5" on the WebSocket, which becomes the transport.
  #switch() {
    const ws = this.#probe;
    if (this.#upgrading && !this.#getting && !this.#posting) {
      this.#probe = this.#upgrading = 0;
      this.#use(ws);
      ws.send("5");
      this.transport = { name: "websocket" };
      this.emitReserved("upgrade", this.transport);
      this.#flush();
    }
  }
  #unprobe() {
    const ws = this.#probe;
    this.#probe = this.#upgrading = 0;
    // Detached first: closing a WebSocket that is still connecting fires its events from close().
    if (ws) (ws.onclose = ws.onerror = ws.onmessage = () => {}), ws.close();
    this.#poll();
    this.#flush();
  }

  #onPacket(p) {
    if (!this.#state) return;
    if (typeof p != "string") return this.emitReserved("message", p);
    const t = p[0],
      d = p.slice(1);
    if (t == "0") {
      let h;
      try {
        h = JSON.parse(d);
      } catch {}
      if (!h?.sid) return this.#close("parse error");
      this.id = h.sid;
      this.#pingWait = h.pingInterval + h.pingTimeout;
      this.#state = 2;
      this.#alive();
      this.emitReserved("open");
      const o = this.#o;
      if (!this.#ws && o.upgrade !== false && h.upgrades.includes("websocket") && o.transports.includes("websocket"))
        this.#websocket(1);
    } else if (t == "2") {
      this.#alive();
      this.send("3");
      this.emitReserved("ping");
    } else if (t == "4") this.emitReserved("message", d);
    else if (t == "1") this.#close("transport close");
    else if (t != "6" && t != "3") this.#close("parse error");
  }
  // The server pings every pingInterval; none within pingInterval + pingTimeout: it is gone.
  #alive() {
    clearTimeout(this.#pingTimer);
    this.#deadline = Date.now() + this.#pingWait;
    this.#pingTimer = setTimeout(() => this.#close("ping timeout"), this.#pingWait);
  }
  // Overdue although the timer has not fired: the connection is gone, it closes next tick.
  expired() {
    const x = Date.now() > this.#deadline;
    if (x) setTimeout(() => this.#close("ping timeout"));
    return x;
  }
  #close(reason, err) {
    const was = this.#state;
    if (!was) return;
    this.#state = 0;
    clearTimeout(this.#pingTimer);
    this.#abort.abort();
    for (const w of [this.#ws, this.#probe])
      if (w) {
        w.onclose = w.onerror = w.onmessage = () => {};
        w.close();
      }
    if (reason) was == 2 ? this.emitReserved("close", reason) : this.emitReserved("error", err || Error(reason));
  }
}

// ------------------------------------------------------------------ Manager

// One Engine.IO connection shared by the sockets of its namespaces; reconnects with backoff.
export class Manager extends Emitter {
  nsps = {};
  _readyState = "closed";
  _reconnecting = false;
  skipReconnect = false;
  #attempts = 0;
  #timer; // open timeout, then reconnection delay
  constructor(uri, opts) {
    if (uri && typeof uri == "object" && !(uri instanceof URL)) (opts = uri), (uri = undefined);
    super();
    this.uri = String(uri ?? globalThis.location?.href);
    this.opts = {
      path: "/socket.io",
      transports: ["polling", "websocket"],
      reconnection: true,
      reconnectionAttempts: Infinity,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.5,
      timeout: 20000,
      autoConnect: true,
      ...opts,
    };
    this.opts.path = this.opts.path.replace(/\/?$/, "/");
    if (this.opts.autoConnect) this.open();
  }

  open(fn) {
    if (this._readyState != "closed") return this;
    const e = (this.engine = new Engine(this.uri, this.opts)),
      t = this.opts.timeout;
    let bufs, pending; // the binary packet waiting for its attachments
    this._readyState = "opening";
    this.skipReconnect = false;
    const failed = (err) => {
      clearTimeout(this.#timer);
      this._readyState = "closed";
      this.emitReserved("error", err);
      this.#sockets((s) => !s.connected && s.emitReserved("connect_error", err));
      if (fn) fn(err);
      else if (!this._reconnecting && this.#attempts == 0) this.#reconnect();
    };
    e.on("open", () => {
      clearTimeout(this.#timer);
      this._readyState = "open";
      this.emitReserved("open");
      this.#sockets((s) => s._onopen());
      fn?.();
    });
    e.on("error", failed);
    e.on("close", (reason) => this.#onclose(reason));
    e.on("ping", () => this.emitReserved("ping"));
    e.on("message", (d) => {
      let p;
      try {
        if (typeof d != "string") {
          if (!pending) throw Error("unexpected binary");
          if (bufs.push(d) < pending.n) return;
          (p = pending), (pending = null);
          reconstruct(p.data, bufs);
        } else {
          p = decode(d);
          if (p.n) return (pending = p), (bufs = []);
        }
      } catch {
        e.close();
        return this.#onclose("parse error");
      }
      this.emitReserved("packet", p);
      this.nsps[p.nsp]?._onpacket(p);
    });
    if (t !== false)
      this.#timer = setTimeout(() => {
        e.close();
        failed(Error("timeout"));
      }, t);
    e.open();
    return this;
  }
  connect(fn) {
    return this.open(fn);
  }
  socket(nsp, opts) {
    let s = this.nsps[nsp];
    if (!s) s = this.nsps[nsp] = new Socket(this, nsp, opts);
    else if (this.opts.autoConnect && !s.active) s.connect();
    return s;
  }
  _packet(p) {
    this.engine.send(p);
  }
  // A socket left: the connection closes when no socket is active any more.
  _destroy() {
    if (!Object.values(this.nsps).some((s) => s.active)) this._close();
  }
  _close() {
    this.skipReconnect = true;
    this._reconnecting = false;
    this.#onclose("forced close");
    this.engine?.close();
  }
  disconnect() {
    return this._close();
  }
  close() {
    return this._close();
  }

  #sockets(f) {
    for (const s of Object.values(this.nsps)) if (s.active) f(s);
  }
  #onclose(reason) {
    clearTimeout(this.#timer);
    this.#attempts = 0;
    this._readyState = "closed";
    this.emitReserved("close", reason);
    this.#sockets((s) => s._onclose(reason));
    if (this.opts.reconnection && !this.skipReconnect) this.#reconnect();
  }
  // Exponential backoff with jitter: delay * 2^attempt, ± randomizationFactor, at most delayMax.
  #reconnect() {
    const o = this.opts;
    if (this._reconnecting || this.skipReconnect) return;
    if (this.#attempts >= o.reconnectionAttempts) {
      this.#attempts = 0;
      return this.emitReserved("reconnect_failed");
    }
    let ms = Math.min(o.reconnectionDelay * 2 ** this.#attempts++, o.reconnectionDelayMax);
    ms = Math.min(ms + ms * o.randomizationFactor * (Math.random() * 2 - 1), o.reconnectionDelayMax);
    this._reconnecting = true;
    this.#timer = setTimeout(() => {
      if (this.skipReconnect) return;
      this.emitReserved("reconnect_attempt", this.#attempts);
      if (this.skipReconnect) return;
      this.open((err) => {
        const n = this.#attempts;
        this._reconnecting = false;
        if (err) {
          this.#reconnect();
          this.emitReserved("reconnect_error", err);
        } else {
          this.#attempts = 0;
          this.emitReserved("reconnect", n);
        }
      });
    }, ms);
  }
}
// Getters/setters of the reconnection options, as socket.io-client's Manager has them.
for (const k of ["reconnection", "reconnectionAttempts", "reconnectionDelay", "reconnectionDelayMax", "randomizationFactor", "timeout"])
  Manager.prototype[k] = function (v) {
    return v === undefined ? this.opts[k] : ((this.opts[k] = v), this);
  };

// A Socket.IO packet from its text form: type, attachments, namespace, ack id, JSON data.
const decode = (s) => {
  const m = /^([0-6])(?:(\d+)-)?(?:(\/[^,]*),)?(\d+)?(.*)$/s.exec(s),
    type = +m[1],
    p = { type, nsp: m[3] || "/", n: +m[2] || 0, id: m[4] && +m[4], data: m[5] ? JSON.parse(m[5]) : undefined },
    d = p.data;
  if (
    (type % 3 == 2 && !(Array.isArray(d) && typeof d[0] == "string")) || // event
    (type % 3 == 0 && type && !Array.isArray(d)) || // ack
    (p.n && type < 5)
  )
    throw Error("bad packet");
  return p;
};

// ------------------------------------------------------------------ Socket

// One namespace over a Manager's connection.
export class Socket extends Emitter {
  connected = false;
  recovered = false;
  active = false;
  receiveBuffer = [];
  sendBuffer = [];
  flags = {};
  ids = 0;
  acks = {};
  #queue = []; // emits with retries: one in flight at a time, each until acked
  #any = [];
  #anyOut = [];
  constructor(io, nsp, opts = {}) {
    super();
    this.io = io;
    this.nsp = nsp;
    this._opts = opts;
    this.auth = opts.auth;
    if (io.opts.autoConnect) this.open();
  }
  get disconnected() {
    return !this.connected;
  }
  get volatile() {
    this.flags.volatile = true;
    return this;
  }
  timeout(ms) {
    this.flags.timeout = ms;
    return this;
  }
  compress(c) {
    this.flags.compress = c;
    return this;
  }

  connect() {
    if (!this.connected) {
      this.active = true;
      if (!this.io._reconnecting) this.io.open();
      if (this.io._readyState == "open") this._onopen();
    }
    return this;
  }
  open() {
    return this.connect();
  }
  disconnect() {
    const was = this.connected;
    if (was) this.#packet({ type: 1 });
    this.active = false;
    this.io._destroy(this);
    if (was) this._onclose("io client disconnect");
    return this;
  }
  close() {
    return this.disconnect();
  }
  send(...args) {
    return this.emit("message", ...args);
  }

  emit(ev, ...args) {
    if (RESERVED.includes(ev)) throw Error(`"${ev}" is a reserved event name`);
    const f = this.flags,
      p = { type: 2, data: [ev, ...args] };
    this.flags = {};
    if (this._opts.retries && !f.retry && !f.volatile) return this.#enqueue(p.data, f);
    if (typeof args.at(-1) == "function") {
      const id = (p.id = this.ids++),
        ack = p.data.pop(),
        t = f.timeout ?? this._opts.ackTimeout;
      if (t === undefined) this.acks[id] = ack;
      else {
        const timer = setTimeout(() => {
          delete this.acks[id];
          this.sendBuffer = this.sendBuffer.filter((q) => q.id !== id);
          ack.call(this, Error("operation has timed out"));
        }, t);
        (this.acks[id] = (...a) => {
          clearTimeout(timer);
          ack.apply(this, a);
        }).withError = true;
      }
    }
    if (f.volatile && !(this.connected && this.io.engine?.writable));
    else if (this.connected && !this.io.engine.expired()) this.#send(p);
    else this.sendBuffer.push(p);
    return this;
  }
  // The ack is error-first whatever the timeout: a disconnection before the ack rejects.
  emitWithAck(ev, ...args) {
    return new Promise((resolve, reject) => {
      const ack = (err, v) => (err ? reject(err) : resolve(v));
      ack.withError = true;
      this.emit(ev, ...args, ack);
    });
  }

  // The retries option: each emit waits in the queue, then is sent with an ack of its own,
  // again (new ack id) after each failure (ack timeout, disconnection), until acked or sent
  // retries + 1 times; the caller's ack then gets (null, ...answer) or the last error.
  #enqueue(data, flags) {
    const q = this.#queue,
      ack = typeof data.at(-1) == "function" && data.pop(),
      e = { tries: 0, data, flags: { ...flags, retry: 1 } };
    data.push((err, ...a) => {
      if (err === null || e.tries > this._opts.retries) {
        q.shift();
        if (ack) err === null ? ack(err, ...a) : ack(err);
      }
      e.busy = 0;
      this.#drain();
    });
    q.push(e);
    this.#drain();
    return this;
  }
  #drain(force) {
    const e = this.#queue[0];
    if (this.connected && e && (force || !e.busy)) {
      e.busy = 1;
      e.tries++;
      this.flags = e.flags;
      this.emit(...e.data);
    }
  }

  onAny(f) {
    this.#any.push(f);
    return this;
  }
  prependAny(f) {
    this.#any.unshift(f);
    return this;
  }
  offAny(f) {
    this.#any = f ? this.#any.filter((g) => g != f) : [];
    return this;
  }
  listenersAny() {
    return this.#any;
  }
  onAnyOutgoing(f) {
    this.#anyOut.push(f);
    return this;
  }
  prependAnyOutgoing(f) {
    this.#anyOut.unshift(f);
    return this;
  }
  offAnyOutgoing(f) {
    this.#anyOut = f ? this.#anyOut.filter((g) => g != f) : [];
    return this;
  }
  listenersAnyOutgoing() {
    return this.#anyOut;
  }

  // An event leaves: outgoing catch-all listeners, then the wire.
  #send(p) {
    for (const f of [...this.#anyOut]) f.apply(this, p.data);
    this.#packet(p);
  }
  #packet(p) {
    const bufs = [],
      data = p.data && deconstruct(p.data, bufs),
      n = bufs.length;
    this.io._packet(
      "4" +
        (n ? p.type + 3 + "" + n + "-" : p.type) +
        (this.nsp != "/" ? this.nsp + "," : "") +
        (p.id ?? "") +
        (data ? JSON.stringify(data) : ""),
    );
    bufs.map((b) => this.io._packet(b));
  }
  // Listeners get the offset too (the last argument); it is kept once they have run.
  #dispatch(args) {
    for (const f of [...this.#any]) f.apply(this, args);
    this.emitReserved(...args);
    if (this._pid && typeof args.at(-1) == "string") this._lastOffset = args.at(-1);
  }

  // CONNECT; after a session with a pid (state recovery on), it asks for the session back.
  _onopen() {
    const auth = this.auth,
      send = (data) =>
        this.#packet({ type: 0, data: this._pid ? { pid: this._pid, offset: this._lastOffset, ...data } : data });
    typeof auth == "function" ? auth(send) : send(auth);
  }
  _onpacket(p) {
    if (!this.active) return;
    const t = p.type,
      d = p.data;
    if (t == 0) {
      if (!d?.sid) return this.emitReserved("connect_error", Error("invalid CONNECT packet"));
      // Recovered: the same pid. The missed events came before this packet; they go first.
      this.id = d.sid;
      this.recovered = d.pid && d.pid == this._pid;
      this._pid = d.pid;
      this.connected = true;
      this.receiveBuffer.splice(0).map((a) => this.#dispatch(a));
      this.sendBuffer.splice(0).map((q) => this.#send(q));
      this.#drain(1);
      this.emitReserved("connect");
    } else if (t == 2 || t == 5) {
      if (p.id !== undefined) {
        let sent;
        d.push((...a) => sent || ((sent = 1), this.#packet({ type: 3, id: p.id, data: a })));
      }
      this.connected ? this.#dispatch(d) : this.receiveBuffer.push(d);
    } else if (t == 3 || t == 6) {
      const ack = this.acks[p.id];
      if (typeof ack != "function") return;
      delete this.acks[p.id];
      if (ack.withError) d.unshift(null);
      ack.apply(this, d);
    } else {
      this.active = false;
      if (t == 1) {
        this.io._destroy(this);
        this._onclose("io server disconnect");
      } else {
        this.io._destroy(this);
        const err = Error(d?.message);
        err.data = d?.data;
        this.emitReserved("connect_error", err);
      }
    }
  }
  _onclose(reason) {
    this.connected = false;
    this.id = undefined;
    // Missed events of a CONNECT never answered: the next recovery sends them again.
    this.receiveBuffer = [];
    this.emitReserved("disconnect", reason);
    // Acks that can fail (timeout given) and whose packet left: they will never be answered.
    for (const id in this.acks) {
      const ack = this.acks[id];
      if (ack.withError && !this.sendBuffer.some((q) => q.id == id)) {
        delete this.acks[id];
        ack.call(this, Error("socket has been disconnected"));
      }
    }
  }
}

// ------------------------------------------------------------------ io()

const cache = {};

// io(url?, opts?): a Socket for the URL's namespace, on a Manager shared per origin and path
// unless forceNew / multiplex: false (or that namespace is already open on it).
export function io(uri, opts) {
  if (uri && typeof uri == "object" && !(uri instanceof URL)) (opts = uri), (uri = undefined);
  opts = { ...opts };
  const loc = globalThis.location;
  if (typeof uri == "string" && !/^(\w+:|\/)/.test(uri)) uri = (loc ? loc.protocol + "//" : "https://") + uri;
  const u = new URL(uri ?? loc?.href, loc?.href),
    key = u.protocol.replace("ws", "http") + u.host + (opts.path || ""),
    nsp = u.pathname;
  if (!opts.query && u.search) opts.query = u.searchParams;
  let m = cache[key];
  if (opts.forceNew || opts["force new connection"] || opts.multiplex === false || m?.nsps[nsp])
    m = new Manager(u.origin, opts);
  else m = cache[key] ||= new Manager(u.origin, opts);
  return m.socket(nsp, opts);
}

export { io as connect };
export const protocol = 5;
export default io;
