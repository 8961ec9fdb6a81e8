import { describe, expect, it } from "vitest";
import {
  CRITERION,
  type StepFigures,
  floorRate,
  judge,
  midpoint,
  nextRate,
  p99Limit,
  searchRates,
  spreadPct,
} from "../../src/bench/search.js";

const fig = (rate: number, p99: number, o: Partial<StepFigures> = {}): StepFigures => ({
  rate,
  p50_ms: p99 / 4,
  p99_ms: p99,
  failure_pct: 0,
  rejected_pct: 0,
  lag_p99_ms: 0.1,
  ...o,
});

describe("bench sustainable-rate criterion", () => {
  it("limits p99 to max(5 ms, 1.25 × the journaled p99), never above the saturation bound", () => {
    expect(p99Limit(1)).toBe(5);
    expect(p99Limit(8)).toBe(10);
    expect(p99Limit(400)).toBe(CRITERION.saturationMs);
  });

  it("judges p99, failures and rejections, and the absolute floor beside them", () => {
    const ok = judge(fig(1000, 9), 8, "ramp");
    expect(ok.pass).toBe(true);
    expect(ok.floor_pass).toBe(false);
    expect(judge(fig(1000, 4), 1, "ramp").floor_pass).toBe(true);
    const slow = judge(fig(1000, 11), 8, "ramp");
    expect(slow.pass).toBe(false);
    expect(slow.why).toBe("p99 11 ms > 10 ms");
    const failing = judge(fig(1000, 1, { failure_pct: 0.2 }), 1, "ramp");
    expect(failing.pass).toBe(false);
    expect(failing.floor_pass).toBe(false);
    expect(failing.why).toContain("failures 0.2 %");
    expect(judge(fig(1000, 1, { rejected_pct: 16 }), 1, "ramp").why).toContain("rejections 16 %");
  });

  it("bisects on geometric midpoints rounded to 10 until the gap is within 10 %", () => {
    expect(midpoint(1000, 2000)).toBe(1410);
    expect(midpoint(1410, 2000)).toBe(1680);
    expect(midpoint(1000, 1090)).toBeUndefined();
    expect(midpoint(0, 500)).toBeUndefined();
    expect(nextRate(500, 2)).toBe(1000);
    expect(nextRate(500, 1.5)).toBe(750);
    expect(nextRate(10, 1.001)).toBe(20);
  });

  it("spread between rounds: (max − min) / mean in %, undefined with one round", () => {
    expect(spreadPct([10, 12])).toBe(18.2);
    expect(spreadPct([3])).toBeUndefined();
    expect(spreadPct([0, 0])).toBe(0);
  });

  it("floor rate: the highest rate with every lower rate holding p99 ≤ 5 ms (either of a retried rate)", () => {
    const steps = [
      judge(fig(500, 2), 2, "ramp"),
      judge(fig(1000, 7), 2, "ramp"),
      judge(fig(1000, 3), 2, "retry"),
      judge(fig(2000, 6), 5, "ramp"),
      judge(fig(4000, 3), 5, "ramp"),
    ];
    expect(floorRate(steps)).toBe(1000);
    expect(floorRate([judge(fig(500, 6), 2, "ramp")])).toBe(0);
  });
});

