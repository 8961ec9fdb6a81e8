/**
 * An independent reference model of CONTRACT.md's position gate (red team, stop 30c), written from
 * the contract and the README's documented choices only, with exact rationals on bigint (no code of
 * the engine's): NAV, marks, positions at average cost, reservations and the five position-gate
 * measures, both as the engine documents them ("Worst case of both sides") and as the contract's
 * plain arithmetic (position + every reservation + this order).
 */

/** An exact rational n / d (d > 0, reduced). */
export class Q {
  private constructor(
    readonly n: bigint,
    readonly d: bigint,
  ) {}

  static of(n: bigint, d = 1n): Q {
    if (d === 0n) throw new Error("division by zero");
    if (d < 0n) {
      n = -n;
      d = -d;
    }
    const g = gcd(n < 0n ? -n : n, d);
    return g > 1n ? new Q(n / g, d / g) : new Q(n, d);
  }

  /** A decimal string ("-12.5", "0.001"). */
  static dec(s: string): Q {
    const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(s);
    if (!m) throw new Error(`not a decimal: ${s}`);
    const frac = m[3] ?? "";
    const n = BigInt(m[2]! + frac) * (m[1] === "-" ? -1n : 1n);
    return Q.of(n, 10n ** BigInt(frac.length));
  }

  plus(o: Q): Q {
    return Q.of(this.n * o.d + o.n * this.d, this.d * o.d);
  }
  minus(o: Q): Q {
    return Q.of(this.n * o.d - o.n * this.d, this.d * o.d);
  }
  times(o: Q): Q {
    return Q.of(this.n * o.n, this.d * o.d);
  }
  div(o: Q): Q {
    return Q.of(this.n * o.d, this.d * o.n);
  }
  neg(): Q {
    return Q.of(-this.n, this.d);
  }
  abs(): Q {
    return this.n < 0n ? this.neg() : this;
  }
  cmp(o: Q): number {
    const l = this.n * o.d;
    const r = o.n * this.d;
    return l < r ? -1 : l > r ? 1 : 0;
  }
  gt(o: Q): boolean {
    return this.cmp(o) > 0;
  }
  lte(o: Q): boolean {
    return this.cmp(o) <= 0;
  }
  isZero(): boolean {
    return this.n === 0n;
  }
  sign(): number {
    return this.n < 0n ? -1 : this.n > 0n ? 1 : 0;
  }
  /** Whether it is a finite decimal (its denominator has no prime factor but 2 and 5). */
  terminating(): boolean {
    let d = this.d;
    while (d % 2n === 0n) d /= 2n;
    while (d % 5n === 0n) d /= 5n;
    return d === 1n;
  }
  /** Rounded toward zero to `places` fraction digits, as a canonical decimal string. */
  toFixedDown(places: number): string {
    const scale = 10n ** BigInt(places);
    const v = (this.n * scale) / this.d; // bigint division truncates toward zero
    return canonical(v, places);
  }
  /** A decimal string with at most `maxPlaces` fraction digits, or undefined if it has none. */
  decimal(maxPlaces = 18): string | undefined {
    for (let p = 0; p <= maxPlaces; p++) {
      const scale = 10n ** BigInt(p);
      if ((this.n * scale) % this.d !== 0n) continue;
      const units = (this.n * scale) / this.d;
      const neg = units < 0n;
      let s = (neg ? -units : units).toString().padStart(p + 1, "0");
      if (p > 0) s = `${s.slice(0, -p)}.${s.slice(-p)}`;
      return (neg ? "-" : "") + s;
    }
    return undefined;
  }
  toString(): string {
    if (!this.terminating()) return `${this.n}/${this.d}`;
    let places = 0;
    while ((10n ** BigInt(places) * this.n) % this.d !== 0n) places++;
    return canonical((this.n * 10n ** BigInt(places)) / this.d, places);
  }
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a === 0n ? 1n : a;
}

function canonical(units: bigint, places: number): string {
  const neg = units < 0n;
  let s = (neg ? -units : units).toString().padStart(places + 1, "0");
  if (places > 0) s = `${s.slice(0, -places)}.${s.slice(-places)}`.replace(/\.?0+$/, "");
  return (neg && s !== "0" ? "-" : "") + s;
}

