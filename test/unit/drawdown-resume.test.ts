/**
 * A Resume is evaluated at once: a halt of an earlier period lifted while the current period's own
 * loss is past its threshold halts again before the next order (red team, stop 30: the monitor
 * evaluated on fills, marks, envelopes and its 1 s tick, not on a Resume, so an order checked right
 * after it was approved). The engine runs in process (test/unit/redteam-s30f-dd-support.ts).
 */
import { describe, expect, it } from "vitest";
import { DdSim } from "./redteam-s30f-dd-support.js";

const MONDAY = Date.parse("2026-11-30T10:00:00.000Z");
const TUESDAY = Date.parse("2026-12-01T10:00:00.000Z");

describe("drawdown: a Resume is evaluated at once", () => {
  it("given Monday's daily halt resumed on Tuesday past Tuesday's own threshold, then the next order is FUND_HALTED", () => {
    const sim = new DdSim(MONDAY);
    sim.envelope("100000", { day: "0.05" });
    sim.quote("X", "99.99", "100.01");
    sim.fill("X", "BUY", "1000", "100", "0");
    sim.quote("X", "93.99", "94.01"); // −6 000 of 100 000: past 5 %
    expect(sim.activeHalts()).toEqual(["DAILY_LOSS"]);

    sim.clock.set(TUESDAY);
    sim.quote("X", "93.99", "94.01"); // Tuesday's baseline: 94 000
    sim.quote("X", "87.99", "88.01"); // −6 000 of 94 000: past 5 % again, while still halted
    expect(sim.activeHalts()).toEqual(["DAILY_LOSS"]);

    sim.resume(); // lifts Monday's halt; Tuesday's breach is a new one
    expect(sim.activeHalts()).toEqual(["DAILY_LOSS"]);
    const d = sim.check("X", "BUY", "1", "88");
    expect(`${d.rejection_code} ${d.details["severity"]}`).toBe("FUND_HALTED DAILY_LOSS");
  });

  it("given a halt resumed within its own period, then it does not halt again (control)", () => {
    const sim = new DdSim(MONDAY);
    sim.envelope("100000", { day: "0.05" });
    sim.quote("X", "99.99", "100.01");
    sim.fill("X", "BUY", "1000", "100", "0");
    sim.quote("X", "93.99", "94.01");
    expect(sim.activeHalts()).toEqual(["DAILY_LOSS"]);
    sim.resume();
    expect(sim.activeHalts()).toEqual([]);
    expect(sim.check("X", "BUY", "1", "94").approved).toBe(true);
  });
});
