// Seed 003's front-end paths with the real socket.io-client, against a live Switchboard.
// Usage: URL=... TOKEN=... KEY=... USER=... node frontend.mjs polling|websocket|recover|bad-token|compressed
// Prints one JSON line with what it saw; crates/server/tests/hub/socketio_clients.rs checks it.
import { io } from "socket.io-client";

const { URL: url, TOKEN: token, KEY: key, USER: user } = process.env;
const mode = process.argv[2];
const done = (result) => { console.log(JSON.stringify(result)); process.exit(0); };
setTimeout(() => done({ error: "timed out" }), 8000);

const post = (path, body) => fetch(`${url}/api/v1/apps/app1/${path}`, {
  method: "POST",
  headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
  body: JSON.stringify(body),
});
const publish = (n) => post("publish", { channels: [`user:${user}`], type: "tick", data: n });

if (mode === "bad-token") {
  const socket = io(url, { auth: { token: "not-a-jwt" }, reconnection: false });
  socket.on("connect_error", (e) => done({ connect_error: e.message, code: e.data?.code }));
} else if (mode === "recover") {
  const socket = io(url, { auth: { token }, reconnectionDelay: 50, reconnectionDelayMax: 100 });
  const ticks = [];
  const rounds = [];
  socket.on("tick", (n) => ticks.push(n));
  socket.on("connect", async () => {
    rounds.push(socket.recovered);
    if (rounds.length === 1) {
      await publish(1);
      while (ticks.length < 1) await new Promise((r) => setTimeout(r, 10));
      socket.io.engine.close(); // the transport drops; socket.io-client reconnects by itself
      await publish(2);
      await publish(3);
    } else {
      const read = await socket.emitWithAck("ping", {});
      done({ rounds, ticks, after: read });
    }
  });
} else if (mode === "compressed") {
  // socket.io-client's defaults: its WebSocket (npm `ws`) offers permessage-deflate and
  // compresses what it sends from 1 KiB up.
  const socket = io(url, { auth: { token }, transports: ["websocket"] });
  const body = "Quarterly family budget: groceries, school, rent, savings. ".repeat(100);
  socket.on("connect", async () => {
    const ws = socket.io.engine.transport.ws;
    const before = ws._socket.bytesRead;
    const tick = new Promise((resolve) => socket.once("tick", resolve));
    await publish(body);
    const received = await tick;
    const wire = ws._socket.bytesRead - before;
    // Over the client's 1 KiB threshold, so it leaves compressed; under the test app's
    // 4 KiB message limit. The server must inflate it before it can answer.
    const unknown = await socket.emitWithAck("no:such:type", { body: body.slice(0, 3000) });
    done({ extensions: ws.extensions, intact: received === body, raw: body.length, wire, unknown });
  });
} else {
  const socket = io(url, { auth: { token }, transports: mode === "websocket" ? ["websocket"] : ["polling", "websocket"] });
  const any = [];
  socket.onAny((event) => any.push(event));
  socket.on("connect", async () => {
    const created = new Promise((resolve) => socket.once("notification:new", resolve));
    await post("notifications", { user, title: "New Task", message: "You have a new task assigned" });
    const notification = await created;
    const read = await socket.emitWithAck("notification:read", { notification_id: notification.notification_id });
    const unknown = await socket.emitWithAck("no:such:type", {});
    const badField = await socket.emitWithAck("notification:read", {});
    while (socket.io.engine.transport.name !== "websocket") await new Promise((r) => setTimeout(r, 10));
    done({ id: socket.id, title: notification.title, read, unknown, badField, any, transport: socket.io.engine.transport.name });
  });
}
