// A live Switchboard for the tests: the binary built by `cargo test` (or $SWITCHBOARD_BIN),
// serving a small app on a free loopback port with a SQLite file that survives restarts.
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

export const SECRET = "js-client-secret";
export const KEY = "sk_js_client";
// Resolved here: the server runs in its own directory.
const BIN = resolve(process.env.SWITCHBOARD_BIN ?? new URL("../../../target/release/switchboard", import.meta.url).pathname);

export class Server {
  #child: ChildProcess | null = null;
  #dir = mkdtempSync(join(tmpdir(), "switchboard-js-"));
  addr = "127.0.0.1:0";

  constructor() {
    writeFileSync(join(this.#dir, "secret.txt"), SECRET);
    writeFileSync(join(this.#dir, "key.txt"), KEY);
    const manifest = {
      slug: "js",
      auth_policy: { jwt: { secret_file: "secret.txt", leeway: 0 } },
      api_key_file: "key.txt",
      websockets: { realtime: { path: "/ws" } },
      channels: {
        room: { subscribe: "authenticated" },
        // History in memory: a restart starts a new epoch, so nothing of it can be resumed.
        feed: { subscribe: "authenticated", history: { size: 100 } },
        // Only members the server API adds may join; durable history.
        club: { subscribe: "server", history: { storage: "durable" } },
      },
      presence: { offline_grace: "1s" },
    };
    writeFileSync(join(this.#dir, "js.json"), JSON.stringify(manifest));
  }

  /** Starts (or restarts, on the same port and data) and waits for its "listening" line. */
  async start(): Promise<void> {
    const args = ["serve", "--manifest", "js.json", "--bind", this.addr, "--store", "sqlite://./js.db"];
    const child = spawn(BIN, args, { cwd: this.#dir, env: { ...process.env, RUST_LOG: "info" }, stdio: ["ignore", "ignore", "pipe"] });
    this.#child = child;
    const lines = createInterface({ input: child.stderr! });
    this.addr = await new Promise<string>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`${BIN} did not start`)), 20_000);
      lines.on("line", (line) => {
        const at = line.indexOf("addr=");
        if (line.includes("listening") && at >= 0) {
          clearTimeout(timer);
          done(line.slice(at + 5).split(/\s/)[0]);
        }
      });
      child.on("exit", (code) => fail(new Error(`${BIN} exited with ${code}`)));
    });
  }

  /** Stops it for good and deletes its files. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  /** SIGKILL: sockets just break. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((done) => child.on("exit", done));
    child.kill("SIGKILL");
    await exited;
  }

  get url(): string {
    return `ws://${this.addr}/ws`;
  }

  async api(method: string, path: string, body?: unknown): Promise<any> {
    const response = await fetch(`http://${this.addr}/api/v1/apps/js${path}`, {
      method,
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  }

  publish(channel: string, type: string, data: unknown): Promise<any> {
    return this.api("POST", "/publish", { channels: [channel], type, data });
  }
}

/** An HS256 JWT for `user`, valid for `seconds`. */
export function token(user: string, seconds = 600): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const body = `${encode({ alg: "HS256", typ: "JWT" })}.${encode({ sub: user, exp: Math.floor(Date.now() / 1000) + seconds })}`;
  return `${body}.${createHmac("sha256", SECRET).update(body).digest("base64url")}`;
}
