/**
 * A synthetic stop's closing orders: one per broker holding the position (each for that broker's
 * quantity), their deterministic ids, the Order bodies, and whether they are done. Pure functions
 * of the state: the stops worker and the tests share them.
 */
import type { SynthStopConfig } from "../config/index.js";
import type { OrderBody } from "../facts/emitters.js";
import { type Dec, ZERO, canon, min } from "../decimal/index.js";
import type { Book, ClosingLeg, EngineState, StopRecord } from "../state/model.js";
import { isOrderDone, key2 } from "../state/index.js";
import { acknowledged } from "../state/projections/reservations.js";
import { createHash } from "node:crypto";

/** The strategy_id of every closing order (its limits are the envelope's for this strategy). */
export const STOP_STRATEGY = "synthetic-stop";

/** The contract's longest `order_id`. */
const MAX_ORDER_ID = 128;

/**
 * The orders that close a position: the brokers whose quantity has the position's sign, largest
 * first (then by name), each for its quantity, until the whole net position is covered; any rest
 * the brokers do not account for goes to the largest one (or `fallbackBroker` when none).
 * One leg keeps the documented ids `stop-<fund>-<symbol>-<seq>` / `stop:<fund>:<symbol>:<seq>`;
 * several legs add the broker: `…-<seq>-<broker>` / `…:<seq>:<broker>`.
 */
export function closingLegs(s: StopRecord, b: Book, fallbackBroker: string): ClosingLeg[] {
  const net = b.pos.qty;
  const long = net.gt(ZERO);
  const held = [...b.pos.brokers.entries()]
    .filter(([, q]) => (long ? q.gt(ZERO) : q.lt(ZERO)))
    .map(([broker, q]) => ({ broker, qty: q.abs() }))
    .sort((x, y) => y.qty.cmp(x.qty) || (x.broker < y.broker ? -1 : x.broker > y.broker ? 1 : 0));
  const parts: { broker: string; qty: Dec }[] = [];
  let left = net.abs();
  for (const h of held) {
    if (!left.gt(ZERO)) break;
    const take = min(h.qty, left);
    parts.push({ broker: h.broker, qty: take });
    left = left.minus(take);
  }
  if (left.gt(ZERO)) {
    if (parts[0]) parts[0].qty = parts[0].qty.plus(left);
    else parts.push({ broker: fallbackBroker, qty: left });
  }
  const base = `${s.fund}-${s.symbol}-${s.armSeq}`;
  const keyBase = `stop:${s.fund}:${s.symbol}:${s.armSeq}`;
  const one = parts.length === 1;
  const orderId = (broker: string) => {
    const id = one ? `stop-${base}` : `stop-${base}-${broker}`;
    if (id.length <= MAX_ORDER_ID) return id;
    // ids of 64 characters each make a longer order_id than the contract allows: the fund and
    // symbol become a digest of both (deterministic, still unique per fund, symbol, arm, broker)
    const h = createHash("sha256").update(`${s.fund}\u0001${s.symbol}`).digest("hex").slice(0, 32);
    return one ? `stop-${h}-${s.armSeq}` : `stop-${h}-${s.armSeq}-${broker}`;
  };
  return parts.map((p) => ({
    orderId: orderId(p.broker),
    key: one ? keyBase : `${keyBase}:${p.broker}`,
    broker: p.broker,
    qty: p.qty,
  }));
}

/** The legs of a triggered stop (a stop journaled before legs existed has its one closing order). */
export function legsOf(s: StopRecord): ClosingLeg[] {
  if (s.legs.length > 0) return s.legs;
  if (!s.closingOrderId) return [];
  return [
    { orderId: s.closingOrderId, key: `stop:${s.fund}:${s.symbol}:${s.armSeq}`, broker: "", qty: s.qty },
  ];
}

