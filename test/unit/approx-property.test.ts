/**
 * Filtered exact comparisons (src/decimal/approx.ts) against the exact path: every gate that judges
 * a limit in float64 first must give the same answer, code and details as with the filter off
 * (`configureApprox({ off: true })`: every float test undecided, so every limit judged with exact
 * `Dec` arithmetic, the code as it was before the filter). The generators put the compared figure
 * exactly on its limit, one unit of the smallest scale either side of it (the values' own scale,
 * and 1e-18), and on the float64 neighbours of the limit (as exact decimals), over magnitudes from
 * 1e-6 to 1e15 and scales 0..18.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { Dec, ZERO, configureApprox, max } from "../../src/decimal/index.js";
import { type GateContext, type GateResult, isReducing } from "../../src/gates/index.js";
import { type Contribution, addVelocity, category } from "../../src/state/index.js";
import {
  GATES,
  NOW,
  type Scene,
  baseLimits,
  baseOrder,
  context,
  decimal,
  fundWith,
  near,
  offset,
  sharedFund,
} from "./approx-support.js";

/** Orders across every scenario (each run is one generated order against one boundary). */
/** A contribution's valued figures, kept when a test gives the book extremes of its own. */
const pickValued = (c: Contribution) => ({
  valCost: c.valCost,
  valRealized: c.valRealized,
  valFees: c.valFees,
  qm: c.qm,
});

const RUNS = Number(process.env["APPROX_PROPERTY_RUNS"] ?? 100_000);

afterEach(() => configureApprox({ reset: true }));

const pctArb = decimal({ min: 0, max: 3, maxScale: 4 });
const money = (signed = false) => decimal({ min: 0, max: 1e12, maxScale: 6, signed });
const qtyArb = decimal({ min: 0, max: 1e7, maxScale: 8 });

// position and exposure: the compared figure of one limit (the target) is put on that limit
const positionScene = fc
  .record({
    target: fc.constantFrom("position", "gross", "net", "sector", "asset_class"),
    buy: fc.boolean(),
    capital: decimal({ min: 1e3, max: 1e12, maxScale: 2 }),
    realized: money(true),
    mv: money(true),
    cost: money(true),
    fees: money(),
    longExt: money(true),
    shortExt: money(true),
    notional: decimal({ min: 0, max: 1e9, maxScale: 8 }),
    pct: pctArb,
    other: money(true),
    sameClass: fc.boolean(),
    shared: fc.boolean(),
    how: offset,
    far: money(true),
  })
  .map((g): Scene => {
    const { fund, book } = g.shared ? sharedFund(g.capital) : fundWith(g.capital);
    const a = fund.agg;
    a.realized = g.realized;
    a.mv = g.mv;
    a.cost = g.cost;
    a.fees = g.fees.abs();
    const navValue = g.capital.plus(a.realized).plus(a.mv).minus(a.cost).minus(a.fees);
    const scale = Math.max(g.pct.scale + navValue.scale, g.notional.scale, 6);
    const limit = near(g.pct.times(navValue), g.how, scale, g.far);
    const o = g.buy ? g.notional : g.notional.neg();
    let longExt = g.longExt;
    let shortExt = g.shortExt;
    if (g.target === "position") {
      // |L| (buy) or |S| (sell) = limit
      if (g.buy) longExt = limit.minus(o);
      else shortExt = limit.neg().minus(o);
    }
    const exposure = max(longExt.abs(), shortExt.abs());
    const c = book.contrib; // the book itself: valued anew with these extremes (its own: not flat)
    const cat = category(
      c.cat,
      c.cat.sector,
      g.sameClass ? "equity" : "crypto",
      c.cat.currency,
      c.cat.unpriced,
    );
    c.value({ ...pickValued(c), cat, mv: c.mv, longExt, shortExt, exposure }, c.at, false);
    const L = g.buy ? longExt.plus(o) : longExt;
    const S = g.buy ? shortExt : shortExt.plus(o);
    const after = max(L.abs(), S.abs());
    const delta = after.minus(exposure);
    a.gross = g.target === "gross" ? limit.minus(delta) : g.other.abs();
    a.netLong = g.target === "net" && g.buy ? limit.minus(o) : g.other;
    a.netShort = g.target === "net" && !g.buy ? limit.neg().minus(o) : g.other.neg();
    a.sector.set("tech", g.target === "sector" ? limit.minus(delta) : g.other);
    a.assetClass.set(
      "equity",
      g.target === "asset_class" ? limit.minus(g.sameClass ? delta : after) : g.other,
    );
    const roomy = new Dec(1000n, 0);
    const pick = (t: string) => (g.target === t ? g.pct : roomy);
    const lim = baseLimits({
      max_position_pct: pick("position"),
      max_gross_exposure_pct: pick("gross"),
      max_net_exposure_pct: pick("net"),
      max_sector_pct: pick("sector"),
      max_asset_class_pct: { equity: pick("asset_class") },
    });
    const ctx = context(fund, book, {
      notional: g.notional,
      instrument: { symbol: "AAPL", sector: "tech", asset_class: "equity" } as GateContext["instrument"],
    });
    return { gate: "position", order: baseOrder({ side: g.buy ? "BUY" : "SELL" }), lim, ctx };
  });