export const ZERO = Q.of(0n);
export const max = (a: Q, b: Q): Q => (a.cmp(b) >= 0 ? a : b);
export const min = (a: Q, b: Q): Q => (a.cmp(b) <= 0 ? a : b);

export type Side = "BUY" | "SELL";
export type Measure = "position" | "gross" | "net" | "sector" | "asset_class";
export const MEASURES: readonly Measure[] = ["position", "gross", "net", "sector", "asset_class"];
export const CODE_OF: Record<Measure, string> = {
  position: "MAX_POSITION_EXCEEDED",
  gross: "GROSS_EXPOSURE_EXCEEDED",
  net: "NET_EXPOSURE_EXCEEDED",
  sector: "SECTOR_CONCENTRATION_EXCEEDED",
  asset_class: "ASSET_CLASS_CONCENTRATION_EXCEEDED",
};

export interface InstrumentSpec {
  symbol: string;
  asset_class: "equity" | "crypto";
  sector?: string | undefined;
  multiplier: string;
}

export interface Limits {
  capital: string;
  max_position_pct?: string | undefined;
  max_gross_exposure_pct?: string | undefined;
  max_net_exposure_pct?: string | undefined;
  max_sector_pct?: string | undefined;
  max_asset_class_pct?: Partial<Record<"equity" | "crypto", string>> | undefined;
}

interface Book {
  qty: Q; // signed
  cost: Q; // magnitude of the open position's cost, per unit of price (× multiplier to value)
  realized: Q; // per unit of price
  fees: Q; // money
}

interface MarkM {
  bid: Q;
  ask: Q;
  mid: Q;
  ts: number;
}

export interface OrderRec {
  id: string;
  symbol: string;
  side: Side;
  approved: Q;
  price: Q;
  filled: Q;
  terminal: boolean;
  endFilled: Q;
  accepted: boolean;
  approvedAt: number;
  touchedAt: number;
  /** An ended record the engine forgot (a TTL after its last touch): it reserves nothing more. */
  forgotten: boolean;
}

/** `reservations.ttl_s` by default (1 day). */
export const TTL_MS = 86_400_000;
/** `max_quote_age_ms` by default. */
export const MAX_QUOTE_AGE_MS = 5000;

export interface Figures {
  /** The figure compared with the limit, and the limit (pct × NAV), per measure that is set. */
  worst: Partial<Record<Measure, { value: Q; limit: Q }>>;
  plain: Partial<Record<Measure, { value: Q; limit: Q }>>;
  /** The sector limit is set and the instrument has no sector: fail closed (README). */
  sectorUnknown: boolean;
}

export interface Judgement {
  reducing: boolean;
  /** The engine's documented rule: the first measure over its limit (undefined: passes the gate). */
  expected: Measure | undefined;
  /** Measures the contract's plain arithmetic finds over the limit. */
  plainOver: Measure[];
  figures: Figures;
  nav: Q;
  /** Every figure is a finite decimal (an average cost that does not divide makes it inexact). */
  exact: boolean;
}

/** The reference model: state from the streams, and the position gate's answer for an order. */
export class Model {
  readonly instruments = new Map<string, InstrumentSpec>();
  limits: Limits = { capital: "0" };
  readonly books = new Map<string, Book>();
  readonly marks = new Map<string, MarkM>();
  readonly orders = new Map<string, OrderRec>();
  /** The engine clock. */
  now = 0;

  instrument(i: InstrumentSpec): void {
    this.instruments.set(i.symbol, i);
  }

  envelope(l: Limits): void {
    this.limits = l;
  }