/** The Order a leg is sent as (MARKET, IOC, reduce-only), stamped `at`. */
export function closingOrder(s: StopRecord, leg: ClosingLeg, at: string): OrderBody {
  return {
    order_id: leg.orderId,
    idempotency_key: leg.key,
    fund_id: s.fund,
    strategy_id: STOP_STRATEGY,
    broker: leg.broker,
    symbol: s.symbol,
    side: s.side === "LONG" ? "SELL" : "BUY",
    order_type: "MARKET",
    quantity: canon(leg.qty),
    time_in_force: "IOC",
    reduce_only: true,
    created_at: at,
  };
}

export interface ClosingOutcome {
  /** Some closing order may still fill, or its reported fills are still to come. */
  open: boolean;
  /** What the closing orders filled in all. */
  filled: Dec;
  /** Closing orders that ended with nothing filled, with why (OMS terminal event or the check's code). */
  unfilled: { orderId: string; why: string }[];
  /**
   * Closing orders the OMS ended reporting a `filled_quantity` whose fills FILLS has not brought
   * yet (FILLS and OMS_ORDERS are not ordered): the position still holds that quantity, so the
   * stop waits for them; another closing order now would flip the position once they land.
   */
  fillsDue: { orderId: string; reported: Dec; filled: Dec }[];
}

/**
 * Where a triggered stop's closing orders stand at `now`. A leg is done when the OMS ended it, when
 * it filled its whole quantity (no OMS event needed: the same "done" as every order's), or when
 * the engine's check rejected it (the OMS does not route a rejected order). One the OMS ended with
 * fills still to arrive stays open while the engine reserves them (until they arrive, or the
 * reservation's TTL forgets them); one it reported `done` without a quantity, for `inGrace`. One approved that the OMS never acknowledged within
 * `reservations.ttl_s` (its reservation lapsed) is over, unfilled; so is one the engine has no
 * record of (never checked, or its records forgotten) a TTL after the trigger.
 */
export function closingOutcome(
  state: EngineState,
  s: StopRecord,
  now: number,
  /** A leg the OMS reported `done` (no quantity) so recently that its fills may be in flight. */
  inGrace: (orderId: string) => boolean = () => false,
): ClosingOutcome {
  let open = false;
  let filled = ZERO;
  const unfilled: ClosingOutcome["unfilled"] = [];
  const fillsDue: ClosingOutcome["fillsDue"] = [];
  const expired = now - Date.parse(s.at) >= state.settings.reservationTtlMs;
  for (const leg of legsOf(s)) {
    const r = state.orders.get(key2(s.fund, leg.orderId));
    const decision = state.idem.get(key2(s.fund, leg.key))?.decision;
    const got = r?.filled ?? ZERO;
    if (r?.terminal && r.reserved.gt(ZERO)) {
      open = true;
      fillsDue.push({ orderId: leg.orderId, reported: r.endFilled, filled: got });
    } else if (r?.terminal && got.lt(leg.qty) && inGrace(leg.orderId)) {
      open = true; // `done` with no quantity: its fills may still come (synthetic_stop.fills_grace_s)
    } else if (r && isOrderDone(r, leg.qty)) {
      filled = filled.plus(got);
      if (got.eq(ZERO)) unfilled.push({ orderId: leg.orderId, why: "ended by the OMS with nothing filled" });
    } else if (decision && !decision.approved) {
      filled = filled.plus(got);
      if (got.eq(ZERO))
        unfilled.push({ orderId: leg.orderId, why: `rejected by the check: ${decision.rejection_code}` });
    } else if (r?.lapsed && !acknowledged(r)) {
      unfilled.push({ orderId: leg.orderId, why: "approved, never acknowledged by the OMS within its TTL" });
    } else if (!r && expired) {
      unfilled.push({
        orderId: leg.orderId,
        why: "no check, fill or OMS event within the TTL of the trigger",
      });
    } else open = true;
  }
  return { open, filled, unfilled, fillsDue };
}

/** The wait before the stop fires again after `attempt` consecutive unfilled closings (ms). */
export function retryBackoffMs(attempt: number, cfg: SynthStopConfig): number {
  if (attempt <= 0) return 0;
  const s = cfg.retry_backoff_s * 2 ** Math.min(attempt - 1, 30);
  return Math.round(Math.min(s, Math.max(cfg.retry_backoff_max_s, cfg.retry_backoff_s)) * 1000);
}
