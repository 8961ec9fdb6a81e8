/**
 * The share used of each limit of a fund, from its report (src/service/fund-report.ts): what
 * `riskengine_limit_usage_ratio{fund_id,measure}` and the dashboard's bars show. For display and
 * alerting only (the gates decide with exact decimals): ratio = used / limit, the worst scope of a
 * measure (the largest symbol, sector or asset class); a loss measure is the period's loss against
 * its halt threshold (0 while in profit). A limit of zero with something used is +Inf.
 */
import { type Dec, ZERO, canon, dec } from "../decimal/index.js";
import type { ExposureLimit, FundReport } from "../service/fund-report.js";

export const MEASURE_OF: Record<ExposureLimit, string> = {
  max_position_pct: "position",
  max_gross_exposure_pct: "gross",
  max_net_exposure_pct: "net",
  max_sector_pct: "sector",
  max_asset_class_pct: "asset_class",
};

export const LOSS_MEASURES = { day: "daily_loss", week: "weekly_loss", month: "monthly_loss" } as const;

export interface Usage {
  measure: string;
  /** The worst scope: a symbol, sector, asset class, or "fund". */
  scope: string;
  used: string;
  limit: string;
  ratio: number;
}

function ratio(used: Dec, limit: Dec): number {
  if (limit.gt(ZERO)) return Number(used.div(limit, 6).toString());
  return used.gt(ZERO) ? Number.POSITIVE_INFINITY : 0;
}

export function usageOf(r: FundReport): Usage[] {
  const best = new Map<string, Usage>();
  for (const row of r.exposures) {
    const measure = MEASURE_OF[row.limit];
    const u: Usage = {
      measure,
      scope: row.scope,
      used: row.used,
      limit: row.limit_notional,
      ratio: ratio(dec(row.used), dec(row.limit_notional)),
    };
    const prev = best.get(measure);
    if (!prev || u.ratio > prev.ratio) best.set(measure, u);
  }
  for (const period of ["day", "week", "month"] as const) {
    const p = r.pnl[period];
    if (!p || p.halt_pct === null) continue;
    const pnl = dec(p.pnl);
    const loss = pnl.lt(ZERO) ? pnl.neg() : ZERO;
    const limit = dec(p.halt_pct).times(dec(p.baseline_equity));
    best.set(LOSS_MEASURES[period], {
      measure: LOSS_MEASURES[period],
      scope: "fund",
      used: canon(loss),
      limit: canon(limit),
      ratio: ratio(loss, limit),
    });
  }
  return [...best.values()];
}

/** The envelope's `warn_at_pct` (a fraction), or 0.8 when it has none. */
export function warnAt(raw: unknown): number {
  const v = (raw as { warn_at_pct?: unknown } | null)?.warn_at_pct;
  const n = typeof v === "string" || typeof v === "number" ? Number(v) : NaN;
  return Number.isFinite(n) && n > 0 ? n : 0.8;
}
