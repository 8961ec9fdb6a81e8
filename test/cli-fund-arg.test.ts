/**
 * The fund argument of the operator commands: `_` is the journal's "no fund" token (CONTRACT.md
 * "Encoding"), so halting or resuming it is refused (exit 2, one line, nothing published on
 * RISK_CONTROL) as `envelope set _` already is; `envelope get|history` refuse a fund id that is not
 * one (a subject wildcard) as bad input (exit 2) before asking anything.
 */
import { describe, expect, it } from "vitest";
import { cliWithEngine, expectOneLineError, run } from "./support/cli.js";
import { readStream } from "./support/engine.js";

describe("mts-risk: the fund argument", () => {
  const rig = cliWithEngine("mts-cli-fund-");

  it("halt _ and resume _ are refused (exit 2, one line) and publish nothing", async () => {
    for (const args of [
      ["halt", "_", "--reason", "test"],
      ["halt", "_", "--reason", "test", "--kill"],
      ["resume", "_", "--operator", "ops", "--reason", "test"],
    ]) {
      const r = await run([...args, ...rig.g]);
      expectOneLineError(r, 2);
      expect(r.err).toContain("reserved");
    }
    const ctl = await readStream(rig.nc, "RISK_CONTROL");
    expect(ctl.filter((m) => /\.(halt|resume)\._$/.test(m.subject))).toEqual([]);
    const intents = await readStream(rig.nc, "OMS_INTENTS");
    expect(intents.filter((m) => m.subject.endsWith("._"))).toEqual([]);
  });

  it("envelope get|history refuse a fund id that is not one (exit 2, one line)", async () => {
    for (const args of [
      ["envelope", "get", "a.*"],
      ["envelope", "history", "a.>"],
      ["envelope", "history", "*"],
      ["envelope", "get", "_"],
    ]) {
      const r = await run([...args, ...rig.g]);
      expectOneLineError(r, 2);
    }
    const ok = await run(["envelope", "get", "alpha", ...rig.g]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ fund_id: "alpha", version: 1 });
  });
});
