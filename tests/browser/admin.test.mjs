// The admin console in a real browser: live connection counts follow a demo page opening,
// and its disconnect button closes that user's page (4403). Screenshots go to target/browser/.
import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { watchViolations } from "./csp.mjs";
import { startDemo } from "./demo-server.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SHOTS = join(ROOT, "target/browser");
const TOKEN = "admin-token-for-the-browser-test";
const WAIT = { timeout: 10_000 };
let server, browser, base, dir, violations;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  ({ server, base, dir } = await startDemo("switchboard-admin-", { SWITCHBOARD_ADMIN_TOKEN: TOKEN }));
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
  violations = watchViolations(browser);
});

after(async () => {
  await browser?.close();
  server?.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A new page of `context` with the console open (signed in with the admin token). */
async function openConsole(context) {
  const admin = await context.newPage();
  await admin.goto(`${base}/admin`);
  await admin.getByLabel("Admin token").fill(TOKEN);
  await admin.getByRole("button", { name: "Open console" }).click();
  return admin;
}

test("the admin API refuses requests without the token, and says when the token is wrong", async () => {
  const none = await fetch(`${base}/admin/api/overview`);
  assert.equal(none.status, 401);
  const { error } = await none.json();
  assert.equal(error.code, "unauthorized");
  assert.doesNotMatch(error.message, /wrong token/);
  const wrong = await fetch(`${base}/admin/api/overview`, { headers: { authorization: "Bearer not-the-admin-token-at-all" } });
  assert.equal(wrong.status, 401);
  const answer = await wrong.json();
  assert.equal(answer.error.code, "unauthorized");
  assert.match(answer.error.message, /^wrong token/);
});

test("signing in with a wrong token says so, and an empty one says something else", async () => {
  const context = await browser.newContext();
  const admin = await context.newPage();
  await admin.goto(`${base}/admin`);
  const error = admin.locator("#signin-error");
  await admin.getByRole("button", { name: "Open console" }).click();
  await error.filter({ hasText: /\S/ }).waitFor(WAIT);
  const empty = await error.textContent();
  assert.doesNotMatch(empty, /wrong token/i);
  assert.match(empty, /enter the admin token/i);
  await admin.getByLabel("Admin token").fill("not-the-admin-token-at-all");
  await admin.getByRole("button", { name: "Open console" }).click();
  await error.filter({ hasText: /wrong token/i }).waitFor(WAIT);
  assert.equal(await admin.locator("#console").isVisible(), false, "the console stays closed");
  await admin.screenshot({ path: join(SHOTS, "admin-wrong-token.png") });
  await context.close();
});

test("the console has an icon", async () => {
  const context = await browser.newContext();
  const admin = await context.newPage();
  const failed = [];
  admin.on("response", (r) => r.status() >= 400 && failed.push(`${r.status()} ${r.url()}`));
  await admin.goto(`${base}/admin`);
  const [status, type] = await admin.evaluate(async () => {
    const icon = await fetch(document.querySelector("link[rel~=icon]").href);
    return [icon.status, icon.headers.get("content-type")];
  });
  assert.equal(status, 200);
  assert.match(type, /^image\//);
  assert.deepEqual(failed, []);
  await context.close();
});

test("the console counts a page's connection live, and its disconnect button closes it", async () => {
  const context = await browser.newContext();
  const admin = await openConsole(context);
  const total = admin.locator('[data-app="demo"] [data-stat="total"]');
  await total.filter({ hasText: /^0$/ }).waitFor(WAIT);

  const bob = await context.newPage();
  await bob.goto(`${base}/?user=bob`);
  await bob.getByRole("status").filter({ hasText: /^connected$/ }).waitFor(WAIT);
  await total.filter({ hasText: /^1$/ }).waitFor(WAIT);
  await admin.getByRole("button", { name: "Devices of bob" }).click();
  await admin.locator("#devices td").filter({ hasText: "realtime" }).waitFor(WAIT);
  await admin.screenshot({ path: join(SHOTS, "admin-devices.png"), fullPage: true });

  await admin.getByRole("button", { name: "Disconnect every device of bob" }).click();
  await bob.getByRole("status").filter({ hasText: "disconnected by the server" }).waitFor(WAIT);
  await total.filter({ hasText: /^0$/ }).waitFor(WAIT);
  await admin.screenshot({ path: join(SHOTS, "admin-after-disconnect.png"), fullPage: true });
  await context.close();
});

test("the console publishes, and its live tail shows what was published", async () => {
  const context = await browser.newContext();
  const admin = await openConsole(context);
  await admin.locator('[data-app="demo"]').waitFor(WAIT);
  assert.equal(await admin.locator("#signin").isVisible(), false, "the sign-in form gives way to the console");
  await admin.locator("#tail-type").fill("admin:message");
  await admin.getByRole("button", { name: "Start" }).click();
  await admin.getByRole("button", { name: "Stop" }).waitFor(WAIT);
  await admin.locator("#pub-channels").fill("user:alice");
  await admin.getByRole("button", { name: "Publish", exact: true }).click();
  await admin.locator("#pub-result").filter({ hasText: "published" }).waitFor(WAIT);
  await admin.locator("#tail li").filter({ hasText: "user:alice admin:message" }).waitFor(WAIT);
  await context.close();
});

test("the console shows traffic: deliveries per second and their p99 latency", async () => {
  const context = await browser.newContext();
  const alice = await context.newPage();
  await alice.goto(`${base}/?user=alice`);
  await alice.getByRole("status").filter({ hasText: /^connected$/ }).waitFor(WAIT);
  const admin = await openConsole(context);
  await admin.locator("#pub-channels").fill("user:alice");
  await admin.getByRole("button", { name: "Publish", exact: true }).click();
  await admin.locator("#pub-result").filter({ hasText: "published" }).waitFor(WAIT);
  // Rates cover the last ten heartbeats: one delivery shows as at least 0.1 per second.
  const stat = (name) => admin.locator(`[data-app="demo"] [data-stat="${name}"]`);
  await stat("delivered").filter({ hasText: /^(0\.[1-9]|[1-9])/ }).waitFor(WAIT);
  await stat("published").filter({ hasText: /^(0\.[1-9]|[1-9])/ }).waitFor(WAIT);
  await stat("p99").filter({ hasText: / ms$/ }).waitFor(WAIT);
  assert.equal(await stat("overflows").textContent(), "0");
  await admin.screenshot({ path: join(SHOTS, "admin-traffic.png"), fullPage: true });
  await context.close();
});

test("the connections chart has a time axis, a value axis with ticks and a legend", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const admin = await openConsole(context);
  const chart = admin.locator('[data-app="demo"] svg.chart');
  await chart.waitFor(WAIT);
  const texts = (axis) => chart.locator(`.${axis} text`).allTextContents();
  assert.deepEqual(await texts("x-axis"), ["−120 s", "−90 s", "−60 s", "−30 s", "now"]);
  const values = await texts("y-axis");
  assert.ok(values.length >= 2 && values[0] === "0", `value ticks from 0: ${values}`);
  assert.match((await texts("legend")).join(" "), /connections/);
  assert.ok((await chart.locator(".y-axis line").count()) >= values.length, "each value has a tick mark");
  await context.close();
});

/** Opens the console with bob's devices listed and the live tail running, for screenshots. */
async function consoleInUse(context) {
  const bob = await context.newPage();
  await bob.goto(`${base}/?user=bob`);
  await bob.getByRole("status").filter({ hasText: /^connected$/ }).waitFor(WAIT);
  const admin = await openConsole(context);
  await admin.getByRole("button", { name: "Devices of bob" }).click();
  await admin.locator("#devices td").filter({ hasText: "realtime" }).waitFor(WAIT);
  await admin.getByRole("button", { name: "Start" }).click();
  await admin.getByRole("button", { name: "Stop" }).waitFor(WAIT);
  await admin.locator("#pub-channels").fill("user:bob");
  await admin.getByRole("button", { name: "Publish", exact: true }).click();
  await admin.locator("#tail li").filter({ hasText: "user:bob admin:message" }).waitFor(WAIT);
  await admin.waitForTimeout(3000); // a few points on the chart
  return admin;
}

test("the console at desktop width", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const admin = await consoleInUse(context);
  await admin.screenshot({ path: join(SHOTS, "admin-desktop.png"), fullPage: true });
  await context.close();
});

test("the console fits a 390 px screen: tables scroll in their own box, the tail's inputs fit", async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const admin = await consoleInUse(context);
  assert.ok(await admin.evaluate(() => document.documentElement.scrollWidth <= 390), "the page does not scroll sideways");
  const wide = await admin.evaluate(() =>
    [...document.querySelectorAll(".card")].filter((c) => c.scrollWidth > c.clientWidth).map((c) => c.getAttribute("aria-label") ?? c.id),
  );
  assert.deepEqual(wide, [], "no card scrolls sideways as a whole");
  for (const field of ["#tail-app", "#tail-channel", "#tail-type", "#tail-toggle", '[data-app="demo"] table']) {
    const box = await admin.locator(field).first().boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 390, `${field} is on screen: ${JSON.stringify(box)}`);
  }
  await admin.screenshot({ path: join(SHOTS, "admin-phone.png"), fullPage: true });
  await context.close();
});

// Last, so that it covers every page the tests above opened and everything they clicked.
test("no page broke its Content-Security-Policy", () => {
  assert.deepEqual(violations, []);
});
