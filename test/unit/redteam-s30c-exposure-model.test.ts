/**
 * Red team, stop 30c: a model-based property test of the position gate. Random streams (refdata,
 * envelopes, quotes, orders sized onto the limits, OMS events, fills of approved orders) drive the
 * engine in process (the real projector and decider on a manual clock) and an independent
 * reference model (./redteam-s30c-model.ts, exact rationals). Every decision must be the model's:
 * the engine's documented worst case of both sides (README, "Decisions where the spec is silent")
 * decides the expected answer, and an approval that the contract's plain arithmetic (position +
 * every reservation + this order) refuses is reported on its own as a contract violation.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Subjects } from "../../src/contract/subjects.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW, isoAt, testDecider } from "./fixtures.js";
import {
  CODE_OF,
  type InstrumentSpec,
  type Judgement,
  type Limits,
  MEASURES,
  type Measure,
  Model,
  Q,
  type Side,
  TTL_MS,
} from "./redteam-s30c-model.js";

/** Fixed by default (deterministic); the environment may widen a search. */
const RUNS = Number(process.env["S30C_RUNS"] ?? 800);
const SEED = Number(process.env["S30C_SEED"] ?? 0x5330c);
const SYMBOLS = ["AAA", "BBB", "CCC"] as const;
const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!;

// ---------------------------------------------------------------------------------------------
// the generated world

type Sizing =
  | { mode: "target"; measure: Measure; nudge: -1 | 0 | 1 }
  | { mode: "free"; qty: string }
  | { mode: "reduce"; frac: string };

type Action =
  | { k: "quote"; s: number; mid: string; half: string; age: number }
  | { k: "order"; s: number; side: Side; type: "LIMIT" | "MARKET"; sizing: Sizing; px: string }
  | { k: "fill"; pick: number; frac: string; px: string; fees: string }
  | { k: "extfill"; s: number; side: Side; qty: string; price: string }
  | { k: "event"; pick: number; event: string; filled: "none" | "filled" | "approved" | "half" }
  | { k: "envelope"; limits: Limits }
  | { k: "advance"; ms: number }
  | { k: "refdata"; s: number; inst: Omit<InstrumentSpec, "symbol"> };

interface World {
  instruments: InstrumentSpec[];
  limits: Limits;
  actions: Action[];
}

const instArb: fc.Arbitrary<Omit<InstrumentSpec, "symbol">> = fc.record({
  asset_class: fc.constantFrom("equity" as const, "crypto" as const),
  sector: fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom("tech", "energy") },
    { weight: 1, arbitrary: fc.constant(undefined) },
  ),
  multiplier: fc.constantFrom("1", "1", "1", "10", "0.5"),
});

const pctOpt = (values: string[]) => fc.option(fc.constantFrom(...values), { nil: undefined, freq: 3 });

const limitsArb: fc.Arbitrary<Limits> = fc.record({
  capital: fc.constantFrom("1000000", "250000", "100000"),
  max_position_pct: pctOpt(["0.10", "0.05", "0.2"]),
  max_gross_exposure_pct: pctOpt(["0.3", "0.5", "1"]),
  max_net_exposure_pct: pctOpt(["0.15", "0.25", "0.4"]),
  max_sector_pct: pctOpt(["0.2", "0.3"]),
  max_asset_class_pct: fc.option(
    fc.record(
      { equity: fc.constantFrom("0.25", "0.4"), crypto: fc.constantFrom("0.1", "0.15") },
      { requiredKeys: [] },
    ),
    { nil: undefined, freq: 3 },
  ),
});

const sym = fc.nat({ max: SYMBOLS.length - 1 });
const side = fc.constantFrom<Side>("BUY", "SELL");
const px = fc.constantFrom("0", "0", "-1", "0.5", "2", "-0.25");

