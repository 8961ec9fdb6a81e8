/**
 * The checks of issue 13 at their boundaries, against state built by the real projections:
 * max_open_orders, duplicate_window_ms (velocity gate), max_adv_pct, require_fresh_mark (static gate).
 */
import { describe, it, expect } from "vitest";
import { canon, dec } from "../../src/decimal/index.js";
import {
  DETERMINISTIC_GATES,
  buildContext,
  createPipeline,
  staticGate,
  velocityGate,
} from "../../src/gates/index.js";
import { type Decider, type Evaluation, createDecider } from "../../src/service/decide.js";
import { EnvelopeSchema } from "../../src/contract/schemas.js";
import { Subjects } from "../../src/contract/subjects.js";
import { toWire } from "../../src/contract/wire.js";
import { createState, decKey, effectiveLimits, project } from "../../src/state/index.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW, codeOf, envelope, order, rawOrder, runGate } from "./fixtures.js";

const UNIT = "0.000000000000000001";
const up = (s: string): string => canon(dec(s).plus(UNIT));
const pipeline = createPipeline(DETERMINISTIC_GATES);

/** A decision with no async gate: synchronous. */
function now1(d: Decider, raw: Record<string, unknown>): Evaluation {
  const e = d.decide({ raw });
  if (e instanceof Promise) throw new Error("async decision");
  return e;
}

function runPipeline(feed: Feed, over: Record<string, unknown>, now = NOW) {
  const o = order(over);
  const fund = feed.fund;
  const limits = effectiveLimits(fund.envelope!, o.strategy_id);
  const ctx = buildContext(feed.state, fund, o, limits, now);
  return pipeline.runSync(o, limits, ctx);
}

describe("max_open_orders (velocity gate)", () => {
  it("given a limit of 2 and 1 open order, when another arrives, then it passes; with 2 open it is MAX_OPEN_ORDERS_EXCEEDED", () => {
    const feed = new Feed().envelope({ max_open_orders: 2 });
    feed.reserve("o1", "AAPL", "BUY", "10", "100");
    expect(feed.fund.openOrders).toBe(1);
    expect(codeOf(runGate(feed.state, velocityGate))).toBe("");
    feed.reserve("o2", "MSFT", "SELL", "10", "100");
    expect(feed.fund.openOrders).toBe(2);
    const r = runGate(feed.state, velocityGate);
    expect(codeOf(r)).toBe("MAX_OPEN_ORDERS_EXCEEDED");
    expect(r.result?.details).toMatchObject({ open_orders: "3", limit: "2" });
  });

  it("given 2 open orders at the limit, when one is cancelled, then a slot is free again", () => {
    const feed = new Feed().envelope({ max_open_orders: 2 });
    feed.reserve("o1", "AAPL", "BUY", "10", "100").reserve("o2", "AAPL", "BUY", "10", "100");
    expect(codeOf(runGate(feed.state, velocityGate))).toBe("MAX_OPEN_ORDERS_EXCEEDED");
    feed.orderEvent("o1", "cancelled");
    expect(feed.fund.openOrders).toBe(1);
    expect(codeOf(runGate(feed.state, velocityGate))).toBe("");
  });

  it("given an open order, when it is partly filled it stays open, and its last fill frees the slot", () => {
    const feed = new Feed().envelope({ max_open_orders: 1 });
    feed.reserve("o1", "AAPL", "BUY", "10", "100");
    feed.fill("AAPL", "4", "100", { order_id: "o1" });
    expect(feed.fund.openOrders).toBe(1);
    expect(codeOf(runGate(feed.state, velocityGate))).toBe("MAX_OPEN_ORDERS_EXCEEDED");
    feed.fill("AAPL", "6", "100", { order_id: "o1" });
    expect(feed.fund.openOrders).toBe(0);
    expect(codeOf(runGate(feed.state, velocityGate))).toBe("");
  });

  it("given max_open_orders 0, when any order arrives, then it is rejected; without the field nothing is counted against", () => {
    const feed = new Feed().envelope({ max_open_orders: 0 });
    expect(codeOf(runGate(feed.state, velocityGate))).toBe("MAX_OPEN_ORDERS_EXCEEDED");
    const free = new Feed().envelope();
    free.reserve("o1", "AAPL", "BUY", "10", "100");
    expect(codeOf(runGate(free.state, velocityGate))).toBe("");
  });

  it("given a strategy override of max_open_orders, when that strategy orders, then its limit applies to the fund's count", () => {
    const feed = new Feed().envelope({ max_open_orders: 5, strategies: { s1: { max_open_orders: 1 } } });
    feed.reserve("o1", "AAPL", "BUY", "10", "100");
    expect(codeOf(runGate(feed.state, velocityGate, { strategy_id: "s1" }))).toBe("MAX_OPEN_ORDERS_EXCEEDED");
    expect(codeOf(runGate(feed.state, velocityGate, { strategy_id: "s2" }))).toBe("");
  });
});

