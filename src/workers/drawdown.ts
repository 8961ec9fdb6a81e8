/**
 * Drawdown monitor: trading P&L (realized + unrealized at marks − fees; capital changes are neither
 * gains nor losses) since the start of the UTC day, ISO week and month, against equity at that
 * start. A period's baseline (equity and the capital it included) is journaled as pnl.baseline when
 * the period begins, taken from the state *before* the first event after the boundary (see
 * `beforeApply`), or when the fund is first seen mid-period. A loss of at least the envelope's
 * *_loss_halt_pct of that equity publishes one sticky Halt of that severity. Evaluated on every
 * fill and mark change for the affected fund only; baselines also roll on a timer.
 */
import { HALT_PRECEDENCE, type HaltSeverity } from "../contract/codes.js";
import type { HaltSeen } from "../gates/drawdown.js";
import type { PnlPeriod } from "../contract/records.js";
import { type Dec, ZERO, canon, dec, pct } from "../decimal/index.js";
import { nav, tradingPnl } from "../state/book.js";
import type { Baseline, FundState } from "../state/model.js";
import { iso } from "../time/clock.js";
import { PERIODS, periodStarts } from "./periods.js";
import { type Change, type Worker, type WorkerContext, factsOf } from "./types.js";
import { FactIds, FactKeys } from "../facts/emitters.js";

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

type Base = Pick<Baseline, "startsAtMs" | "equity" | "capital">;

export interface DrawdownWorker extends Worker {
  /** Journals missing baselines and checks the fund; returns the severities it halted. */
  evaluate(fund: FundState): HaltSeverity[];
  evaluateAll(): HaltSeverity[];
  /**
   * Called before the engine applies any stream message while live: on the first one after a
   * period boundary, every fund's baseline is taken from the state as of the boundary (nothing has
   * changed since), so a loss in the first instant of a period is a loss of that period.
   */
  beforeApply(): void;
  /**
   * The most severe halt this monitor decided for the fund and has not read back (in flight, or
   * kept after a failed publish and sent again each tick): the check's drawdown gate counts it.
   */
  inFlight(fund: string): HaltSeen | undefined;
  /**
   * Evaluates the fund now if a quote left its evaluation for the end of the burst (`later`): the
   * check's drawdown gate calls it first, so a mark that breaches a loss limit halts the fund
   * before any check reads it, not one turn of the event loop after.
   */
  evaluateDue(fund: string): void;
}

