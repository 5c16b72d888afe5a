// The web pages' security headers in a real browser: the admin console and the demo page carry
// a strict Content-Security-Policy, and a page on another origin cannot frame either of them,
// so it cannot overlay the console and trick a signed-in operator into clicking Disconnect.
// Playwright driving Debian's chromium against `switchboard serve` ($SWITCHBOARD_BIN).
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { createServer } from "node:http";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

import { isViolation, watchContext } from "./csp.mjs";
import { startDemo } from "./demo-server.mjs";

const TOKEN = "admin-token-for-the-security-test";
const WAIT = { timeout: 10_000 };
let server, site, browser, base, siteOrigin, dir;

before(async () => {
  ({ server, base, dir } = await startDemo("switchboard-security-", { SWITCHBOARD_ADMIN_TOKEN: TOKEN }));
  // Another origin (another port): a page that frames whatever `?src=` names.
  site = createServer((req, res) => {
    const src = new URL(req.url, "http://site").searchParams.get("src") ?? "";
    const html = `<!doctype html><title>framing</title><iframe id="victim" src="${src.replaceAll('"', "&quot;")}"></iframe>`;
    res.writeHead(200, { "content-type": "text/html" }).end(html);
  });
  await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
  siteOrigin = `http://127.0.0.1:${site.address().port}`;
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
});

after(async () => {
  await browser?.close();
  site?.close();
  server?.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the console and the demo page send a strict policy and refuse framing and sniffing", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const host = new URL(base).host;
  for (const [path, connect] of [["/admin", "connect-src 'self';"], ["/", `connect-src 'self' ws://${host} wss://${host};`]]) {
    const headers = (await page.goto(`${base}${path}`)).headers();
    const policy = headers["content-security-policy"] ?? "";
    for (const directive of ["default-src 'none';", "script-src 'self';", "style-src 'self';", connect, "frame-ancestors 'none';", "base-uri 'none';"]) {
      assert.ok(policy.includes(directive), `${path}: ${directive} in "${policy}"`);
    }
    assert.equal(headers["x-frame-options"], "DENY", path);
    assert.equal(headers["x-content-type-options"], "nosniff", path);
    assert.equal(headers["referrer-policy"], "no-referrer", path);
  }
  await context.close();
});

test("the watcher sees a violation: an inline style added to the console is refused and reported", async () => {
  const context = await browser.newContext();
  const seen = watchContext(context);
  const admin = await context.newPage();
  await admin.goto(`${base}/admin`);
  const reported = admin.waitForEvent("console", { predicate: isViolation, ...WAIT });
  await admin.evaluate(() => {
    const style = document.createElement("style");
    style.textContent = "body { background: red; }";
    document.head.append(style);
  });
  await reported;
  assert.match(seen.join("\n"), /style-src/);
  await context.close();
});

test("a page on another origin cannot frame the console or the demo page", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  // The control: a frameable answer of the same server does load in the frame.
  await page.goto(`${siteOrigin}/?src=${encodeURIComponent(`${base}/api/v1/openapi.json`)}`);
  const control = page.frameLocator("#victim").locator("body");
  await control.filter({ hasText: "openapi" }).waitFor(WAIT);

  for (const [path, content] of [["/admin", "#signin"], ["/", "#panes"]]) {
    const refused = page.waitForEvent("console", { predicate: (m) => /frame-ancestors/.test(m.text()), ...WAIT });
    await page.goto(`${siteOrigin}/?src=${encodeURIComponent(`${base}${path}`)}`);
    await refused;
    const frame = page.frames().find((f) => f.parentFrame() === page.mainFrame());
    assert.ok(frame, `${path}: the iframe exists`);
    assert.notEqual(frame.url(), `${base}${path}`, `${path}: the frame did not navigate to the page`);
    assert.equal(await frame.locator(content).count(), 0, `${path}: nothing of the page is in the frame`);
  }
  await context.close();
});
