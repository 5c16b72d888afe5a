// The package is ESM ("type": "module"); this marks the CommonJS build, and its type
// declarations, as CommonJS.
import { writeFileSync } from "node:fs";
writeFileSync(new URL("../dist/cjs/package.json", import.meta.url), '{ "type": "commonjs" }\n');
