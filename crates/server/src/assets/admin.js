// The admin console's script (/admin/console.js). It is a file of its own, not inline in the
// page, so that the page's Content-Security-Policy can allow scripts from this origin only.
"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("switchboard-admin") || "";
const series = {};

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(`/admin/api/${path}`, { ...options, headers: { ...options.headers, authorization: `Bearer ${token}` } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(body.error?.message || `${response.status}`), { status: response.status });
  return body;
}

// The server answers 401 both without a token and with a wrong one; its message says which.
$("signin").onsubmit = async (e) => {
  e.preventDefault();
  token = $("token").value.trim();
  if (!token) return ($("signin-error").textContent = "Enter the admin token (SWITCHBOARD_ADMIN_TOKEN on the server).");
  $("signin-error").textContent = "";
  try {
    await refresh();
    sessionStorage.setItem("switchboard-admin", token);
    $("signin").hidden = true;
    $("console").hidden = false;
    setInterval(() => refresh().catch(() => {}), 1000);
  } catch (error) {
    sessionStorage.removeItem("switchboard-admin");
    const text = error.status === 401 ? error.message : `the console could not load (${error.message})`;
    $("signin-error").textContent = text.charAt(0).toUpperCase() + text.slice(1);
  }
};
if (token) { $("token").value = token; $("signin").requestSubmit(); }

async function refresh() {
  const overview = await api("overview");
  $("node").textContent = overview.node_id;
  const select = $("pub-app");
  if (!select.options.length) overview.apps.forEach((a) => select.append(el("option", a.slug)));
  $("apps").replaceChildren(...overview.apps.map(renderApp));
}

function renderApp(app) {
  const card = el("section", undefined, { class: "card", "data-app": app.slug, "aria-label": `app ${app.slug}` });
  card.append(el("h2", `App ${app.slug}`));
  card.append(el("p", app.endpoints.map((e) => `${e.name} ${e.path} (${e.protocol})`).join(" · "), { class: "muted" }));
  const c = app.counts;
  const stats = el("div", undefined, { class: "stats" });
  stats.append(pair(String(c.total), "connections", "total"), pair(String(c.users), "users"), pair(String(c.anonymous), "anonymous"));
  card.append(stats, chart(app.slug, c.total));
  card.append(el("h3", "Per node"), table(["node", "connections", "users"], c.nodes.map((n) => [n.node_id, n.counts.total, n.counts.users])));
  card.append(el("h3", "Traffic (last 10 s)"), trafficStats(app.traffic));
  card.append(table(["node", "published/s", "received/s", "delivered/s", "overflows", "p99 delivery"],
    app.traffic.nodes.map((n) => [n.node_id, rate(n.traffic.published_per_sec), rate(n.traffic.received_per_sec),
      rate(n.traffic.delivered_per_sec), n.traffic.overflows, millis(n.traffic.p99_ms)])));
  card.append(el("h3", "Users (busiest first)"), table(["user", "connections", "presence", ""], app.users.map((u) => [u.user, u.connections, u.presence,
    button("Devices", () => showDevices(app.slug, u.user), `Devices of ${u.user}`)])));
  card.append(el("h3", "Channels on this node"), table(["channel", "subscribers", ""], app.channels.map((ch) => [ch.channel, ch.subscribers,
    button("History", () => showHistory(app.slug, ch.channel), `History of ${ch.channel}`)])));
  return card;
}

function rate(perSec) { return perSec < 10 ? perSec.toFixed(1) : Math.round(perSec).toLocaleString("en"); }
function millis(ms) { return ms == null ? "–" : `${ms < 10 ? ms.toFixed(2) : Math.round(ms)} ms`; }

// A number and what it counts, kept on one line.
function pair(value, label, key) {
  const span = el("span", undefined, { class: "pair" });
  const attrs = key ? { class: "stat", "data-stat": key, "aria-label": label } : { class: "stat" };
  span.append(el("span", value, attrs), el("span", label, { class: "muted" }));
  return span;
}

