// A front end on its own origin: a page served from another port (another origin) loads the
// user's inbox from the hub's client API with the user's token (a CORS preflight, answered),
// while the server API stays closed to browsers. Playwright driving Debian's chromium against
// `switchboard serve` ($SWITCHBOARD_BIN).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = process.env.SWITCHBOARD_BIN ?? join(ROOT, "target/release/switchboard");
let hub, site, browser, dir;
const banner = {};
let hubLog = "";

/** Starts the demo hub and reads its address, dev token (alice) and API key off the banner. */
async function startHub() {
  dir = mkdtempSync(join(tmpdir(), "switchboard-cors-"));
  // Debug logs name every request, so the test can see the browser's preflight.
  const env = { ...process.env, RUST_LOG: "switchboard=debug" };
  hub = spawn(BIN, ["serve", "--bind", "127.0.0.1:0"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  hub.stderr.on("data", (chunk) => (hubLog += chunk));
  const lines = createInterface({ input: hub.stdout });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no demo banner within 20 s")), 20_000);
    lines.on("line", (line) => {
      const text = line.trim();
      const field = (prefix, key) => text.startsWith(prefix) && (banner[key] = text.slice(prefix.length).trim());
      field("Switchboard is serving the demo app on ", "base");
      field("Dev token:", "token");
      field("API key:", "key");
      if (banner.base && banner.token && banner.key) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

before(async () => {
  await startHub();
  // The front end's own origin: another port, so another origin than the hub.
  site = createServer((_, res) => res.writeHead(200, { "content-type": "text/html" }).end("<h1>app</h1>"));
  await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
});

after(async () => {
  await browser?.close();
  site?.close();
  hub?.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("a page on another origin reads the user's inbox, and cannot call the server API", async () => {
  // Something to load: one notification for alice, created by the backend.
  const created = await fetch(`${banner.base}/api/v1/apps/demo/notifications`, {
    method: "POST",
    headers: { authorization: `Bearer ${banner.key}`, "content-type": "application/json" },
    body: JSON.stringify({ user: "alice", title: "Hello", message: "from another origin" }),
  });
  assert.equal(created.status, 201);

  const page = await browser.newPage();
  const origin = `http://127.0.0.1:${site.address().port}`;
  await page.goto(`${origin}/`);
  const inbox = await page.evaluate(
    async ({ base, token }) => {
      const res = await fetch(`${base}/api/v1/apps/demo/me/notifications`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: await res.json() };
    },
    { base: banner.base, token: banner.token },
  );
  assert.equal(inbox.status, 200);
  assert.deepEqual(inbox.body.notifications.map((n) => n.title), ["Hello"]);

  const serverApi = await page.evaluate(async ({ base, key }) => {
    try {
      await fetch(`${base}/api/v1/apps/demo/connections`, { headers: { authorization: `Bearer ${key}` } });
      return "read";
    } catch (e) {
      return `blocked: ${e.name}`;
    }
  }, banner);
  assert.equal(serverApi, "blocked: TypeError", "the browser refuses a server API answer without CORS headers");
  const preflight = /method=OPTIONS uri=\/api\/v1\/apps\/demo\/me\/notifications status=204/;
  assert.match(hubLog, preflight, "the browser asked first, and the hub answered the preflight");
  await page.close();
});
