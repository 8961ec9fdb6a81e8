/** parseSubject: every subject of the contract parsed in one place; the projection table built on it. */
import { describe, expect, it } from "vitest";
import {
  type StreamName,
  Subjects,
  checkFundOf,
  parseSubject,
  streamCatalog,
} from "../../src/contract/subjects.js";
import { type EngineState, createState, project } from "../../src/state/index.js";
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

describe("the projector over the table", () => {
  const te = new TextEncoder();
  const fold = (state: EngineState, stream: StreamName, subject: string, body: unknown, seq = 1) =>
    project(state, stream, subject, te.encode(JSON.stringify(body)), seq);
  const fill = {
    fill_id: "f-1",
    order_id: "o-1",
    fund_id: "alpha",
    broker: "paper",
    symbol: "AAPL",
    side: "BUY",
    quantity: "10",
    price: "100",
    timestamp: "2026-11-21T14:30:00.000Z",
  };

  it("given a message its row applies, then the typed change is returned (what the workers receive)", () => {
    const state = createState();
    expect(fold(state, "FILLS", Subjects.fill("alpha", "AAPL"), fill, 3)).toEqual({
      ok: true,
      change: { kind: "fill", fund: "alpha", symbol: "AAPL", seq: 3 },
    });
    expect(
      fold(state, "OMS_ORDERS", Subjects.orderEvent("accepted", "alpha"), {
        order_id: "o-1",
        fund_id: "alpha",
        event: "accepted",
        at: "2026-11-21T14:30:00.000Z",
      }),
    ).toMatchObject({
      ok: true,
      change: { kind: "order", fund: "alpha", orderId: "o-1", event: "accepted" },
    });
    expect(
      fold(state, "RISK_CONTROL", Subjects.alert("drawdown", "alpha"), { kind: "drawdown", message: "m" }, 7),
    ).toEqual({ ok: true, change: { kind: "control", what: "alert", fund: "alpha", seq: 7 } });
  });

  it("given a body naming another fund, an unknown stop event or an invalid envelope, then the reasons are the projector's", () => {
    const state = createState();
    expect(fold(state, "FILLS", Subjects.fill("beta", "AAPL"), fill)).toEqual({
      ok: false,
      reason: `subject ${Subjects.fill("beta", "AAPL")} does not match the body (alpha)`,
      fund: "alpha",
    });
    expect(
      fold(state, "RISK_CONTROL", "mts.v1.risk.stop.bogus.alpha", { fund_id: "alpha" }, 2),
    ).toMatchObject({
      ok: false,
      reason: "unknown stop event bogus",
    });
    const r = fold(
      state,
      "RISK_ENVELOPES",
      Subjects.envelopeUpdated("alpha"),
      { fund_id: "alpha", version: 0 },
      3,
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/^envelope rejected whole: /);
    // a duplicate fill: applied once, the notice names it
    expect(fold(state, "FILLS", Subjects.fill("alpha", "AAPL"), fill, 4)).toMatchObject({ ok: true });
    expect(fold(state, "FILLS", Subjects.fill("alpha", "AAPL"), fill, 5)).toMatchObject({
      ok: true,
      notice: { kind: "duplicate_fill", fund: "alpha" },
    });
  });
});