// Cluster sums; the p99 is the worst node's.
function trafficStats(t) {
  const stats = el("div", undefined, { class: "stats" });
  stats.append(pair(rate(t.published_per_sec), "published/s", "published"), pair(rate(t.received_per_sec), "received/s", "received"),
    pair(rate(t.delivered_per_sec), "delivered/s", "delivered"), pair(String(t.overflows), "queue overflows", "overflows"),
    pair(millis(t.p99_ms), "p99 delivery", "p99"));
  return stats;
}

function table(head, rows) {
  const t = el("table");
  const tr = el("tr");
  head.forEach((h) => tr.append(el("th", h, { scope: "col" })));
  t.append(el("thead"), el("tbody"));
  t.tHead.append(tr);
  for (const row of rows) {
    const r = el("tr");
    row.forEach((cell) => { const td = el("td"); cell instanceof Node ? td.append(cell) : (td.textContent = String(cell)); r.append(td); });
    t.tBodies[0].append(r);
  }
  if (!rows.length) {
    const empty = el("tr");
    empty.append(el("td", "none", { colspan: head.length, class: "muted" }));
    t.tBodies[0].append(empty);
  }
  // Wide tables scroll inside their own box, not the page.
  const box = el("div", undefined, { class: "scroll" });
  box.append(t);
  return box;
}

function button(label, onclick, aria, danger = false) {
  const b = el("button", label, { type: "button", "aria-label": aria });
  if (danger) b.className = "danger";
  b.onclick = onclick;
  return b;
}

// The connection count over the last two minutes, one point a refresh, drawn at the card's
// width in pixels so that its labels stay legible: a time axis, a value axis with ticks, a legend.
const SVG = "http://www.w3.org/2000/svg";
const WINDOW_MS = 120_000;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Round ticks from 0 (steps of 1, 2 or 5 times a power of ten; whole numbers).
function ticks(max) {
  const raw = Math.max(1, max) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw));
  const top = Math.max(step, Math.ceil(max / step) * step);
  return Array.from({ length: top / step + 1 }, (_, i) => i * step);
}

function compact(n) {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  return n >= 1e4 ? `${+(n / 1e3).toFixed(1)}k` : n.toLocaleString("en");
}

// The width the app's card (as last drawn) leaves its content; a guess before the first draw.
function contentWidth(app) {
  const card = document.querySelector(`[data-app="${CSS.escape(app)}"]`);
  if (!card) return document.body.clientWidth - 70;
  const style = getComputedStyle(card);
  return card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
}

function chart(app, total) {
  const now = Date.now();
  const points = (series[app] ||= []);
  points.push({ t: now, v: total });
  while (now - points[0].t > WINDOW_MS) points.shift();
  const width = Math.max(240, Math.floor(contentWidth(app)));
  const height = 160;
  const box = { left: 44, right: 14, top: 24, bottom: 26 };
  const plotW = width - box.left - box.right, plotH = height - box.top - box.bottom;
  const yTicks = ticks(Math.max(...points.map((p) => p.v)));
  const top = yTicks[yTicks.length - 1];
  const x = (t) => box.left + plotW * (1 - (now - t) / WINDOW_MS);
  const y = (v) => box.top + plotH * (1 - v / top);
  const root = svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `connections over the last two minutes, now ${total}` });
  const grid = svg("g", { class: "grid" }), yAxis = svg("g", { class: "axis y-axis" }), xAxis = svg("g", { class: "axis x-axis" });
  for (const v of yTicks) {
    grid.append(svg("line", { x1: box.left, x2: width - box.right, y1: y(v), y2: y(v) }));
    yAxis.append(svg("line", { x1: box.left - 4, x2: box.left, y1: y(v), y2: y(v) }));
    yAxis.append(svg("text", { x: box.left - 7, y: y(v) + 4, "text-anchor": "end" }, compact(v)));
  }
  yAxis.append(svg("line", { x1: box.left, x2: box.left, y1: box.top, y2: box.top + plotH }));
  for (const ago of [120, 90, 60, 30, 0]) {
    const at = x(now - ago * 1000);
    xAxis.append(svg("line", { x1: at, x2: at, y1: box.top + plotH, y2: box.top + plotH + 4 }));
    if (plotW < 360 && ago % 60) continue; // a phone: every other label
    const anchor = ago === 120 ? "start" : ago === 0 ? "end" : "middle";
    xAxis.append(svg("text", { x: at, y: height - 6, "text-anchor": anchor }, ago ? `−${ago} s` : "now"));
  }
  xAxis.append(svg("line", { x1: box.left, x2: width - box.right, y1: box.top + plotH, y2: box.top + plotH }));
  const line = points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
  const last = points[points.length - 1];
  const legend = svg("g", { class: "legend" });
  legend.append(svg("line", { x1: box.left, x2: box.left + 18, y1: 11, y2: 11, stroke: "#1f5fbf", "stroke-width": 2 }),
    svg("text", { x: box.left + 24, y: 15 }, "connections (cluster total), last 2 minutes"));
  root.append(grid, yAxis, xAxis, legend,
    svg("polyline", { points: line, fill: "none", stroke: "#1f5fbf", "stroke-width": 2, "stroke-linejoin": "round" }),
    svg("circle", { cx: x(last.t), cy: y(last.v), r: 3, fill: "#1f5fbf" }));
  return root;
}

