/**
 * An independent reference model for red team stop 30e (several brokers, FX, strategy overrides,
 * STOP and STOP_LIMIT orders), written from CONTRACT.md and the README's documented choices only,
 * with exact rationals (`Q` of ./redteam-s30c-model.ts). It predicts the whole decision of the
 * deterministic gates the generated worlds exercise (static, position, short side) as the engine
 * documents them, and separately lists what the contract's plain reading forbids in an approval.
 */
import { Q, ZERO, max, min } from "./redteam-s30c-model.js";

export { Q };

export type Side = "BUY" | "SELL";
export type OrderType = "LIMIT" | "MARKET" | "STOP" | "STOP_LIMIT";
export type Measure = "position" | "gross" | "net" | "sector" | "asset_class";
export const MEASURES: readonly Measure[] = ["position", "gross", "net", "sector", "asset_class"];
export const CODE_OF: Record<Measure, string> = {
  position: "MAX_POSITION_EXCEEDED",
  gross: "GROSS_EXPOSURE_EXCEEDED",
  net: "NET_EXPOSURE_EXCEEDED",
  sector: "SECTOR_CONCENTRATION_EXCEEDED",
  asset_class: "ASSET_CLASS_CONCENTRATION_EXCEEDED",
};
export const BASE = "USD";
export const MAX_QUOTE_AGE_MS = 5000;

export interface Inst {
  symbol: string;
  asset_class: "equity" | "crypto";
  sector?: string | undefined;
  multiplier: string;
  currency?: string | undefined;
  shortable?: boolean | undefined;
  borrow_fee_bps?: string | undefined;
}

export interface Lim {
  allowed_brokers?: string[] | undefined;
  allowed_order_types?: OrderType[] | undefined;
  max_order_qty?: string | undefined;
  max_order_notional?: string | undefined;
  max_position_pct?: string | undefined;
  max_gross_exposure_pct?: string | undefined;
  max_net_exposure_pct?: string | undefined;
  max_sector_pct?: string | undefined;
  max_asset_class_pct?: Partial<Record<"equity" | "crypto", string>> | undefined;
  enable_shorting?: boolean | undefined;
  max_borrow_fee_bps?: string | undefined;
  price_collar_pct?: string | undefined;
}

export interface Env extends Lim {
  capital: string;
  base_currency?: string | undefined;
  strategies?: Record<string, Lim> | undefined;
}

export interface OrderIn {
  id: string;
  symbol: string;
  broker: string;
  strategy?: string | undefined;
  side: Side;
  type: OrderType;
  qty: string;
  limit?: string | undefined;
  stop?: string | undefined;
  locate?: string | undefined;
}

interface Book {
  qty: Q;
  cost: Q;
  realized: Q;
  fees: Q;
  byBroker: Map<string, Q>;
}

interface MarkM {
  bid: Q;
  ask: Q;
  mid: Q;
  ts: number;
}

export interface Rec {
  id: string;
  symbol: string;
  broker: string;
  side: Side;
  approved: Q;
  price: Q; // in the instrument's currency
  filled: Q;
  terminal: boolean;
}

export interface Expected {
  /** "approved" or "gate/CODE" as the README documents the engine. */
  answer: string;
  /** Reasons the contract's plain reading forbids approving it (empty: an approval is allowed). */
  plain: string[];
  reducing: boolean;
  short: boolean;
  /** The order price in its instrument's currency (undefined: no fresh mark for a MARKET/STOP). */
  price: Q | undefined;
  notional: Q | undefined;
  /** Position-gate figures (worst case) by measure, when the gate runs. */
  figures: Partial<Record<Measure, { value: Q; limit: Q }>>;
  exact: boolean;
}

/** The README's strategy overlay: each field replaces the fund's; the class map merges class by class. */
export function overlay(base: Lim, o: Lim | undefined): Lim {
  if (!o) return base;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  if (o.max_asset_class_pct !== undefined && base.max_asset_class_pct !== undefined)
    out["max_asset_class_pct"] = { ...base.max_asset_class_pct, ...o.max_asset_class_pct };
  return out;
}