export function createDrawdownMonitor(ctx: WorkerContext): DrawdownWorker {
  const { state, clock } = ctx;
  const log = ctx.log.child({ module: "drawdown" });
  const facts = factsOf(ctx);
  /** A baseline fact in flight, as the worker uses it (parsed once per fact). */
  const parsed = new WeakMap<object, Base>();
  function pendingBaseline(fund: string, p: PnlPeriod): Base | undefined {
    if (!facts.tracking()) return undefined;
    const f = facts.latest("baseline", FactKeys.baseline(fund, p));
    if (!f) return undefined; // a failed publish is kept with its body: `retry` sends it again
    let b = parsed.get(f.body);
    if (!b) {
      b = {
        startsAtMs: Date.parse(f.body.starts_at),
        equity: dec(f.body.equity),
        capital: dec(f.body.capital!),
      };
      parsed.set(f.body, b);
    }
    return b;
  }

  /**
   * The fund's baseline for the period starting at `start`: the folded one, else the one this
   * engine published and has not read back yet; journaled from its state now if neither.
   */
  function baseline(fund: FundState, p: PnlPeriod, start: number, equity: Dec, capital: Dec): Base {
    const b = fund.baselines.get(p);
    if (b && b.startsAtMs >= start) return b;
    const pending = pendingBaseline(fund.id, p);
    if (pending && pending.startsAtMs >= start) return pending;
    const startsAt = iso(start);
    facts
      .baseline(
        { fund_id: fund.id, period: p, starts_at: startsAt, equity: canon(equity), capital: canon(capital) },
        FactIds.baseline(fund.id, p, start),
      )
      .catch((err: unknown) => log.error({ err, fund: fund.id, period: p }, "baseline publish failed"));
    return pendingBaseline(fund.id, p) ?? { startsAtMs: start, equity, capital };
  }

  /**
   * A halt of this severity for the period starting at `start` published and not read back yet
   * (or kept after a failed publish: `retry` sends it again as it was decided and alerted).
   */
  function haltInFlight(fund: string, sev: HaltSeverity, start: number): boolean {
    if (!facts.tracking()) return false;
    const f = facts.latest("halt", FactKeys.halt(fund, sev));
    return f !== undefined && f.msgId === FactIds.halt(fund, sev, start);
  }

  /** Loss severities, most severe first (HALT_PRECEDENCE order). */
  const LOSS_FIRST = HALT_PRECEDENCE.filter((s) => (Object.values(SEVERITY) as string[]).includes(s));
  function inFlight(fund: string): HaltSeen | undefined {
    if (!facts.tracking()) return undefined;
    for (const sev of LOSS_FIRST) {
      const f = facts.latest("halt", FactKeys.halt(fund, sev));
      if (f) return { severity: sev, since: f.body.at, reason: f.body.reason };
    }
    return undefined;
  }

  /**
   * Sends again, once a tick, the baselines and halts of owned funds whose publish failed, with
   * their bodies (a baseline is the equity at its period's start; a halt was decided and alerted).
   */
  function retry(): void {
    if (!facts.tracking()) return;
    for (const f of [...facts.latestOf("baseline"), ...facts.latestOf("halt")])
      if (f.state === "failed" && (ctx.owns?.(f.body.fund_id) ?? true)) facts.resend(f);
  }

  /**
   * The trading P&L at or below which a period halts: (P&L at the start) − limit × (equity at the
   * start), where P&L at the start = equity − capital then. Cached per baseline, limit and (for an
   * old baseline without its capital) the current capital.
   */
  const floors = new WeakMap<object, { limit: Dec; capital: Dec; floor: Dec }>();
  const floorOf = (base: Base, limit: Dec, capitalNow: Dec): Dec => {
    const c = floors.get(base);
    if (c && c.limit === limit && c.capital === capitalNow) return c.floor;
    const startPnl = base.equity.minus(base.capital ?? capitalNow);
    const floor = startPnl.minus(limit.times(base.equity));
    floors.set(base, { limit, capital: capitalNow, floor });
    return floor;
  };

  /** Takes every missing baseline of the fund for the periods containing `now`, from its state now. */
  function baselinesOf(fund: FundState, now: number): Record<PnlPeriod, Base> | undefined {
    if (ctx.owns && !ctx.owns(fund.id)) return undefined; // another engine owns the fund
    // NAV unknown (a book valued at a missing FX rate, 0): a baseline now would be wrong by that
    // book; taken once the rate is back (the equity then, as for a fund first seen mid-period)
    if (fund.agg.unpriced.size > 0) return undefined;
    const env = fund.envelope;
    const equity = nav(fund);
    if (!env || equity === undefined) return undefined;
    const s = periodStarts(now);
    const capital = env.envelope.capital;
    return {
      day: baseline(fund, "day", s.day, equity, capital),
      week: baseline(fund, "week", s.week, equity, capital),
      month: baseline(fund, "month", s.month, equity, capital),
    };
  }

  function evaluate(fund: FundState): HaltSeverity[] {
    const now = clock.now();
    // NAV unknown (a book in a currency with no FX rate, or a one-sided FX quote: valued at 0):
    // every order of the fund is refused meanwhile (market-data gate); judged when the rate is back
    // (baselinesOf below takes none meanwhile either)
    if (fund.agg.unpriced.size > 0) return [];
    const bases = baselinesOf(fund, now);
    const env = fund.envelope;
    if (!bases || !env) return [];
    const s = periodStarts(now);
    const capitalNow = env.envelope.capital;
    const pnlNow = tradingPnl(fund);
    const out: HaltSeverity[] = [];
    for (const p of PERIODS) {
      const start = s[p];
      const base = bases[p];
      const limit = env.envelope[LIMIT[p]];
      if (limit === undefined || !base.equity.gt(ZERO)) continue;
      if (pnlNow.gt(floorOf(base, limit, capitalNow))) continue; // loss below the threshold
      const pnl = pnlNow.minus(base.equity.minus(base.capital ?? capitalNow));
      const sev = SEVERITY[p];
      if (fund.halts.has(sev) || haltInFlight(fund.id, sev, start)) continue;
      // a breach the operator resumed does not halt again within the same period
      if (fund.lifted.some((l) => l.severity === sev && Date.parse(l.since) >= start)) continue;
      out.push(sev);
      const loss = pnl.neg().div(base.equity);
      const reason = `${p} loss ${pct(loss)} of equity ${canon(base.equity)} reached the ${pct(limit)} halt`;
      facts
        .halt(
          { fund_id: fund.id, severity: sev, reason, at: iso(now), by: "drawdown-monitor" },
          FactIds.halt(fund.id, sev, start),
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
  function evaluateLogged(fund: FundState): void {
    try {
      evaluate(fund);
    } catch (err) {
      log.error({ err, fund: fund.id }, "drawdown evaluation failed");
    }
  }
  function later(f: FundState): void {
    if (due.size === 0)
      setImmediate(() => {
        const funds = [...due];
        due.clear();
        for (const fund of funds) {
          if (stopped) return;
          evaluateLogged(fund);
        }
      });
    due.add(f);
  }
  function evaluateDue(id: string): void {
    if (due.size === 0 || stopped) return;
    const fund = state.funds.get(id);
    if (fund === undefined || !due.delete(fund)) return;
    evaluateLogged(fund);
  }

  function evaluateAll(): HaltSeverity[] {
    const out: HaltSeverity[] = [];
    for (const f of state.funds.values()) out.push(...evaluate(f));
    return out;
  }

  /** The day start the baselines were last rolled for (day, week and month all start at a midnight). */
  let rolled = -1;
  function beforeApply(): void {
    const now = clock.now();
    const day = periodStarts(now).day;
    if (day === rolled) return;
    rolled = day;
    for (const f of state.funds.values()) baselinesOf(f, now);
  }

  return {
    name: "drawdown",
    intervalMs: 1000,
    evaluate,
    evaluateAll,
    beforeApply,
    inFlight,
    evaluateDue,
    onReady() {
      rolled = periodStarts(clock.now()).day;
      evaluateAll();
    },
    tick() {
      retry();
      return evaluateAll();
    },
    onChange(c: Change) {
      // a Resume too: a halt of an earlier period lifted while this period's own loss is past its
      // threshold halts again before the next order, not at the next tick (red team, stop 30)
      if (c.kind === "fill" || c.kind === "envelope" || (c.kind === "control" && c.what === "resume")) {
        const f = state.funds.get(c.fund);
        if (f) evaluate(f);
      } else if (c.kind === "quote") {
        for (const b of state.holders.get(c.symbol) ?? []) if (b.pos.qty.units !== 0n) later(b.owner);
        // an FX rate (<CCY>-<BASE>) revalues every fund holding something priced in CCY
        // (a flat book too: its realized P&L and fees in CCY move with the rate)
        for (const b of state.fxHolders.get(c.symbol) ?? []) later(b.owner);
      }
    },
    stop() {
      stopped = true;
      due.clear();
    },
  };
}
