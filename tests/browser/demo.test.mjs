// The zero-config demo page in a real browser: Playwright driving Debian's chromium against
// `switchboard serve` (the binary cargo test built, or $SWITCHBOARD_BIN). Screenshots go to
// target/browser/ as artifacts.
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
const WAIT = { timeout: 10_000 };
let server, browser, base, dir, violations;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  ({ server, base, dir } = await startDemo("switchboard-browser-"));
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
  violations = watchViolations(browser);
});

after(async () => {
  await browser?.close();
  server?.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A page showing one user (`?user=`), once its socket is connected. */
async function open(context, user, width = 1000) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height: 900 });
  await page.goto(`${base}/?user=${user}`);
  await page.getByRole("status").filter({ hasText: /^connected$/ }).waitFor(WAIT);
  return page;
}

const badge = (page) => page.locator(".badge");

/** `page`'s panes, once both users' sockets are connected. */
async function bothConnected(page) {
  for (const user of ["alice", "bob"]) {
    await page.locator(`[data-user=${user}]`).getByRole("status").filter({ hasText: /^connected$/ }).waitFor(WAIT);
  }
}

/** Clicks "Alert family-7" and answers the new alert's id. */
async function raiseAlert(page) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/demo/alert")),
    page.getByRole("button", { name: "Alert family-7" }).click(),
  ]);
  return (await response.json()).id;
}

const scrollWidth = (page) => page.evaluate(() => document.documentElement.scrollWidth);

