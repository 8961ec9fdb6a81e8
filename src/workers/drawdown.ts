/**
 * Drawdown monitor: P&L (realized + unrealized at marks − fees, i.e. NAV) since the start of the
 * UTC day, ISO week and month, against equity at that start (journaled as pnl.baseline when the
 * period begins, or when the fund is first seen mid-period). A loss of at least the envelope's
 * *_loss_halt_pct of that equity publishes one sticky Halt of that severity. Evaluated on every
 * fill and mark change for the affected fund only; baselines roll on a timer.
 */
import type { HaltSeverity } from "../contract/codes.js";
import type { PnlPeriod } from "../contract/records.js";
import { Subjects } from "../contract/subjects.js";
import { type Dec, ZERO, canon, pct } from "../decimal/index.js";
import { nav } from "../state/book.js";
import type { FundState } from "../state/model.js";
import { iso } from "../time/clock.js";
import { PERIODS, periodStart } from "./periods.js";
import type { Change, Worker, WorkerContext } from "./types.js";

const SEVERITY: Record<PnlPeriod, HaltSeverity> = {
  day: "DAILY_LOSS",
  week: "WEEKLY_LOSS",
  month: "MONTHLY_LOSS",
};
const LIMIT = {
  day: "daily_loss_halt_pct",
  week: "weekly_loss_halt_pct",
  month: "monthly_loss_halt_pct",
} as const;

export interface DrawdownWorker extends Worker {
  /** Journals missing baselines and checks the fund; returns the severities it halted. */
  evaluate(fund: FundState): HaltSeverity[];
  evaluateAll(): HaltSeverity[];
}

export function createDrawdownMonitor(ctx: WorkerContext): DrawdownWorker {
  const { state, clock } = ctx;
  const log = ctx.log.child({ module: "drawdown" });
  /** Baselines published and halts published, keyed by fund/period/start, until the stream has them. */
  const baselines = new Map<string, { startsAtMs: number; equity: Dec }>();
  const halted = new Set<string>();

  function baseline(fund: FundState, p: PnlPeriod, start: number, equity: Dec): { equity: Dec } {
    const b = fund.baselines.get(p);
    if (b && b.startsAtMs >= start) return b;
    const k = `${fund.id}|${p}`;
    const pending = baselines.get(k);
    if (pending && pending.startsAtMs >= start) return pending;
    baselines.set(k, { startsAtMs: start, equity });
    const startsAt = iso(start);
    ctx
      .publish(
        Subjects.pnlBaseline(fund.id),
        { fund_id: fund.id, period: p, starts_at: startsAt, equity: canon(equity) },
        `baseline:${fund.id}:${p}:${start}`,
      )
      .catch((err: unknown) => log.error({ err, fund: fund.id, period: p }, "baseline publish failed"));
    return { equity };
  }

  /** Period starts, recomputed only when the UTC day changes. */
  let day = -1;
  let starts: Record<PnlPeriod, number> = { day: 0, week: 0, month: 0 };
  const startsAt = (now: number) => {
    if (now < day || now >= day + 86_400_000) {
      starts = {
        day: periodStart(now, "day"),
        week: periodStart(now, "week"),
        month: periodStart(now, "month"),
      };
      day = starts.day;
    }
    return starts;
  };
  /** The equity at or below which a period halts: baseline × (1 − limit), cached per baseline and limit. */
  const floors = new WeakMap<object, { limit: Dec; floor: Dec }>();
  const floorOf = (base: { equity: Dec }, limit: Dec): Dec => {
    const c = floors.get(base);
    if (c && c.limit === limit) return c.floor;
    const floor = base.equity.minus(limit.times(base.equity));
    floors.set(base, { limit, floor });
    return floor;
  };

  function evaluate(fund: FundState): HaltSeverity[] {
    if (ctx.owns && !ctx.owns(fund.id)) return []; // another engine owns the fund
    const env = fund.envelope;
    const equity = nav(fund);
    if (!env || equity === undefined) return [];
    const now = clock.now();
    const s = startsAt(now);
    const out: HaltSeverity[] = [];
    for (const p of PERIODS) {
      const start = s[p];
      const base = baseline(fund, p, start, equity);
      const limit = env.envelope[LIMIT[p]];
      if (limit === undefined || !base.equity.gt(ZERO)) continue;
      if (equity.gt(floorOf(base, limit))) continue; // loss below the threshold
      const pnl = equity.minus(base.equity);
      const sev = SEVERITY[p];
      const k = `${fund.id}|${sev}|${start}`;
      if (fund.halts.has(sev) || halted.has(k)) continue;
      // a breach the operator resumed does not halt again within the same period
      if (fund.lifted.some((l) => l.severity === sev && Date.parse(l.since) >= start)) continue;
      halted.add(k);
      out.push(sev);
      const loss = pnl.neg().div(base.equity);
      const reason = `${p} loss ${pct(loss)} of equity ${canon(base.equity)} reached the ${pct(limit)} halt`;
      ctx
        .publish(
          Subjects.halt(fund.id),
          { fund_id: fund.id, severity: sev, reason, at: iso(now), by: "drawdown-monitor" },
          `halt:${fund.id}:${sev}:${start}`,
        )
        .catch((err: unknown) => log.error({ err, fund: fund.id, severity: sev }, "halt publish failed"));
      ctx.alerter.alert("breach", fund.id, reason, {
        severity: sev,
        pnl: canon(pnl),
        equity: canon(base.equity),
      });
      log.warn({ fund: fund.id, severity: sev, pnl: canon(pnl) }, "drawdown halt");
    }
    return out;
  }

  /**
   * Quotes come in bursts, each moving several funds: a fund is evaluated once per burst, right
   * after it (next turn of the event loop), not once per quote.
   */
  const due = new Set<FundState>();
  let stopped = false;
  function later(f: FundState): void {
    if (due.size === 0)
      setImmediate(() => {
        const funds = [...due];
        due.clear();
        for (const fund of funds) {
          if (stopped) return;
          try {
            evaluate(fund);
          } catch (err) {
            log.error({ err, fund: fund.id }, "drawdown evaluation failed");
          }
        }
      });
    due.add(f);
  }

  function evaluateAll(): HaltSeverity[] {
    const out: HaltSeverity[] = [];
    for (const f of state.funds.values()) out.push(...evaluate(f));
    return out;
  }

  return {
    name: "drawdown",
    intervalMs: 1000,
    evaluate,
    evaluateAll,
    onReady: () => void evaluateAll(),
    tick: () => evaluateAll(),
    onChange(c: Change) {
      if (c.kind === "fill" || c.kind === "envelope") {
        const f = state.funds.get(c.fund);
        if (f) evaluate(f);
      } else if (c.kind === "quote") {
        for (const f of state.holders.get(c.symbol) ?? []) {
          const b = f.books.get(c.symbol);
          if (b && !b.pos.qty.eq(ZERO)) later(f);
        }
      }
    },
    stop() {
      stopped = true;
      due.clear();
    },
  };
}