describe("bench sustainable-rate search", () => {
  // Synthetic targets: p99 grows with the rate; each saturates at its own capacity.
  const capacity: Record<string, number> = { noop: 9000, journal: 6000, engine: 3000 };
  const model = (t: string, rate: number): StepFigures => {
    const cap = capacity[t]!;
    const p99 = rate < cap ? 1 + (3 * rate) / cap : 500;
    return fig(rate, +p99.toFixed(3), rate < cap ? {} : { failure_pct: 5 });
  };

  it("ramps, bisects each target between its last pass and first failure, judged against the journal at the same rate", async () => {
    const calls: string[] = [];
    const res = await searchRates(
      ["noop", "journal", "engine"],
      (t, rate) => {
        calls.push(`${t}@${rate}`);
        return Promise.resolve(model(t, rate));
      },
      { from: 500, factor: 2, cap: 100_000, bisect: 3 },
    );
    const by = Object.fromEntries(res.map((r) => [r.target, r]));
    // engine: passes 2000, fails 4000; bisection 2830 ✓, 3360 ✗, 3080 ✗
    expect(by.engine!.sustainable_rate).toBe(2830);
    expect(by.engine!.first_failing_rate).toBe(3080);
    expect(by.journal!.sustainable_rate).toBe(5660);
    expect(by.noop!.sustainable_rate).toBeGreaterThan(by.journal!.sustainable_rate);
    expect(by.noop!.sustainable_rate).toBeLessThan(9000);
    // every engine measurement has the journal measured at the same rate
    for (const c of calls.filter((x) => x.startsWith("engine@"))) {
      expect(calls).toContain(c.replace("engine", "journal"));
    }
    // above the journal's own first failure it is not measured again: the limit is the 100 ms bound
    expect(calls).toContain("noop@16000");
    expect(calls).not.toContain("journal@16000");
    expect(by.noop!.steps.find((j) => j.rate === 16000)!.limit_ms).toBe(100);
    // a failing ramp step is measured twice before it counts
    expect(calls.filter((x) => x === "engine@4000")).toHaveLength(2);
    expect(by.engine!.stopped_by).toMatch(/^3080\/s: /);
    // the absolute floor (p99 ≤ 5 ms) held at every ramp step below the failure
    expect(by.engine!.floor_rate).toBe(2830);
  });

  it("a target failing its first step sustains 0; the search ends at the cap when nothing fails", async () => {
    const res = await searchRates(
      ["journal", "engine"],
      (t, rate) => Promise.resolve(t === "engine" ? fig(rate, 50) : fig(rate, 1)),
      { from: 500, factor: 2, cap: 4000, bisect: 2 },
    );
    expect(res.find((r) => r.target === "engine")!.sustainable_rate).toBe(0);
    expect(res.find((r) => r.target === "engine")!.first_failing_rate).toBe(500);
    const j = res.find((r) => r.target === "journal")!;
    expect(j.sustainable_rate).toBe(4000);
    expect(j.stopped_by).toBe("cap");
  });

  it("a target failing its first step is measured lower until a rate passes, then bisected up to the lowest failure", async () => {
    const calls: string[] = [];
    // the engine sustains up to 180/s: p99 3 ms below, 20 ms above
    const res = await searchRates(
      ["journal", "engine"],
      (t, rate) => {
        calls.push(`${t}@${rate}`);
        return Promise.resolve(fig(rate, t === "engine" && rate > 180 ? 20 : t === "engine" ? 3 : 1));
      },
      { from: 500, factor: 2, cap: 1000, bisect: 2, lowest: 50 },
    );
    const e = res.find((r) => r.target === "engine")!;
    // 500 ✗ (twice), 250 ✗ (twice), 130 ✓; bisection 180 ✓, 210 ✗
    expect(e.steps.filter((j) => j.phase === "descend").map((j) => j.rate)).toEqual([250, 130]);
    expect(e.sustainable_rate).toBe(180);
    expect(e.first_failing_rate).toBe(210);
    expect(calls.filter((c) => c === "engine@250")).toHaveLength(2); // a failing step counts after a retry
    // the journal is measured at every rate the engine is, as its reference
    for (const c of calls.filter((x) => x.startsWith("engine@"))) {
      expect(calls).toContain(c.replace("engine", "journal"));
    }
    // measured for the engine (its descent and bisection): not part of the journal's own floor
    const j = res.find((r) => r.target === "journal")!;
    expect(j.steps.filter((x) => x.phase === "reference").map((x) => x.rate)).toEqual([250, 130, 180, 210]);
    expect(j.floor_rate).toBe(1000);
    // nothing passes down to the lowest rate: 0, the lowest failing rate named
    const none = await searchRates(
      ["journal", "engine"],
      (t, rate) => Promise.resolve(fig(rate, t === "engine" ? 50 : 1)),
      { from: 500, factor: 2, cap: 1000, bisect: 2, lowest: 100 },
    );
    const n = none.find((r) => r.target === "engine")!;
    expect(n.sustainable_rate).toBe(0);
    expect(n.first_failing_rate).toBe(130); // 500, 250, 130; 60 is below the lowest
    expect(Math.min(...n.steps.map((j) => j.rate))).toBe(130);
  });

  it("a target within 1.25× of a slow journal passes above the 5 ms floor", async () => {
    const res = await searchRates(
      ["journal", "engine"],
      (t, rate) => Promise.resolve(fig(rate, t === "engine" ? 11 : 10)),
      { from: 1000, factor: 2, cap: 2000, bisect: 0 },
    );
    const e = res.find((r) => r.target === "engine")!;
    expect(e.sustainable_rate).toBe(2000);
    expect(e.floor_rate).toBe(0);
  });
});
