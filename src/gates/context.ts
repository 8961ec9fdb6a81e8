/** Builds the per-order gate context: prices, notional, mark freshness, risk-reduction. */
import { DEFAULT_BASE_CURRENCY, type Order } from "../contract/schemas.js";
import { fxSymbol } from "../state/book.js";
import { duplicateKey } from "../state/duplicates.js";
import { ONE, ZERO } from "../decimal/index.js";
import type { Effective, EngineState, FundState } from "../state/model.js";
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

export function buildContext(
  state: EngineState,
  fund: FundState,
  order: Order,
  limits: Effective,
  now: number,
): GateContext {
  const instrument = state.instruments.get(order.symbol);
  const mark = state.marks.get(order.symbol);
  const maxAge = limits.max_quote_age_ms ?? DEFAULT_MAX_QUOTE_AGE_MS;
  const fresh = isFresh(mark?.ts, now, maxAge);
  const multiplier = instrument?.multiplier ?? ONE;
  const book = fund.books.get(order.symbol);
  const buy = order.side === "BUY";
  let price = order.limit_price;
  if (order.order_type === "MARKET" || order.order_type === "STOP") {
    price = fresh && mark ? (buy ? mark.ask : mark.bid) : undefined;
  }
  const base = fund.envelope?.baseCurrency ?? DEFAULT_BASE_CURRENCY;
  const currency = instrument?.currency ?? base;
  let fx: string | undefined;
  let fxFresh = true;
  let notional = price?.times(order.quantity).times(multiplier);
  if (currency !== base) {
    fx = fxSymbol(currency, base);
    const fm = state.marks.get(fx);
    fxFresh = isFresh(fm?.ts, now, maxAge);
    notional = fxFresh && notional !== undefined ? notional.times(fm!.mid) : undefined; // in the base
  }
  let reducing = false;
  if (book) {
    const q = book.pos.qty;
    if (buy && q.lt(ZERO)) reducing = book.pendBuyQty.plus(order.quantity).lte(q.abs());
    if (!buy && q.gt(ZERO)) reducing = book.pendSellQty.plus(order.quantity).lte(q);
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
    currency,
    fxSymbol: fx,
    fxFresh,
    dupKey: (fund.envelope?.duplicateWindowMs ?? 0) > 0 ? duplicateKey(order) : undefined,
  };
}