/** The contract's plain reading of an override: whatever the strategy sets replaces the fund's. */
function replaceAll(base: Lim, o: Lim | undefined): Lim {
  if (!o) return base;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

export class Model {
  readonly instruments = new Map<string, Inst>();
  env: Env = { capital: "1" };
  readonly books = new Map<string, Book>();
  readonly marks = new Map<string, MarkM>();
  readonly orders = new Map<string, Rec>();
  now = 0;

  quote(symbol: string, bid: string, ask: string, ts: number): void {
    const cur = this.marks.get(symbol);
    if (cur && ts < cur.ts) return;
    const b = Q.dec(bid);
    const a = Q.dec(ask);
    const mid = b.isZero() ? a.div(Q.of(2n)) : a.isZero() ? b : b.plus(a).div(Q.of(2n));
    this.marks.set(symbol, { bid: b, ask: a, mid, ts });
  }

  private book(symbol: string): Book {
    let b = this.books.get(symbol);
    if (!b)
      this.books.set(
        symbol,
        (b = { qty: ZERO, cost: ZERO, realized: ZERO, fees: ZERO, byBroker: new Map() }),
      );
    return b;
  }

  brokerQty(symbol: string, broker: string): Q {
    return this.books.get(symbol)?.byBroker.get(broker) ?? ZERO;
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
    const b = this.book(symbol);
    const q = Q.dec(qty);
    const p = Q.dec(price);
    const buy = side === "BUY";
    const signed = buy ? q : q.neg();
    b.byBroker.set(broker, (b.byBroker.get(broker) ?? ZERO).plus(signed));
    if (b.qty.isZero() || b.qty.sign() > 0 === buy) {
      b.qty = b.qty.plus(signed);
      b.cost = b.cost.plus(q.times(p));
    } else {
      const absQ = b.qty.abs();
      const closed = min(q, absQ);
      const removed = b.cost.times(closed).div(absQ);
      const proceeds = closed.times(p);
      b.realized = b.realized.plus(b.qty.sign() > 0 ? proceeds.minus(removed) : removed.minus(proceeds));
      b.cost = b.cost.minus(removed);
      b.qty = buy ? b.qty.plus(closed) : b.qty.minus(closed);
      const rest = q.minus(closed);
      if (rest.gt(ZERO)) {
        b.qty = buy ? rest : rest.neg();
        b.cost = rest.times(p);
      }
    }
    b.fees = b.fees.plus(Q.dec(fees));
    const r = this.orders.get(orderId);
    if (r) r.filled = r.filled.plus(q);
  }

  end(orderId: string): void {
    const r = this.orders.get(orderId);
    if (r) r.terminal = true;
  }

  approve(o: OrderIn, price: Q): void {
    this.orders.set(o.id, {
      id: o.id,
      symbol: o.symbol,
      broker: o.broker,
      side: o.side,
      approved: Q.dec(o.qty),
      price,
      filled: ZERO,
      terminal: false,
    });
  }

  reserved(r: Rec): Q {
    return r.terminal ? ZERO : max(ZERO, r.approved.minus(r.filled));
  }

  pending(symbol: string, side: Side, broker?: string): Q {
    let q = ZERO;
    for (const r of this.orders.values())
      if (r.symbol === symbol && r.side === side && (broker === undefined || r.broker === broker))
        q = q.plus(this.reserved(r));
    return q;
  }

  mult(symbol: string): Q {
    return Q.dec(this.instruments.get(symbol)?.multiplier ?? "1");
  }

  get base(): string {
    return this.env.base_currency ?? BASE;
  }

  currency(symbol: string): string {
    return this.instruments.get(symbol)?.currency ?? this.base;
  }

  fresh(symbol: string): MarkM | undefined {
    const m = this.marks.get(symbol);
    return m && Math.abs(this.now - m.ts) <= MAX_QUOTE_AGE_MS ? m : undefined;
  }

  /** The valuation rate of a currency (latest FX mark's mid, whatever its age; none without a bid). */
  rate(ccy: string): Q | undefined {
    if (ccy === this.base) return Q.of(1n);
    const m = this.marks.get(`${ccy}-${this.base}`);
    return m && m.bid.gt(ZERO) ? m.mid : undefined;
  }

  /** The rate an order converts its notional at: fresh and with a bid. */
  freshRate(ccy: string): Q | undefined {
    if (ccy === this.base) return Q.of(1n);
    const m = this.fresh(`${ccy}-${this.base}`);
    return m && m.bid.gt(ZERO) ? m.mid : undefined;
  }

  symbols(): Set<string> {
    const out = new Set<string>(this.books.keys());
    for (const r of this.orders.values()) if (!this.reserved(r).isZero()) out.add(r.symbol);
    return out;
  }

  /** A book in a currency with no rate that holds anything (qty, realized, fees or reservations). */
  unpriced(): boolean {
    for (const s of this.symbols()) {
      if (this.rate(this.currency(s)) !== undefined) continue;
      const b = this.books.get(s);
      const busy =
        (b !== undefined && !(b.qty.isZero() && b.realized.isZero() && b.fees.isZero())) ||
        !this.pending(s, "BUY").isZero() ||
        !this.pending(s, "SELL").isZero();
      if (busy) return true;
    }
    return false;
  }

  nav(): Q {
    let v = Q.dec(this.env.capital);
    for (const [s, b] of this.books) {
      const rate = this.rate(this.currency(s)) ?? ZERO;
      const m = this.mult(s);
      const signedCost = b.qty.sign() < 0 ? b.cost.neg() : b.cost;
      const mark = this.marks.get(s);
      const mv = mark && !b.qty.isZero() ? b.qty.times(mark.mid) : signedCost;
      const local = b.realized.times(m).plus(mv.minus(signedCost).times(m)).minus(b.fees);
      v = v.plus(local.times(rate));
    }
    return v;
  }

  /** Position value and pending buy/sell values of a symbol, in the base currency. */
  values(s: string): { mv: Q; pb: Q; ps: Q } {
    const k = this.mult(s).times(this.rate(this.currency(s)) ?? ZERO);
    const b = this.books.get(s);
    let mv = ZERO;
    if (b && !b.qty.isZero()) {
      const mark = this.marks.get(s);
      mv = mark ? b.qty.times(mark.mid) : b.qty.sign() < 0 ? b.cost.neg() : b.cost;
    }
    let pb = ZERO;
    let ps = ZERO;
    for (const r of this.orders.values()) {
      if (r.symbol !== s) continue;
      const q = this.reserved(r);
      if (r.side === "BUY") pb = pb.plus(q.times(r.price));
      else ps = ps.plus(q.times(r.price));
    }
    return { mv: mv.times(k), pb: pb.times(k), ps: ps.times(k) };
  }

  /** The price an order is valued at, in its instrument's currency (README "Prices and marks"). */
  orderPrice(o: Pick<OrderIn, "symbol" | "side" | "type" | "limit">): Q | undefined {
    if (o.type === "LIMIT" || o.type === "STOP_LIMIT") return Q.dec(o.limit!);
    const mark = this.fresh(o.symbol);
    if (!mark) return undefined;
    const p = o.side === "BUY" ? mark.ask : mark.bid;
    return p.gt(ZERO) ? p : mark.mid;
  }

  limitsFor(strategy: string | undefined): Lim {
    const { strategies, capital: _c, base_currency: _b, ...base } = this.env;
    void _c;
    void _b;
    return overlay(base, strategy === undefined ? undefined : strategies?.[strategy]);
  }

  plainLimitsFor(strategy: string | undefined): Lim {
    const { strategies, capital: _c, base_currency: _b, ...base } = this.env;
    void _c;
    void _b;
    return replaceAll(base, strategy === undefined ? undefined : strategies?.[strategy]);
  }

  /** Risk-reducing as the README documents it: toward zero for the fund and at the order's broker. */
  reducing(o: OrderIn, perBroker: boolean): boolean {
    const b = this.books.get(o.symbol);
    if (!b) return false;
    const q = Q.dec(o.qty);
    const at = b.byBroker.get(o.broker) ?? ZERO;
    if (o.side === "BUY") {
      const fund = b.qty.sign() < 0 && this.pending(o.symbol, "BUY").plus(q).lte(b.qty.abs());
      if (!perBroker) return fund;
      return fund && at.sign() < 0 && this.pending(o.symbol, "BUY", o.broker).plus(q).lte(at.abs());
    }
    const fund = b.qty.sign() > 0 && this.pending(o.symbol, "SELL").plus(q).lte(b.qty);
    if (!perBroker) return fund;
    return fund && at.sign() > 0 && this.pending(o.symbol, "SELL", o.broker).plus(q).lte(at);
  }

  /** A SELL beyond the long position at its broker less that broker's pending sells. */
  isShort(o: OrderIn): boolean {
    if (o.side !== "SELL") return false;
    const room = this.brokerQty(o.symbol, o.broker).minus(this.pending(o.symbol, "SELL", o.broker));
    return Q.dec(o.qty).gt(room);
  }

  /** Position-gate figures: worst case (documented) and plain (position + reservations + order). */
  positionFigures(
    o: OrderIn,
    notional: Q,
    L: Lim,
    P: Lim,
  ): {
    worst: Partial<Record<Measure, { value: Q; limit: Q }>>;
    plain: Partial<Record<Measure, { value: Q; limit: Q }>>;
    sectorUnknown: boolean;
    exact: boolean;
  } {
    const buy = o.side === "BUY";
    const inst = this.instruments.get(o.symbol);
    const signedO = buy ? notional : notional.neg();
    const nav = this.nav();
    let exact = nav.terminating();
    let gross = ZERO,
      grossP = ZERO,
      netL = ZERO,
      netS = ZERO,
      netP = ZERO,
      sector = ZERO,
      sectorP = ZERO,
      klass = ZERO,
      klassP = ZERO,
      afterW = notional,
      afterP = notional;
    const worstOf = (a: Q, b: Q): Q => max(a.abs(), b.abs());
    for (const s of this.symbols()) {
      const v = this.values(s);
      exact &&= v.mv.terminating();
      const Ls = v.mv.plus(v.pb);
      const Ss = v.mv.minus(v.ps);
      const r = v.mv.plus(v.pb).minus(v.ps);
      netL = netL.plus(Ls);
      netS = netS.plus(Ss);
      netP = netP.plus(r);
      if (s === o.symbol) {
        afterW = worstOf(buy ? Ls.plus(signedO) : Ls, buy ? Ss : Ss.plus(signedO));
        afterP = r.plus(signedO).abs();
        continue;
      }
      const e = worstOf(Ls, Ss);
      const ea = r.abs();
      gross = gross.plus(e);
      grossP = grossP.plus(ea);
      const si = this.instruments.get(s);
      if (inst?.sector !== undefined && si?.sector === inst.sector) {
        sector = sector.plus(e);
        sectorP = sectorP.plus(ea);
      }
      if (si !== undefined && si.asset_class === inst?.asset_class) {
        klass = klass.plus(e);
        klassP = klassP.plus(ea);
      }
    }
    const netW = worstOf(buy ? netL.plus(signedO) : netL, buy ? netS : netS.plus(signedO));
    const netPlain = netP.plus(signedO).abs();
    const lim = (pct: string | undefined): Q | undefined =>
      pct === undefined ? undefined : Q.dec(pct).times(nav);
    const worst: Partial<Record<Measure, { value: Q; limit: Q }>> = {};
    const plain: Partial<Record<Measure, { value: Q; limit: Q }>> = {};
    const put = (out: typeof worst, k: Measure, limit: Q | undefined, value: Q): void => {
      if (limit !== undefined) out[k] = { value, limit };
    };
    put(worst, "position", lim(L.max_position_pct), afterW);
    put(worst, "gross", lim(L.max_gross_exposure_pct), gross.plus(afterW));
    put(worst, "net", lim(L.max_net_exposure_pct), netW);
    put(plain, "position", lim(P.max_position_pct), afterP);
    put(plain, "gross", lim(P.max_gross_exposure_pct), grossP.plus(afterP));
    put(plain, "net", lim(P.max_net_exposure_pct), netPlain);
    let sectorUnknown = false;
    if (L.max_sector_pct !== undefined && inst?.sector === undefined) sectorUnknown = true;
    if (inst?.sector !== undefined) {
      put(worst, "sector", lim(L.max_sector_pct), sector.plus(afterW));
      put(plain, "sector", lim(P.max_sector_pct), sectorP.plus(afterP));
    }
    const ac = inst?.asset_class;
    if (ac !== undefined) {
      put(worst, "asset_class", lim(L.max_asset_class_pct?.[ac]), klass.plus(afterW));
      put(plain, "asset_class", lim(P.max_asset_class_pct?.[ac]), klassP.plus(afterP));
    }
    return { worst, plain, sectorUnknown, exact };
  }

  /** The engine's documented answer, and what the contract's plain reading forbids approving. */
  expect(o: OrderIn): Expected {
    const L = this.limitsFor(o.strategy);
    const P = this.plainLimitsFor(o.strategy);
    const inst = this.instruments.get(o.symbol);
    const q = Q.dec(o.qty);
    const ccy = this.currency(o.symbol);
    const price = this.orderPrice(o);
    const rate = this.freshRate(ccy);
    const notional =
      price !== undefined && rate !== undefined
        ? q.times(price).times(this.mult(o.symbol)).times(rate)
        : undefined;
    const reducing = this.reducing(o, true);
    const reducingByFund = this.reducing(o, false);
    const short = this.isShort(o);
    const mark = this.fresh(o.symbol);
    const plain: string[] = [];
    const figures: Expected["figures"] = {};
    let exact = true;

    // --- plain contract: what no reading lets an approval do
    if (!(P.allowed_brokers ?? []).includes(o.broker)) plain.push("broker not allowed");
    if (!(P.allowed_order_types ?? []).includes(o.type)) plain.push("order type not allowed");
    if (P.max_order_qty !== undefined && q.gt(Q.dec(P.max_order_qty))) plain.push("max_order_qty");
    if ((o.type === "MARKET" || o.type === "STOP") && !mark) plain.push("MARKET/STOP without a fresh mark");
    if (P.price_collar_pct !== undefined && !mark) plain.push("collar set, no fresh mark");
    if (ccy !== this.base && rate === undefined) plain.push(`no fresh FX rate ${ccy}-${this.base}`);
    if (
      notional !== undefined &&
      P.max_order_notional !== undefined &&
      notional.gt(Q.dec(P.max_order_notional))
    )
      plain.push(`notional ${notional.toString()} over max_order_notional ${P.max_order_notional}`);
    if (o.limit !== undefined && P.price_collar_pct !== undefined && mark) {
      if (Q.dec(o.limit).minus(mark.mid).abs().gt(Q.dec(P.price_collar_pct).times(mark.mid)))
        plain.push("price collar");
    }
    if (short) {
      if (P.enable_shorting !== true) plain.push("short sale with shorting disabled");
      else {
        const fee = inst?.borrow_fee_bps;
        if (
          P.max_borrow_fee_bps !== undefined &&
          fee !== undefined &&
          Q.dec(fee).gt(Q.dec(P.max_borrow_fee_bps))
        )
          plain.push(`borrow fee ${fee} over ${P.max_borrow_fee_bps}`);
        if (inst?.shortable === false && o.locate === undefined) plain.push("not shortable, no locate");
      }
    }
    if (notional !== undefined && !reducingByFund) {
      const f = this.positionFigures(o, notional, L, P);
      exact = f.exact;
      for (const k of MEASURES) {
        const p = f.plain[k];
        if (p && p.value.gt(p.limit)) plain.push(`${k} ${p.value.toString()} over ${p.limit.toString()}`);
      }
    }

    // --- the documented engine
    const ans = (answer: string): Expected => ({
      answer,
      plain,
      reducing,
      short,
      price,
      notional,
      figures,
      exact,
    });
    if (!(L.allowed_brokers ?? []).includes(o.broker)) return ans("static/BROKER_NOT_ALLOWED");
    if (!(L.allowed_order_types ?? []).includes(o.type)) return ans("static/ORDER_TYPE_NOT_ALLOWED");
    if (L.max_order_qty !== undefined && q.gt(Q.dec(L.max_order_qty)))
      return ans("static/MAX_ORDER_QTY_EXCEEDED");
    if (
      notional !== undefined &&
      L.max_order_notional !== undefined &&
      notional.gt(Q.dec(L.max_order_notional))
    )
      return ans("static/MAX_ORDER_NOTIONAL_EXCEEDED");
    if (L.price_collar_pct !== undefined && o.limit !== undefined && mark) {
      if (Q.dec(o.limit).minus(mark.mid).abs().gt(Q.dec(L.price_collar_pct).times(mark.mid)))
        return ans("static/PRICE_COLLAR_BREACHED");
    }
    const needsMark = o.type === "MARKET" || o.type === "STOP" || L.price_collar_pct !== undefined;
    if (needsMark && !mark) return ans("static/STALE_MARKET_DATA");
    if (ccy !== this.base && rate === undefined) return ans("static/STALE_MARKET_DATA");
    if (!reducing && this.unpriced()) return ans("static/STALE_MARKET_DATA");
    if (!reducing) {
      const f = this.positionFigures(o, notional!, L, P);
      exact = f.exact;
      Object.assign(figures, f.worst);
      for (const k of MEASURES) {
        if (k === "sector" && f.sectorUnknown) return ans(`position/${CODE_OF.sector}`);
        const w = f.worst[k];
        if (w && w.value.gt(w.limit)) return ans(`position/${CODE_OF[k]}`);
      }
    }
    if (short) {
      if (L.enable_shorting !== true) return ans("short_side/SHORTING_DISABLED");
      if (L.max_borrow_fee_bps !== undefined) {
        const fee = inst?.borrow_fee_bps;
        if (fee === undefined || Q.dec(fee).gt(Q.dec(L.max_borrow_fee_bps)))
          return ans("short_side/BORROW_FEE_TOO_HIGH");
      }
      if (inst?.shortable !== true && o.locate === undefined) return ans("short_side/LOCATE_REQUIRED");
    }
    return ans("approved");
  }
}
