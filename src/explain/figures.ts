/**
 * Each gate's figures for an order against a (replayed) state, before the order is applied: the
 * price and notional, the mark and its age, the resulting exposures against their limits (valued
 * as the position gate values them: the position at its mark plus the open orders on the order's
 * side plus this order), P&L against the halt thresholds, halts and the reconciliation lock.
 * Pure: reads the state, changes nothing.
 */
import type { Order } from "../contract/schemas.js";
import { type Dec, ZERO, canon, max } from "../decimal/index.js";
import { DEFAULT_MAX_QUOTE_AGE_MS, buildContext, checkSchema, worstAfter } from "../gates/index.js";
import { fundReport } from "../service/fund-report.js";
import { type EngineState, effectiveLimits, nav } from "../state/index.js";

export interface ExposureFigure {
  limit: string;
  scope: string;
  current: string;
  resulting: string;
  limit_notional: string;
  within: boolean;
}

export interface Figures {
  fund_id: string;
  envelope_id: string | null;
  nav: string | null;
  order: {
    price: string | null;
    notional: string | null;
    multiplier: string;
    asset_class: string | null;
    sector: string | null;
    reducing: boolean;
  } | null;
  mark: {
    bid: string;
    ask: string;
    timestamp: string;
    age_ms: number;
    max_age_ms: number;
    fresh: boolean;
  } | null;
  exposures: ExposureFigure[];
  pnl: {
    period: string;
    pnl: string;
    baseline_equity: string;
    pnl_pct: string | null;
    halt_pct: string | null;
  }[];
  halts: { severity: string; since: string }[];
  lock: { reason: string } | null;
}

export function figuresOf(state: EngineState, raw: unknown, at: number): Figures | undefined {
  const s = checkSchema(raw);
  if (!s.ok) return undefined;
  const order: Order = s.order;
  const fund = state.funds.get(order.fund_id);
  const entry = fund?.envelope;
  const base: Figures = {
    fund_id: order.fund_id,
    envelope_id: entry?.id ?? null,
    nav: null,
    order: null,
    mark: null,
    exposures: [],
    pnl: [],
    halts: [],
    lock: null,
  };
  if (!fund || !entry) return base;
  const limits = effectiveLimits(entry, order.strategy_id);
  const ctx = buildContext(state, fund, order, limits, at);
  const navValue = nav(fund);
  base.nav = navValue ? canon(navValue) : null;
  base.order = {
    price: ctx.price ? canon(ctx.price) : null,
    notional: ctx.notional ? canon(ctx.notional) : null,
    multiplier: canon(ctx.multiplier),
    asset_class: ctx.assetClass ?? null,
    sector: ctx.instrument?.sector ?? null,
    reducing: ctx.reducing,
  };
  if (ctx.mark) {
    base.mark = {
      bid: canon(ctx.mark.bid),
      ask: canon(ctx.mark.ask),
      timestamp: new Date(ctx.mark.ts).toISOString(),
      age_ms: at - ctx.mark.ts,
      max_age_ms: limits.max_quote_age_ms ?? DEFAULT_MAX_QUOTE_AGE_MS,
      fresh: ctx.fresh,
    };
  }
  if (navValue !== undefined && ctx.notional !== undefined) {
    const buy = order.side === "BUY";
    const o = buy ? ctx.notional : ctx.notional.neg();
    const c = ctx.book?.contrib;
    const longExt = c?.longExt ?? ZERO;
    const shortExt = c?.shortExt ?? ZERO;
    const exposure = c?.exposure ?? ZERO;
    const after = worstAfter(longExt, shortExt, o, buy); // as the position gate values it
    const delta = after.minus(exposure);
    const a = fund.agg;
    const row = (limit: string, scope: string, current: Dec, resulting: Dec, pct: Dec | undefined) => {
      if (pct === undefined) return;
      const lim = pct.times(navValue);
      base.exposures.push({
        limit,
        scope,
        current: canon(current),
        resulting: canon(resulting),
        limit_notional: canon(lim),
        within: resulting.lte(lim),
      });
    };
    row("max_position_pct", order.symbol, max(longExt.abs(), shortExt.abs()), after, limits.max_position_pct);
    row("max_gross_exposure_pct", "fund", a.gross, a.gross.plus(delta), limits.max_gross_exposure_pct);
    row(
      "max_net_exposure_pct",
      "fund",
      max(a.netLong.abs(), a.netShort.abs()),
      worstAfter(a.netLong, a.netShort, o, buy),
      limits.max_net_exposure_pct,
    );
    const sector = ctx.instrument?.sector;
    if (sector !== undefined) {
      const cur = a.sector.get(sector) ?? ZERO;
      row("max_sector_pct", sector, cur, cur.plus(delta), limits.max_sector_pct);
    }
    const ac = ctx.assetClass;
    const classPct = ac
      ? (limits.max_asset_class_pct as Record<string, Dec | undefined> | undefined)?.[ac]
      : undefined;
    if (ac !== undefined) {
      const cur = a.assetClass.get(ac) ?? ZERO;
      row("max_asset_class_pct", ac, cur, cur.plus(c?.cat.assetClass === ac ? delta : after), classPct);
    }
  }
  const report = fundReport(state, order.fund_id, at);
  if (report) {
    for (const period of ["day", "week", "month"] as const) {
      const p = report.pnl[period];
      if (p)
        base.pnl.push({
          period,
          pnl: p.pnl,
          baseline_equity: p.baseline_equity,
          pnl_pct: p.pnl_pct,
          halt_pct: p.halt_pct,
        });
    }
  }
  base.halts = [...fund.halts.values()].map((h) => ({ severity: h.severity, since: h.since }));
  base.lock = fund.lock ? { reason: fund.lock.reason } : null;
  return base;
}
