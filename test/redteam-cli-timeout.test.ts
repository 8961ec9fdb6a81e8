/**
 * Red team, CLI: `--timeout <ms>` larger than a Node timer can hold (2^31-1 ms, ≈ 24.8 days) is
 * accepted by the option's parser (positiveInt: any safe integer) and then handed to timers, which
 * Node clamps to 1 ms with a multi-line TimeoutOverflowWarning on stderr: the command fails at once
 * with "cannot connect to NATS ...: timeout" against a live engine. Correct: either the command
 * works (the timeout is simply long) or the value is refused up front as a usage error naming
 * --timeout; in both cases stderr holds at most one line.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { cliWithEngine } from "./support/cli.js";

const bin = fileURLToPath(new URL("../bin/mts-risk.js", import.meta.url));

function spawnCli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [bin, ...args],
      { encoding: "utf8", timeout: 60_000, env: { ...process.env, RISK_LOG__LEVEL: "warn" } },
      (_e, out, err) => done({ code: child.exitCode, out, err }),
    );
  });
}

describe("mts-risk --timeout beyond a timer's range", () => {
  const rig = cliWithEngine("mts-rt-timeout-");

  for (const ms of ["2147483648", "3000000000", "9007199254740991"]) {
    it(`--timeout ${ms}: works or is refused as a usage error, with at most one line on stderr`, async () => {
      const r = await spawnCli(["status", "--timeout", ms, "--nats-url", rig.server.url]);
      expect(r.code, r.err).not.toBeNull(); // null: still running at 60 s
      expect(r.err, "stderr").not.toContain("TimeoutOverflowWarning");
      expect(r.err).toMatch(/^(mts-risk: [^\n]+\n)?$/);
      if (r.code === 0) expect(JSON.parse(r.out)).toMatchObject({ ready: true });
      else {
        expect(r.code).toBe(2);
        expect(r.err).toContain("--timeout"); // refused as bad input, not "cannot connect"
      }
    }, 90_000);
  }

  it("the largest timer value, 2147483647, works (control)", async () => {
    const r = await spawnCli(["status", "--timeout", "2147483647", "--nats-url", rig.server.url]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toBe("");
  }, 90_000);
});
