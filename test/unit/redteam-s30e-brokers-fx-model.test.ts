/**
 * Red team, stop 30e: a model-based property test of what stop 30c's left out: several brokers
 * (the short-side gate judged at the order's broker, the risk-reducing exemption per broker), FX
 * (instruments priced in EUR/GBP converted at the fresh `<CCY>-USD` mark, STALE_MARKET_DATA
 * without one, positions kept in the instrument's currency), strategy overrides (`strategies`,
 * merged as the README documents) and STOP / STOP_LIMIT orders (priced at the fresh mark / the
 * limit). The real projector and decider run in process on a manual clock (the harness of
 * redteam-s30c-exposure-model.test.ts) next to an independent model (./redteam-s30e-model.ts).
 * Every decision must be the model's documented answer, and an approval that the contract's plain
 * reading forbids is reported on its own.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Subjects } from "../../src/contract/subjects.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW, isoAt, testDecider } from "./fixtures.js";
import {
  type Env,
  type Inst,
  type Lim,
  MEASURES,
  type Measure,
  Model,
  type OrderIn,
  type OrderType,
  Q,
  type Side,
} from "./redteam-s30e-model.js";

const RUNS = Number(process.env["S30E_RUNS"] ?? 1500);
const SEED = Number(process.env["S30E_SEED"] ?? 0x5330e);
const SYMBOLS = ["AAA", "BBB", "CCC"] as const;
const FX = ["EUR-USD", "GBP-USD", "USD-EUR", "GBP-EUR"] as const;
const BROKERS = ["paper", "ibkr", "gs"] as const;
const STRATS = [undefined, "s1", "s2"] as const;
const TYPES: readonly OrderType[] = ["LIMIT", "MARKET", "STOP", "STOP_LIMIT"];
const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!;
const ZERO = Q.dec("0");

// ---------------------------------------------------------------------------------------------
// the generated world

type Sizing =
  | { mode: "free"; qty: string }
  | { mode: "measure"; measure: Measure; nudge: -1 | 0 | 1 }
  | { mode: "notional"; nudge: -1 | 0 | 1 }
  | { mode: "shortEdge"; nudge: -1 | 0 | 1 }
  | { mode: "reduce"; frac: string; elsewhere: boolean };

type Action =
  | { k: "quote"; s: number; mid: string; half: string; age: number }
  | { k: "fxquote"; c: number; mid: string; oneSided: boolean; age: number }
  | {
      k: "order";
      s: number;
      b: number;
      st: number;
      side: Side;
      t: number;
      sizing: Sizing;
      px: string;
      stopPx: string;
      locate: boolean;
    }
  | { k: "fill"; pick: number; frac: string; px: string; fees: string }
  | { k: "extfill"; s: number; b: number; side: Side; qty: string; price: string }
  | { k: "cancel"; pick: number }
  | { k: "envelope"; env: Env }
  | { k: "advance"; ms: number }
  | { k: "short"; s: number; shortable: boolean | undefined; fee: string | undefined };

interface World {
  instruments: Inst[];
  env: Env;
  actions: Action[];
}

const opt = <T>(a: fc.Arbitrary<T>, freq = 2): fc.Arbitrary<T | undefined> =>
  fc.option(a, { nil: undefined, freq });

const shortArb = fc.record({
  shortable: opt(fc.boolean()),
  fee: opt(fc.constantFrom("0", "25", "100", "300", "300.0001")),
});

const instArb = (i: number): fc.Arbitrary<Inst> =>
  fc
    .record({
      asset_class: fc.constantFrom("equity" as const, "crypto" as const),
      sector: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom("tech", "energy") },
        { weight: 1, arbitrary: fc.constant(undefined) },
      ),
      multiplier: fc.constantFrom("1", "1", "10", "0.5"),
      currency:
        i === 0
          ? fc.constantFrom(undefined, "USD")
          : i === 1
            ? fc.constant("EUR")
            : fc.constantFrom("GBP", "USD", undefined),
      sh: shortArb,
    })
    .map(({ sh, ...r }) => ({ ...r, symbol: SYMBOLS[i]!, shortable: sh.shortable, borrow_fee_bps: sh.fee }));

const sometimes = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => opt(a, 2);
const limArb = (fund: boolean): fc.Arbitrary<Lim> =>
  fc.record({
    allowed_brokers: fund
      ? fc.constantFrom(["paper", "ibkr", "gs"], ["paper", "ibkr", "gs"], ["paper", "ibkr"])
      : opt(fc.constantFrom(["paper", "ibkr"], ["gs"], ["paper", "ibkr", "gs"]), 2),
    allowed_order_types: fund
      ? fc.constantFrom<OrderType[]>(
          ["MARKET", "LIMIT", "STOP", "STOP_LIMIT"],
          ["MARKET", "LIMIT", "STOP", "STOP_LIMIT"],
          ["MARKET", "LIMIT", "STOP"],
        )
      : opt(
          fc.constantFrom<OrderType[]>(["LIMIT", "STOP_LIMIT"], ["MARKET", "LIMIT", "STOP", "STOP_LIMIT"]),
          3,
        ),
    max_order_qty: opt(fc.constantFrom("500", "2000"), 4),
    max_order_notional: sometimes(fc.constantFrom("20000", "55000", "100000")),
    max_position_pct: sometimes(fc.constantFrom("0.05", "0.1", "0.2")),
    max_gross_exposure_pct: sometimes(fc.constantFrom("0.3", "0.6")),
    max_net_exposure_pct: sometimes(fc.constantFrom("0.15", "0.4")),
    max_sector_pct: opt(fc.constantFrom("0.2", "0.35"), 4),
    max_asset_class_pct: sometimes(
      fc.record(
        { equity: fc.constantFrom("0.25", "0.4"), crypto: fc.constantFrom("0.1", "0.15") },
        { requiredKeys: [] },
      ),
    ),
    enable_shorting: sometimes(fc.boolean()),
    max_borrow_fee_bps: sometimes(fc.constantFrom("50", "300")),
    price_collar_pct: opt(fc.constantFrom("0.05", "0.3"), 4),
  });

const envArb: fc.Arbitrary<Env> = fc
  .record({
    capital: fc.constantFrom("1000000", "250000"),
    base_currency: fc.constantFrom(undefined, undefined, "USD", "EUR"),
    base: limArb(true),
    s1: opt(limArb(false), 3),
    s2: opt(limArb(false), 3),
  })
  .map(({ capital, base_currency, base, s1, s2 }) => {
    const strategies: Record<string, Lim> = {};
    if (s1) strategies["s1"] = s1;
    if (s2) strategies["s2"] = s2;
    const strip = (l: Lim): Lim => Object.fromEntries(Object.entries(l).filter(([, v]) => v !== undefined));
    for (const k of Object.keys(strategies)) strategies[k] = strip(strategies[k]!);
    // every fund-level field but the brokers and types may be absent; those two are set wide mostly
    return {
      capital,
      ...(base_currency === undefined ? {} : { base_currency }),
      ...base,
      allowed_brokers: base.allowed_brokers ?? ["paper", "ibkr", "gs"],
      allowed_order_types: base.allowed_order_types ?? ["MARKET", "LIMIT", "STOP", "STOP_LIMIT"],
      ...(Object.keys(strategies).length > 0 ? { strategies } : {}),
    };
  });

const nudge = fc.constantFrom(-1 as const, 0 as const, 1 as const);
const sizingArb: fc.Arbitrary<Sizing> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      mode: fc.constant("free" as const),
      qty: fc.constantFrom("1", "10", "100", "250", "400.5"),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      mode: fc.constant("measure" as const),
      measure: fc.constantFrom(...MEASURES),
      nudge,
    }),
  },
  { weight: 2, arbitrary: fc.record({ mode: fc.constant("notional" as const), nudge }) },
  { weight: 4, arbitrary: fc.record({ mode: fc.constant("shortEdge" as const), nudge }) },
  {
    weight: 3,
    arbitrary: fc.record({
      mode: fc.constant("reduce" as const),
      frac: fc.constantFrom("1", "0.5"),
      elsewhere: fc.boolean(),
    }),
  },
);

const sym = fc.nat({ max: 2 });
const side = fc.constantFrom<Side>("BUY", "SELL");
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("quote" as const),
      s: sym,
      mid: fc.constantFrom("100", "99.5", "101", "80", "120"),
      half: fc.constantFrom("0", "0.05", "0.5"),
      age: fc.integer({ min: 0, max: 4500 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("fxquote" as const),
      c: fc.nat({ max: 3 }),
      mid: fc.constantFrom("1.1", "1.25", "0.8", "1.3333"),
      oneSided: fc.constant(false), // a rare one-sided quote: actionArbFx
      age: fc.integer({ min: 0, max: 4500 }),
    }),
  },
  {
    weight: 12,
    arbitrary: fc.record({
      k: fc.constant("order" as const),
      s: sym,
      b: fc.nat({ max: 2 }),
      st: fc.nat({ max: 2 }),
      side,
      t: fc.nat({ max: 3 }),
      sizing: sizingArb,
      px: fc.constantFrom("0", "0", "-1", "0.5", "2", "-10"),
      stopPx: fc.constantFrom("-2", "2", "0"),
      locate: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("fill" as const),
      pick: fc.nat(),
      frac: fc.constantFrom("1", "0.5"),
      px: fc.constantFrom("0", "-1", "0.5"),
      fees: fc.constantFrom("0", "2.5"),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("extfill" as const),
      s: sym,
      b: fc.nat({ max: 2 }),
      side,
      qty: fc.constantFrom("10", "100", "300"),
      price: fc.constantFrom("100", "95", "105"),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("cancel" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("envelope" as const), env: envArb }) },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant("advance" as const), ms: fc.constantFrom(1000, 3000, 6000) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("short" as const),
      s: sym,
      shortable: opt(fc.boolean()),
      fee: opt(fc.constantFrom("10", "300", "301")),
    }),
  },
);

// the one-sided FX quote (bid 0) is rare on purpose
const actionArbFx: fc.Arbitrary<Action> = fc
  .tuple(actionArb, fc.nat({ max: 9 }))
  .map(([a, n]) => (a.k === "fxquote" ? { ...a, oneSided: n === 0 } : a));

const worldArb: fc.Arbitrary<World> = fc.record({
  instruments: fc.tuple(instArb(0), instArb(1), instArb(2)),
  env: envArb,
  actions: fc.array(actionArbFx, { minLength: 8, maxLength: 45 }),
});

// ---------------------------------------------------------------------------------------------
// coverage

const stats = {
  runs: 0,
  decisions: 0,
  inexact: 0,
  reducing: 0,
  shortSales: 0,
  crossBrokerShorts: 0, // a short at its broker while the fund is long enough overall
  foreign: 0,
  strategy: 0,
  byCode: new Map<string, number>(),
  byType: new Map<string, number>(),
};
const bump = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);

// ---------------------------------------------------------------------------------------------
// the harness

class Run {
  readonly feed = new Feed();
  readonly model = new Model();
  private readonly decide;
  private readonly clock = manualClock(NOW);
  private version = 0;
  private n = 0;
  readonly approvedIds: string[] = [];
  readonly log: string[] = [];

  constructor(w: World, warm = true) {
    const decider = testDecider(this.feed, this.clock);
    this.model.now = NOW;
    this.decide = (raw: unknown): RiskDecision => {
      const out = decider.decide({ raw });
      if (out instanceof Promise) throw new Error("the deterministic pipeline decides synchronously");
      return out.decision;
    };
    for (const i of w.instruments) this.refdata(i);
    this.envelope(w.env);
    // a warm start: every symbol and rate quoted now (the actions move the clock and requote)
    if (!warm) return;
    for (const s of SYMBOLS) this.quote(s, "99.95", "100.05", 0);
    this.quote("EUR-USD", "1.0995", "1.1005", 0);
    this.quote("GBP-USD", "1.2495", "1.2505", 0);
    this.quote("USD-EUR", "0.9095", "0.9105", 0);
    this.quote("GBP-EUR", "1.1345", "1.1355", 0);
  }

  refdata(i: Inst): void {
    const body = Object.fromEntries(Object.entries(i).filter(([, v]) => v !== undefined));
    this.log.push(`refdata ${JSON.stringify(body)}`);
    this.feed.instrument(body);
    this.model.instruments.set(i.symbol, i);
  }

  envelope(e: Env): void {
    this.version++;
    const body = JSON.parse(JSON.stringify(e)) as Record<string, unknown>;
    this.log.push(`envelope v${this.version} ${JSON.stringify(body)}`);
    this.feed.envelope({ ...body, version: this.version });
    this.model.env = e;
  }

  quote(symbol: string, bid: string, ask: string, age: number): void {
    const ts = this.clock.now() - age;
    this.log.push(`quote ${symbol} ${bid}/${ask} at T-${age}ms`);
    this.feed.quote(symbol, bid, ask, ts);
    this.model.quote(symbol, bid, ask, ts);
  }

  fill(
    orderId: string,
    symbol: string,
    broker: string,
    side: Side,
    qty: string,
    price: string,
    fees: string,
  ): void {
    this.log.push(`fill ${orderId} ${symbol}@${broker} ${side} ${qty} @ ${price} fees ${fees}`);
    this.feed.fill(symbol, side === "SELL" ? `-${qty}` : qty, price, {
      order_id: orderId,
      broker,
      fees,
      timestamp: isoAt(this.clock.now()),
    });
    this.model.fill(orderId, symbol, broker, side, qty, price, fees);
  }

  cancel(orderId: string): void {
    this.log.push(`event ${orderId} cancelled`);
    this.feed.publish("OMS_ORDERS", Subjects.orderEvent("cancelled", FUND), {
      order_id: orderId,
      fund_id: FUND,
      event: "cancelled",
      at: isoAt(this.clock.now()),
    });
    this.model.end(orderId);
  }

  order(o: Omit<OrderIn, "id">): RiskDecision {
    const id = `o-${++this.n}`;
    const oi: OrderIn = { ...o, id };
    const raw = {
      order_id: id,
      idempotency_key: `k-${id}`,
      fund_id: FUND,
      broker: o.broker,
      ...(o.strategy === undefined ? {} : { strategy_id: o.strategy }),
      symbol: o.symbol,
      side: o.side,
      order_type: o.type,
      quantity: o.qty,
      ...(o.limit === undefined ? {} : { limit_price: o.limit }),
      ...(o.stop === undefined ? {} : { stop_price: o.stop }),
      ...(o.locate === undefined ? {} : { locate_id: o.locate }),
      created_at: isoAt(this.clock.now()),
    };
    this.log.push(`order ${JSON.stringify(raw)}`);
    const e = this.model.expect(oi);
    const d = this.decide(raw);
    const said = d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`;
    this.log.push(`  -> ${said} ${JSON.stringify(d.details)}`);
    stats.decisions++;
    bump(stats.byCode, said);
    bump(stats.byType, `${o.type} ${said === "approved" ? "approved" : "rejected"}`);
    if (e.reducing) stats.reducing++;
    if (e.short) {
      stats.shortSales++;
      const b = this.model.books.get(o.symbol);
      if (b && b.qty.minus(this.model.pending(o.symbol, "SELL")).gt(Q.dec(o.qty).minus(Q.dec("0.000000001"))))
        stats.crossBrokerShorts++;
    }
    if (this.model.currency(o.symbol) !== this.model.base) stats.foreign++;
    if (o.strategy !== undefined && this.model.env.strategies?.[o.strategy]) stats.strategy++;
    if (!e.exact) stats.inexact++;
    else {
      if (d.approved && e.plain.length > 0)
        throw new Error(this.trail(`CONTRACT VIOLATION: approved, but ${e.plain.join("; ")}`));
      if (said !== e.answer)
        throw new Error(
          this.trail(
            `MISMATCH: engine ${said}, model ${e.answer}; reducing ${e.reducing}, short ${e.short}, ` +
              `notional ${e.notional?.toString()}, NAV ${this.model.nav().toString()}; ` +
              MEASURES.map((k) => `${k} ${fig(e.figures[k])}`).join("; "),
          ),
        );
      if (
        said.startsWith("position/") &&
        !(said.endsWith("SECTOR_CONCENTRATION_EXCEEDED") && d.details["sector"] === "")
      ) {
        const k = MEASURES.find((m) => said.endsWith(`/${codeOf(m)}`))!;
        const f = e.figures[k]!;
        const got = d.details["resulting_notional"];
        const lim = d.details["limit_notional"];
        if (got === undefined || Q.dec(got).cmp(f.value) !== 0 || Q.dec(lim!).cmp(f.limit) !== 0)
          throw new Error(this.trail(`FIGURES: engine ${got}/${lim}, model ${fig(f)}`));
      }
    }
    if (d.approved) {
      this.model.approve(oi, e.price!);
      this.approvedIds.push(id);
    }
    return d;
  }

  trail(msg: string): string {
    return `${msg}\n  sequence:\n    ${this.log.join("\n    ")}`;
  }

  play(a: Action): void {
    switch (a.k) {
      case "quote": {
        const m = Q.dec(a.mid);
        const h = Q.dec(a.half);
        return this.quote(pick(SYMBOLS, a.s), m.minus(h).toString(), m.plus(h).toString(), a.age);
      }
      case "fxquote": {
        const m = Q.dec(a.mid);
        const h = Q.dec("0.0005");
        if (a.oneSided) return this.quote(pick(FX, a.c), "0", m.plus(m).toString(), a.age);
        return this.quote(pick(FX, a.c), m.minus(h).toString(), m.plus(h).toString(), a.age);
      }
      case "envelope":
        return this.envelope(a.env);
      case "advance":
        this.clock.advance(a.ms);
        this.model.now = this.clock.now();
        this.log.push(`advance ${a.ms} ms`);
        return;
      case "short": {
        const i = this.model.instruments.get(pick(SYMBOLS, a.s))!;
        return this.refdata({ ...i, shortable: a.shortable, borrow_fee_bps: a.fee });
      }
      case "extfill":
        return this.fill(
          `ext-${++this.n}`,
          pick(SYMBOLS, a.s),
          pick(BROKERS, a.b),
          a.side,
          a.qty,
          a.price,
          "0",
        );
      case "cancel": {
        if (this.approvedIds.length === 0) return;
        return this.cancel(pick(this.approvedIds, a.pick));
      }
      case "fill": {
        if (this.approvedIds.length === 0) return;
        const r = this.model.orders.get(pick(this.approvedIds, a.pick))!;
        const left = this.model.reserved(r);
        if (!left.gt(ZERO)) return;
        let qty = left.times(Q.dec(a.frac)).toFixedDown(8);
        if (!Q.dec(qty).gt(ZERO)) qty = left.toString();
        const p = r.price.plus(Q.dec(a.px));
        return this.fill(
          r.id,
          r.symbol,
          r.broker,
          r.side,
          qty,
          (p.gt(ZERO) ? p : r.price).toString(),
          a.fees,
        );
      }
      case "order": {
        const symbol = pick(SYMBOLS, a.s);
        const type = pick(TYPES, a.t);
        const mark = this.model.marks.get(symbol);
        const ref = mark ? mark.mid : Q.dec("100");
        let limit: string | undefined;
        if (type === "LIMIT" || type === "STOP_LIMIT") {
          const l = ref.plus(Q.dec(a.px));
          limit = (l.gt(ZERO) ? l : ref).toFixedDown(4);
        }
        let stop: string | undefined;
        if (type === "STOP" || type === "STOP_LIMIT") {
          const s = ref.plus(Q.dec(a.stopPx));
          stop = (s.gt(ZERO) ? s : ref).toFixedDown(4);
        }
        const broker = pick(BROKERS, a.b);
        const strategy = pick(STRATS, a.st);
        const base = {
          symbol,
          broker,
          strategy,
          type,
          limit,
          stop,
          locate: a.locate ? `loc-${this.n}` : undefined,
        };
        const sized = this.size(base, a.side, a.sizing);
        this.order({ ...base, broker: sized.broker, side: sized.side, qty: sized.qty });
        return;
      }
    }
  }

  private size(
    o: Pick<OrderIn, "symbol" | "broker" | "strategy" | "type" | "limit">,
    side: Side,
    s: Sizing,
  ): { side: Side; qty: string; broker: string } {
    const m = this.model;
    const tiny = (n: number): Q => Q.of(BigInt(n), 100_000_000n);
    const fix = (q: Q): string => (q.gt(ZERO) ? q.toString() : "1");
    if (s.mode === "free") return { side, qty: s.qty, broker: o.broker };
    if (s.mode === "shortEdge") {
      const room = m.brokerQty(o.symbol, o.broker).minus(m.pending(o.symbol, "SELL", o.broker));
      return { side: "SELL", qty: fix(Q.dec(room.toFixedDown(8)).plus(tiny(s.nudge))), broker: o.broker };
    }
    if (s.mode === "reduce") {
      const b = m.books.get(o.symbol);
      if (!b || b.qty.isZero()) return { side, qty: "10", broker: o.broker };
      // at a broker holding the fund's side, or (elsewhere) at one that does not
      const sign = b.qty.sign();
      const holders = [...b.byBroker].filter(([, q]) => q.sign() === sign).map(([k]) => k);
      const others = BROKERS.filter((k) => !holders.includes(k));
      const broker = s.elsewhere ? (others[0] ?? o.broker) : (holders[0] ?? o.broker);
      const qty = Q.dec(b.qty.abs().times(Q.dec(s.frac)).toFixedDown(8));
      return { side: sign > 0 ? "SELL" : "BUY", qty: fix(qty), broker };
    }
    const price = m.orderPrice({ ...o, side });
    const rate = m.freshRate(m.currency(o.symbol));
    if (price === undefined || rate === undefined) return { side, qty: "10", broker: o.broker };
    const unit = price.times(m.mult(o.symbol)).times(rate);
    const L = m.limitsFor(o.strategy);
    if (s.mode === "notional") {
      if (L.max_order_notional === undefined) return { side, qty: "100", broker: o.broker };
      const q = Q.dec(Q.dec(L.max_order_notional).div(unit).toFixedDown(8));
      return { side, qty: fix(q.plus(tiny(s.nudge))), broker: o.broker };
    }
    const huge = Q.dec("1000000000");
    const probe: OrderIn = { ...o, id: "probe", side, qty: huge.toString() };
    const f = m.positionFigures(probe, unit.times(huge), L, L).worst[s.measure];
    if (!f) return { side, qty: "100", broker: o.broker };
    const room = f.limit.minus(f.value.minus(unit.times(huge)));
    const q = Q.dec(room.div(unit).toFixedDown(8));
    return { side, qty: fix(q.plus(tiny(s.nudge))), broker: o.broker };
  }
}

function codeOf(m: Measure): string {
  return {
    position: "MAX_POSITION_EXCEEDED",
    gross: "GROSS_EXPOSURE_EXCEEDED",
    net: "NET_EXPOSURE_EXCEEDED",
    sector: "SECTOR_CONCENTRATION_EXCEEDED",
    asset_class: "ASSET_CLASS_CONCENTRATION_EXCEEDED",
  }[m];
}

function fig(f: { value: Q; limit: Q } | undefined): string {
  return f === undefined ? "-" : `${f.value.toString()} vs ${f.limit.toString()}`;
}

// ---------------------------------------------------------------------------------------------

const W = (env: Env, instruments: Inst[]): World => ({ instruments, env, actions: [] });
const ALL = { allowed_brokers: ["paper", "ibkr", "gs"], allowed_order_types: [...TYPES] };

describe("red team s30e: brokers, FX, strategies and stop orders against an independent model", () => {
  afterAll(() => {
    console.log(
      [
        `runs ${stats.runs}, decisions ${stats.decisions} (${stats.reducing} risk-reducing, ${stats.shortSales} short sales, ` +
          `${stats.crossBrokerShorts} of them shorts only at their broker, ${stats.foreign} on a foreign currency, ` +
          `${stats.strategy} under a strategy override, ${stats.inexact} not compared: inexact)`,
        `by answer: ${[...stats.byCode]
          .sort()
          .map(([c, n]) => `${c} ${n}`)
          .join(", ")}`,
        `by type: ${[...stats.byType]
          .sort()
          .map(([c, n]) => `${c} ${n}`)
          .join(", ")}`,
      ].join("\n"),
    );
  });

  it("a sale at a broker where the fund holds nothing is a short sale there, and earns no exemption", () => {
    const run = new Run(
      W({ capital: "1000000", ...ALL, enable_shorting: false, max_position_pct: "0.01" }, [
        { symbol: "AAA", asset_class: "equity", sector: "tech", multiplier: "1", shortable: true },
      ]),
    );
    run.quote("AAA", "99.5", "100.5", 0);
    run.fill("ext-1", "AAA", "ibkr", "BUY", "100", "100", "0");
    const at = (broker: string) =>
      run.order({ symbol: "AAA", broker, side: "SELL", type: "LIMIT", qty: "100", limit: "100" });
    expect(at("paper").rejection_code).toBe("SHORTING_DISABLED");
    expect(at("ibkr").approved).toBe(true);
  });

  it("a EUR instrument needs a fresh EUR-USD mark and is valued in USD", () => {
    const run = new Run(
      W({ capital: "1000000", ...ALL, max_order_notional: "11000" }, [
        { symbol: "BBB", asset_class: "equity", sector: "tech", multiplier: "1", currency: "EUR" },
      ]),
      false,
    );
    const o = { symbol: "BBB", broker: "paper", side: "BUY" as const, type: "LIMIT" as const, limit: "100" };
    expect(run.order({ ...o, qty: "100" }).rejection_code).toBe("STALE_MARKET_DATA");
    run.quote("EUR-USD", "1.0995", "1.1005", 0);
    expect(run.order({ ...o, qty: "100" }).approved).toBe(true); // 11 000 USD
    expect(run.order({ ...o, qty: "100.00000001" }).rejection_code).toBe("MAX_ORDER_NOTIONAL_EXCEEDED");
  });

  it("a STOP is valued at the fresh ask, a STOP_LIMIT at its limit; a strategy's override applies", () => {
    const run = new Run(
      W(
        {
          capital: "1000000",
          base_currency: "EUR",
          ...ALL,
          max_order_notional: "10000",
          strategies: { s1: { max_order_notional: "20000", enable_shorting: true } },
        },
        [
          {
            symbol: "AAA",
            asset_class: "equity",
            sector: "tech",
            multiplier: "1",
            currency: "USD",
            shortable: true,
          },
        ],
      ),
      false,
    );
    run.quote("AAA", "99", "101", 0);
    const o = { symbol: "AAA", broker: "paper", side: "BUY" as const, qty: "100" };
    // a USD instrument in a EUR fund needs USD-EUR (EUR-USD is not inverted)
    run.quote("EUR-USD", "1.0995", "1.1005", 0);
    expect(run.order({ ...o, type: "STOP", stop: "50" }).rejection_code).toBe("STALE_MARKET_DATA");
    run.quote("USD-EUR", "0.995", "1.005", 0); // rate 1
    expect(run.order({ ...o, type: "STOP", stop: "50" }).rejection_code).toBe("MAX_ORDER_NOTIONAL_EXCEEDED"); // 10 100
    expect(run.order({ ...o, type: "STOP_LIMIT", stop: "101", limit: "100" }).approved).toBe(true); // 10 000
    expect(run.order({ ...o, strategy: "s1", type: "STOP", stop: "50" }).approved).toBe(true);
    const sell = { ...o, side: "SELL" as const, type: "LIMIT" as const, limit: "100" };
    expect(run.order(sell).rejection_code).toBe("SHORTING_DISABLED");
    expect(run.order({ ...sell, strategy: "s1" }).approved).toBe(true);
  });

  it("every decision is the model's, and nothing the contract refuses is approved", () => {
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
