/**
 * The benchmark's book: funds with envelopes, instruments, quotes, opening fills and the order mix.
 * The same definitions feed the engine over the bus and the in-process benchmarks, so both measure
 * the same work. About 10 % of orders are rejected by design: every 20th order is priced outside
 * the price collar, and every 20th (offset 10) exceeds max_order_qty and max_order_notional.
 */

export const FUNDS = 50;
export const SYMBOLS = 1000;
export const BROKER = "paper";
export const BOOK_TIME = "2026-11-20T14:00:00.000Z";

export const fundId = (f: number): string => `f${f}`;
export const symbolId = (s: number): string => `S${s}`;

/** Symbol index of fund f's k-th holding: funds hold overlapping slices of the universe. */
export const holding = (f: number, k: number, symbols = SYMBOLS): number => (f * 37 + k) % symbols;

export function envelope(f: number): Record<string, unknown> {
  return {
    fund_id: fundId(f),
    version: 1,
    capital: "100000000",
    allowed_brokers: [BROKER],
    allowed_order_types: ["MARKET", "LIMIT"],
    allowed_asset_classes: ["equity"],
    max_order_notional: "1000000",
    max_order_qty: "100000",
    max_position_pct: "0.05",
    max_gross_exposure_pct: "3",
    max_net_exposure_pct: "2",
    max_sector_pct: "0.5",
    max_asset_class_pct: { equity: "3" },
    enable_shorting: true,
    max_borrow_fee_bps: "100",
    price_collar_pct: "0.05",
    restricted_symbols: ["RSTR1", "RSTR2"],
    daily_loss_halt_pct: "0.03",
    weekly_loss_halt_pct: "0.06",
    monthly_loss_halt_pct: "0.1",
    velocity: { window_s: 1, max_orders: 50_000, max_notional: "100000000000" },
  };
}

/**
 * Issue 13's checks, switched on for `--new-checks` runs without changing any outcome: limits far
 * from binding, a duplicate window (1 ms) shorter than the gap between two equal orders of a fund, and a
 * quarter of the instruments priced in EUR at EUR-USD 1 (same figures, through the FX path).
 */
export const NEW_CHECKS = {
  max_open_orders: 1_000_000_000,
  duplicate_window_ms: 1,
  max_adv_pct: "1",
  require_fresh_mark: true,
  warn_at_pct: "0.8",
} as const;
export const FX_SYMBOL = "EUR-USD";
export function fxQuote(timestamp: string): Record<string, unknown> {
  return { symbol: FX_SYMBOL, bid: "1", ask: "1", timestamp };
}
export function instrumentWithChecks(s: number): Record<string, unknown> {
  return { ...instrument(s), adv: "1000000000", ...(s % 4 === 0 ? { currency: "EUR" } : {}) };
}

export function instrument(s: number): Record<string, unknown> {
  return {
    symbol: symbolId(s),
    asset_class: "equity",
    sector: `sec${s % 11}`,
    shortable: true,
    borrow_fee_bps: "10",
  };
}

/** A quote around 100 (mid within ±0.02), stamped `timestamp`. */
export function quote(s: number, timestamp: string, tick = 0): Record<string, unknown> {
  const bid = 99.98 + ((s + tick) % 3) * 0.01;
  return { symbol: symbolId(s), bid: bid.toFixed(2), ask: (bid + 0.02).toFixed(2), timestamp };
}

export function fill(
  n: number,
  f: number,
  s: number,
  side: "BUY" | "SELL",
  quantity = "10",
  price = "100",
  timestamp = BOOK_TIME,
): Record<string, unknown> {
  return {
    fill_id: `x${n}`,
    order_id: `xo${n}`,
    fund_id: fundId(f),
    broker: BROKER,
    symbol: symbolId(s),
    side,
    quantity,
    price,
    fees: "0",
    timestamp,
  };
}

/** The i-th opening fill of a book of `positions` positions spread over FUNDS funds. */
export function openingFill(i: number, symbols = SYMBOLS, funds = FUNDS): Record<string, unknown> {
  const f = i % funds;
  return fill(i, f, holding(f, Math.floor(i / funds), symbols), "BUY");
}

/**
 * The i-th order of a run (ids prefixed so runs never collide): half on symbols the fund holds,
 * half on others; buys and sells; 10 % rejected by the collar or the size limits.
 */
export function order(prefix: string, i: number, funds = FUNDS, symbols = SYMBOLS): Record<string, unknown> {
  const f = i % funds;
  const s = holding(f, (i * 7) % 400, symbols);
  const buy = i % 3 !== 0;
  const id = `${prefix}-${i}`;
  const o: Record<string, unknown> = {
    order_id: id,
    idempotency_key: id,
    fund_id: fundId(f),
    broker: BROKER,
    symbol: symbolId(s),
    asset_class: "equity",
    side: buy ? "BUY" : "SELL",
    order_type: "LIMIT",
    quantity: String(1 + (i % 5)),
    limit_price: buy ? "100.01" : "99.99",
  };
  if (i % 20 === 0) o.limit_price = "200"; // outside the 5 % collar
  if (i % 20 === 10) o.quantity = "200000"; // over max_order_qty and max_order_notional
  return o;
}

/**
 * Orders for fund f0 on its symbols 0..9 (the scale benchmark): the same orders whether the fund
 * holds 10 positions or 100 000, so only the fund's size differs.
 */
export function fundOrder(prefix: string, i: number): Record<string, unknown> {
  const o = order(prefix, i, 1, SYMBOLS);
  o.symbol = symbolId(i % 10);
  return o;
}
