/** Builds the per-order gate context: prices, notional, mark freshness, risk-reduction. */
import { DEFAULT_BASE_CURRENCY, type Order } from "../contract/schemas.js";
import { type Dec, ONE, ZERO, approx, approxSign } from "../decimal/index.js";
import { atBroker, fxRate, fxSymbol, pendingAtBroker, settle } from "../state/book.js";
import { duplicateKey } from "../state/duplicates.js";
import type { Book, Effective, EngineState, FundState, Mark } from "../state/model.js";
import type { GateContext } from "./types.js";

export const DEFAULT_MAX_QUOTE_AGE_MS = 5000;

/** Fresh: |engine clock − quote timestamp| ≤ maxAge (a quote stamped in the future is as suspect as an old one). */
export function isFresh(
  quoteTs: number | undefined,
  now: number,
  maxAgeMs = DEFAULT_MAX_QUOTE_AGE_MS,
): boolean {
  return quoteTs !== undefined && Math.abs(now - quoteTs) <= maxAgeMs;
}

/**
 * Fresh for pricing an order: within the age, and not superseded by a newer quote the engine
 * refused (refuseQuote(): the market the feed last reported is inconsistent).
 */
export function markFresh(mark: Mark | undefined, now: number, maxAgeMs: number): boolean {
  return mark !== undefined && mark.refused === undefined && isFresh(mark.ts, now, maxAgeMs);
}

/**
 * The price a MARKET or STOP order is valued at: the side it would trade against (ask for a BUY,
 * bid for a SELL). A side at 0 (a one-sided market) is no price to value an order at: a SELL into
 * a 0 bid valued at 0 would add no exposure however large it is, so the order is valued at the
 * mark (the mid; the bid when there is no ask), as the position it makes will be. Never 0.
 */
export function marketPrice(mark: Mark, buy: boolean): Dec {
  const side = buy ? mark.ask : mark.bid;
  return side.gt(ZERO) ? side : mark.mid;
}

/** The quote age the limits accept (`max_quote_age_ms`, default 5000). */
export function maxQuoteAgeMs(limits: Pick<Effective, "max_quote_age_ms">): number {
  return limits.max_quote_age_ms ?? DEFAULT_MAX_QUOTE_AGE_MS;
}

/**
 * The mark of a symbol when it is fresh for these limits at `now`, else undefined: the one notion
 * of "fresh mark" the gates price orders with and the synthetic stops fire on.
 */
export function freshMark(
  state: EngineState,
  symbol: string,
  limits: Pick<Effective, "max_quote_age_ms">,
  now: number,
): Mark | undefined {
  const mark = state.marks.get(symbol);
  return mark && markFresh(mark, now, maxQuoteAgeMs(limits)) ? mark : undefined;
}

/** Quantities of orders about to be decided before this one (previewing several orders in turn). */
export interface PendingAhead {
  buy: Dec;
  sell: Dec;
}

export function buildContext(
  state: EngineState,
  fund: FundState,
  order: Order,
  limits: Effective,
  now: number,
  ahead?: PendingAhead,
): GateContext {
  settle(fund); // the fund's conflated quotes, folded in: the aggregates are exactly as of now
  const instrument = state.instruments.get(order.symbol);
  const mark = state.marks.get(order.symbol);
  const maxAge = maxQuoteAgeMs(limits);
  const fresh = markFresh(mark, now, maxAge); // freshMark(), without a second lookup
  const multiplier = instrument?.multiplier ?? ONE;
  const book = fund.books.get(order.symbol);
  const buy = order.side === "BUY";
  let price = order.limit_price;
  if (order.order_type === "MARKET" || order.order_type === "STOP") {
    price = fresh && mark ? marketPrice(mark, buy) : undefined;
  }
  const base = fund.envelope?.baseCurrency ?? DEFAULT_BASE_CURRENCY;
  const currency = instrument?.currency ?? base;
  let fx: string | undefined;
  let fxFresh = true;
  let notional = price?.times(order.quantity).times(multiplier);
  if (currency !== base) {
    fx = fxSymbol(currency, base);
    const fm = state.marks.get(fx);
    const rate = fxRate(fm);
    fxFresh = rate !== undefined && markFresh(fm, now, maxAge);
    notional = fxFresh && notional !== undefined ? notional.times(rate!) : undefined; // in the base
  }
  const pendBuyQty = ahead ? (book?.pendBuyQty ?? ZERO).plus(ahead.buy) : (book?.pendBuyQty ?? ZERO);
  const pendSellQty = ahead ? (book?.pendSellQty ?? ZERO).plus(ahead.sell) : (book?.pendSellQty ?? ZERO);
  return {
    state,
    fund,
    now,
    book,
    instrument,
    mark,
    fresh,
    multiplier,
    assetClass: order.asset_class ?? instrument?.asset_class ?? book?.assetClassHint,
    price,
    notional,
    reducing: book !== undefined && isReducing(book, order, pendBuyQty, pendSellQty),
    currency,
    fxSymbol: fx,
    fxFresh,
    dupKey: (fund.envelope?.duplicateWindowMs ?? 0) > 0 ? duplicateKey(order) : undefined,
    pendSellQty,
  };
}

/**
 * Risk-reducing: the order brings |position| toward zero without crossing it, counting pending
 * orders on its side (and orders previewed ahead of it: `pendBuyQty`/`pendSellQty`), both for the
 * fund and at the order's broker. A SELL at a broker where the
 * fund holds nothing (its long is at another broker) nets the fund's position to zero on paper but
 * is a short sale where it executes (see the short-side gate): it earns no exemption, and so runs
 * through the position, velocity, drawdown and reconciliation gates like any order.
 */
/**
 * pending + quantity ≤ room (room ≥ 0), a filtered exact comparison (src/decimal/approx.ts): in
 * float when certain, else exactly.
 */
function fitsIn(pending: Dec, quantity: Dec, room: Dec): boolean {
  const p = approx(pending);
  const q = approx(quantity);
  const r = approx(room);
  const s = approxSign(p + q - r, Math.abs(p) + Math.abs(q) + Math.abs(r));
  return s === 0 ? pending.plus(quantity).lte(room) : s < 0;
}

export function isReducing(
  book: Book,
  order: Order,
  pendBuyQty: Dec = book.pendBuyQty,
  pendSellQty: Dec = book.pendSellQty,
): boolean {
  const q = book.pos.qty;
  const atB = atBroker(book.pos.brokers, order.broker);
  if (order.side === "BUY") {
    return (
      q.units < 0n &&
      fitsIn(pendBuyQty, order.quantity, q.abs()) &&
      atB.units < 0n &&
      fitsIn(pendingAtBroker(book.pendBuyByBroker, order.broker), order.quantity, atB.abs())
    );
  }
  return (
    q.units > 0n &&
    fitsIn(pendSellQty, order.quantity, q) &&
    atB.units > 0n &&
    fitsIn(pendingAtBroker(book.pendSellByBroker, order.broker), order.quantity, atB)
  );
}
