// The published builds load: ESM by import, CommonJS by require (run `npm run build` first).
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";

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