async function showDevices(app, user) {
  const found = await api(`apps/${encodeURIComponent(app)}/users/${encodeURIComponent(user)}`);
  $("devices-hint").textContent = `${user} (${found.presence}) in ${app}:`;
  const rows = found.connections.map((c) => [c.connection_id, c.endpoint, c.protocol, c.device ?? "", c.remote_addr, c.connected_at]);
  const disconnect = button(`Disconnect ${user}`, async () => {
    const done = await api(`apps/${encodeURIComponent(app)}/users/${encodeURIComponent(user)}`, { method: "DELETE" });
    $("devices-hint").textContent = `${user}: ${done.disconnected} connection(s) closed.`;
    $("devices").replaceChildren();
  }, `Disconnect every device of ${user}`, true);
  $("devices").replaceChildren(table(["connection", "endpoint", "protocol", "device", "address", "since"], rows), disconnect);
}

async function showHistory(app, channel) {
  $("history").replaceChildren();
  try {
    const page = await api(`apps/${encodeURIComponent(app)}/history/${encodeURIComponent(channel)}`);
    $("history-hint").textContent = `${channel}: newest ${page.events.length} of ${page.latest}`;
    page.events.reverse().forEach((e) => $("history").append(el("li", `#${e.seq} ${e.type} ${JSON.stringify(e.data)}`)));
  } catch (error) {
    $("history-hint").textContent = `${channel}: ${error.message}`;
  }
}

$("publish").onsubmit = async (e) => {
  e.preventDefault();
  try {
    const body = { channels: $("pub-channels").value.split(",").map((c) => c.trim()).filter(Boolean), type: $("pub-type").value, data: JSON.parse($("pub-data").value || "null") };
    const done = await api(`apps/${encodeURIComponent($("pub-app").value)}/publish`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    $("pub-result").textContent = `published ${done.id}`;
  } catch (error) {
    $("pub-result").textContent = `refused: ${error.message}`;
  }
};

// The live tail reads server-sent events with fetch, so the token travels in a header.
let tailing = null;
$("tail-form").onsubmit = async (e) => {
  e.preventDefault();
  if (tailing) { tailing.abort(); tailing = null; $("tail-toggle").textContent = "Start"; return; }
  const query = new URLSearchParams();
  for (const f of ["app", "channel", "type"]) if ($(`tail-${f}`).value.trim()) query.set(f, $(`tail-${f}`).value.trim());
  tailing = new AbortController();
  $("tail-toggle").textContent = "Stop";
  const response = await fetch(`/admin/api/tail?${query}`, { headers: { authorization: `Bearer ${token}` }, signal: tailing.signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const events = buffer.split("\n\n");
      buffer = events.pop();
      for (const event of events) {
        const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (!data) continue;
        const m = JSON.parse(data);
        $("tail").prepend(el("li", `${m.app_slug} ${m.channel} ${m.type} ${JSON.stringify(m.data)}`));
        while ($("tail").children.length > 100) $("tail").lastChild.remove();
      }
    }
  } catch { /* stopped */ }
};
