// The chat page: rooms, messages with delivery ticks, presence, typing, connection state.
// User text is only ever put in the page as text (textContent), never as HTML.
import { io } from "/socket.io/client.js";

const $ = (id) => document.getElementById(id);

const TYPING_SHOWN_MS = 3000; // how long "x is typing" stays without news
const TYPING_EVERY_MS = 1500; // how often we tell others we are still typing
const ACK_WAIT_MS = 8000; // a message not acked by then is shown as not delivered
const KEPT_MESSAGES = 200; // per room, in the page

const params = new URLSearchParams(location.search);
let myName = params.get("name") || localStorage.getItem("chat.name") ||
  `guest-${Math.floor(1000 + Math.random() * 9000)}`;
let myId = null;
const myIds = new Set(); // this page's socket ids, one per connection: its messages are "mine"

/** name -> { messages, members, typing: Map(id -> { name, timer }), unread, joined } */
const rooms = new Map();
let current = null;
let localSeq = 0;
let lastTyping = 0;

const socket = io({ auth: { name: myName } });

// ------------------------------------------------------------------ connection state

function setStatus(state, text) {
  const el = $("status");
  el.dataset.state = state;
  el.textContent = text;
  document.body.dataset.connection = state;
}

socket.on("connect", () => {
  setStatus("connected", "connected");
  // For the curious (and the browser test): this connection's socket, and whether it is the
  // one we had before a drop.
  document.body.dataset.socketId = socket.id;
  document.body.dataset.recovered = String(Boolean(socket.recovered));
  if (socket.recovered) {
    // The server kept our socket through the drop: it is still in its rooms, and the messages
    // sent meanwhile came just before this, once each, in order. Rooms chosen while offline
    // are joined now, and what we wrote meanwhile goes out.
    for (const [name, room] of rooms) {
      if (!room.wasJoined) {
        join(name);
        continue;
      }
      room.joined = true;
      for (const m of room.messages) if (m.state === "queued") transmit(m);
    }
    render();
    return;
  }
  // A new connection is a new socket on the server: join every room again.
  for (const name of rooms.keys()) join(name);
});

socket.on("disconnect", (reason) => {
  for (const room of rooms.values()) {
    room.wasJoined = room.joined;
    room.joined = false;
    room.members = [];
    clearTyping(room);
  }
  if (socket.active) setStatus("reconnecting", "reconnecting…");
  else setStatus("offline", `offline (${reason})`);
  render();
});

socket.on("connect_error", (err) => {
  if (!socket.active) setStatus("offline", `offline (${err.message})`);
});

socket.io.on("reconnect_attempt", (attempt) => {
  setStatus("reconnecting", `reconnecting (attempt ${attempt})`);
});

socket.io.on("reconnect_failed", () => setStatus("offline", "offline"));

$("status").addEventListener("click", () => {
  if (!socket.connected && !socket.active) {
    setStatus("connecting", "connecting…");
    socket.connect();
  }
});

socket.on("welcome", ({ id, name }) => {
  myId = id;
  myIds.add(id);
  setName(name);
});

// ------------------------------------------------------------------ rooms

function roomState(name) {
  let room = rooms.get(name);
  if (!room) {
    room = { messages: [], members: [], typing: new Map(), unread: 0, joined: false };
    rooms.set(name, room);
  }
  return room;
}

function join(name) {
  roomState(name);
  if (!socket.connected) return; // joined on connect
  socket.emit("join", name, (res) => {
    if (!res || res.error) {
      notify(`Cannot join #${name}: ${res ? res.error : "no answer"}`);
      if (!rooms.get(name)?.joined) {
        rooms.delete(name);
        if (current === name) current = rooms.keys().next().value ?? null;
      }
      render();
      return;
    }
    const room = roomState(res.room);
    if (res.room !== name) {
      // The server normalized the name (#Lobby -> lobby).
      rooms.delete(name);
      if (current === name) current = res.room;
    }
    room.joined = true;
    room.members = res.members;
    // The history replaces what we had; our messages still waiting for an ack stay.
    const waiting = room.messages.filter((m) => m.state === "pending" || m.state === "queued");
    room.messages = res.history.map(fromServer).concat(waiting);
    for (const m of waiting) if (m.state === "queued") transmit(m);
    render();
  });
}

