/** Books (fund × symbol) and the incremental per-fund aggregates they feed. */
import { DEFAULT_BASE_CURRENCY } from "../contract/schemas.js";
import { type Dec, ONE, ZERO } from "../decimal/index.js";
import {
  type Book,
  type Contribution,
  type EngineState,
  type FundState,
  type Mark,
  NO_CATEGORY,
  category,
  getFund,
} from "./model.js";
import { BookRecord } from "./book-record.js";
import type { QtyByBroker } from "./broker-qty.js";

export function multiplier(state: EngineState, symbol: string): Dec {
  return state.instruments.get(symbol)?.multiplier ?? ONE;
}

export function getBook(state: EngineState, fund: FundState, symbol: string): Book {
  let b = fund.books.get(symbol);
  if (!b) {
    b = new BookRecord(fund, symbol);
    fund.books.set(symbol, b);
    let h = state.holders.get(symbol);
    if (!h) state.holders.set(symbol, (h = []));
    h.push(b); // once: the fund's book in this symbol is new
  }
  return b;
}

export function bookOf(state: EngineState, fundId: string, symbol: string): Book {
  return getBook(state, getFund(state, fundId), symbol);
}

function addTo(map: Map<string, Dec>, k: string | undefined, d: Dec): void {
  const key = k ?? "";
  const next = (map.get(key) ?? ZERO).plus(d);
  if (next.units === 0n) map.delete(key);
  else map.set(key, next);
}

/** A position's or a pending quantity's share at one broker (0 when none). */
export function atBroker(m: QtyByBroker, broker: string): Dec {
  return m.get(broker) ?? ZERO;
}

/**
 * Pending quantity that may sit at `broker`: its own, plus any reservation journaled without a
 * broker (counted at every broker: conservative).
 */
