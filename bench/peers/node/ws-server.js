// node-ws peer: what a team writes with the `ws` package. A user map and POST /publish.
// Contract (shared with every peer): connect to /ws?user=ID; POST /publish {user?, event}.
"use strict";
const http = require("http");
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2] || 9200);
const users = new Map();

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/publish") {
    res.writeHead(404).end();
    return;
  }
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    const { user, event } = JSON.parse(body);
    const frame = JSON.stringify(event);
    let delivered = 0;
    const send = (set) => set.forEach((ws) => { ws.send(frame); delivered++; });
    if (user == null) users.forEach(send);
    else if (users.has(user)) send(users.get(user));
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ delivered }));
  });
});

// WS_DEFLATE=1: permessage-deflate with Switchboard's defaults (level 1, from 256 bytes).
const perMessageDeflate = process.env.WS_DEFLATE === "1" && { threshold: 256, zlibDeflateOptions: { level: 1 } };
const wss = new WebSocketServer({ noServer: true, perMessageDeflate });
server.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname !== "/ws") return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    const user = url.searchParams.get("user");
    if (!users.has(user)) users.set(user, new Set());
    users.get(user).add(ws);
    ws.on("close", () => {
      const set = users.get(user);
      set.delete(ws);
      if (set.size === 0) users.delete(user);
    });
  });
});

server.listen(port, "127.0.0.1", () => console.log(`listening 127.0.0.1:${port}`));
