// A socket.io-client (v4, from tests/socketio/node_modules) client of the chaos lane, in its
// own process. It stays connected for the whole run: socket.io-client reconnects by itself and
// recovers with its pid and last offset (docs/SOCKETIO.md); each attempt goes to the next node.
// Everything it receives is logged as JSON lines for the auditor; nothing is deduplicated.
//
// Env: URLS (comma-separated node base URLs), HOME (index of the first), TOKEN, LOG (path),
// TRANSPORTS ("websocket" or "polling,websocket"). SIGUSR1 drops the transport (a reconnect
// storm); SIGTERM ends the client.
import { createRequire } from "node:module";
import { openSync, writeSync, closeSync } from "node:fs";

const require = createRequire(new URL("../socketio/package.json", import.meta.url));
const { io } = require("socket.io-client");

const urls = process.env.URLS.split(",");
const home = Number(process.env.HOME_NODE || 0);
const transports = (process.env.TRANSPORTS || "websocket").split(",");
const fd = openSync(process.env.LOG, "a");
let pending = [];
const log = (k, fields = {}) => pending.push(JSON.stringify({ k, t: Date.now() / 1000, ...fields }));
const flush = () => {
  if (pending.length) writeSync(fd, pending.join("\n") + "\n");
  pending = [];
};
setInterval(flush, 250);

const socket = io(urls[home], {
  auth: { token: process.env.TOKEN },
  transports,
  reconnectionDelay: 100,
  reconnectionDelayMax: 1000,
  timeout: 5000,
});
// Each reconnection attempt goes to the next node (home first), as a load balancer would.
socket.io.on("reconnect_attempt", (n) => {
  socket.io.uri = urls[(home + n - 1) % urls.length];
});
socket.io.on("reconnect", () => {
  socket.io.uri = urls[home];
});
socket.on("connect", () => {
  log("connect", { recovered: socket.recovered, node: socket.io.uri, transport: socket.io.engine.transport.name });
});
socket.on("connect_error", (e) => log("connect_failed", { error: e.message }));
socket.on("disconnect", (reason) => {
  log("disconnect", { reason });
  // A server-side disconnect (kicked, token expired) does not reconnect by itself; the lane
  // never asks for one, so log it (above) and come back anyway.
  if (reason === "io server disconnect") setTimeout(() => socket.connect(), 200);
});
socket.onAny((type, ...args) => {
  const data = args[0];
  const offset = args.length > 1 ? args[args.length - 1] : null;
  if (data && typeof data === "object" && "uid" in data) {
    log("ev", { type, uid: data.uid, ch: data.ch, off: offset !== null });
  } else if (type.startsWith("presence:")) {
    log("presence", { type, user: data?.userKey });
  } else {
    log("other", { type });
  }
});

process.on("SIGUSR1", () => {
  if (socket.io.engine) {
    log("storm");
    socket.io.engine.close();
  }
});
process.on("SIGTERM", () => {
  log("exit");
  flush();
  closeSync(fd);
  socket.close();
  process.exit(0);
});
