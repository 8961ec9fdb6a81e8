#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm ci` (the `prepare` script).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write("mts-risk: not built yet; run `npm run build` (npm ci does it) first\n");
  process.exit(2);
}
const { main } = await import(entry.href);
const code = await main(process.argv.slice(2));
process.exitCode = code;
// A command that failed has printed its one-line error: a socket a failed connect left open (a
// port that accepts TCP and never speaks NATS) must not keep the process alive after it. A
// command that succeeded ends when its last handle closes, as any Node program.
if (code !== 0) setTimeout(() => process.exit(code), 500).unref();
