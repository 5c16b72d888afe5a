// A build starts from an empty dist/, so a tarball never carries files of an older build.
import { rmSync } from "node:fs";
rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