describe("duplicate_window_ms (velocity gate)", () => {
  function decider(feedState = createState(), clock = manualClock(NOW)) {
    let n = 0;
    const d = createDecider({
      state: feedState,
      pipeline,
      clock,
      instance: "t",
      ready: () => true,
      nextId: () => `d${++n}`,
    });
    return { d, clock, state: feedState };
  }
  function setup(over: Record<string, unknown> = {}) {
    const state = createState();
    const env = envelope({ duplicate_window_ms: 1000, enable_shorting: true, ...over });
    project(
      state,
      "RISK_ENVELOPES",
      Subjects.envelopeUpdated(FUND),
      new TextEncoder().encode(JSON.stringify(env)),
      1,
    );
    return decider(state);
  }
  const same = { symbol: "AAPL", side: "BUY", order_type: "LIMIT", quantity: "100", limit_price: "100" };

  it("given an order decided 999 ms ago, when the same order comes under another key, then it is DUPLICATE_ORDER", () => {
    const { d, clock } = setup();
    const first = now1(d, rawOrder(same));
    expect(first.decision.approved).toBe(true);
    clock.advance(999);
    const second = now1(d, rawOrder(same));
    expect(second.decision.rejection_code).toBe("DUPLICATE_ORDER");
    expect(second.decision.details).toMatchObject({ elapsed_ms: "999", window_ms: "1000" });
  });

  it("given an order decided exactly 1000 ms ago (the window), when the same order comes under another key, then it passes", () => {
    const { d, clock } = setup();
    now1(d, rawOrder(same));
    clock.advance(1000);
    const again = now1(d, rawOrder(same));
    expect(again.decision.approved).toBe(true);
  });

  it("given rejected duplicates in between, when the window after the original has passed, then the order passes (duplicates do not extend it)", () => {
    const { d, clock } = setup();
    now1(d, rawOrder(same));
    clock.advance(500);
    expect(now1(d, rawOrder(same)).decision.rejection_code).toBe("DUPLICATE_ORDER");
    clock.advance(500);
    expect(now1(d, rawOrder(same)).decision.approved).toBe(true);
  });

  it("given an order, when one field differs (quantity, side, type, limit or stop), then it is not a duplicate; 100 and 100.0 are the same", () => {
    const { d } = setup();
    now1(d, rawOrder(same));
    for (const over of [
      { quantity: up("100") },
      { side: "SELL" },
      { limit_price: "100.01" },
      { symbol: "MSFT" },
      { order_type: "STOP_LIMIT", stop_price: "99" },
    ]) {
      const e = now1(d, rawOrder({ ...same, ...over }));
      expect(e.decision.rejection_code, JSON.stringify(over)).not.toBe("DUPLICATE_ORDER");
    }
    const e = now1(d, rawOrder({ ...same, quantity: "100.0", limit_price: "100.00" }));
    expect(e.decision.rejection_code).toBe("DUPLICATE_ORDER");
  });

  it("given an order, when it is retried under its own key, then it is replayed, never a duplicate", () => {
    const { d, clock } = setup();
    const raw = rawOrder(same);
    now1(d, raw);
    clock.advance(10);
    const e = now1(d, raw);
    expect(e.decision.approved).toBe(true);
    expect(e.decision.details["replayed"]).toBe("true");
  });

  it("given the decisions journaled, when a fresh state folds the journal, then it finds the same duplicate", () => {
    const { d, clock } = setup();
    const first = now1(d, rawOrder(same));
    expect(first.record.dup_key).toBe("AAPL|BUY|LIMIT|100e0|100e0|");
    const rebuilt = createState();
    const te = new TextEncoder();
    project(
      rebuilt,
      "RISK_ENVELOPES",
      Subjects.envelopeUpdated(FUND),
      te.encode(JSON.stringify(envelope({ duplicate_window_ms: 1000 }))),
      1,
    );
    project(
      rebuilt,
      "RISK_DECISIONS",
      Subjects.decision(FUND),
      te.encode(JSON.stringify(toWire(first.record))),
      1,
    );
    clock.advance(999);
    const r = now1(decider(rebuilt, clock).d, rawOrder(same));
    expect(r.decision.rejection_code).toBe("DUPLICATE_ORDER");
  });

  it("given many distinct orders over time, when the window has passed, then the index forgets them (bounded memory)", () => {
    const { d, clock, state } = setup();
    for (let i = 0; i < 3000; i++) {
      now1(d, rawOrder({ ...same, quantity: String(i + 1) }));
      clock.advance(1);
    }
    const size = state.funds.get(FUND)!.dups.last.size;
    expect(size).toBeLessThanOrEqual(1001);
    expect(size).toBeGreaterThan(900);
  });

  it("given the gate order, when an order is both a duplicate and over max_open_orders and velocity, then DUPLICATE_ORDER answers", () => {
    const { d, clock } = setup({ max_open_orders: 1, velocity: { window_s: 1, max_orders: 1 } });
    now1(d, rawOrder(same));
    clock.advance(1);
    const e = now1(d, rawOrder(same));
    expect(e.decision.rejection_code).toBe("DUPLICATE_ORDER");
    const e2 = now1(d, rawOrder({ ...same, quantity: "7" }));
    expect(e2.decision.rejection_code).toBe("MAX_OPEN_ORDERS_EXCEEDED");
  });

  it("given equal decimals written differently, when keyed, then the keys are equal; different values differ", () => {
    const k = (q: string) => decKey(dec(q));
    expect(k("100")).toBe(k("100.000"));
    expect(k("0.5")).toBe(k("0.50"));
    expect(k("1000")).not.toBe(k("100"));
    expect(k("0.05")).not.toBe(k("0.5"));
    expect(k("0")).toBe(k("0.0"));
  });

  it("given duplicate_window_ms above 1 h or not a positive integer, when the envelope is validated, then it is rejected", () => {
    expect(EnvelopeSchema.safeParse(envelope({ duplicate_window_ms: 3_600_000 })).success).toBe(true);
    expect(EnvelopeSchema.safeParse(envelope({ duplicate_window_ms: 3_600_001 })).success).toBe(false);
    expect(EnvelopeSchema.safeParse(envelope({ duplicate_window_ms: 0 })).success).toBe(false);
    expect(EnvelopeSchema.safeParse(envelope({ duplicate_window_ms: 1.5 })).success).toBe(false);
    expect(EnvelopeSchema.safeParse(envelope({ max_open_orders: -1 })).success).toBe(false);
  });
});

