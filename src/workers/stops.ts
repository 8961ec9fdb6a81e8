/**
 * Synthetic stops. Every open position has a stop at average entry × (1 − synthetic_stop_pct)
 * for longs and × (1 + pct) for shorts, re-armed (a new arm sequence) whenever the position
 * changes. A fresh mark crossing it (bid for longs, ask for shorts; a gap far past it counts),
 * fresh by the fund's own max_quote_age_ms exactly as the check judges it, emits MARKET
 * reduce-only closing orders for the whole position on mts.v1.oms.order.submit.<fund>, one per
 * broker holding it (see closing.ts), and a stop.triggered event; nothing more while one is open.
 * An order is emitted only when the engine's own check approves it at that moment; under a
 * KILL_SWITCH halt nothing is emitted (a `stop` alert instead). A closing that ends with nothing
 * filled is alerted and re-armed with a doubling backoff. Every armed stop is evaluated when the
 * engine becomes live and on each tick. Symbols without fresh quotes are polled on
 * mts.v1.md.quote.<symbol> and the answer is published to QUOTES (it is the mark everywhere).
 * Stop state lives in RISK_CONTROL (armed / triggered / cleared), so it is rebuilt like the rest.
 */
import { type Dec, ONE, ZERO, canon, div } from "../decimal/index.js";
import { freshMark } from "../gates/context.js";
import { type Book, type FundState, type StopRecord, key2 } from "../state/model.js";
import { foldStop } from "../state/projections/control.js";
import { StopSchema } from "../contract/index.js";
import type { Stop } from "../contract/records.js";
import { FactKeys } from "../facts/emitters.js";
import { effectiveLimits, isOrderDone } from "../state/index.js";
import { iso } from "../time/clock.js";
import {
  STOP_STRATEGY,
  closingLegs,
  closingOrder,
  closingOutcome,
  legsOf,
  retryBackoffMs,
} from "./closing.js";
import { createQuotePoller } from "./quote-poll.js";
import { type Change, type Worker, type WorkerContext, factsOf } from "./types.js";

export interface StopsWorker extends Worker {
  /** Arms, re-arms or clears the stop of one book to match its position; true when it published. */
  ensure(fund: FundState, symbol: string): boolean;
  /** Checks every armed stop of the symbol against its fund's fresh mark; how many fired. */
  evaluate(symbol: string): number;
  /**
   * Settles every triggered stop whose closing is over, then evaluates armed stops against their
   * fresh marks: all of them (`full`, on becoming live), else only those a rule held back (retry
   * backoff, kill switch, the check) since the last review. How many fired.
   */
  review(full?: boolean): number;
  /** Arms every open position that has no matching stop (the position-arm sweeper). */
  sweep(): number;
  /** Polls quotes for symbols with live stops and no fresh quote, publishing them to QUOTES. */
  poll(): Promise<number>;
  /** Alerts triggered stops whose closing order has no OMS event after the configured time. */
  watch(): number;
  /** The stop as the worker sees it (published, even before the stream gave it back). */
  stopOf(fund: string, symbol: string): StopRecord | undefined;
}