  /** The latest quote by its own timestamp (ties: the later one). */
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
    if (!b) this.books.set(symbol, (b = { qty: ZERO, cost: ZERO, realized: ZERO, fees: ZERO }));
    return b;
  }

  /** A fill at average cost: a reduction realizes (price − average cost) × quantity closed. */
  fill(orderId: string, symbol: string, side: Side, qty: string, price: string, fees: string): void {
    const b = this.book(symbol);
    const q = Q.dec(qty);
    const p = Q.dec(price);
    const buy = side === "BUY";
    const signed = buy ? q : q.neg();
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
    if (r) {
      r.filled = r.filled.plus(q);
      r.touchedAt = Math.max(r.touchedAt, this.now);
    }
  }

  /** An OMS event: a terminal one ends the order (an end's `filled_quantity` still reserves what FILLS has not brought). */
  event(orderId: string, event: string, filledQuantity?: string): void {
    const r = this.orders.get(orderId);
    if (!r) return;
    r.touchedAt = Math.max(r.touchedAt, this.now);
    if (event === "accepted") {
      r.accepted = true;
      return;
    }
    r.terminal = true;
    if (filledQuantity !== undefined) r.endFilled = max(r.endFilled, Q.dec(filledQuantity));
  }

  approve(id: string, symbol: string, side: Side, qty: string, price: Q): void {
    this.orders.set(id, {
      id,
      symbol,
      side,
      approved: Q.dec(qty),
      price,
      filled: ZERO,
      terminal: false,
      endFilled: ZERO,
      accepted: false,
      approvedAt: this.now,
      touchedAt: this.now,
      forgotten: false,
    });
  }

  /**
   * Before a decision: an ended order is forgotten a TTL after its last touch (with whatever the
   * OMS said was filled and FILLS never brought). Runs lazily, at decisions, as the engine's does.
   */
  sweep(): void {
    for (const r of this.orders.values()) {
      if (r.terminal && this.now >= r.touchedAt + TTL_MS) r.forgotten = true;
    }
  }

  /** What an order still reserves (quantity). */
  reserved(r: OrderRec): Q {
    if (r.forgotten) return ZERO;
    const acknowledged = r.accepted || r.filled.gt(ZERO) || r.endFilled.gt(ZERO);
    // the TTL releases only an order the OMS never acknowledged
    if (!acknowledged && this.now >= r.approvedAt + TTL_MS) return ZERO;
    const want = r.terminal ? min(r.endFilled, r.approved).minus(r.filled) : r.approved.minus(r.filled);
    return max(ZERO, want);
  }

  mult(symbol: string): Q {
    return Q.dec(this.instruments.get(symbol)?.multiplier ?? "1");
  }

  /** NAV = capital + realized + unrealized (at marks; at average cost with no quote ever) − fees. */
  nav(): Q {
    let v = Q.dec(this.limits.capital);
    for (const [s, b] of this.books) {
      const m = this.mult(s);
      const signedCost = b.qty.sign() < 0 ? b.cost.neg() : b.cost;
      const mark = this.marks.get(s);
      const mv = mark && !b.qty.isZero() ? b.qty.times(mark.mid) : signedCost;
      v = v.plus(b.realized.times(m)).plus(mv.minus(signedCost).times(m)).minus(b.fees);
    }
    return v;
  }

  /** Position value at mark (average cost with none), and pending buy/sell values, in money. */
  symbolValues(s: string): { mv: Q; pb: Q; ps: Q; pbQty: Q; psQty: Q } {
    const m = this.mult(s);
    const b = this.books.get(s);
    let mv = ZERO;
    if (b && !b.qty.isZero()) {
      const mark = this.marks.get(s);
      mv = mark ? b.qty.times(mark.mid) : b.qty.sign() < 0 ? b.cost.neg() : b.cost;
    }
    let pb = ZERO;
    let ps = ZERO;
    let pbQty = ZERO;
    let psQty = ZERO;
    for (const r of this.orders.values()) {
      if (r.symbol !== s) continue;
      const q = this.reserved(r);
      if (q.isZero()) continue;
      if (r.side === "BUY") {
        pb = pb.plus(q.times(r.price));
        pbQty = pbQty.plus(q);
      } else {
        ps = ps.plus(q.times(r.price));
        psQty = psQty.plus(q);
      }
    }
    return { mv: mv.times(m), pb: pb.times(m), ps: ps.times(m), pbQty, psQty };
  }

  symbols(): Set<string> {
    const out = new Set<string>([...this.books.keys()]);
    for (const r of this.orders.values()) out.add(r.symbol);
    return out;
  }

  /** The price an order is valued at: its limit, or the mark's side it trades against (mid when that side is 0). */
  orderPrice(symbol: string, side: Side, type: string, limit?: string): Q | undefined {
    if (type === "LIMIT") return Q.dec(limit!);
    const mark = this.marks.get(symbol);
    if (!mark || Math.abs(this.now - mark.ts) > MAX_QUOTE_AGE_MS) return undefined;
    const p = side === "BUY" ? mark.ask : mark.bid;
    return p.gt(ZERO) ? p : mark.mid;
  }

  judge(symbol: string, side: Side, qty: string, price: Q): Judgement {
    const buy = side === "BUY";
    const inst = this.instruments.get(symbol);
    const m = this.mult(symbol);
    const q = Q.dec(qty);
    const o = q.times(price).times(m); // order notional
    const signedO = buy ? o : o.neg();
    const nav = this.nav();
    let exact = nav.terminating();

    // risk-reducing: toward zero without crossing it, counting pending orders on its side
    const own = this.symbolValues(symbol);
    const pos = this.books.get(symbol)?.qty ?? ZERO;
    const reducing = buy
      ? pos.sign() < 0 && own.pbQty.plus(q).lte(pos.abs())
      : pos.sign() > 0 && own.psQty.plus(q).lte(pos);

    // per symbol: worst-case extremes and the plain resulting value
    let gross = ZERO;
    let grossPlain = ZERO;
    let netL = ZERO;
    let netS = ZERO;
    let netPlain = ZERO;
    let sector = ZERO;
    let sectorPlain = ZERO;
    let klass = ZERO;
    let klassPlain = ZERO;
    const worstOf = (L: Q, S: Q): Q => max(L.abs(), S.abs());
    let afterW = ZERO;
    let afterP = ZERO;
    for (const s of this.symbols()) {
      const v = s === symbol ? own : this.symbolValues(s);
      exact &&= v.mv.terminating();
      const L = v.mv.plus(v.pb);
      const S = v.mv.minus(v.ps);
      const r = v.mv.plus(v.pb).minus(v.ps);
      netL = netL.plus(L);
      netS = netS.plus(S);
      netPlain = netPlain.plus(r);
      if (s === symbol) {
        afterW = worstOf(buy ? L.plus(signedO) : L, buy ? S : S.plus(signedO));
        afterP = r.plus(signedO).abs();
        continue;
      }
      const e = worstOf(L, S);
      const ea = r.abs();
      gross = gross.plus(e);
      grossPlain = grossPlain.plus(ea);
      const si = this.instruments.get(s);
      if (inst?.sector !== undefined && si?.sector === inst.sector) {
        sector = sector.plus(e);
        sectorPlain = sectorPlain.plus(ea);
      }
      if (si !== undefined && si.asset_class === inst?.asset_class) {
        klass = klass.plus(e);
        klassPlain = klassPlain.plus(ea);
      }
    }
    if (!this.symbols().has(symbol)) {
      afterW = o;
      afterP = o;
    }
    const netW = worstOf(buy ? netL.plus(signedO) : netL, buy ? netS : netS.plus(signedO));
    const netP = netPlain.plus(signedO).abs();

    const L = this.limits;
    const lim = (pct: string | undefined): Q | undefined =>
      pct === undefined ? undefined : Q.dec(pct).times(nav);
    const figures: Figures = { worst: {}, plain: {}, sectorUnknown: false };
    const put = (k: Measure, limit: Q | undefined, w: Q, p: Q): void => {
      if (limit === undefined) return;
      figures.worst[k] = { value: w, limit };
      figures.plain[k] = { value: p, limit };
    };
    put("position", lim(L.max_position_pct), afterW, afterP);
    put("gross", lim(L.max_gross_exposure_pct), gross.plus(afterW), grossPlain.plus(afterP));
    put("net", lim(L.max_net_exposure_pct), netW, netP);
    if (L.max_sector_pct !== undefined) {
      if (inst?.sector === undefined) figures.sectorUnknown = true;
      else put("sector", lim(L.max_sector_pct), sector.plus(afterW), sectorPlain.plus(afterP));
    }
    const ac = inst?.asset_class;
    const classPct = ac === undefined ? undefined : L.max_asset_class_pct?.[ac];
    put("asset_class", lim(classPct), klass.plus(afterW), klassPlain.plus(afterP));

    let expected: Measure | undefined;
    const plainOver: Measure[] = [];
    for (const k of MEASURES) {
      if (k === "sector" && figures.sectorUnknown) {
        expected ??= "sector";
        continue;
      }
      const w = figures.worst[k];
      const p = figures.plain[k];
      if (w && w.value.gt(w.limit)) expected ??= k;
      if (p && p.value.gt(p.limit)) plainOver.push(k);
    }
    return { reducing, expected: reducing ? undefined : expected, plainOver, figures, nav, exact };
  }
}
