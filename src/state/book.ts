/** Books (fund × symbol) and the incremental per-fund aggregates they feed. */
import { DEFAULT_BASE_CURRENCY } from "../contract/schemas.js";
import { type Dec, ONE, ZERO } from "../decimal/index.js";
import {
  type Book,
  type Contribution,
  type EngineState,
  type FundState,
  emptyContribution,
  getFund,
  key2,
  touch,
} from "./model.js";
import { NO_PENDING } from "./model.js"; // kept apart from the list above (a small diff to merge)

export function multiplier(state: EngineState, symbol: string): Dec {
  return state.instruments.get(symbol)?.multiplier ?? ONE;
}

export function getBook(state: EngineState, fund: FundState, symbol: string): Book {
  let b = fund.books.get(symbol);
  if (!b) {
    b = {
      fund: fund.id,
      symbol,
      pos: { qty: ZERO, cost: ZERO, realized: ZERO, fees: ZERO, brokers: new Map() },
      pendBuyQty: ZERO,
      pendBuyValue: ZERO,
      pendSellQty: ZERO,
      pendSellValue: ZERO,
      pendBuyByBroker: NO_PENDING,
      pendSellByBroker: NO_PENDING,
      assetClassHint: undefined,
      contrib: emptyContribution(),
      fx: undefined,
    };
    fund.books.set(symbol, b);
    let h = state.holders.get(symbol);
    if (!h) state.holders.set(symbol, (h = new Set()));
    h.add(fund);
  }
  return b;
}

export function bookOf(state: EngineState, fundId: string, symbol: string): Book {
  return getBook(state, getFund(state, fundId), symbol);
}

function addTo(map: Map<string, Dec>, k: string | undefined, d: Dec): void {
  const key = k ?? "";
  const next = (map.get(key) ?? ZERO).plus(d);
  if (next.eq(ZERO)) map.delete(key);
  else map.set(key, next);
}

/** A position's or a pending quantity's share at one broker (0 when none). */
export function atBroker(m: Map<string, Dec>, broker: string): Dec {
  return m.get(broker) ?? ZERO;
}

/**
 * Pending quantity that may sit at `broker`: its own, plus any reservation journaled without a
 * broker (counted at every broker: conservative).
 */
export function pendingAtBroker(m: Map<string, Dec>, broker: string): Dec {
  const own = atBroker(m, broker);
  const unknown = m.get("");
  return unknown === undefined || broker === "" ? own : own.plus(unknown);
}

/** The fund's base currency: money, NAV and limits are in it. */
export function baseCurrency(fund: FundState): string {
  return fund.envelope?.baseCurrency ?? DEFAULT_BASE_CURRENCY;
}

/** The FX symbol a price in `ccy` converts to `base` through (EUR-USD: USD per EUR). */
export const fxSymbol = (ccy: string, base: string): string => `${ccy}-${base}`;

/** Keeps the FX symbol -> books index in line with the book's currency. */
function linkFx(state: EngineState, b: Book, fx: string | undefined): void {
  if (b.fx === fx) return;
  if (b.fx !== undefined) {
    const set = state.fxHolders.get(b.fx);
    set?.delete(b);
    if (set?.size === 0) state.fxHolders.delete(b.fx);
  }
  if (fx !== undefined) {
    let set = state.fxHolders.get(fx);
    if (!set) state.fxHolders.set(fx, (set = new Set()));
    set.add(b);
  }
  b.fx = fx;
}

function addCount(map: Map<string, number>, k: string, d: number): void {
  const next = (map.get(k) ?? 0) + d;
  if (next === 0) map.delete(k);
  else map.set(k, next);
}

/**
 * Recompute what a book contributes to its fund and apply the difference to the aggregates.
 * The book (position, cost, realized, fees, reservations) is in the instrument's currency; what it
 * contributes is in the fund's base currency, at the FX mark `<CCY>-<BASE>` (mid) in force.
 */
