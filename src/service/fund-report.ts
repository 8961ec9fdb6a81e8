/**
 * One fund's risk picture for `mts.v1.risk.status` with `{ "fund_id" }` (and `mts-risk status <fund>`):
 * NAV, usage of every exposure limit the envelope sets, P&L against the period baselines, halts,
 * reconciliation lock, synthetic stops, and counts. Pure: reads the state, changes nothing.
 *
 * Exposure rows: `limit` names the envelope field, `used` and `limit_notional` (= limit_pct × NAV, the
 * name the position gate's rejection details use) are money, `used_pct` = used / NAV rounded to 6 dp
 * (null when NAV <= 0):
 * - max_position_pct: the symbol with the largest exposure, plus every other symbol using more than
 *   half of the limit (exposure of a symbol = max(|position + pending buys|, |position − pending sells|),
 *   as the position gate values it);
 * - max_gross_exposure_pct: the fund's gross; max_net_exposure_pct: max(|net long|, |net short|);
 * - max_sector_pct: one row per sector with exposure (`"(unknown)"` for symbols without one);
 * - max_asset_class_pct: one row per limited asset class.
 * A limit that is set but has nothing to report yet gets one row, scope "fund", used "0".
 */
import type { HaltSeverity } from "../contract/codes.js";
import type { PnlPeriod } from "../contract/records.js";
import { type Dec, ZERO, canon, div, max } from "../decimal/index.js";
import { baseCurrency, fxRate, fxSymbol, nav, tradingPnl } from "../state/book.js";
import { iso } from "../time/clock.js";
import type { EngineState, FundState, ReconLock, StopRecord } from "../state/model.js";

export type ExposureLimit =
  | "max_position_pct"
  | "max_gross_exposure_pct"
  | "max_net_exposure_pct"
  | "max_sector_pct"
  | "max_asset_class_pct";

export interface ExposureRow {
  limit: ExposureLimit;
  scope: string;
  used: string;
  limit_pct: string;
  limit_notional: string;
  used_pct: string | null;
}

export interface PnlRow {
  starts_at: string;
  baseline_equity: string;
  pnl: string;
  pnl_pct: string | null;
  halt_pct: string | null;
}

export interface FundReport {
  fund_id: string;
  envelope_id: string;
  nav: string;
  capital: string;
  exposures: ExposureRow[];
  pnl: Record<PnlPeriod, PnlRow | null>;
  halts: { severity: HaltSeverity; since: string; reason: string; by: string; seq: number }[];
  lock: ReconLock | null;
  stops: {
    symbol: string;
    side: string;
    quantity: string;
    stop_price: string;
    arm_seq: number;
    state: string;
  }[];
  positions: number;
  open_reservations: number;
  /** Approved orders still reserving, as max_open_orders counts them. */
  open_orders: number;
  /** The currency of nav, capital, exposures and P&L. */
  base_currency: string;
  /**
   * Exposure (in the base currency, as the gates value it) by the currency instruments are priced
   * in, with the FX rate `<CCY>-<BASE>` used (null for the base itself, or when none was ever seen).
   */
  currencies: CurrencyRow[];
}

export interface CurrencyRow {
  currency: string;
  exposure: string;
  fx_symbol: string | null;
  fx_rate: string | null;
  fx_quote_at: string | null;
}

function currencies(state: EngineState, fund: FundState, base: string): CurrencyRow[] {
  const rows: CurrencyRow[] = [];
  const seen = new Set<string>([...fund.agg.currency.keys(), ...fund.agg.unpriced.keys()]);
  for (const ccy of [...seen].sort()) {
    const fx = ccy === base ? undefined : fxSymbol(ccy, base);
    const m = fx === undefined ? undefined : state.marks.get(fx);
    const rate = fxRate(m);
    rows.push({
      currency: ccy,
      exposure: canon(fund.agg.currency.get(ccy) ?? ZERO),
      fx_symbol: fx ?? null,
      fx_rate: rate ? canon(rate) : null, // none for a quote with no bid
      fx_quote_at: m ? iso(m.ts) : null,
    });
  }
  return rows;
}

const ratio = (a: Dec, b: Dec): string | null => (b.gt(ZERO) ? canon(div(a, b).round(6, 2)) : null);

