/**
 * The dashboard's data (GET /api/dashboard): the engine (readiness, check latency p50/p99 over
 * the last minute, stream lag) and one row per fund, built from the fund reports that
 * `mts-risk status <fund>` prints (src/service/fund-report.ts) plus the usage ratios, the
 * envelope's warn_at_pct, recent rejections by code and the last reconciliation drift. No
 * secrets: nothing of the configuration is included.
 */
import type { Engine } from "../engine/engine.js";
import { type Usage, usageOf, warnAt } from "../obs/usage.js";
import type { FundReport } from "../service/fund-report.js";
import { type Clock, iso } from "../time/clock.js";

/** Rejections shown per fund: those of the last 15 minutes. */
export const RECENT_MS = 15 * 60_000;

export interface DashboardFund {
  report: FundReport;
  usage: Usage[];
  /** The worst usage ratio of the fund (sorting). */
  worst: number;
  warn_at: number;
  rejections: { by_code: Record<string, number>; last: { at: string; order_id: string; code: string }[] };
  drift: { at: string; symbols: string[]; brokers: string[]; action: string; clean: boolean } | null;
}

export interface DashboardData {
  at: string;
  engine: {
    instance: string;
    ready: boolean;
    reason?: string | undefined;
    uptime_s: number;
    latency_1m: { count: number; p50_ms: number | null; p99_ms: number | null };
    lag: Record<string, number>;
    funds: number;
  };
  funds: DashboardFund[];
}

const ms = (s: number | null | undefined): number | null =>
  s === null || s === undefined ? null : Math.round(s * 1e6) / 1e3;

export function dashboardData(engine: Engine, clock: Clock, startedAt: number): DashboardData {
  const now = clock.now();
  const r = engine.readiness();
  const q = engine.metrics.latency([0.5, 0.99]);
  const lag: Record<string, number> = {};
  for (const [s, n] of engine.metrics.lag()) lag[s] = n;
  const funds = engine.metrics.reports().map((report): DashboardFund => {
    const usage = usageOf(report);
    const recent = engine.activity.rejections(report.fund_id, now - RECENT_MS);
    const byCode = engine.activity.countsSince(report.fund_id, now - RECENT_MS);
    const d = engine.activity.lastDrift(report.fund_id);
    return {
      report,
      usage,
      worst: usage.reduce((m, u) => Math.max(m, u.ratio), 0),
      warn_at: warnAt(engine.observe.envelope(report.fund_id)),
      rejections: {
        by_code: byCode,
        last: recent.slice(0, 5).map((e) => ({ at: iso(e.at_ms), order_id: e.order_id, code: e.code })),
      },
      drift: d
        ? { at: d.at, symbols: d.symbols, brokers: d.brokers, action: d.action, clean: d.clean }
        : null,
    };
  });
  return {
    at: iso(now),
    engine: {
      instance: engine.instance,
      ready: r.ready,
      reason: r.reason,
      uptime_s: Math.max(0, Math.round((now - startedAt) / 1000)),
      latency_1m: { count: q.count, p50_ms: ms(q.values[0]), p99_ms: ms(q.values[1]) },
      lag,
      funds: funds.length,
    },
    funds,
  };
}
