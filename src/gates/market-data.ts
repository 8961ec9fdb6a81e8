/**
 * Static-gate checks on reference and market data: the order's share of its instrument's average
 * daily volume (max_adv_pct) and the FX rate of an order priced outside the fund's base currency.
 * Both fail closed: no `adv` while max_adv_pct is set, or no fresh FX rate, is a rejection.
 */
import { type Dec, ZERO, approx, approxSign, canon, pct } from "../decimal/index.js";
import { type Denial, type GateContext, deny } from "./types.js";

/** quantity <= pct × adv (exactly at the limit passes). */
export function checkAdv(
  symbol: string,
  quantity: Dec,
  limitPct: Dec,
  adv: Dec | undefined,
): Denial | undefined {
  if (adv === undefined) {
    return deny("MAX_ADV_PCT_EXCEEDED", `no average daily volume (adv) for ${symbol} in refdata`, {
      symbol,
      quantity: canon(quantity),
      adv: "",
      limit_pct: canon(limitPct),
    });
  }
  // filtered exact (src/decimal/approx.ts): quantity ≤ pct × adv, exactly when not certain
  const q = approx(quantity);
  const p = approx(limitPct);
  const a = approx(adv);
  if (approxSign(q - p * a, Math.abs(q) + Math.abs(p) * Math.abs(a)) < 0) return undefined;
  const limit = limitPct.times(adv);
  if (quantity.lte(limit)) return undefined;
  return deny(
    "MAX_ADV_PCT_EXCEEDED",
    `quantity ${canon(quantity)} exceeds ${pct(limitPct)} of ${symbol}'s adv ${canon(adv)} (${canon(limit)})`,
    { symbol, quantity: canon(quantity), adv: canon(adv), limit_pct: canon(limitPct), limit: canon(limit) },
  );
}

/**
 * The order's currency needs a fresh `<CCY>-<BASE>` mark; and a fund holding anything in a
 * currency whose rate was never seen has no NAV the engine can establish, which only the limits
 * on NAV need: a risk-reducing order (it skips them) still passes, so a fund can cut risk while
 * one currency's feed is down.
 */
export function checkFx(symbol: string, ctx: GateContext): Denial | undefined {
  if (ctx.fxSymbol !== undefined && !ctx.fxFresh) {
    const fm = ctx.state.marks.get(ctx.fxSymbol);
    const age = fm ? String(ctx.now - fm.ts) : "";
    return deny(
      "STALE_MARKET_DATA",
      fm === undefined
        ? `no FX rate ${ctx.fxSymbol} for ${symbol} (priced in ${ctx.currency})`
        : fm.bid.eq(ZERO)
          ? `FX quote ${ctx.fxSymbol} for ${symbol} has no bid: no rate`
          : `FX rate ${ctx.fxSymbol} for ${symbol} is ${age} ms old`,
      { symbol: ctx.fxSymbol, currency: ctx.currency, quote_age_ms: age },
    );
  }
  const unpriced = ctx.fund.agg.unpriced;
  if (unpriced.size > 0 && !ctx.reducing) {
    const [ccy] = unpriced.keys();
    return deny(
      "STALE_MARKET_DATA",
      `the fund holds ${ccy} with no FX rate (none seen, or no bid): NAV unknown`,
      {
        currency: ccy!,
        quote_age_ms: "",
      },
    );
  }
  return undefined;
}
