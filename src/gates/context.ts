/** Builds the per-order gate context: prices, notional, mark freshness, risk-reduction. */
import type { Order } from "../contract/schemas.js";
import { type Dec, ONE, ZERO } from "../decimal/index.js";
import type { Effective, EngineState, FundState, Mark } from "../state/model.js";
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
  return mark && isFresh(mark.ts, now, maxQuoteAgeMs(limits)) ? mark : undefined;
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
  const instrument = state.instruments.get(order.symbol);
  const mark = state.marks.get(order.symbol);
  const fresh = freshMark(state, order.symbol, limits, now) !== undefined;
  const multiplier = instrument?.multiplier ?? ONE;
  const book = fund.books.get(order.symbol);
  const buy = order.side === "BUY";
  let price = order.limit_price;
  if (order.order_type === "MARKET" || order.order_type === "STOP") {
    price = fresh && mark ? (buy ? mark.ask : mark.bid) : undefined;
  }
  const notional = price?.times(order.quantity).times(multiplier);
  const pendBuyQty = ahead ? (book?.pendBuyQty ?? ZERO).plus(ahead.buy) : (book?.pendBuyQty ?? ZERO);
  const pendSellQty = ahead ? (book?.pendSellQty ?? ZERO).plus(ahead.sell) : (book?.pendSellQty ?? ZERO);
  let reducing = false;
  if (book) {
    const q = book.pos.qty;
    if (buy && q.lt(ZERO)) reducing = pendBuyQty.plus(order.quantity).lte(q.abs());
    if (!buy && q.gt(ZERO)) reducing = pendSellQty.plus(order.quantity).lte(q);
  }
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
    reducing,
    pendSellQty,
  };
}