describe("max_adv_pct (static gate)", () => {
  const inst = { symbol: "AAPL", asset_class: "equity", adv: "1000000" };

  it("given 1% of adv 1 000 000, when ordering exactly 10 000, then it passes; 10 000 + 1e-18 is MAX_ADV_PCT_EXCEEDED", () => {
    const feed = new Feed().envelope({ max_adv_pct: "0.01" }).instrument(inst);
    expect(codeOf(runGate(feed.state, staticGate, { quantity: "10000", limit_price: "1" }))).toBe("");
    const r = runGate(feed.state, staticGate, { quantity: up("10000"), limit_price: "1" });
    expect(codeOf(r)).toBe("MAX_ADV_PCT_EXCEEDED");
    expect(r.result?.details).toMatchObject({ adv: "1000000", limit: "10000" });
  });

  it("given max_adv_pct and no adv in refdata (or no refdata), when ordering, then it is MAX_ADV_PCT_EXCEEDED (fail closed)", () => {
    const feed = new Feed().envelope({ max_adv_pct: "0.01" });
    expect(codeOf(runGate(feed.state, staticGate, { quantity: "1" }))).toBe("MAX_ADV_PCT_EXCEEDED");
    feed.instrument({ symbol: "AAPL", asset_class: "equity" });
    expect(codeOf(runGate(feed.state, staticGate, { quantity: "1" }))).toBe("MAX_ADV_PCT_EXCEEDED");
  });

  it("given no max_adv_pct, when the instrument has no adv, then nothing is checked", () => {
    const feed = new Feed().envelope().instrument({ symbol: "AAPL", asset_class: "equity" });
    expect(codeOf(runGate(feed.state, staticGate, { quantity: "99999999" }))).toBe("");
  });

  it("given the contract order, when over max_order_qty and max_adv_pct and max_order_notional, then qty answers, then adv, then notional", () => {
    const feed = new Feed()
      .envelope({ max_order_qty: "200", max_adv_pct: "0.0001", max_order_notional: "1" })
      .instrument(inst);
    expect(codeOf(runGate(feed.state, staticGate, { quantity: "201" }))).toBe("MAX_ORDER_QTY_EXCEEDED");
    expect(codeOf(runGate(feed.state, staticGate, { quantity: "150" }))).toBe("MAX_ADV_PCT_EXCEEDED");
    expect(codeOf(runGate(feed.state, staticGate, { quantity: "100" }))).toBe("MAX_ORDER_NOTIONAL_EXCEEDED");
  });
});