// First: it needs the fresh server's empty inbox, alerts and chat.
test("a fresh server's page says what is empty, at desktop and phone width", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(base);
  await bothConnected(page);
  for (const user of ["alice", "bob"]) {
    const pane = page.locator(`[data-user=${user}]`);
    for (const text of ["No unacknowledged alerts", "No notifications yet", "No messages yet"]) {
      assert.equal(await pane.getByText(text).isVisible(), true, `${user}'s pane says "${text}"`);
    }
  }
  await page.screenshot({ path: join(SHOTS, "demo-empty-desktop.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok((await scrollWidth(page)) <= 390, "nothing scrolls sideways at 390 px");
  await page.screenshot({ path: join(SHOTS, "demo-empty-phone.png"), fullPage: true });
  // A notification replaces the empty text; the others stay.
  await page.getByRole("button", { name: "Notify alice" }).click();
  const alice = page.locator("[data-user=alice]");
  await alice.getByText("No notifications yet").waitFor({ state: "hidden", ...WAIT });
  assert.equal(await alice.getByText("No messages yet").isVisible(), true);
  await context.close();
});

test("the pages have an icon: /favicon.ico answers an image, and loading the page fails no request", async () => {
  const response = await fetch(`${base}/favicon.ico`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type"), /^image\//);
  const context = await browser.newContext();
  const page = await context.newPage();
  const failed = [];
  page.on("response", (r) => r.status() >= 400 && failed.push(`${r.status()} ${r.url()}`));
  page.on("console", (m) => m.type() === "error" && failed.push(m.text()));
  await page.goto(base);
  await bothConnected(page);
  const [status, type] = await page.evaluate(async () => {
    const icon = await fetch(document.querySelector("link[rel~=icon]").href);
    return [icon.status, icon.headers.get("content-type")];
  });
  assert.equal(status, 200, "the page's icon link is served");
  assert.match(type, /^image\//);
  assert.deepEqual(failed, []);
  await context.close();
});

test("an alert not yet acknowledged is still shown after a reload, and gone once acknowledged", async () => {
  const context = await browser.newContext();
  const alice = await open(context, "alice");
  const id = await raiseAlert(alice);
  const shown = alice.locator(`.alerts [data-id="${id}"]`);
  await shown.filter({ hasText: "Pond 3: oxygen low" }).waitFor(WAIT);
  await alice.reload();
  await alice.getByRole("status").filter({ hasText: /^connected$/ }).waitFor(WAIT);
  assert.equal(await shown.isVisible(), true, "restored from GET me/alerts");
  assert.match(await shown.textContent(), /Pond 3: oxygen low/);
  await shown.getByRole("button", { name: /^Acknowledge/ }).click();
  await shown.waitFor({ state: "detached", ...WAIT });
  await alice.reload();
  await alice.getByRole("status").filter({ hasText: /^connected$/ }).waitFor(WAIT);
  assert.equal(await shown.count(), 0, "an acknowledged alert stays gone");
  await context.close();
});

test("read receipts survive a reload, and a page opened later reads what arrived meanwhile", async () => {
  const context = await browser.newContext();
  const alice = await open(context, "alice");
  let bob = await open(context, "bob");
  const mine = (text) => alice.locator(".messages li.mine").filter({ hasText: text });
  await alice.getByRole("textbox", { name: "Message" }).fill("Seen before the reload?");
  await alice.getByRole("button", { name: "Send" }).click();
  await mine("Seen before the reload?").locator(".seen").waitFor(WAIT);
  await alice.reload();
  await alice.getByRole("status").filter({ hasText: /^connected$/ }).waitFor(WAIT);
  await mine("Seen before the reload?").waitFor(WAIT);
  assert.equal(await mine("Seen before the reload?").locator(".seen").textContent(), "Seen", "the mark is restored");
  assert.equal(await alice.locator(".messages .seen").count(), 1);

  // Bob is away: the message waits unread, and is read when his page opens.
  await bob.close();
  await alice.getByRole("textbox", { name: "Message" }).fill("Read this when you are back");
  await alice.getByRole("button", { name: "Send" }).click();
  await mine("Read this when you are back").waitFor(WAIT);
  assert.equal(await mine("Read this when you are back").locator(".seen").count(), 0, "nobody has read it yet");
  bob = await open(context, "bob");
  await mine("Read this when you are back").locator(".seen").waitFor(WAIT);
  await context.close();
});

test("a chat message goes from one page to the other, with typing and a read receipt", async () => {
  const context = await browser.newContext();
  const alice = await open(context, "alice");
  const bob = await open(context, "bob");
  await alice.getByRole("textbox", { name: "Message" }).fill("Hello bob, lunch today?");
  await bob.locator(".typing").filter({ hasText: "alice is typing" }).waitFor(WAIT);
  await alice.getByRole("button", { name: "Send" }).click();
  await bob.locator(".messages li").filter({ hasText: "Hello bob, lunch today?" }).waitFor(WAIT);
  await bob.locator(".typing").filter({ hasText: /^$/ }).waitFor(WAIT);
  // Bob's page has the conversation on screen, so it reads the message; alice sees it.
  await alice.locator(".messages li.mine").filter({ hasText: "Hello bob, lunch today?" }).locator(".seen").waitFor(WAIT);
  // Presence: each page shows the other user online.
  assert.equal(await bob.locator(".peer-status").textContent(), "online");
  await bob.keyboard.press("Tab"); // keyboard reachable: the toolbar's first button takes focus
  assert.equal(await bob.evaluate(() => document.activeElement?.textContent), "Notify alice");
  await alice.screenshot({ path: join(SHOTS, "chat-alice.png"), fullPage: true });
  await bob.screenshot({ path: join(SHOTS, "chat-bob.png"), fullPage: true });
  await context.close();
});

test("the page's socket negotiates permessage-deflate and a long chat message arrives whole", async () => {
  const context = await browser.newContext();
  // Keep every socket the page opens, to read what the browser agreed with the server.
  await context.addInitScript(() => {
    const Native = window.WebSocket;
    window.sockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.sockets.push(this);
      }
    };
  });
  const alice = await open(context, "alice");
  const bob = await open(context, "bob");
  const [extensions] = await bob.evaluate(() => window.sockets.map((s) => s.extensions));
  assert.match(extensions, /^permessage-deflate/, "the demo endpoint declares compression");
  // Longer than min_bytes both ways: chromium compresses it, the server inflates and
  // compresses the event for bob, and bob's page inflates it.
  const long = "The pond pumps need a service before the first frost, and the filters too. ".repeat(8).trim();
  await alice.getByRole("textbox", { name: "Message" }).fill(long);
  await alice.getByRole("button", { name: "Send" }).click();
  await bob.locator(".messages li").filter({ hasText: long }).waitFor(WAIT);
  await context.close();
});

test("a notification badge clears in every tab when one tab marks all read", async () => {
  const context = await browser.newContext();
  const first = await open(context, "alice");
  const second = await open(context, "alice", 390); // a phone-width tab
  const before = Number(await badge(first).textContent());
  await first.getByRole("button", { name: "Notify alice" }).click();
  for (const tab of [first, second]) {
    await badge(tab).filter({ hasText: new RegExp(`^${before + 1}$`) }).waitFor(WAIT);
    await tab.locator(".notifications li").filter({ hasText: "Hello alice" }).first().waitFor(WAIT);
  }
  await first.screenshot({ path: join(SHOTS, "badge-before.png"), fullPage: true });
  await first.getByRole("button", { name: "Mark all read" }).click();
  for (const tab of [first, second]) await badge(tab).filter({ hasText: /^0$/ }).waitFor(WAIT);
  await second.screenshot({ path: join(SHOTS, "badge-cleared-phone.png"), fullPage: true });
  const overflow = await second.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, "readable at phone width: nothing scrolls sideways");
  await context.close();
});

test("a family alert shows on both users' pages and one user's acknowledgement hides it for them", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(base);
  await bothConnected(page);
  const id = await raiseAlert(page);
  const banner = (user) => page.locator(`[data-user=${user}] .alert-banner[data-id="${id}"]`);
  for (const user of ["alice", "bob"]) await banner(user).filter({ hasText: "Pond 3: oxygen low" }).waitFor(WAIT);
  await page.screenshot({ path: join(SHOTS, "alert-both.png"), fullPage: true });
  await banner("alice").getByRole("button", { name: /^Acknowledge/ }).click();
  await banner("alice").waitFor({ state: "detached", ...WAIT });
  assert.equal(await banner("bob").isVisible(), true, "bob has not acknowledged it");
  await context.close();
});

// Last: the page as a team first sees it after trying it, with alerts, notifications and chat.
test("the page in use, at desktop and phone width", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(base);
  await bothConnected(page);
  await page.getByRole("button", { name: "Notify bob" }).click();
  await page.locator("[data-user=bob] .notifications li").filter({ hasText: "Hello bob" }).first().waitFor(WAIT);
  await page.screenshot({ path: join(SHOTS, "demo-desktop.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.reload();
  await bothConnected(page);
  assert.equal(await page.evaluate(() => window.scrollY), 0, "loading the chat scrolls its list, not the page");
  assert.ok((await scrollWidth(page)) <= 390, "nothing scrolls sideways at 390 px");
  await page.screenshot({ path: join(SHOTS, "demo-phone.png"), fullPage: true });
  await context.close();
});

// Last, so that it covers every page the tests above opened and everything they clicked.
test("no page broke its Content-Security-Policy", () => {
  assert.deepEqual(violations, []);
});
