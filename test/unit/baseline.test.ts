/**
 * pnl.baseline carries the capital in force at the period start (issue 8 case 2): the projection
 * keeps it, the snapshot round-trips it, the digest covers it; an older record without it still
 * applies (capital then unknown). Period starts are the UTC midnight, Monday, and the 1st.
 */
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Subjects } from "../../src/contract/subjects.js";
import { createState, openSnapshot, project, stateDigest } from "../../src/state/index.js";
import { periodStarts } from "../../src/workers/periods.js";

const te = new TextEncoder();
const dir = mkdtempSync(join(tmpdir(), "riskengine-unit-baseline-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const body = (over: Record<string, unknown> = {}) => ({
  fund_id: "f",
  period: "day",
  starts_at: "2026-12-01T00:00:00.000Z",
  equity: "1000000",
  ...over,
});
function stateWith(...records: Record<string, unknown>[]) {
  const s = createState();
  records.forEach((r, i) =>
    expect(
      project(s, "RISK_CONTROL", Subjects.pnlBaseline("f"), te.encode(JSON.stringify(r)), i + 1),
    ).toMatchObject({ ok: true }),
  );
  return s;
}

describe("pnl.baseline with capital", () => {
  it("given a baseline with capital, when applied, then the fund keeps equity and capital", () => {
    const b = stateWith(body({ capital: "900000" }))
      .funds.get("f")!
      .baselines.get("day")!;
    expect({ equity: b.equity.toFixed(), capital: b.capital?.toFixed() }).toEqual({
      equity: "1000000",
      capital: "900000",
    });
  });

  it("given an older record without capital, when applied, then capital is unknown", () => {
    expect(stateWith(body()).funds.get("f")!.baselines.get("day")!.capital).toBeUndefined();
  });

  it("given two baselines differing only in capital, then their digests differ", () => {
    expect(stateDigest(stateWith(body({ capital: "1" })))).not.toBe(
      stateDigest(stateWith(body({ capital: "2" }))),
    );
  });

  it("given a snapshot flushed and loaded, then capital survives (and absence stays absence)", () => {
    for (const over of [{ capital: "900000" }, {}]) {
      const s = stateWith(body(over));
      const snap = openSnapshot(join(dir, `s-${Object.keys(over).length}.db`));
      try {
        snap.flush(s);
        const loaded = snap.load();
        expect(loaded.funds.get("f")!.baselines.get("day")!.capital?.toFixed()).toBe(over.capital);
        expect(stateDigest(loaded)).toBe(stateDigest(s));
      } finally {
        snap.close();
      }
    }
  });

  it("given a later baseline for the period, then an earlier one does not replace it", () => {
    const s = stateWith(
      body({ capital: "2" }),
      body({ starts_at: "2026-11-30T00:00:00.000Z", capital: "1" }),
    );
    expect(s.funds.get("f")!.baselines.get("day")!.capital?.toFixed()).toBe("2");
  });
});

describe("period starts", () => {
  it("one millisecond either side of midnight falls in different days, weeks and months", () => {
    const before = periodStarts(Date.parse("2026-11-30T23:59:59.999Z"));
    expect(Object.values(before).map((t) => new Date(t).toISOString())).toEqual([
      "2026-11-30T00:00:00.000Z",
      "2026-11-30T00:00:00.000Z", // Monday
      "2026-11-01T00:00:00.000Z",
    ]);
    const after = periodStarts(Date.parse("2026-12-01T00:00:00.000Z"));
    expect(Object.values(after).map((t) => new Date(t).toISOString())).toEqual([
      "2026-12-01T00:00:00.000Z",
      "2026-11-30T00:00:00.000Z",
      "2026-12-01T00:00:00.000Z",
    ]);
    // and back again (a clock set backwards): recomputed, not cached
    expect(periodStarts(Date.parse("2026-11-30T23:59:59.999Z")).day).toBe(before.day);
  });
});
