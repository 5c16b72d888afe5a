// The published builds load: ESM by import, CommonJS by require (run `npm run build` first);
// and `npm pack` makes a tarball an app installs, imports, requires and type-checks.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const PACKAGE = fileURLToPath(new URL("..", import.meta.url));
const EXPORTS = ["Client", "SwitchboardError", "afterClose", "backoff", "untilExpiry"];

describe("the builds", () => {
  it("load as ESM and as CommonJS", async () => {
    const esm = await import("../dist/esm/index.js");
    const cjs = createRequire(import.meta.url)("../dist/cjs/index.js");
    for (const build of [esm, cjs]) {
      expect(typeof build.Client).toBe("function");
      expect(build.afterClose(4403, true)).toBe("stop");
    }
  });
});

describe("the npm package", () => {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-js-pack-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /** The command's stdout; a failure says what it printed. */
  const run = (command: string, args: string[], cwd: string): string => {
    try {
      return execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (error: any) {
      throw new Error(`${command} ${args.join(" ")} failed in ${cwd}:\n${error.stdout ?? ""}${error.stderr ?? ""}`);
    }
  };

  it("packs ESM, CommonJS and types, and installs into an app that imports, requires and type-checks it", () => {
    // `prepack` builds, so a fresh checkout packs a complete tarball.
    const [packed] = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", dir], PACKAGE));
    const files: string[] = packed.files.map((f: { path: string }) => f.path);
    for (const file of ["index.js", "react.js"]) {
      expect(files).toContain(`dist/esm/${file}`);
      expect(files).toContain(`dist/cjs/${file}`);
    }
    for (const file of ["dist/types/index.d.ts", "dist/types/react.d.ts", "dist/cjs/index.d.ts", "dist/cjs/package.json"]) {
      expect(files).toContain(file);
    }
    expect(files.filter((f) => f.startsWith("src/") || f.startsWith("test/"))).toEqual([]);

    // No dependencies (React is an optional peer), so this needs no network.
    const app = join(dir, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
    run("npm", ["install", "--no-audit", "--no-fund", "--offline", join(dir, packed.filename)], app);
    const installed = join(app, "node_modules", "switchboard-client");
    for (const file of ["dist/types/index.d.ts", "dist/cjs/index.d.ts", "dist/types/react.d.ts", "dist/cjs/react.d.ts"]) {
      expect(existsSync(join(installed, file)), file).toBe(true);
    }

    const esm = `import * as sb from "switchboard-client";
      console.log(JSON.stringify({ names: Object.keys(sb).sort(), from: import.meta.resolve("switchboard-client") }));`;
    const cjs = `const sb = require("switchboard-client");
      console.log(JSON.stringify({ names: Object.keys(sb).sort(), from: require.resolve("switchboard-client") }));`;
    const imported = JSON.parse(run("node", ["--input-type=module", "-e", esm], app));
    const required = JSON.parse(run("node", ["--input-type=commonjs", "-e", cjs], app));
    expect(imported.names).toEqual(EXPORTS);
    expect(imported.from).toMatch(/node_modules\/switchboard-client\/dist\/esm\/index\.js$/);
    expect(required.names).toEqual(EXPORTS);
    expect(required.from).toMatch(/node_modules\/switchboard-client\/dist\/cjs\/index\.js$/);

    // Both kinds of TypeScript app find the declarations meant for them (node16 resolution
    // refuses ESM declarations to a CommonJS file).
    const usage = `import { Client, SwitchboardError, type ClientOptions, type Resumed } from "switchboard-client";
      const options: ClientOptions = { url: "ws://127.0.0.1:1/ws", token: "t" };
      const client: Client = new Client(options);
      client.on("resumed", (r: Resumed) => r.untrackedChannels.concat(r.recoveredChannels, r.unrecovered));
      client.onAny((type: string, _data: unknown) => type);
      export const refused: SwitchboardError = new SwitchboardError("forbidden", "no");\n`;
    writeFileSync(join(app, "esm.mts"), usage);
    writeFileSync(join(app, "cjs.cts"), usage);
    const tsc = join(PACKAGE, "node_modules", "typescript", "bin", "tsc");
    const args = [tsc, "--noEmit", "--strict", "--module", "node16", "--moduleResolution", "node16", "esm.mts", "cjs.cts"];
    run("node", args, app);
  }, 300_000);
});
