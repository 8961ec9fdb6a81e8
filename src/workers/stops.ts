/**
 * Synthetic stops. Every open position has a stop at average entry × (1 − synthetic_stop_pct)
 * for longs and × (1 + pct) for shorts, re-armed (a new arm sequence) whenever the position
 * changes. A quote crossing it (bid for longs, ask for shorts; a gap far past it counts) emits one
 * MARKET reduce-only closing order for the whole position on mts.v1.oms.order.submit.<fund>
 * (idempotency key stop:<fund>:<symbol>:<arm sequence>) and a stop.triggered event; no second
 * order while that one is open. Symbols without fresh quotes are polled on mts.v1.md.quote.<symbol>.
 * Stop state lives in RISK_CONTROL (armed / triggered / cleared), so it is rebuilt like the rest.
 */
import { QuoteSchema } from "../contract/schemas.js";
import { Subjects } from "../contract/subjects.js";
import { type Dec, ONE, ZERO, canon, div } from "../decimal/index.js";
import { isFresh } from "../gates/context.js";
import { type Book, type FundState, type StopRecord, key2 } from "../state/model.js";
import { isOpenOrder } from "../state/index.js";
import { iso } from "../time/clock.js";
import type { Change, Worker, WorkerContext } from "./types.js";

export interface StopsWorker extends Worker {
  /** Arms or clears the stop of one book to match its position; true when it published. */
  ensure(fund: FundState, symbol: string): boolean;
  /** Checks every armed stop of the symbol against a bid/ask. */
  evaluate(symbol: string, bid: Dec, ask: Dec): number;
  /** Arms every open position that has no matching stop (the position-arm sweeper). */
  sweep(): number;
  /** Polls quotes for symbols with live stops and no fresh quote; resolves when the polls are done. */
  poll(): Promise<number>;
  /** Alerts triggered stops whose closing order has no OMS event after the configured time. */
  watch(): number;
  /** The stop as the worker sees it (published, even before the stream gave it back). */
  stopOf(fund: string, symbol: string): StopRecord | undefined;
}

interface Desired {
  side: "LONG" | "SHORT";
  qty: Dec;
  stopPrice: Dec;
}

export function desiredStop(fund: FundState, b: Book): Desired | undefined {
  const pct = fund.envelope?.envelope.synthetic_stop_pct;
  const q = b.pos.qty;
  if (pct === undefined || q.eq(ZERO) || b.pos.cost.eq(ZERO)) return undefined;
  const avg = div(b.pos.cost, q.abs());
  const long = q.gt(ZERO);
  return {
    side: long ? "LONG" : "SHORT",
    qty: q.abs(),
    stopPrice: avg.times(long ? ONE.minus(pct) : ONE.plus(pct)),
  };
}

