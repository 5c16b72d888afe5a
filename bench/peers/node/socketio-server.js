// node-socketio peer: what a team writes with the `socket.io` package. Each socket joins a
// room named after its user (`?user=ID`); POST /publish {user?, event} emits to that room,
// or to everyone. Clients speak Socket.IO v4 over the WebSocket transport. With REDIS_URL
// set, several processes form one cluster through the official Redis adapter, as a team
// scaling socket.io out would do.
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 9300);

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/publish") {
    res.writeHead(404).end();
    return;
  }
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    const { user, event } = JSON.parse(body);
    if (user == null) io.emit(event.type, event.data);
    else io.to(user).emit(event.type, event.data);
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
});

// Pings every 10 minutes: the load generator does not answer Engine.IO pings, and a run
// lasts seconds. Everything else is socket.io's default.
const io = new Server(server, { transports: ["websocket"], pingInterval: 600000, pingTimeout: 600000 });
io.on("connection", (socket) => {
  socket.join(String(socket.handshake.query.user));
});

async function start() {
  if (process.env.REDIS_URL) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url: process.env.REDIS_URL });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  server.listen(port, "127.0.0.1", () => console.log(`listening 127.0.0.1:${port}`));
}

start();