export function pendingAtBroker(m: QtyByBroker, broker: string): Dec {
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

/**
 * The exchange rate an FX mark gives: its mid, or none when the quote has no bid. A currency
 * nobody bids for has no rate: the mid of such a quote (ask / 2) would value every amount in it
 * at half (a bid with no ask, ask 0, is a rate: the mark is then the bid).
 */
export function fxRate(m: Mark | undefined): Dec | undefined {
  return m === undefined || m.bid.eq(ZERO) ? undefined : m.mid;
}

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
    rate = fxRate(state.marks.get(fx));
    if (rate === undefined) {
      rate = ZERO; // no FX rate (none seen, or no bid): valued at 0, and the fund's orders are refused (static gate)
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
  // qty × m × mid is (qty × mid) × m exactly (same units and scale): a later quote needs one product
  const qm = p.qty.eq(ZERO) ? ZERO : m === undefined ? p.qty : p.qty.times(m);
  const mv = p.qty.eq(ZERO) ? ZERO : mark ? qm.times(mark.mid) : times(signedCost);
  const longExt = b.pendBuyValue.eq(ZERO) ? mv : mv.plus(times(b.pendBuyValue));
  const shortExt = b.pendSellValue.eq(ZERO) ? mv : mv.minus(times(b.pendSellValue));
  const la = longExt.abs();
  const sa = shortExt.abs();
  const next = NEXT;
  next.mv = mv;
  next.valCost = times(signedCost);
  next.valRealized = times(p.realized);
  next.valFees = money(p.fees);
  next.longExt = longExt;
  next.shortExt = shortExt;
  next.exposure = la.gte(sa) ? la : sa;
  next.qm = qm;
  next.cat = category(prev.cat, inst?.sector, inst?.asset_class ?? b.assetClassHint, ccy, unpriced);
  b.quote = undefined; // valued at the mark in force: nothing left to fold
  applyContribution(fund, prev, next);
  // no reservation on either side: both extremes are the market value itself (shared above)
  prev.value(
    next,
    mark !== undefined && qm.units !== 0n ? mark : undefined,
    longExt === mv && shortExt === mv,
  );
}

/** A contribution's values (revalue()'s next ones, before they are written into the book). */
class ContributionValues implements Contribution {
  mv = ZERO;
  valCost = ZERO;
  valRealized = ZERO;
  valFees = ZERO;
  longExt = ZERO;
  shortExt = ZERO;
  exposure = ZERO;
  qm = ZERO;
  cat = NO_CATEGORY;
}

/** revalue()'s scratch (it is synchronous and never nested). */
const NEXT = new ContributionValues();

/** revalue(), or later when the state defers revaluation (a rebuild; see EngineState.deferred). */
export function revalueOrDefer(state: EngineState, fund: FundState, b: Book): void {
  if (state.deferred) state.deferred.add(b);
  else revalue(state, fund, b);
}

/**
 * Values every deferred book once, at the marks in force, then folds the pending marks: the
 * contributions and aggregates are then what revaluing at each change would have given (they are
 * exact sums, whatever the order). Revaluation is eager from then on.
 */
export function revalueDeferred(state: EngineState): void {
  const books = state.deferred;
  state.deferred = undefined;
  if (books) {
    for (const b of books) revalue(state, b.owner, b);
  }
  settleAll(state);
}

/** Applies the difference between a book's previous and next contribution to its fund's aggregates. */
function applyContribution(fund: FundState, prev: Contribution, next: Contribution): void {
  const a = fund.agg;
  const delta = (x: Dec, y: Dec): Dec | undefined => (x === y || x.eq(y) ? undefined : x.minus(y));
  let d = delta(next.mv, prev.mv);
  if (d) a.mv = a.mv.plus(d);
  d = delta(next.valCost, prev.valCost);
  if (d) a.cost = a.cost.plus(d);
  d = delta(next.valRealized, prev.valRealized);
  if (d) a.realized = a.realized.plus(d);
  d = delta(next.valFees, prev.valFees);
  if (d) a.fees = a.fees.plus(d);
  d = delta(next.longExt, prev.longExt);
  if (d) a.netLong = a.netLong.plus(d);
  d = delta(next.shortExt, prev.shortExt);
  if (d) a.netShort = a.netShort.plus(d);
  const dExp = delta(next.exposure, prev.exposure);
  if (dExp) a.gross = a.gross.plus(dExp);
  const pc = prev.cat;
  const nc = next.cat;
  if (pc.sector === nc.sector) {
    if (dExp) addTo(a.sector, nc.sector, dExp);
  } else {
    addTo(a.sector, pc.sector, prev.exposure.neg());
    addTo(a.sector, nc.sector, next.exposure);
  }
  if (pc.assetClass === nc.assetClass) {
    if (dExp) addTo(a.assetClass, nc.assetClass, dExp);
  } else {
    addTo(a.assetClass, pc.assetClass, prev.exposure.neg());
    addTo(a.assetClass, nc.assetClass, next.exposure);
  }
  if (pc.currency === nc.currency) {
    if (dExp) addTo(a.currency, nc.currency, dExp);
  } else {
    if (pc.currency !== "") addTo(a.currency, pc.currency, prev.exposure.neg());
    addTo(a.currency, nc.currency, next.exposure);
  }
  if (pc.unpriced !== nc.unpriced || (pc.unpriced && pc.currency !== nc.currency)) {
    if (pc.unpriced) addCount(a.unpriced, pc.currency, -1);
    if (nc.unpriced) addCount(a.unpriced, nc.currency, 1);
  }
}

// zero tests read the units: Dec.eq(ZERO) would rescale a bigint to compare
/** A settle's sums of deltas for one fund, applied to its aggregates once. */
interface FundDelta {
  mv: Dec; // Σ Δmv: also Δ netLong and Δ netShort (both extremes move with the mark)
  gross: Dec; // Σ Δexposure
  sector: KeyedSum;
  assetClass: KeyedSum;
  currency: KeyedSum;
}

/**
 * Sums by key, in two parallel arrays scanned linearly (a fund's books in one settle fall in a few
 * sectors, asset classes and currencies). Not a Map: clearing a Map and filling it again at every
 * settle was the quote path's hottest line in the profile (more than the sums themselves).
 */
interface KeyedSum {
  keys: string[];
  sums: Dec[];
  n: number;
}

const keyedSum = (): KeyedSum => ({ keys: [], sums: [], n: 0 });

function resetSum(acc: KeyedSum): void {
  acc.n = 0;
}

function sumInto(acc: KeyedSum, k: string | undefined, d: Dec): void {
  const key = k ?? "";
  let i = 0;
  while (i < acc.n && acc.keys[i] !== key) i++;
  if (i === acc.n) {
    acc.keys[i] = key;
    acc.sums[i] = d;
    acc.n++;
  } else acc.sums[i] = acc.sums[i]!.plus(d);
}

function applySums(map: Map<string, Dec>, acc: KeyedSum): void {
  for (let i = 0; i < acc.n; i++) {
    const d = acc.sums[i]!;
    if (d.units !== 0n) addTo(map, acc.keys[i], d);
  }
}

/** One accumulator, reused by every settle (settle is synchronous and never nested). */
const ACC: FundDelta = {
  mv: ZERO,
  gross: ZERO,
  sector: keyedSum(),
  assetClass: keyedSum(),
  currency: keyedSum(),
};

/**
 * Folds a new mark into a book valued at an earlier one: its market value becomes qm × mid (the
 * product revalue() forms), and both extremes move by the same Δmv (reservations are valued at
 * their order prices); nothing else the book contributes depends on the mark. The book's
 * contribution is updated in place, its fund's share of the change summed into `acc`. Exact.
 */
function foldMark(b: Book, mark: Mark, acc: FundDelta): void {
  const c = b.contrib;
  if (c.qm.units === 0n) return; // no position: its market value is 0 at any mark
  const was = c.mv; // at the mark it was valued at (or its valued cost)
  const mv = c.qm.times(mark.mid);
  c.markAt(mark);
  const d = mv.minus(was);
  if (d.units === 0n) return;
  const ext = c.ext; // undefined: no reservation on either side, both extremes are mv itself
  let dExp: Dec;
  if (ext === undefined) {
    // a long (short) book that stays long (short) changes its exposure by Δmv (−Δmv)
    dExp =
      was.s === mv.s && was.units !== 0n && mv.units !== 0n
        ? mv.s > 0
          ? d
          : d.neg()
        : mv.abs().minus(was.abs());
  } else {
    ext.longExt = ext.longExt.plus(d);
    ext.shortExt = ext.shortExt.plus(d);
    const la = ext.longExt.abs();
    const sa = ext.shortExt.abs();
    const exposure = la.gte(sa) ? la : sa;
    dExp = exposure.minus(ext.exposure);
    ext.exposure = exposure;
  }
  acc.mv = acc.mv.plus(d);
  if (dExp.units !== 0n) {
    acc.gross = acc.gross.plus(dExp);
    sumInto(acc.sector, c.cat.sector, dExp);
    sumInto(acc.assetClass, c.cat.assetClass, dExp);
    sumInto(acc.currency, c.cat.currency, dExp);
  }
}

/**
 * A new mark of `symbol` (quote conflation): each open book holding it notes the mark, and its
 * fund's aggregates fold it in at the next settle() (a check or worker reading the fund, or the
 * follower once the current burst of messages is in). A burst of quotes for a symbol revalues each
 * holder once, at the last mark; what a reader sees after settle() is exactly what eager
 * revaluation would have given (aggregates are exact sums of the books' contributions).
 */
export function markSymbol(state: EngineState, symbol: string, mark: Mark): void {
  const holders = state.holders.get(symbol);
  if (!holders) return;
  for (let i = 0; i < holders.length; i++) {
    const b = holders[i]!;
    if (b.pos.qty.units === 0n && b.contrib.mv.units === 0n) continue;
    if (b.quote === undefined) {
      const fund = b.owner;
      if (fund.stale.length >= fund.books.size) settle(fund); // revalue() left entries behind: bounded
      fund.stale.push(b);
      state.staleFunds.add(fund);
    }
    b.quote = mark;
  }
}

/**
 * Folds the fund's pending marks into its aggregates (before anything reads them): one product and
 * a few sums per book, the aggregates moved once per fund by the sums of the books' deltas.
 */
export function settle(fund: FundState): void {
  const stale = fund.stale;
  if (stale.length === 0) return;
  const acc = ACC;
  acc.mv = ZERO;
  acc.gross = ZERO;
  resetSum(acc.sector);
  resetSum(acc.assetClass);
  resetSum(acc.currency);
  for (let i = 0; i < stale.length; i++) {
    const b = stale[i]!;
    const q = b.quote;
    if (q === undefined) continue; // revalued since (a fill, a reservation, refdata)
    b.quote = undefined;
    foldMark(b, q, acc);
  }
  stale.length = 0;
  const a = fund.agg;
  if (acc.mv.units !== 0n) {
    a.mv = a.mv.plus(acc.mv);
    a.netLong = a.netLong.plus(acc.mv);
    a.netShort = a.netShort.plus(acc.mv);
  }
  if (acc.gross.units !== 0n) a.gross = a.gross.plus(acc.gross);
  applySums(a.sector, acc.sector);
  applySums(a.assetClass, acc.assetClass);
  applySums(a.currency, acc.currency);
}

/** Folds every pending mark (the follower, once a burst of messages is in). */
export function settleAll(state: EngineState): void {
  if (state.staleFunds.size === 0) return;
  for (const f of state.staleFunds) settle(f);
  state.staleFunds.clear();
}

/** Revalue every book valued through an FX symbol (after its mark changed). */
export function revalueFx(state: EngineState, fx: string): void {
  const books = state.fxHolders.get(fx);
  if (!books) return;
  for (const b of books) revalue(state, b.owner, b);
}

/** Revalue every open book in a symbol (after a mark or refdata change). */
export function revalueSymbol(state: EngineState, symbol: string, onlyOpen: boolean): void {
  const holders = state.holders.get(symbol);
  if (!holders) return;
  for (const b of holders) {
    if (onlyOpen && b.pos.qty.eq(ZERO) && b.contrib.mv.eq(ZERO)) continue;
    revalue(state, b.owner, b);
  }
}

/** Trading P&L since inception: realized + unrealized (at marks) − fees. Capital is not part of it. */
export function tradingPnl(fund: FundState): Dec {
  settle(fund);
  const a = fund.agg;
  return a.realized.plus(a.mv).minus(a.cost).minus(a.fees);
}

/** Net asset value: capital + realized + unrealized (at marks) − fees. */
export function nav(fund: FundState): Dec | undefined {
  const env = fund.envelope;
  if (!env) return undefined;
  return env.envelope.capital.plus(tradingPnl(fund));
}

/** The book's row is written at the next flush (books are never deleted). */
export function touchBook(state: EngineState, b: Book): void {
  state.dirtyBooks.add(b);
}
