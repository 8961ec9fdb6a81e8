/** parseSubject: every subject of the contract parsed in one place; the projection table built on it. */
import { describe, expect, it } from "vitest";
import { Subjects, checkFundOf, parseSubject, streamCatalog } from "../../src/contract/subjects.js";
import { PROJECTIONS } from "../../src/state/projections/table.js";

describe("parseSubject", () => {
  it("given each subject builder of the contract, when parsed, then it names the same tokens back", () => {
    expect(parseSubject(Subjects.fill("F1", "AAPL"))).toEqual({ kind: "fill", fund: "F1", symbol: "AAPL" });
    expect(parseSubject(Subjects.quote("AAPL"))).toEqual({ kind: "quote", symbol: "AAPL" });
    expect(parseSubject(Subjects.mdQuote("BTC-USD"))).toEqual({ kind: "md_quote", symbol: "BTC-USD" });
    expect(parseSubject(Subjects.instrument("AAPL"))).toEqual({ kind: "instrument", symbol: "AAPL" });
    expect(parseSubject(Subjects.envelopeUpdated("F1"))).toEqual({ kind: "envelope", fund: "F1" });
    expect(parseSubject(Subjects.orderEvent("accepted", "F1"))).toEqual({
      kind: "order_event",
      event: "accepted",
      fund: "F1",
    });
    expect(parseSubject(Subjects.orderSubmit("F1"))).toEqual({ kind: "order_submit", fund: "F1" });
    expect(parseSubject(Subjects.cancelAll("F1"))).toEqual({ kind: "cancel_all", fund: "F1" });
    expect(parseSubject(Subjects.halt("F1"))).toEqual({ kind: "halt", fund: "F1" });
    expect(parseSubject(Subjects.resume("F1"))).toEqual({ kind: "resume", fund: "F1" });
    expect(parseSubject(Subjects.pnlBaseline("F1"))).toEqual({ kind: "pnl_baseline", fund: "F1" });
    expect(parseSubject(Subjects.stop("armed", "F1"))).toEqual({ kind: "stop", event: "armed", fund: "F1" });
    expect(parseSubject(Subjects.reconcile("lock", "F1"))).toEqual({
      kind: "reconcile",
      event: "lock",
      fund: "F1",
    });
    expect(parseSubject(Subjects.alert("drawdown", "F1"))).toEqual({
      kind: "alert",
      alert: "drawdown",
      fund: "F1",
    });
    expect(parseSubject(Subjects.decision("F1"))).toEqual({ kind: "decision", fund: "F1" });
    expect(parseSubject(Subjects.dlq("FILLS"))).toEqual({ kind: "dlq", stream: "FILLS" });
    expect(parseSubject(Subjects.check)).toEqual({ kind: "check", fund: undefined });
    expect(parseSubject(Subjects.checkFund("F1"))).toEqual({ kind: "check", fund: "F1" });
  });

  it("given a subject missing a token its kind names, or not of the contract, then it does not parse", () => {
    expect(parseSubject("mts.v1.fill.F1")).toBeUndefined();
    expect(parseSubject("mts.v1.risk.stop.armed")).toBeUndefined();
    expect(parseSubject("mts.v1.risk.envelope.get")).toBeUndefined();
    expect(parseSubject("other.v1.fill.F1.AAPL")).toBeUndefined();
    expect(parseSubject("mts.v1.nothing.F1")).toBeUndefined();
  });

  it("given a check subject, then its fund token is everything after the prefix (the hot path does not split)", () => {
    expect(checkFundOf(Subjects.check)).toBeUndefined();
    expect(checkFundOf(`${Subjects.check}.`)).toBeUndefined();
    expect(checkFundOf(Subjects.checkFund("a.b"))).toBe("a.b");
    expect(checkFundOf(Subjects.decision("F1"))).toBeUndefined();
  });
});

describe("the table of projections", () => {
  it("given each row, then its pattern parses to its kind and its stream's catalog subjects cover it", () => {
    const catalog = new Map(streamCatalog().map((s) => [s.name, s.subjects]));
    for (const p of PROJECTIONS) {
      const example = p.pattern
        .replace(/<([a-z_]+)\|[^>]*>/g, (_, first: string) => first)
        .replace(/<[^>]+>/g, "X");
      expect(parseSubject(example)?.kind, p.pattern).toBe(p.kind);
      const covered = catalog.get(p.stream)!.some((s) => example.startsWith(s.replace(/>$/, "")));
      expect(covered, `${p.stream} covers ${p.pattern}`).toBe(true);
    }
    // one row per (stream, kind)
    expect(new Set(PROJECTIONS.map((p) => `${p.stream}:${p.kind}`)).size).toBe(PROJECTIONS.length);
  });
});
