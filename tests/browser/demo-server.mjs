// The zero-config server the browser tests drive: `switchboard serve` in a fresh directory,
// ready once its banner names the demo app's address.

import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = process.env.SWITCHBOARD_BIN ?? join(ROOT, "target/release/switchboard");
const MARKER = "Switchboard is serving the demo app on ";

/** Starts the demo server with `env` added; resolves to `{ server, base, dir }` (bounded: 20 s). */
export async function startDemo(prefix, env = {}) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const options = { cwd: dir, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "ignore"] };
  const server = spawn(BIN, ["serve", "--bind", "127.0.0.1:0"], options);
  const lines = createInterface({ input: server.stdout });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no demo banner within 20 s")), 20_000);
    lines.on("line", (line) => line.includes(MARKER) && (clearTimeout(timer), resolve(line.split(MARKER)[1].trim())));
  });
  return { server, base, dir };
}