function leave(name) {
  if (socket.connected) socket.emit("leave", name, () => {});
  const room = rooms.get(name);
  if (room) clearTyping(room);
  rooms.delete(name);
  if (current === name) current = rooms.keys().next().value ?? null;
  render();
}

function select(name) {
  current = name;
  const room = rooms.get(name);
  if (room) room.unread = 0;
  render();
  $("text").focus();
}

socket.on("presence", ({ room, members }) => {
  const r = rooms.get(room);
  if (!r) return;
  r.members = members;
  // Whoever left stops typing.
  for (const id of r.typing.keys()) {
    if (!members.some((m) => m.id === id)) stopTyping(r, id);
  }
  if (room === current) renderMembers();
});

// ------------------------------------------------------------------ messages

function fromServer(m) {
  return { id: m.id, from: m.from, fromId: m.from_id, text: m.text, time: m.time,
    mine: myIds.has(m.from_id), state: "sent" };
}

socket.on("message", (m) => {
  const room = rooms.get(m.room);
  if (!room) return;
  stopTyping(room, m.from_id);
  push(room, fromServer(m));
  if (m.room !== current) room.unread += 1;
  render();
});

function push(room, message) {
  room.messages.push(message);
  if (room.messages.length > KEPT_MESSAGES) room.messages.splice(0, room.messages.length - KEPT_MESSAGES);
}

function send(text) {
  const room = rooms.get(current);
  if (!room) return;
  const message = { localId: ++localSeq, room: current, from: myName, fromId: myId, text,
    time: Date.now(), mine: true, state: "queued" };
  push(room, message);
  lastTyping = 0;
  if (socket.connected && room.joined) transmit(message);
  render();
}

/** Sends a message; its ack (the stored id and time) turns its tick on. */
function transmit(message) {
  message.state = "pending";
  const timer = setTimeout(() => {
    if (message.state === "pending") {
      message.state = "failed";
      message.error = "no answer from the server";
      render();
    }
  }, ACK_WAIT_MS);
  socket.emit("message", { room: message.room, text: message.text }, (res) => {
    clearTimeout(timer);
    if (res && res.id !== undefined) {
      message.id = res.id;
      message.time = res.time;
      message.state = "sent";
    } else {
      message.state = "failed";
      message.error = res && res.error ? res.error : "refused";
    }
    render();
  });
}

// ------------------------------------------------------------------ typing

socket.on("typing", ({ room, id, name }) => {
  const r = rooms.get(room);
  if (!r || id === myId) return;
  const old = r.typing.get(id);
  if (old) clearTimeout(old.timer);
  r.typing.set(id, { name, timer: setTimeout(() => stopTyping(r, id), TYPING_SHOWN_MS) });
  if (room === current) renderTyping();
});

function stopTyping(room, id) {
  const t = room.typing.get(id);
  if (!t) return;
  clearTimeout(t.timer);
  room.typing.delete(id);
  if (rooms.get(current) === room) renderTyping();
}

function clearTyping(room) {
  for (const id of [...room.typing.keys()]) stopTyping(room, id);
}

// ------------------------------------------------------------------ name

function setName(name) {
  myName = name;
  socket.auth.name = name; // sent again on reconnect
  localStorage.setItem("chat.name", name);
  const input = $("name");
  if (document.activeElement !== input) input.value = name;
}