/** How often a closing order not known to have reached the OMS is sent again (engine clock). */
const RESEND_MS = 5_000;

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
  const facts = factsOf(ctx);
  /** Alerts raised, once per arm and cause: `${fund}\u0001${symbol}\u0001${armSeq}\u0001${cause}`. */
  const raised = new Set<string>();
  /** Armed stops crossed on a fresh mark that a rule held back (backoff, kill switch, the check). */
  const held = new Map<string, StopRecord>();
  const hold = (s: StopRecord): false => {
    held.set(key2(s.fund, s.symbol), s);
    return false;
  };
  const mine = (fund: string) => ctx.owns?.(fund) ?? true;

  /** Stop facts in flight, parsed once each (the projection's own form). */
  const parsed = new WeakMap<object, Stop>();
  const parse = (body: object): Stop => {
    let p = parsed.get(body);
    if (!p) parsed.set(body, (p = StopSchema.parse(body)));
    return p;
  };

  /**
   * The stop as the worker sees it: the folded one, moved on by the stop facts this engine
   * published and has not read back yet, in the order it published them (the projection's own
   * rule, foldStop: a newer arm, or a later state of the same arm). A publish that failed is not
   * in flight: the stop is derived again from the state, and published again.
   */
  function stopOf(fund: string, symbol: string): StopRecord | undefined {
    let s = state.stops.get(key2(fund, symbol));
    if (!facts.tracking()) return s;
    for (const f of facts.pendingOf("stop", FactKeys.stop(fund, symbol))) {
      if (f.state === "failed") continue;
      s = foldStop(s, f.body.event, parse(f.body), f.body) ?? s;
    }
    return s;
  }

  /** Every stop as the worker sees it (journaled, or only published so far). */
  function allStops(): StopRecord[] {
    const out: StopRecord[] = [];
    const tracking = facts.tracking();
    for (const s of state.stops.values()) out.push(tracking ? (stopOf(s.fund, s.symbol) ?? s) : s);
    if (!tracking) return out;
    for (const f of facts.latestOf("stop")) {
      if (state.stops.has(key2(f.body.fund_id, f.body.symbol))) continue;
      const v = stopOf(f.body.fund_id, f.body.symbol);
      if (v) out.push(v);
    }
    return out;
  }

  function alertOnce(s: StopRecord, cause: string, message: string, details: Record<string, string>): void {
    const k = `${key2(s.fund, s.symbol)}\u0001${s.armSeq}\u0001${cause}`;
    if (raised.has(k)) return;
    if (raised.size >= 100_000) raised.clear(); // bounded; a repeat is deduped on the stream by msgID
    raised.add(k);
    const msgID = `stop-alert:${s.fund}:${s.symbol}:${s.armSeq}:${cause}`;
    ctx.alerter.alert(
      "stop",
      s.fund,
      message,
      { symbol: s.symbol, arm_seq: String(s.armSeq), ...details },
      msgID,
    );
  }

  function emit(event: "armed" | "triggered" | "cleared", rec: StopRecord, reason?: string): void {
    const body = {
      fund_id: rec.fund,
      symbol: rec.symbol,
      side: rec.side,
      quantity: canon(rec.qty),
      stop_price: canon(rec.stopPrice),
      arm_seq: rec.armSeq,
      at: rec.at,
      ...(rec.closingOrderId ? { closing_order_id: rec.closingOrderId } : {}),
      ...(event === "triggered"
        ? {
            closing_orders: rec.legs.map((l) => ({
              order_id: l.orderId,
              idempotency_key: l.key,
              broker: l.broker,
              quantity: canon(l.qty),
            })),
          }
        : {}),
      ...(rec.attempt > 0 ? { attempt: rec.attempt, not_before: iso(rec.notBefore) } : {}),
      ...(reason ? { reason } : {}),
    };
    facts
      .stop(event, body)
      .catch((err: unknown) =>
        log.error({ err, fund: rec.fund, symbol: rec.symbol }, `stop.${event} publish failed`),
      );
  }

  /**
   * Closing orders the OMS reported `done` without `filled_quantity` while FILLS showed less than
   * their quantity: when this engine saw it (its clock). Their fills may be in flight for
   * `fills_grace_s`: the stop waits that long before it takes the rest as unfilled.
   */
  const doneAt = new Map<string, number>();
  const graceMs = cfg.fills_grace_s * 1000;
  const inGrace = (orderId: string): boolean => {
    const t = doneAt.get(orderId);
    return t !== undefined && clock.now() - t < graceMs;
  };

  /**
   * Closing orders sent, by idempotency key (their message id): when last sent (engine clock), or
   * Infinity once OMS_INTENTS acknowledged it or the OMS was seen handling it.
   */
  const sent = new Map<string, number>();

  function submit(o: ReturnType<typeof closingOrder>, key: string, now: number): void {
    sent.set(key, now);
    facts.order(o).then(
      () => sent.set(key, Infinity),
      (err: unknown) =>
        log.error({ err, order_id: o["order_id"] }, "closing order publish failed; sent again"),
    );
  }

  /**
   * A triggered stop's closing order that may never have reached the OMS (its publish failed, or
   * the engine died between the stop.triggered event and it): none of the OMS's check, events or
   * fills has been seen for it, and OMS_INTENTS never acknowledged it to this process. Sent again,
   * the same body and id (stamped with the trigger's time), every RESEND_MS until acknowledged:
   * the stream's duplicate window (a day) drops a copy that did land. Else the stop would stay
   * triggered for ever ("no re-arm while a closing order works") and the position unprotected.
   */
  function resendLost(all: StopRecord[], now: number): void {
    const current = new Set<string>();
    for (const s of all) {
      if (s.state !== "triggered" || !mine(s.fund)) continue;
      if (state.funds.get(s.fund)?.halts.has("KILL_SWITCH")) continue; // the operator decides
      for (const leg of legsOf(s)) {
        current.add(leg.key);
        const at = sent.get(leg.key) ?? -Infinity;
        if (at === Infinity) continue;
        if (state.orders.get(key2(s.fund, leg.orderId)) || state.idem.get(key2(s.fund, leg.key))) {
          sent.set(leg.key, Infinity); // the OMS has it: checked, acknowledged or filled
          continue;
        }
        if (facts.inFlight(leg.key) !== undefined || now - at < RESEND_MS) continue;
        log.warn({ fund: s.fund, symbol: s.symbol, order_id: leg.orderId }, "closing order sent again");
        submit(closingOrder(s, leg, s.at), leg.key, now);
      }
    }
    for (const k of sent.keys()) if (!current.has(k)) sent.delete(k);
  }

  function ensure(fund: FundState, symbol: string): boolean {
    if (!mine(fund.id)) return false;
    const b = fund.books.get(symbol);
    const cur = stopOf(fund.id, symbol);
    const now = clock.now();
    let attempt = cur?.state === "armed" ? cur.attempt : 0;
    let notBefore = cur?.state === "armed" ? cur.notBefore : 0;
    if (cur?.state === "triggered") {
      const out = closingOutcome(state, cur, now, inGrace);
      if (out.open) return false; // no re-arm while a closing order works
      // a closing order that ended with nothing filled (a rejection) backs the stop off, even when
      // another broker's leg filled: that broker would otherwise be retried at once
      if (out.unfilled.length > 0 && b && !b.pos.qty.eq(ZERO)) {
        attempt = cur.attempt + 1;
        notBefore = now + retryBackoffMs(attempt, cfg);
        const why = out.unfilled.map((u) => `${u.orderId} ${u.why}`).join("; ");
        alertOnce(
          cur,
          "unfilled",
          `${fund.id}: closing order of the ${symbol} stop ended with nothing filled (${why}); re-armed, fires again from ${iso(notBefore)} (attempt ${attempt})`,
          {
            attempt: String(attempt),
            not_before: iso(notBefore),
            closing_order_ids: out.unfilled.map((u) => u.orderId).join(","),
          },
        );
      }
    }
    const want = b ? desiredStop(fund, b) : undefined;
    const at = iso(now);
    if (!want) {
      if (!cur || cur.state === "cleared") return false;
      const reason = b?.pos.qty.eq(ZERO) ? "position flat" : "no stop configured";
      emit("cleared", { ...cur, state: "cleared", attempt: 0, notBefore: 0, at }, reason);
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
    const rec: StopRecord = {
      fund: fund.id,
      symbol,
      side: want.side,
      qty: want.qty,
      stopPrice: want.stopPrice,
      armSeq: (cur?.armSeq ?? 0) + 1,
      state: "armed",
      closingOrderId: undefined,
      legs: [],
      attempt,
      notBefore,
      at,
    };
    emit("armed", rec);
    if (b) check(fund, rec, b, now); // a mark already through the new stop fires it now
    return true;
  }

  /** Fires an armed stop when its fund's fresh mark crosses it and every rule allows; true when it fired. */
  function check(fund: FundState, s: StopRecord, b: Book, now: number): boolean {
    if (!fund.envelope || b.pos.qty.eq(ZERO) || !mine(fund.id)) return false;
    if (!s.qty.eq(b.pos.qty.abs()) || (s.side === "LONG") !== b.pos.qty.gt(ZERO)) {
      ensure(fund, s.symbol); // the position moved on since this arm: re-arm it first
      return false;
    }
    const mark = state.marks.get(s.symbol);
    if (!mark) return false;
    const price = s.side === "LONG" ? mark.bid : mark.ask;
    // a side at 0 is a one-sided market, not a price: a 0 bid (no buyer, routine for a far
    // out-of-the-money option) does not trigger a long stop, a 0 ask never reaches a short's
    const crossed = s.side === "LONG" ? price.gt(ZERO) && price.lte(s.stopPrice) : price.gte(s.stopPrice);
    if (!crossed) return false;
    if (!freshMark(state, s.symbol, effectiveLimits(fund.envelope, STOP_STRATEGY), now)) {
      // not a mark for this fund (the check would reject the closing order); one stamped ahead of
      // the engine's clock becomes fresh as time passes, with no new quote: the review re-checks it
      return mark.ts > now ? hold(s) : false;
    }
    if (now < s.notBefore) return hold(s); // the retry backoff: fired by the review once over
    const crossing = `${s.side === "LONG" ? "bid" : "ask"} ${canon(price)} crossed ${canon(s.stopPrice)}`;
    const kill = fund.halts.get("KILL_SWITCH");
    if (kill) {
      alertOnce(
        s,
        `kill:${kill.seq}`,
        `${fund.id}: ${s.symbol} ${crossing} under a KILL_SWITCH halt: no closing order sent; the operator decides`,
        {
          price: canon(price),
          stop_price: canon(s.stopPrice),
        },
      );
      return hold(s);
    }
    const at = iso(now);
    const legs = closingLegs(s, b, fund.envelope.envelope.allowed_brokers?.[0] ?? "default");
    const trig: StopRecord = { ...s, state: "triggered", closingOrderId: legs[0]?.orderId, legs, at };
    const orders = legs.map((l) => closingOrder(trig, l, at));
    const ahead = { buy: ZERO, sell: ZERO };
    for (const [i, o] of orders.entries()) {
      const r = ctx.precheck(o, ahead);
      if (r) {
        alertOnce(
          s,
          `check:${r.denial.code}`,
          `${fund.id}: ${s.symbol} ${crossing} but the check would reject closing order ${String(o["order_id"])} (${r.denial.code}: ${r.denial.reason}); not sent`,
          {
            rejection_code: r.denial.code,
            order_id: String(o["order_id"]),
          },
        );
        return hold(s);
      }
      if (s.side === "LONG") ahead.sell = ahead.sell.plus(legs[i]!.qty);
      else ahead.buy = ahead.buy.plus(legs[i]!.qty);
    }
    emit("triggered", trig, `quote ${crossing}`);
    for (const [i, o] of orders.entries()) submit(o, legs[i]!.key, now);
    log.warn(
      { fund: s.fund, symbol: s.symbol, stop: canon(s.stopPrice), price: canon(price), legs: legs.length },
      "stop triggered",
    );
    return true;
  }

  function evaluate(symbol: string): number {
    const holders = state.holders.get(symbol);
    if (!holders) return 0;
    const now = clock.now();
    let fired = 0;
    for (const b of holders) {
      const fund = b.owner;
      if (!mine(fund.id)) continue;
      const s = stopOf(fund.id, symbol);
      if (s?.state === "armed" && check(fund, s, b, now)) fired++;
    }
    return fired;
  }

  function review(full = false, all: StopRecord[] = allStops()): number {
    const now = clock.now();
    for (const [id, t] of doneAt) if (now - t >= graceMs) doneAt.delete(id);
    resendLost(all, now);
    for (const s of all) {
      const fund = s.state === "triggered" ? state.funds.get(s.fund) : undefined;
      if (fund) ensure(fund, s.symbol); // a closing over with no change event (the check rejected it)
    }
    return fire(full ? all : [...held.values()], now);
  }

  /** Checks the given stops (those still armed) against their fresh marks; held ones are re-held. */
  function fire(list: StopRecord[], now: number): number {
    let fired = 0;
    held.clear();
    for (const s of list) {
      const fund = state.funds.get(s.fund);
      const cur = stopOf(s.fund, s.symbol);
      const b = fund?.books.get(s.symbol);
      if (fund && b && cur?.state === "armed" && check(fund, cur, b, now)) fired++;
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

  /**
   * A triggered stop whose closing orders the OMS never acknowledged (no accepted, fill or
   * terminal event `closing_order_alert_s` after the trigger) leaves a position unprotected and
   * blocks re-arming: alerted once per arm, so an operator can act. So is one the OMS ended with
   * fills FILLS has not brought by then (`fills_due`: the stop waits for them, closing.ts), and one
   * it accepted that has neither filled nor ended (`working`: an IOC order should have by then).
   */
  function watch(all: StopRecord[] = allStops()): number {
    const now = clock.now();
    let count = 0;
    for (const s of all) {
      if (s.state !== "triggered" || !mine(s.fund)) continue;
      const age = now - Date.parse(s.at);
      if (!(age >= cfg.closing_order_alert_s * 1000)) continue;
      const out = closingOutcome(state, s, now, inGrace);
      if (out.fillsDue.length > 0) {
        const due = out.fillsDue.map(
          (d) => `${d.orderId} (${canon(d.reported)} reported, ${canon(d.filled)} seen)`,
        );
        alertOnce(
          s,
          "fills_due",
          `${s.fund}: closing order ${due.join(", ")} for the ${s.symbol} stop was ended by the OMS with fills FILLS has not brought ${Math.round(age / 1000)} s after its trigger; the stop waits for them (another closing order would flip the position) until their reservation expires`,
          {
            closing_order_id: out.fillsDue.map((d) => d.orderId).join(","),
            triggered_at: s.at,
            reported_filled: out.fillsDue.map((d) => canon(d.reported)).join(","),
            filled: out.fillsDue.map((d) => canon(d.filled)).join(","),
          },
        );
      }
      const working = legsOf(s).filter((l) => {
        const r = state.orders.get(key2(s.fund, l.orderId));
        return r !== undefined && r.accepted && !r.terminal && !isOrderDone(r, l.qty);
      });
      if (working.length > 0) {
        alertOnce(
          s,
          "working",
          `${s.fund}: closing order ${working.map((l) => l.orderId).join(",")} for the ${s.symbol} stop was accepted by the OMS and has neither filled nor ended ${Math.round(age / 1000)} s after its trigger; the stop waits for it (an accepted order reserves until it ends)`,
          { closing_order_id: working.map((l) => l.orderId).join(","), triggered_at: s.at, working: "true" },
        );
      }
      const silent = legsOf(s).filter((l) => {
        const r = state.orders.get(key2(s.fund, l.orderId));
        return !(r && (r.accepted || r.terminal || r.filled.gt(ZERO)));
      });
      if (silent.length === 0 || !out.open) continue;
      const k = `${key2(s.fund, s.symbol)}\u0001${s.armSeq}\u0001unacknowledged`;
      if (raised.has(k)) continue;
      count++;
      const approved = silent.some(
        (l) => (state.orders.get(key2(s.fund, l.orderId))?.approvals.size ?? 0) > 0,
      );
      alertOnce(
        s,
        "unacknowledged",
        `${s.fund}: closing order ${silent.map((l) => l.orderId).join(",")} for the ${s.symbol} stop has no OMS event ${Math.round(age / 1000)} s after its trigger`,
        {
          closing_order_id: silent.map((l) => l.orderId).join(","),
          triggered_at: s.at,
          approved: approved ? "true" : "false",
        },
      );
    }
    return count;
  }

  const poller = createQuotePoller(ctx);
  const poll = (all: StopRecord[] = allStops()) =>
    poller(all.filter((s) => s.state === "armed" && mine(s.fund)));

  return {
    name: "stops",
    intervalMs: 1000,
    ensure,
    evaluate,
    review,
    sweep,
    poll: () => poll(),
    watch: () => watch(),
    stopOf,
    onReady() {
      if (!cfg.enabled) return;
      sweep();
      review(true); // a crossing while down (or before a takeover) fires now, not at the next quote
    },
    onChange(c: Change) {
      if (!cfg.enabled) return;
      if (c.kind === "fill" || c.kind === "envelope") {
        const fund = state.funds.get(c.fund);
        if (!fund) return;
        if (c.kind === "fill") ensure(fund, c.symbol);
        else for (const symbol of fund.books.keys()) ensure(fund, symbol);
      } else if (c.kind === "quote") {
        evaluate(c.symbol);
      } else if (c.kind === "control" && c.what === "resume") {
        fire([...held.values()], clock.now()); // a stop held by a kill switch fires once it is lifted
      } else if (c.kind === "order" && c.orderId.startsWith("stop-")) {
        const fund = state.funds.get(c.fund);
        const r = c.event === "done" ? state.orders.get(key2(c.fund, c.orderId)) : undefined;
        if (r?.terminal && r.endFilled.eq(ZERO) && !doneAt.has(c.orderId)) doneAt.set(c.orderId, clock.now());
        const s = allStops().find((x) => x.fund === c.fund && legsOf(x).some((l) => l.orderId === c.orderId));
        if (fund && s) ensure(fund, s.symbol);
      }
    },
    tick() {
      if (!cfg.enabled) return;
      const all = allStops(); // one pass over the stops a tick
      watch(all);
      review(false, all);
      return poll(all);
    },
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