const sizingArb: fc.Arbitrary<Sizing> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      mode: fc.constant("target" as const),
      measure: fc.constantFrom(...MEASURES),
      nudge: fc.constantFrom(-1 as const, 0 as const, 1 as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      mode: fc.constant("free" as const),
      qty: fc.constantFrom("1", "10", "100", "250", "1000", "2500.5"),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      mode: fc.constant("reduce" as const),
      frac: fc.constantFrom("1", "0.5", "0.3"),
    }),
  },
);

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("quote" as const),
      s: sym,
      mid: fc.constantFrom("100", "99.5", "101", "80", "120", "100.25", "3"),
      half: fc.constantFrom("0", "0.05", "0.5"),
      age: fc.integer({ min: 0, max: 4000 }),
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({
      k: fc.constant("order" as const),
      s: sym,
      side,
      type: fc.constantFrom("LIMIT" as const, "LIMIT" as const, "MARKET" as const),
      sizing: sizingArb,
      px,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("fill" as const),
      pick: fc.nat(),
      frac: fc.constantFrom("1", "0.5", "0.25"),
      px,
      fees: fc.constantFrom("0", "0", "2.5", "-1"),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("extfill" as const),
      s: sym,
      side,
      qty: fc.constantFrom("10", "100", "1000", "2500"),
      price: fc.constantFrom("100", "95", "105", "99.5", "0"),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("event" as const),
      pick: fc.nat(),
      event: fc.constantFrom("accepted", "cancelled", "rejected", "expired", "done"),
      filled: fc.constantFrom("none" as const, "filled" as const, "approved" as const, "half" as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("envelope" as const), limits: limitsArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("advance" as const),
      ms: fc.constantFrom(1000, 6000, 43_200_000, 86_400_000),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("refdata" as const), s: sym, inst: instArb }) },
);

const worldArb: fc.Arbitrary<World> = fc.record({
  instruments: fc
    .tuple(instArb, instArb, instArb)
    .map((xs) => xs.map((x, i) => ({ ...x, symbol: SYMBOLS[i]! }))),
  limits: limitsArb,
  actions: fc.array(actionArb, { minLength: 5, maxLength: 40 }),
});

// ---------------------------------------------------------------------------------------------
// coverage

const stats = {
  runs: 0,
  decisions: 0,
  approved: 0,
  inexact: 0,
  reducing: 0,
  stricterThanPlain: 0, // rejected by the worst case, approved by the plain arithmetic (documented)
  byCode: new Map<string, number>(),
  /** decisions whose figure for a measure is within 1e-6 of its limit: approved / rejected */
  near: new Map<Measure, { approved: number; rejected: number; exact: number }>(),
};

function noteCoverage(j: Judgement, d: RiskDecision): void {
  stats.decisions++;
  if (d.approved) stats.approved++;
  const code = d.approved ? "APPROVED" : d.rejection_code;
  stats.byCode.set(code, (stats.byCode.get(code) ?? 0) + 1);
  if (j.reducing) stats.reducing++;
  if (!d.approved && j.plainOver.length === 0 && j.expected !== undefined) stats.stricterThanPlain++;
  const eps = Q.dec("0.000001");
  for (const k of MEASURES) {
    const f = j.figures.worst[k];
    if (!f) continue;
    const gap = f.value.minus(f.limit).abs();
    if (!gap.lte(eps)) continue;
    const n = stats.near.get(k) ?? { approved: 0, rejected: 0, exact: 0 };
    if (d.approved) n.approved++;
    else n.rejected++;
    if (gap.isZero()) n.exact++;
    stats.near.set(k, n);
  }
}

// ---------------------------------------------------------------------------------------------
// the harness: one engine state and one model, fed the same messages

class Run {
  readonly feed = new Feed();
  readonly model = new Model();
  private readonly decide;
  private readonly clock = manualClock(NOW);
  /** How far the clock moved (kept under two TTLs: see `advance`). */
  private moved = 0;
  private version = 0;
  private orderN = 0;
  readonly approvedIds: string[] = [];
  readonly log: string[] = [];

  constructor(w: World) {
    const decider = testDecider(this.feed, this.clock);
    this.model.now = NOW;
    this.decide = (raw: unknown): RiskDecision => {
      const out = decider.decide({ raw });
      if (out instanceof Promise) throw new Error("the deterministic pipeline decides synchronously");
      return out.decision;
    };
    for (const i of w.instruments) this.refdata(i);
    this.envelope(w.limits);
  }

  refdata(i: InstrumentSpec): void {
    this.log.push(`refdata ${JSON.stringify(i)}`);
    this.feed.instrument({ ...i, shortable: true });
    this.model.instrument(i);
  }

  envelope(l: Limits): void {
    this.version++;
    this.log.push(`envelope v${this.version} ${JSON.stringify(l)}`);
    this.feed.envelope({ version: this.version, enable_shorting: true, ...l });
    this.model.envelope(l);
  }