describe("require_fresh_mark (static gate)", () => {
  it("given require_fresh_mark, when a LIMIT order has no mark, then it is STALE_MARKET_DATA; without the flag it passes", () => {
    const feed = new Feed().envelope({ require_fresh_mark: true });
    expect(codeOf(runGate(feed.state, staticGate))).toBe("STALE_MARKET_DATA");
    const free = new Feed().envelope();
    expect(codeOf(runGate(free.state, staticGate))).toBe("");
  });

  it("given require_fresh_mark and a quote exactly max_quote_age_ms old, when ordering, then it passes; 1 ms older is STALE_MARKET_DATA", () => {
    const feed = new Feed()
      .envelope({ require_fresh_mark: true, max_quote_age_ms: 2000 })
      .quote("AAPL", "99", "101", NOW - 2000);
    expect(codeOf(runGate(feed.state, staticGate))).toBe("");
    expect(codeOf(runGate(feed.state, staticGate, {}, NOW + 1))).toBe("STALE_MARKET_DATA");
  });

  it("given a strategy override require_fresh_mark false, when that strategy orders without a mark, then it passes", () => {
    const feed = new Feed().envelope({
      require_fresh_mark: true,
      strategies: { s1: { require_fresh_mark: false } },
    });
    expect(codeOf(runGate(feed.state, staticGate, { strategy_id: "s1" }))).toBe("");
    expect(codeOf(runGate(feed.state, staticGate, { strategy_id: "s2" }))).toBe("STALE_MARKET_DATA");
  });

  it("given the whole pipeline, when a risk-reducing order has no mark under require_fresh_mark, then static still rejects it", () => {
    const feed = new Feed().envelope({ require_fresh_mark: true });
    feed.fill("AAPL", "100", "100");
    expect(runPipeline(feed, { side: "SELL", quantity: "10" })?.denial.code).toBe("STALE_MARKET_DATA");
  });
});