function rename(name) {
  name = name.trim();
  if (!name || name === myName) {
    $("name").value = myName;
    return;
  }
  if (!socket.connected) {
    setName(name); // told to the server on the next connect
    return;
  }
  socket.emit("nick", name, (res) => {
    if (res && res.name) setName(res.name);
    else {
      notify(`Cannot rename: ${res ? res.error : "no answer"}`);
      $("name").value = myName;
    }
  });
}

// ------------------------------------------------------------------ rendering

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

function render() {
  renderRooms();
  const room = rooms.get(current);
  $("room-title").textContent = room ? `#${current}` : "no room";
  $("leave").hidden = !room;
  $("empty").hidden = !!room;
  $("composer").querySelector("button").disabled = !room;
  $("text").disabled = !room;
  renderMessages();
  renderMembers();
  renderTyping();
}

function renderRooms() {
  const list = $("room-list");
  list.replaceChildren();
  for (const [name, room] of rooms) {
    const li = el("li", name === current ? "room current" : "room");
    const button = el("button", "room-name", `#${name}`);
    button.type = "button";
    button.dataset.room = name;
    if (name === current) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => select(name));
    li.append(button);
    if (room.unread) li.append(el("span", "unread", String(room.unread)));
    if (!room.joined) li.classList.add("joining");
    list.append(li);
  }
}

function renderMessages() {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren();
  const room = rooms.get(current);
  if (!room) return;
  for (const m of room.messages) {
    const li = el("li", m.mine ? "message mine" : "message");
    li.dataset.state = m.state;
    const meta = el("div", "meta");
    meta.append(el("span", "from", m.from));
    const time = el("time", "time", timeFormat.format(new Date(m.time)));
    time.dateTime = new Date(m.time).toISOString();
    meta.append(time);
    li.append(meta, el("div", "text", m.text));
    if (m.mine) {
      const tick = el("span", "tick");
      if (m.state === "sent") {
        tick.textContent = "✓";
        tick.title = "delivered to the server";
      } else if (m.state === "failed") {
        tick.textContent = "!";
        tick.title = `not delivered: ${m.error}`;
      } else {
        tick.textContent = "…";
        tick.title = m.state === "queued" ? "waiting for the connection" : "sending";
      }
      meta.append(tick);
    }
    list.append(li);
  }
  if (atBottom || room.messages.at(-1)?.mine) list.scrollTop = list.scrollHeight;
}

function renderMembers() {
  const list = $("members");
  list.replaceChildren();
  const room = rooms.get(current);
  const members = room ? [...room.members].sort((a, b) => a.name.localeCompare(b.name)) : [];
  for (const m of members) {
    const li = el("li", "member", m.name);
    if (m.id === myId) {
      li.classList.add("me");
      li.append(el("span", "you", " (you)"));
    }
    list.append(li);
  }
  $("member-count").textContent = room ? String(members.length) : "";
}

function renderTyping() {
  const room = rooms.get(current);
  const names = room ? [...room.typing.values()].map((t) => t.name) : [];
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = "several people are typing…";
  $("typing").textContent = text;
}

let noticeTimer = null;
function notify(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, 5000);
}

// ------------------------------------------------------------------ input

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  send(text);
});

$("text").addEventListener("input", () => {
  const now = Date.now();
  const room = rooms.get(current);
  if (!room || !room.joined || !$("text").value || now - lastTyping < TYPING_EVERY_MS) return;
  lastTyping = now;
  socket.emit("typing", current);
});

$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("join-name");
  const name = input.value.trim().replace(/^#/, "").toLowerCase();
  input.value = "";
  if (!name) return;
  if (!rooms.has(name)) join(name);
  select(name);
});

$("leave").addEventListener("click", () => { if (current) leave(current); });

$("notice").addEventListener("click", () => { $("notice").hidden = true; });

$("name-form").addEventListener("submit", (e) => {
  e.preventDefault();
  rename($("name").value);
  $("name").blur();
});
$("name").addEventListener("change", () => rename($("name").value));

// ------------------------------------------------------------------ start

$("name").value = myName;
join("lobby");
select("lobby");