export function revalue(state: EngineState, fund: FundState, b: Book): void {
  const inst = state.instruments.get(b.symbol);
  const base = baseCurrency(fund);
  const ccy = inst?.currency ?? base;
  const p = b.pos;
  let rate: Dec | undefined; // undefined: the base currency itself
  let unpriced = false;
  if (ccy !== base) {
    const fx = fxSymbol(ccy, base);
    linkFx(state, b, fx);
    const fm = state.marks.get(fx);
    if (fm) rate = fm.mid;
    else {
      rate = ZERO; // no FX rate ever seen: valued at 0, and the fund's orders are refused (static gate)
      unpriced = !(
        p.qty.eq(ZERO) &&
        p.realized.eq(ZERO) &&
        p.fees.eq(ZERO) &&
        b.pendBuyQty.eq(ZERO) &&
        b.pendSellQty.eq(ZERO)
      );
    }
  } else if (b.fx !== undefined) linkFx(state, b, undefined);
  const m0 = inst?.multiplier;
  const m = m0 === undefined || m0.eq(ONE) ? rate : rate === undefined ? m0 : m0.times(rate);
  const times = (x: Dec): Dec => (m === undefined || x.eq(ZERO) ? x : x.times(m));
  const money = (x: Dec): Dec => (rate === undefined || x.eq(ZERO) ? x : x.times(rate));
  const prev = b.contrib;
  const signedCost = p.qty.s < 0 ? p.cost.neg() : p.cost;
  const mark = state.marks.get(b.symbol);
  const mv = p.qty.eq(ZERO) ? ZERO : times(mark ? p.qty.times(mark.mid) : signedCost);
  const longExt = b.pendBuyValue.eq(ZERO) ? mv : mv.plus(times(b.pendBuyValue));
  const shortExt = b.pendSellValue.eq(ZERO) ? mv : mv.minus(times(b.pendSellValue));
  const la = longExt.abs();
  const sa = shortExt.abs();
  const next: Contribution = {
    mv,
    cost: times(signedCost),
    realized: times(p.realized),
    fees: money(p.fees),
    longExt,
    shortExt,
    exposure: la.gte(sa) ? la : sa,
    sector: inst?.sector,
    assetClass: inst?.asset_class ?? b.assetClassHint,
    currency: ccy,
    unpriced,
  };
  const a = fund.agg;
  const delta = (x: Dec, y: Dec): Dec | undefined => (x === y || x.eq(y) ? undefined : x.minus(y));
  let d = delta(next.mv, prev.mv);
  if (d) a.mv = a.mv.plus(d);
  d = delta(next.cost, prev.cost);
  if (d) a.cost = a.cost.plus(d);
  d = delta(next.realized, prev.realized);
  if (d) a.realized = a.realized.plus(d);
  d = delta(next.fees, prev.fees);
  if (d) a.fees = a.fees.plus(d);
  d = delta(next.longExt, prev.longExt);
  if (d) a.netLong = a.netLong.plus(d);
  d = delta(next.shortExt, prev.shortExt);
  if (d) a.netShort = a.netShort.plus(d);
  const dExp = delta(next.exposure, prev.exposure);
  if (dExp) a.gross = a.gross.plus(dExp);
  if (prev.sector === next.sector) {
    if (dExp) addTo(a.sector, next.sector, dExp);
  } else {
    addTo(a.sector, prev.sector, prev.exposure.neg());
    addTo(a.sector, next.sector, next.exposure);
  }
  if (prev.assetClass === next.assetClass) {
    if (dExp) addTo(a.assetClass, next.assetClass, dExp);
  } else {
    addTo(a.assetClass, prev.assetClass, prev.exposure.neg());
    addTo(a.assetClass, next.assetClass, next.exposure);
  }
  if (prev.currency === next.currency) {
    if (dExp) addTo(a.currency, next.currency, dExp);
  } else {
    if (prev.currency !== "") addTo(a.currency, prev.currency, prev.exposure.neg());
    addTo(a.currency, next.currency, next.exposure);
  }
  if (prev.unpriced !== next.unpriced || (prev.unpriced && prev.currency !== next.currency)) {
    if (prev.unpriced) addCount(a.unpriced, prev.currency, -1);
    if (next.unpriced) addCount(a.unpriced, next.currency, 1);
  }
  b.contrib = next;
}

/** Revalue every book valued through an FX symbol (after its mark changed). */
export function revalueFx(state: EngineState, fx: string): void {
  const books = state.fxHolders.get(fx);
  if (!books) return;
  for (const b of books) {
    const fund = state.funds.get(b.fund);
    if (fund) revalue(state, fund, b);
  }
}

/** Revalue every open book in a symbol (after a mark or refdata change). */
export function revalueSymbol(state: EngineState, symbol: string, onlyOpen: boolean): void {
  const holders = state.holders.get(symbol);
  if (!holders) return;
  for (const fund of holders) {
    const b = fund.books.get(symbol);
    if (!b) continue;
    if (onlyOpen && b.pos.qty.eq(ZERO) && b.contrib.mv.eq(ZERO)) continue;
    revalue(state, fund, b);
  }
}

/** Trading P&L since inception: realized + unrealized (at marks) − fees. Capital is not part of it. */
export function tradingPnl(fund: FundState): Dec {
  const a = fund.agg;
  return a.realized.plus(a.mv).minus(a.cost).minus(a.fees);
}

/** Net asset value: capital + realized + unrealized (at marks) − fees. */
export function nav(fund: FundState): Dec | undefined {
  const env = fund.envelope;
  if (!env) return undefined;
  return env.envelope.capital.plus(tradingPnl(fund));
}

export function touchBook(state: EngineState, b: Book): void {
  touch(state, "book", key2(b.fund, b.symbol));
}
