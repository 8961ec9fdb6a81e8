/**
 * Red team, CLI: a configuration file (--config) with a YAML tag the parser does not know
 * (`!!js/function`, `!!python/object`, a typo such as `!!strr`) makes the `yaml` package emit a
 * process warning (TAG_RESOLVE_FAILED) that Node prints on stderr over five lines, before or
 * besides the CLI's own one-line error. Correct: one line on stderr (`mts-risk: …`), exit 2.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const bin = fileURLToPath(new URL("../bin/mts-risk.js", import.meta.url));

function spawnCli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [bin, ...args],
      { encoding: "utf8", timeout: 30_000 },
      (_e, out, err) => done({ code: child.exitCode, out, err }),
    );
  });
}

describe("mts-risk --config with an unknown YAML tag", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mts-rt-config-yaml-"));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cases: [string, string][] = [
    ["unknown section", 'x: !!js/function "f"\n'],
    ["known key", "nats:\n  url: !!strr nats://127.0.0.1:1\n"],
  ];
  for (const [name, text] of cases) {
    it(`${name}: one line on stderr, exit 2, no YAMLWarning`, async () => {
      const file = join(dir, `${name.replace(/\W/g, "-")}.yaml`);
      await writeFile(file, text);
      // --timeout 1000 and a closed port: a file that loads still ends quickly
      const r = await spawnCli(["--config", file, "--timeout", "1000", "status"]);
      expect(r.code, r.err).toBe(2);
      expect(r.err).not.toContain("YAMLWarning");
      expect(r.err).toMatch(/^mts-risk: [^\n]+\n$/);
    }, 60_000);
  }
});