  quote(symbol: string, mid: string, half: string, age: number): void {
    const m = Q.dec(mid);
    const h = Q.dec(half);
    const bid = m.minus(h).toString();
    const ask = m.plus(h).toString();
    const ts = this.clock.now() - age;
    this.log.push(`quote ${symbol} ${bid}/${ask} at T-${age}ms`);
    this.feed.quote(symbol, bid, ask, ts);
    this.model.quote(symbol, bid, ask, ts);
  }

  fill(orderId: string, symbol: string, side: Side, qty: string, price: string, fees: string): void {
    this.log.push(`fill ${orderId} ${symbol} ${side} ${qty} @ ${price} fees ${fees}`);
    this.feed.fill(symbol, side === "SELL" ? `-${qty}` : qty, price, {
      order_id: orderId,
      fees,
      timestamp: isoAt(this.clock.now()),
    });
    this.model.fill(orderId, symbol, side, qty, price, fees);
  }

  event(orderId: string, event: string, filled?: string): void {
    this.log.push(`event ${orderId} ${event}${filled === undefined ? "" : ` filled ${filled}`}`);
    this.feed.publish("OMS_ORDERS", Subjects.orderEvent(event, FUND), {
      order_id: orderId,
      fund_id: FUND,
      event,
      ...(filled === undefined ? {} : { filled_quantity: filled }),
      at: isoAt(this.clock.now()),
    });
    this.model.event(orderId, event, filled);
  }