// the price collar: |limit − mid| against collar × mid
const collarScene = fc
  .record({
    mid: decimal({ min: 1e-3, max: 1e6, maxScale: 8 }),
    collar: decimal({ min: 0, max: 0.9, maxScale: 4 }),
    above: fc.boolean(),
    how: offset,
    far: decimal({ min: 0, max: 100, maxScale: 4, signed: true }),
  })
  .map((g): Scene => {
    const { fund } = fundWith(new Dec(1_000_000n, 0));
    const band = g.collar.times(g.mid);
    const edge = g.above ? g.mid.plus(band) : g.mid.minus(band);
    let price = near(edge, g.how, Math.max(edge.scale, 8), g.far);
    if (price.units <= 0n) price = g.mid.plus(band).plus(new Dec(1n, 8)); // prices are positive
    const mid = g.mid.units === 0n ? new Dec(1n, 3) : g.mid;
    return {
      gate: "static",
      order: baseOrder({ limit_price: price }),
      lim: baseLimits({ price_collar_pct: g.collar }),
      ctx: context(fund, undefined, { mark: { bid: mid, ask: mid, mid, ts: NOW, rank: NOW } }),
    };
  });

// the share of ADV: quantity against pct × adv
const advScene = fc
  .record({
    adv: qtyArb,
    pct: pctArb,
    how: offset,
    far: decimal({ min: 0, max: 1e3, maxScale: 4, signed: true }),
  })
  .map((g): Scene => {
    const { fund } = fundWith(new Dec(1_000_000n, 0));
    const limit = g.pct.times(g.adv);
    let qty = near(limit, g.how, Math.max(limit.scale, 8), g.far);
    if (qty.units <= 0n) qty = new Dec(1n, 8);
    return {
      gate: "static",
      order: baseOrder({ quantity: qty }),
      lim: baseLimits({ max_adv_pct: g.pct }),
      ctx: context(fund, undefined, {
        instrument: { symbol: "AAPL", asset_class: "equity", adv: g.adv } as GateContext["instrument"],
      }),
    };
  });

// velocity notional: used in the window + this order against the limit
const velocityScene = fc
  .record({
    used: money(),
    notional: decimal({ min: 0, max: 1e9, maxScale: 8 }),
    how: offset,
    far: money(true),
  })
  .map((g): Scene => {
    const { fund } = fundWith(new Dec(1_000_000n, 0));
    addVelocity(fund.velocity, "d0", NOW - 1000, g.used);
    const total = g.used.plus(g.notional);
    let limit = near(total, g.how, Math.max(total.scale, 6), g.far);
    if (limit.units < 0n) limit = ZERO;
    return {
      gate: "velocity",
      order: baseOrder({}),
      lim: baseLimits({ velocity: { window_s: 60, max_notional: limit } }),
      ctx: context(fund, undefined, { notional: g.notional }),
    };
  });

// short side: a SELL against the long held at its broker less that broker's pending sells
const shortScene = fc
  .record({
    held: qtyArb,
    pending: qtyArb,
    how: offset,
    far: decimal({ min: 0, max: 1e4, maxScale: 4, signed: true }),
  })
  .map((g): Scene => {
    const { fund, book } = fundWith(new Dec(1_000_000n, 0));
    book.pos.brokers.set("paper", g.held);
    book.pendSellByBroker = new Map([["paper", g.pending]]); // a book starts with the shared empty map
    const room = g.held.minus(g.pending);
    let qty = near(room, g.how, Math.max(room.scale, 8), g.far);
    if (qty.units <= 0n) qty = new Dec(1n, 8);
    return {
      gate: "short_side",
      order: baseOrder({ side: "SELL", quantity: qty }),
      lim: baseLimits({}),
      ctx: context(fund, book, {}),
    };
  });