function exposures(fund: FundState, navValue: Dec): ExposureRow[] {
  const lim = fund.envelope?.envelope;
  if (!lim) return [];
  const rows: ExposureRow[] = [];
  const row = (name: ExposureLimit, scope: string, used: Dec, pct: Dec): void => {
    rows.push({
      limit: name,
      scope,
      used: canon(used),
      limit_pct: canon(pct),
      limit_notional: canon(pct.times(navValue)),
      used_pct: ratio(used, navValue),
    });
  };
  const a = fund.agg;
  if (lim.max_position_pct !== undefined) {
    const pct = lim.max_position_pct;
    const half = pct.times(navValue).div(2);
    // each book's exposure once (derived from its mark when read: see BookValue)
    const symbols = [...fund.books.values()]
      .map((b) => ({ symbol: b.symbol, exposure: b.contrib.exposure }))
      .filter((b) => b.exposure.gt(ZERO))
      .sort((x, y) => y.exposure.cmp(x.exposure) || (x.symbol < y.symbol ? -1 : 1));
    const shown = symbols.filter((b, i) => i === 0 || b.exposure.gt(half));
    for (const b of shown) row("max_position_pct", b.symbol, b.exposure, pct);
    if (shown.length === 0) row("max_position_pct", "fund", ZERO, pct);
  }
  if (lim.max_gross_exposure_pct !== undefined) {
    row("max_gross_exposure_pct", "fund", a.gross, lim.max_gross_exposure_pct);
  }
  if (lim.max_net_exposure_pct !== undefined) {
    row("max_net_exposure_pct", "fund", max(a.netLong.abs(), a.netShort.abs()), lim.max_net_exposure_pct);
  }
  if (lim.max_sector_pct !== undefined) {
    const sectors = [...a.sector].sort(([x], [y]) => (x < y ? -1 : 1));
    for (const [s, used] of sectors)
      row("max_sector_pct", s === "" ? "(unknown)" : s, used, lim.max_sector_pct);
    if (sectors.length === 0) row("max_sector_pct", "fund", ZERO, lim.max_sector_pct);
  }
  const classes = Object.entries(lim.max_asset_class_pct ?? {}).sort(([x], [y]) => (x < y ? -1 : 1));
  for (const [ac, pct] of classes) {
    if (pct !== undefined) row("max_asset_class_pct", ac, a.assetClass.get(ac) ?? ZERO, pct);
  }
  return rows;
}

const HALT_PCT = {
  day: "daily_loss_halt_pct",
  week: "weekly_loss_halt_pct",
  month: "monthly_loss_halt_pct",
} as const;

/** Trading P&L since the period's start (capital changes are neither gains nor losses). */
function pnl(fund: FundState, period: PnlPeriod): PnlRow | null {
  const b = fund.baselines.get(period);
  if (!b) return null;
  const capitalNow = fund.envelope?.envelope.capital ?? ZERO;
  const atStart = b.equity.minus(b.capital ?? capitalNow);
  const p = tradingPnl(fund).minus(atStart);
  const halt = fund.envelope?.envelope[HALT_PCT[period]];
  return {
    starts_at: b.startsAt,
    baseline_equity: canon(b.equity),
    pnl: canon(p),
    pnl_pct: ratio(p, b.equity),
    halt_pct: halt === undefined ? null : canon(halt),
  };
}

/** Stops and open orders by fund, gathered in one pass over the state (for many reports at once). */
export interface FundIndex {
  stops: Map<string, StopRecord[]>;
  open: Map<string, number>;
}

export function indexFunds(state: EngineState, now: number, only?: string): FundIndex {
  const stops = new Map<string, StopRecord[]>();
  const open = new Map<string, number>();
  for (const s of state.stops.values()) {
    if (only !== undefined && s.fund !== only) continue;
    const list = stops.get(s.fund);
    if (list) list.push(s);
    else stops.set(s.fund, [s]);
  }
  for (const o of state.orders.open(only)) {
    if (only !== undefined && o.fund !== only) continue;
    if (!o.terminal && o.reserved.gt(ZERO) && o.expiresAt > now)
      open.set(o.fund, (open.get(o.fund) ?? 0) + 1);
  }
  return { stops, open };
}

/** The fund's report, or undefined when the fund is unknown or has no envelope (no NAV). */
export function fundReport(
  state: EngineState,
  fundId: string,
  now: number,
  index: FundIndex = indexFunds(state, now, fundId),
): FundReport | undefined {
  const fund = state.funds.get(fundId);
  const entry = fund?.envelope;
  const navValue = fund ? nav(fund) : undefined;
  if (!fund || !entry || navValue === undefined) return undefined;
  const stops: FundReport["stops"] = [];
  for (const s of index.stops.get(fundId) ?? []) {
    stops.push({
      symbol: s.symbol,
      side: s.side,
      quantity: canon(s.qty),
      stop_price: canon(s.stopPrice),
      arm_seq: s.armSeq,
      state: s.state,
    });
  }
  stops.sort((x, y) => (x.symbol < y.symbol ? -1 : 1));
  let positions = 0;
  for (const b of fund.books.values()) if (!b.pos.qty.eq(ZERO)) positions++;
  const open = index.open.get(fundId) ?? 0;
  return {
    fund_id: fundId,
    envelope_id: entry.id,
    nav: canon(navValue),
    capital: canon(entry.envelope.capital),
    exposures: exposures(fund, navValue),
    pnl: {
      day: pnl(fund, "day"),
      week: pnl(fund, "week"),
      month: pnl(fund, "month"),
    },
    halts: [...fund.halts.values()].map((h) => ({ ...h })),
    lock: fund.lock ?? null,
    stops,
    positions,
    open_reservations: open,
    open_orders: fund.openOrders,
    base_currency: baseCurrency(fund),
    currencies: currencies(state, fund, baseCurrency(fund)),
  };
}

/** Every fund's report (funds with an envelope), sorted by fund id, from one pass over the state. */
export function fundReports(state: EngineState, now: number): FundReport[] {
  const index = indexFunds(state, now);
  const out: FundReport[] = [];
  for (const id of [...state.funds.keys()].sort()) {
    const r = fundReport(state, id, now, index);
    if (r) out.push(r);
  }
  return out;
}
