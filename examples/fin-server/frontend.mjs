// Seed 003's front end, two users of one account (ravi and sara), with the unchanged
// socket.io-client: notifications, alerts, task/pond/expense streams through the Flask
// backend, then chat and presence through Switchboard alone. Prints one JSON line of what
// each saw; test_fin_server.py checks it.
// Usage: SB=http://127.0.0.1:PORT BACKEND=http://127.0.0.1:PORT RAVI=jwt SARA=jwt node frontend.mjs
import { io } from "socket.io-client";

const { SB, BACKEND, RAVI, SARA } = process.env;
setTimeout(() => { console.log(JSON.stringify({ error: "timed out" })); process.exit(1); }, 15000);

// The seed's websocketService.connect(token), one per user.
function connect(token) {
  const socket = io(SB, { auth: { token }, transports: ["websocket"], reconnectionDelay: 1000 });
  const seen = [];
  socket.onAny((event, data) => seen.push([event, data]));
  return { socket, seen, ready: new Promise((resolve) => socket.once("connect", resolve)) };
}
const next = (user, event) => new Promise((resolve) => user.socket.once(event, resolve));
const backend = (method, path, body, as) => fetch(`${BACKEND}${path}`, {
  method, headers: { "content-type": "application/json", "x-user": as }, body: JSON.stringify(body),
}).then((r) => r.json());

const ravi = connect(RAVI);
const sara = connect(SARA);
await Promise.all([ravi.ready, sara.ready]);
const result = {};

// Notifications: stored and pushed; reading one over the socket updates the count.
const newNote = next(sara, "notification:new");
await backend("POST", "/notifications", { user: "sara", title: "New Task", message: "You have a new task assigned" }, "ravi");
const note = await newNote;
const count = next(sara, "notification:count");
result.read = await sara.socket.emitWithAck("notification:read", { notification_id: note.notification_id });
result.unreadAfterRead = (await count).unread;
result.note = note.title;

// Alerts and streams to the account: both users.
const alerts = [next(ravi, "alert:new"), next(sara, "alert:new")];
await backend("POST", "/accounts/acct-1/alerts", { title: "Low oxygen", message: "Pond 3 below 4 mg/L", severity: "critical" }, "ravi");
result.alerts = (await Promise.all(alerts)).map((a) => a.severity);
for (const [path, body, event] of [
  ["/accounts/acct-1/tasks/7/status", { status: "done" }, "stream:task_update"],
  ["/accounts/acct-1/ponds/3", { field: "oxygen_level", value: 6.5 }, "stream:pond_update"],
  ["/accounts/acct-1/expenses/12/status", { status: "approved" }, "stream:expense_update"],
]) {
  const got = [next(ravi, event), next(sara, event)];
  await backend("PUT", path, body, "ravi");
  result[event] = (await Promise.all(got)).map((d) => d.updated_by);
}

// Chat: a direct conversation, a message with its tempId, typing, a read receipt.
const created = next(sara, "chat:conversation:created");
const conversation = await ravi.socket.emitWithAck("chat:conversation:create", { type: "direct", participants: ["sara"] });
const conversationId = conversation.data.conversationId;
result.created = (await created).conversationId === conversationId;
const incoming = next(sara, "chat:message");
const sent = await ravi.socket.emitWithAck("chat:send", { conversationId, content: "Feed pond 3?", tempId: "t1" });
result.sent = { ok: sent.ok, tempId: sent.data.tempId };
result.received = (await incoming).content;
const typing = next(ravi, "chat:typing:start");
sara.socket.emit("chat:typing", { conversationId, isTyping: true });
result.typing = (await typing).userKey;
const receipt = next(ravi, "chat:message:read");
await sara.socket.emitWithAck("chat:read", { conversationId });
result.readBy = (await receipt).readBy;

// Presence: sara steps away, then leaves; ravi hears both.
const away = next(ravi, "presence:away");
await sara.socket.emitWithAck("presence:set", { status: "away" });
result.away = (await away).userKey;
const offline = next(ravi, "presence:offline");
sara.socket.disconnect();
result.offline = (await offline).userKey;

result.raviEvents = [...new Set(ravi.seen.map(([event]) => event))].sort();
ravi.socket.disconnect();
console.log(JSON.stringify(result));
process.exit(0);