export function createStopsWorker(ctx: WorkerContext): StopsWorker {
  const { state, clock } = ctx;
  const log = ctx.log.child({ module: "stops" });
  const cfg = ctx.config.synthetic_stop;
  /** Published but maybe not yet folded back from RISK_CONTROL. */
  const overlay = new Map<string, StopRecord>();
  const lastPoll = new Map<string, number>();
  const mine = (fund: string) => ctx.owns?.(fund) ?? true;

  function stopOf(fund: string, symbol: string): StopRecord | undefined {
    const k = key2(fund, symbol);
    const s = state.stops.get(k);
    const o = overlay.get(k);
    if (!o) return s;
    if (s && (s.armSeq > o.armSeq || (s.armSeq === o.armSeq && s.state === o.state))) {
      overlay.delete(k);
      return s;
    }
    return o;
  }

  function emit(event: "armed" | "triggered" | "cleared", rec: StopRecord, reason?: string): void {
    overlay.set(key2(rec.fund, rec.symbol), rec);
    const body = {
      fund_id: rec.fund,
      symbol: rec.symbol,
      side: rec.side,
      quantity: canon(rec.qty),
      stop_price: canon(rec.stopPrice),
      arm_seq: rec.armSeq,
      at: rec.at,
      ...(rec.closingOrderId ? { closing_order_id: rec.closingOrderId } : {}),
      ...(reason ? { reason } : {}),
    };
    ctx
      .publish(Subjects.stop(event, rec.fund), body, `stop:${event}:${rec.fund}:${rec.symbol}:${rec.armSeq}`)
      .catch((err: unknown) =>
        log.error({ err, fund: rec.fund, symbol: rec.symbol }, `stop.${event} publish failed`),
      );
  }

  function closingOpen(s: StopRecord): boolean {
    if (s.state !== "triggered" || !s.closingOrderId) return false;
    const r = state.orders.get(key2(s.fund, s.closingOrderId));
    return r === undefined || isOpenOrder(r) || (!r.terminal && r.approvals.size === 0);
  }

  function ensure(fund: FundState, symbol: string): boolean {
    if (!mine(fund.id)) return false;
    const b = fund.books.get(symbol);
    const cur = stopOf(fund.id, symbol);
    if (cur && closingOpen(cur)) return false; // no re-arm while the closing order works
    const want = b ? desiredStop(fund, b) : undefined;
    const at = iso(clock.now());
    if (!want) {
      if (!cur || cur.state === "cleared") return false;
      emit(
        "cleared",
        { ...cur, state: "cleared", at },
        b?.pos.qty.eq(ZERO) ? "position flat" : "no stop configured",
      );
      return true;
    }
    if (
      cur?.state === "armed" &&
      cur.side === want.side &&
      cur.qty.eq(want.qty) &&
      cur.stopPrice.eq(want.stopPrice)
    ) {
      return false;
    }
    emit("armed", {
      fund: fund.id,
      symbol,
      side: want.side,
      qty: want.qty,
      stopPrice: want.stopPrice,
      armSeq: (cur?.armSeq ?? 0) + 1,
      state: "armed",
      closingOrderId: undefined,
      at,
    });
    return true;
  }

  function trigger(fund: FundState, s: StopRecord, b: Book, price: Dec): void {
    const key = `stop:${s.fund}:${s.symbol}:${s.armSeq}`;
    const orderId = `stop-${s.fund}-${s.symbol}-${s.armSeq}`;
    const brokers = [...b.pos.brokers.entries()].sort((x, y) => y[1].abs().cmp(x[1].abs()));
    const broker = brokers[0]?.[0] ?? fund.envelope?.envelope.allowed_brokers?.[0] ?? "default";
    const at = iso(clock.now());
    emit(
      "triggered",
      { ...s, state: "triggered", closingOrderId: orderId, at },
      `quote ${canon(price)} crossed ${canon(s.stopPrice)}`,
    );
    const order = {
      order_id: orderId,
      idempotency_key: key,
      fund_id: s.fund,
      strategy_id: "synthetic-stop",
      broker,
      symbol: s.symbol,
      side: s.side === "LONG" ? "SELL" : "BUY",
      order_type: "MARKET",
      quantity: canon(b.pos.qty.abs()),
      time_in_force: "IOC",
      reduce_only: true,
      created_at: at,
    };
    ctx
      .publish(Subjects.orderSubmit(s.fund), order, key)
      .catch((err: unknown) => log.error({ err, order_id: orderId }, "closing order publish failed"));
    log.warn(
      { fund: s.fund, symbol: s.symbol, stop: canon(s.stopPrice), price: canon(price) },
      "stop triggered",
    );
  }

  function evaluate(symbol: string, bid: Dec, ask: Dec): number {
    const holders = state.holders.get(symbol);
    if (!holders) return 0;
    let fired = 0;
    for (const fund of holders) {
      if (!mine(fund.id)) continue;
      const b = fund.books.get(symbol);
      if (!b || b.pos.qty.eq(ZERO)) continue;
      const s = stopOf(fund.id, symbol);
      if (!s || s.state !== "armed") continue;
      const crossed = s.side === "LONG" ? bid.lte(s.stopPrice) : ask.gte(s.stopPrice);
      if (!crossed) continue;
      trigger(fund, s, b, s.side === "LONG" ? bid : ask);
      fired++;
    }
    return fired;
  }

  function sweep(): number {
    let armed = 0;
    for (const fund of state.funds.values()) {
      for (const [symbol, b] of fund.books) {
        const s = stopOf(fund.id, symbol);
        if (b.pos.qty.eq(ZERO) && (!s || s.state === "cleared")) continue;
        if (ensure(fund, symbol) && stopOf(fund.id, symbol)?.state === "armed") armed++;
      }
    }
    if (armed > 0) log.info({ armed }, "position-arm sweeper armed stops");
    return armed;
  }

  /** Stops (by arm) already alerted for a closing order nobody acknowledged. */
  const unacknowledged = new Set<string>();

  /**
   * A triggered stop whose closing order the OMS never acknowledged (no accepted, fill or
   * terminal event `closing_order_alert_s` after the trigger) leaves a position unprotected and
   * blocks re-arming: alerted once per arm, so an operator can act.
   */
  function watch(): number {
    const now = clock.now();
    let raised = 0;
    for (const stored of state.stops.values()) {
      const s = stopOf(stored.fund, stored.symbol) ?? stored;
      if (!mine(s.fund)) continue;
      if (s.state !== "triggered" || !s.closingOrderId) continue;
      const k = `${key2(s.fund, s.symbol)}\u0001${s.armSeq}`;
      if (unacknowledged.has(k)) continue;
      const age = now - Date.parse(s.at);
      if (!(age >= cfg.closing_order_alert_s * 1000)) continue;
      const r = state.orders.get(key2(s.fund, s.closingOrderId));
      if (r && (r.accepted || r.terminal || r.filled.gt(ZERO))) continue;
      unacknowledged.add(k);
      raised++;
      ctx.alerter.alert(
        "stop",
        s.fund,
        `${s.fund}: closing order ${s.closingOrderId} for the ${s.symbol} stop has no OMS event ${Math.round(age / 1000)} s after its trigger`,
        {
          symbol: s.symbol,
          closing_order_id: s.closingOrderId,
          triggered_at: s.at,
          approved: r && r.approvals.size > 0 ? "true" : "false",
        },
      );
    }
    return raised;
  }

  async function poll(): Promise<number> {
    const now = clock.now();
    const due = new Set<string>();
    for (const s of state.stops.values()) {
      if (s.state !== "armed" || !mine(s.fund)) continue;
      const mark = state.marks.get(s.symbol);
      const crypto = state.instruments.get(s.symbol)?.asset_class === "crypto";
      const every = (crypto ? cfg.poll_interval_s : cfg.poll_interval_equities_s) * 1000;
      const fresh = isFresh(mark?.ts, now, every);
      if (!fresh && now - (lastPoll.get(s.symbol) ?? 0) >= every) due.add(s.symbol);
    }
    let answered = 0;
    await Promise.all(
      [...due].map(async (symbol) => {
        lastPoll.set(symbol, now);
        try {
          const m = await ctx.nc.request(Subjects.mdQuote(symbol), "{}", { timeout: 2000 });
          const q = QuoteSchema.safeParse(m.json());
          if (!q.success || q.data.symbol !== symbol) return;
          if (!isFresh(q.data.timestamp, clock.now())) return;
          answered++;
          evaluate(symbol, q.data.bid, q.data.ask);
        } catch {
          /* no quote service for it: nothing to evaluate */
        }
      }),
    );
    return answered;
  }

  return {
    name: "stops",
    intervalMs: 1000,
    ensure,
    evaluate,
    sweep,
    poll,
    stopOf,
    onReady() {
      if (cfg.enabled) sweep();
    },
    onChange(c: Change) {
      if (!cfg.enabled) return;
      if (c.kind === "fill" || c.kind === "envelope") {
        const fund = state.funds.get(c.fund);
        if (!fund) return;
        if (c.kind === "fill") ensure(fund, c.symbol);
        else for (const symbol of fund.books.keys()) ensure(fund, symbol);
      } else if (c.kind === "quote") {
        const m = state.marks.get(c.symbol);
        if (m && isFresh(m.ts, clock.now())) evaluate(c.symbol, m.bid, m.ask);
      } else if (c.kind === "order" && c.orderId.startsWith("stop-")) {
        const fund = state.funds.get(c.fund);
        const s = [...state.stops.values()].find((x) => x.fund === c.fund && x.closingOrderId === c.orderId);
        if (fund && s) ensure(fund, s.symbol);
      }
    },
    tick() {
      if (!cfg.enabled) return;
      watch();
      return poll();
    },
    watch,
  };
}

/** The position-arm sweeper: periodically arms open positions that have no stop. */
export function createSweeper(ctx: WorkerContext, stops: StopsWorker): Worker & { sweep(): number } {
  return {
    name: "position-arm-sweeper",
    intervalMs: ctx.config.position_arm_sweeper.interval_s * 1000,
    sweep: () => stops.sweep(),
    tick: () => (ctx.config.synthetic_stop.enabled ? stops.sweep() : 0),
  };
}