  /** Decides one order in both, and holds the engine to the model. */
  order(symbol: string, side: Side, type: "LIMIT" | "MARKET", qty: string, limit?: string): RiskDecision {
    const id = `o-${++this.orderN}`;
    const raw = {
      order_id: id,
      idempotency_key: `k-${id}`,
      fund_id: FUND,
      broker: "paper",
      symbol,
      side,
      order_type: type,
      quantity: qty,
      ...(type === "LIMIT" ? { limit_price: limit } : {}),
      created_at: isoAt(this.clock.now()),
    };
    this.log.push(`order ${id} ${symbol} ${side} ${type} ${qty}${limit === undefined ? "" : ` @ ${limit}`}`);
    const price = this.model.orderPrice(symbol, side, type, limit);
    this.model.sweep();
    const d = this.decide(raw);
    const said = d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`;
    this.log.push(`  -> ${said} ${JSON.stringify(d.details)}`);
    if (price === undefined) {
      expect(d.rejection_code, this.trail("a MARKET order with no mark")).toBe("STALE_MARKET_DATA");
      return d;
    }
    const j = this.model.judge(symbol, side, qty, price);
    noteCoverage(j, d);
    if (!j.exact) stats.inexact++;
    else {
      // 1. any reading: an approval the contract's own arithmetic refuses
      if (d.approved && !j.reducing && j.plainOver.length > 0) {
        throw new Error(
          this.trail(
            `CONTRACT VIOLATION: approved, but ${j.plainOver.join(", ")} over the limit ` +
              `(${j.plainOver.map((k) => fig(j.figures.plain[k])).join("; ")}), NAV ${j.nav.toString()}`,
          ),
        );
      }
      // 2. the engine's documented rule: the same answer, and the same figures in a denial
      const want = j.expected === undefined ? "approved" : `position/${CODE_OF[j.expected]}`;
      if (said !== want) {
        throw new Error(
          this.trail(
            `MISMATCH: engine ${said}, model ${want}; reducing ${j.reducing}, NAV ${j.nav.toString()}; worst ` +
              MEASURES.map((k) => `${k} ${fig(j.figures.worst[k])}`).join("; "),
          ),
        );
      }
      if (j.expected !== undefined && !(j.expected === "sector" && j.figures.sectorUnknown)) {
        const f = j.figures.worst[j.expected]!;
        const got = d.details["resulting_notional"];
        const lim = d.details["limit_notional"];
        if (got === undefined || Q.dec(got).cmp(f.value) !== 0 || Q.dec(lim!).cmp(f.limit) !== 0) {
          throw new Error(this.trail(`FIGURES: engine ${got}/${lim}, model ${fig(f)}`));
        }
      }
    }
    if (d.approved) {
      this.model.approve(id, symbol, side, qty, price);
      this.approvedIds.push(id);
    }
    return d;
  }

  trail(msg: string): string {
    return `${msg}\n  sequence:\n    ${this.log.join("\n    ")}`;
  }

  play(a: Action): void {
    switch (a.k) {
      case "quote":
        return this.quote(pick(SYMBOLS, a.s), a.mid, a.half, a.age);
      case "refdata":
        return this.refdata({ ...a.inst, symbol: pick(SYMBOLS, a.s) });
      case "envelope":
        return this.envelope(a.limits);
      case "advance": {
        // under two TTLs in all: an approval never acknowledged is then released, never forgotten
        if (this.moved + a.ms >= 2 * TTL_MS - 3_600_000) return;
        this.moved += a.ms;
        this.clock.advance(a.ms);
        this.model.now = this.clock.now();
        this.log.push(`advance ${a.ms} ms`);
        return;
      }
      case "extfill": {
        this.fill(`ext-${++this.orderN}`, pick(SYMBOLS, a.s), a.side, a.qty, a.price, "0");
        return;
      }
      case "fill": {
        if (this.approvedIds.length === 0) return;
        const r = this.model.orders.get(pick(this.approvedIds, a.pick))!;
        const left = r.approved.minus(r.filled);
        if (!left.gt(Q.dec("0"))) return;
        let qty = left.times(Q.dec(a.frac)).toFixedDown(8);
        if (!Q.dec(qty).gt(Q.dec("0"))) qty = left.toString();
        const price = r.price.plus(Q.dec(a.px));
        const p = price.gt(Q.dec("0")) ? price : r.price;
        return this.fill(r.id, r.symbol, r.side, qty, p.toString(), a.fees);
      }
      case "event": {
        if (this.approvedIds.length === 0) return;
        const r = this.model.orders.get(pick(this.approvedIds, a.pick))!;
        const filled =
          a.filled === "none" || a.event === "accepted"
            ? undefined
            : a.filled === "filled"
              ? r.filled.toString()
              : a.filled === "approved"
                ? r.approved.toString()
                : r.approved.times(Q.dec("0.5")).toFixedDown(8);
        return this.event(r.id, a.event, filled);
      }
      case "order": {
        const symbol = pick(SYMBOLS, a.s);
        const mark = this.model.marks.get(symbol);
        const ref = mark ? mark.mid : Q.dec("100");
        let limit: string | undefined;
        if (a.type === "LIMIT") {
          const l = ref.plus(Q.dec(a.px));
          limit = (l.gt(Q.dec("0")) ? l : ref).toFixedDown(4);
          if (!Q.dec(limit).gt(Q.dec("0"))) limit = "1";
        }
        const sized = this.size(symbol, a.side, a.type, a.sizing, limit);
        this.order(symbol, sized.side, a.type, sized.qty, limit);
        return;
      }
    }
  }

  /** The quantity (and side) an order's sizing asks for, computed from the model. */
  private size(
    symbol: string,
    side: Side,
    type: "LIMIT" | "MARKET",
    s: Sizing,
    limit: string | undefined,
  ): { side: Side; qty: string } {
    if (s.mode === "free") return { side, qty: s.qty };
    const pos = this.model.books.get(symbol)?.qty ?? Q.dec("0");
    if (s.mode === "reduce") {
      if (pos.isZero()) return { side, qty: "10" };
      const qty = pos.abs().times(Q.dec(s.frac)).toFixedDown(8);
      return { side: pos.sign() > 0 ? "SELL" : "BUY", qty: Q.dec(qty).gt(Q.dec("0")) ? qty : "1" };
    }
    // target: for a large order the measure is base + notional (its own side dominates)
    const price = this.model.orderPrice(symbol, side, type, limit);
    if (price === undefined) return { side, qty: "10" };
    const unit = price.times(this.model.mult(symbol));
    const huge = "1000000000";
    const j = this.model.judge(symbol, side, huge, price);
    const f = j.figures.worst[s.measure];
    if (!f) return { side, qty: "100" };
    const base = f.value.minus(unit.times(Q.dec(huge)));
    const room = f.limit.minus(base);
    const q = Q.dec(room.div(unit).toFixedDown(8));
    const nudged = q.plus(Q.of(BigInt(s.nudge), 100_000_000n));
    return { side, qty: nudged.gt(Q.dec("0")) ? nudged.toString() : "1" };
  }
}

function fig(f: { value: Q; limit: Q } | undefined): string {
  return f === undefined ? "-" : `${f.value.toString()} vs ${f.limit.toString()}`;
}

// ---------------------------------------------------------------------------------------------

describe("red team s30c: the position gate against an independent model", () => {
  afterAll(() => {
    const near = [...stats.near].map(
      ([k, v]) => `${k}: ${v.approved} approved / ${v.rejected} rejected (${v.exact} exactly on it)`,
    );
    console.log(
      [
        `runs ${stats.runs}, decisions ${stats.decisions} (${stats.approved} approved, ${stats.reducing} risk-reducing, ` +
          `${stats.inexact} not compared: inexact average cost), stricter than plain ${stats.stricterThanPlain}`,
        `by code: ${[...stats.byCode].map(([c, n]) => `${c} ${n}`).join(", ")}`,
        `within 1e-6 of a limit: ${near.join("; ")}`,
      ].join("\n"),
    );
  });

  it("exactly at the limit passes, one unit above is refused (position, worst side counts the pending buy)", () => {
    const run = new Run({
      instruments: [{ symbol: "AAA", asset_class: "equity", sector: "tech", multiplier: "10" }],
      limits: { capital: "1000000", max_position_pct: "0.10" },
      actions: [],
    });
    run.quote("AAA", "100", "0.5", 0);
    expect(run.order("AAA", "BUY", "LIMIT", "60", "100").approved).toBe(true); // 60 000 pending
    // a SELL does not net the pending buy away: the long extreme stays 60 000, the short 40 000
    expect(run.order("AAA", "SELL", "LIMIT", "40", "100").approved).toBe(true);
    expect(run.order("AAA", "BUY", "LIMIT", "40", "100").approved).toBe(true); // long extreme 100 000
    const d = run.order("AAA", "BUY", "LIMIT", "0.00000001", "100");
    expect(d).toMatchObject({ approved: false, rejection_code: "MAX_POSITION_EXCEEDED" });
    expect(d.details["resulting_notional"]).toBe("100000.00001");
  });

  it("an accepted order reserves past the TTL, one never acknowledged is released at it", () => {
    const run = new Run({
      instruments: [{ symbol: "AAA", asset_class: "equity", sector: "tech", multiplier: "1" }],
      limits: { capital: "1000000", max_position_pct: "0.10" },
      actions: [],
    });
    expect(run.order("AAA", "BUY", "LIMIT", "600", "100").approved).toBe(true); // o-1, 60 000
    expect(run.order("AAA", "BUY", "LIMIT", "400", "100").approved).toBe(true); // o-2, 100 000
    run.event("o-1", "accepted");
    run.play({ k: "advance", ms: TTL_MS });
    // o-2 lapsed, o-1 still reserves 60 000: 40 000 more fits, one unit more does not
    expect(run.order("AAA", "BUY", "LIMIT", "400.00000001", "100").rejection_code).toBe(
      "MAX_POSITION_EXCEEDED",
    );
    expect(run.order("AAA", "BUY", "LIMIT", "400", "100").approved).toBe(true);
  });

  it("a done order reserves what it reported filled until FILLS brings it", () => {
    const run = new Run({
      instruments: [{ symbol: "AAA", asset_class: "crypto", sector: "tech", multiplier: "1" }],
      limits: { capital: "1000000", max_asset_class_pct: { crypto: "0.1" } },
      actions: [],
    });
    expect(run.order("AAA", "BUY", "LIMIT", "1000", "100").approved).toBe(true); // o-1, 100 000
    run.event("o-1", "done", "500"); // 500 filled, none of it in FILLS yet: 50 000 still reserved
    expect(run.order("AAA", "BUY", "LIMIT", "500.00000001", "100").rejection_code).toBe(
      "ASSET_CLASS_CONCENTRATION_EXCEEDED",
    );
    run.fill("o-1", "AAA", "BUY", "500", "100", "0"); // the position, no reservation left
    expect(run.order("AAA", "BUY", "LIMIT", "500", "100").approved).toBe(true);
  });

  it("every decision is the model's (worst case), and nothing the contract refuses is approved", () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        stats.runs++;
        const run = new Run(w);
        for (const a of w.actions) run.play(a);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