function judge(s: Scene): { fast: GateResult; exact: GateResult } {
  configureApprox({ reset: true });
  const fast = GATES[s.gate].check(s.order, s.lim, s.ctx) as GateResult;
  configureApprox({ off: true });
  const exact = GATES[s.gate].check(s.order, s.lim, s.ctx) as GateResult;
  configureApprox({ reset: true });
  return { fast, exact };
}

// risk-reducing: pending + quantity against the position (fund and broker)
const reducingScene = fc
  .record({
    buy: fc.boolean(),
    q: qtyArb,
    atB: qtyArb,
    pending: qtyArb,
    pendingB: qtyArb,
    onBroker: fc.boolean(),
    how: offset,
    far: decimal({ min: 0, max: 1e4, maxScale: 4, signed: true }),
  })
  .map((g) => {
    const { book } = fundWith(new Dec(1_000_000n, 0));
    const sign = (d: Dec) => (g.buy ? d.neg() : d);
    const q = g.q.units === 0n ? new Dec(1n, 0) : g.q;
    const atB = g.atB.units === 0n ? q : g.atB;
    book.pos.qty = sign(q);
    book.pos.brokers.set("paper", sign(atB));
    const pend = g.buy ? "pendBuyByBroker" : "pendSellByBroker";
    book[pend] = new Map([["paper", g.pendingB]]); // a book starts with the shared empty map
    if (g.buy) book.pendBuyQty = g.pending;
    else book.pendSellQty = g.pending;
    const room = g.onBroker ? atB.minus(g.pendingB) : q.minus(g.pending);
    let qty = near(room, g.how, Math.max(room.scale, 8), g.far);
    if (qty.units <= 0n) qty = new Dec(1n, 8);
    return { book, order: baseOrder({ side: g.buy ? "BUY" : "SELL", quantity: qty }) };
  });

describe("filtered exact comparisons (float64 with an error bound, exact Dec when not certain)", () => {
  it(`given ${RUNS} generated orders on, one unit or one float ulp either side of, every limit, when judged fast and exactly, then the answers are identical`, () => {
    let decided = 0;
    const scene = fc.oneof(
      { arbitrary: positionScene, weight: 5 },
      { arbitrary: collarScene, weight: 1 },
      { arbitrary: advScene, weight: 1 },
      { arbitrary: velocityScene, weight: 1 },
      { arbitrary: shortScene, weight: 1 },
    );
    fc.assert(
      fc.property(scene, (s) => {
        const { fast, exact } = judge(s);
        expect(fast).toEqual(exact);
        if (exact) decided++;
      }),
      {
        numRuns: Math.round(RUNS * 0.9),
        seed: Number(process.env["APPROX_PROPERTY_SEED"] ?? Date.now() % 1e9),
      },
    );
    fc.assert(
      fc.property(reducingScene, ({ book, order }) => {
        configureApprox({ reset: true });
        const fast = isReducing(book, order);
        configureApprox({ off: true });
        const exact = isReducing(book, order);
        configureApprox({ reset: true });
        expect(fast).toBe(exact);
      }),
      { numRuns: Math.round(RUNS * 0.1) },
    );
    // the generators reach both sides of the limits (denials and passes)
    expect(decided).toBeGreaterThan(RUNS * 0.05);
    expect(decided).toBeLessThan(RUNS * 0.85);
  }, 180_000);

  it("given the bound set to zero (a wrong filter), when judging values on the boundary, then some answer differs from the exact one", () => {
    configureApprox({ rel: 0, tiny: 0 });
    let differs = 0;
    fc.assert(
      fc.property(positionScene, (s) => {
        configureApprox({ rel: 0, tiny: 0 });
        const fast = GATES[s.gate].check(s.order, s.lim, s.ctx) as GateResult;
        configureApprox({ off: true });
        const exact = GATES[s.gate].check(s.order, s.lim, s.ctx) as GateResult;
        if ((fast === undefined) !== (exact === undefined)) differs++;
      }),
      { numRuns: 5_000, seed: 11 },
    );
    expect(differs).toBeGreaterThan(0);
  });
});
