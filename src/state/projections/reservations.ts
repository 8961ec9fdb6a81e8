/**
 * Reservations: approved orders not yet filled, cancelled, rejected or expired. Order-independent
 * merge of the decision, the fills and the OMS events of an order id. `reservations.ttl_s` releases
 * only an order the OMS never acknowledged: once `accepted` or partly filled, it reserves until a
 * terminal event or its last fill (an acknowledgement after the TTL makes it reserve again: it is
 * working at a broker, whenever the OMS said so).
 */
import { type Dec, ZERO, max, min } from "../../decimal/index.js";
import type { Reservation } from "../../contract/records.js";
import { getBook, revalueOrDefer, touchBook } from "../book.js";
import {
  type EngineState,
  type OrderRecord,
  NO_APPROVALS,
  NO_KEYS,
  NO_PENDING,
  getFund,
  key2,
  markDeleted,
  own,
  ownSet,
  touch,
} from "../model.js";
import { type FillOnlyOrder, takeFillOnly } from "../fill-only.js";

export function getOrderRecord(
  state: EngineState,
  fund: string,
  orderId: string,
  symbol: string,
): OrderRecord {
  const k = key2(fund, orderId);
  let r = state.orders.hot(k);
  if (r) return r;
  r = state.orders.promote(k); // an ended record read back from disk, to change
  if (r) {
    state.orderExpiry.push({ at: 0, item: r });
    return r;
  }
  // an order seen in fills alone while a rebuild folds (state/fill-only.ts): its record now
  const seen = state.fillOnly && takeFillOnly(state.fillOnly, fund, orderId);
  if (seen) {
    r = newOrderRecord(state, fund, orderId, k, seen.symbol, seen.filled, seen.touchedAt);
    touch(state, "order", k); // the row its fills would have marked
    return r;
  }
  return newOrderRecord(state, fund, orderId, k, symbol, ZERO, 0);
}

function newOrderRecord(
  state: EngineState,
  fund: string,
  orderId: string,
  k: string,
  symbol: string,
  filled: Dec,
  touchedAt: number,
): OrderRecord {
  const r: OrderRecord = {
    fund,
    orderId,
    key: k,
    symbol,
    side: undefined,
    broker: undefined,
    price: ZERO,
    approvals: NO_APPROVALS,
    approved: ZERO,
    unconfirmed: NO_KEYS,
    filled,
    terminal: false,
    endFilled: ZERO,
    accepted: false,
    expiresAt: 0,
    lapsed: false,
    reserved: ZERO,
    touchedAt,
    queued: true,
  };
  state.orders.set(k, r);
  state.orderExpiry.push({ at: 0, item: r });
  return r;
}

/**
 * A TRADE fill's share of its order while a rebuild folds (`state.fillOnly`): noted without a
 * record when the order has none (false: it has one, or no rebuild; the caller merges it). What
 * getOrderRecord + the fill's merge + syncReservation would do to a record of fills alone: the
 * first fill's symbol, `filled` summed, `touchedAt` the latest; it reserves nothing.
 */
export function noteFillOnly(
  state: EngineState,
  fund: string,
  orderId: string,
  symbol: string,
  qty: Dec,
  at: number,
): boolean {
  const all = state.fillOnly;
  if (!all) return false;
  let m = all.get(fund);
  const e = m?.get(orderId);
  if (e) {
    e.filled = e.filled.plus(qty);
    e.touchedAt = Math.max(e.touchedAt, at);
    return true;
  }
  // no record anywhere (the usual case in a rebuild: the fills stream comes before the others)
  if (state.orders.size > 0 && state.orders.has(key2(fund, orderId))) return false;
  if (!m) all.set(fund, (m = new Map<string, FillOnlyOrder>()));
  m.set(orderId, { symbol, filled: qty, touchedAt: Math.max(0, at) });
  return true;
}

/**
 * Ends the rebuild's noting of orders seen in fills alone: each one still within its TTL at `now`
 * becomes its record; the others are what the sweep would forget (touchedAt + TTL <= now).
 */
function settleFillOnly(state: EngineState, now: number): void {
  const all = state.fillOnly;
  if (!all) return;
  state.fillOnly = undefined;
  const ttl = state.settings.reservationTtlMs;
  for (const [fund, m] of all) {
    for (const [orderId, e] of m) {
      if (e.touchedAt + ttl <= now) continue;
      const k = key2(fund, orderId);
      newOrderRecord(state, fund, orderId, k, e.symbol, e.filled, e.touchedAt);
      touch(state, "order", k); // the row its fills would have marked
    }
  }
}

/** The OMS acknowledged it: `accepted`, a fill seen, or an end event reporting a fill. */
export const acknowledged = (r: OrderRecord): boolean =>
  r.accepted || r.filled.gt(ZERO) || r.endFilled.gt(ZERO);

/** Working and acknowledged: reserves whatever the TTL, and is never forgotten until it ends. */
export const held = (r: OrderRecord): boolean =>
  !r.terminal && r.side !== undefined && acknowledged(r) && r.approved.gt(r.filled);

/**
 * Bring the book's pending quantities in line with what the record should reserve now.
 * `revalueBook` false: the caller revalues the book afterwards (a load revalues every book once).
 */
export function syncReservation(state: EngineState, r: OrderRecord, revalueBook = true): void {
  if (r.lapsed && acknowledged(r)) {
    // acknowledged after its TTL passed (a late `accepted`, fill or end event): working after all,
    // no longer a lapsed record kept for a late acknowledgement; its heap entry waits for that
    // longer deadline, so it is queued again for the one it has now (a rebuild never lapsed it)
    r.lapsed = false;
    if (r.queued && !held(r)) state.orderExpiry.push({ at: 0, item: r });
  }
  const released = r.side === undefined || (r.lapsed && !acknowledged(r));
  // ended: only what the OMS said was filled and FILLS has not brought yet (at most the approval)
  const want = released
    ? ZERO
    : r.terminal
      ? max(ZERO, min(r.endFilled, r.approved).minus(r.filled))
      : max(ZERO, r.approved.minus(r.filled));
  const delta = want.minus(r.reserved);
  touch(state, "order", r.key);
  if (!r.queued && !held(r)) {
    // it ended (or lost its acknowledgement on a reload): back in the heap to be forgotten in time
    r.queued = true;
    state.orderExpiry.push({ at: 0, item: r });
  }
  if (delta.eq(ZERO) || r.side === undefined) return;
  const fund = getFund(state, r.fund);
  const b = getBook(state, fund, r.symbol);
  const value = delta.times(r.price);
  if (r.side === "BUY") {
    b.pendBuyQty = b.pendBuyQty.plus(delta);
    b.pendBuyValue = b.pendBuyQty.eq(ZERO) ? ZERO : b.pendBuyValue.plus(value);
    b.pendBuyByBroker = addPending(b.pendBuyByBroker, r.broker ?? "", delta);
  } else {
    b.pendSellQty = b.pendSellQty.plus(delta);
    b.pendSellValue = b.pendSellQty.eq(ZERO) ? ZERO : b.pendSellValue.plus(value);
    b.pendSellByBroker = addPending(b.pendSellByBroker, r.broker ?? "", delta);
  }
  // max_open_orders: an order is open while it reserves (released exactly as its reservation is)
  const wasOpen = r.reserved.gt(ZERO);
  const isOpen = want.gt(ZERO);
  if (wasOpen !== isOpen) fund.openOrders += isOpen ? 1 : -1;
  r.reserved = want;
  touchBook(state, b); // the book's row holds its reservations' sums (a load leaves open orders on disk)
  if (revalueBook) revalueOrDefer(state, fund, b);
}

/** The pending map with `delta` added at `broker` (a new map in place of the shared empty one). */
function addPending(m: Map<string, Dec>, broker: string, delta: Dec): Map<string, Dec> {
  const next = (m.get(broker) ?? ZERO).plus(delta);
  if (next.eq(ZERO)) {
    m.delete(broker);
    return m.size === 0 ? NO_PENDING : m;
  }
  const out = own(m);
  out.set(broker, next);
  return out;
}

export function applyApproval(
  state: EngineState,
  fund: string,
  idemKey: string,
  res: Reservation,
  atMs: number,
  live = false,
): void {
  const r = getOrderRecord(state, fund, res.order_id, res.symbol);
  if (r.approvals.has(idemKey)) {
    // idempotent; the journal's copy confirms an approval the engine applied live
    if (!live && r.unconfirmed.delete(idemKey)) touch(state, "order", r.key);
    return;
  }
  if (live) (r.unconfirmed = ownSet(r.unconfirmed)).add(idemKey);
  if (r.side === undefined) {
    r.side = res.side;
    r.broker = res.broker;
    r.price = res.price;
    r.symbol = res.symbol;
  }
  (r.approvals = own(r.approvals)).set(idemKey, res.quantity);
  r.approved = r.approved.plus(res.quantity);
  r.expiresAt = Math.max(r.expiresAt, res.expires_at_ms);
  r.touchedAt = Math.max(r.touchedAt, atMs);
  if (res.asset_class !== undefined) {
    // the class the latest approval stated (journal order: the same in a rebuild). The check refuses
    // another class while the book holds a position or a reservation (checkRefdataClass), so it
    // changes only on a book with nothing in it (red team, stop 30: the first approval's class was
    // kept for ever, and a flat book could never be traded as anything else)
    const b = getBook(state, getFund(state, fund), res.symbol);
    if (b.assetClassHint !== res.asset_class) {
      b.assetClassHint = res.asset_class;
      touchBook(state, b);
    }
  }
  syncReservation(state, r);
}

/** Removes an approval applied live and never confirmed by the journal (its write failed for certain). */
export function revokeApproval(state: EngineState, fund: string, idemKey: string, orderId: string): void {
  const r = state.orders.hot(key2(fund, orderId)); // a record on disk has nothing unconfirmed
  if (!r || !r.unconfirmed.has(idemKey)) return;
  const q = r.approvals.get(idemKey);
  r.unconfirmed.delete(idemKey);
  r.approvals.delete(idemKey);
  if (q !== undefined) r.approved = r.approved.minus(q);
  syncReservation(state, r);
}

/** What an order record's deadlines derive from (the state's settings). */
export type OrderHorizon = { reservationTtlMs: number; idempotencyWindowMs: number };

/**
 * When the record next needs the sweep: its TTL release (approved, never acknowledged), else when
 * it may be forgotten: after its TTL release, the longer of the TTL and the idempotency window (an
 * acknowledgement or a fill that comes meanwhile finds the approval and the order reserves again:
 * it is working at a broker after all; one forgotten sooner would reserve nothing live, and again
 * in a rebuild, which sweeps only at its end, so live and rebuilt states would disagree), or a TTL
 * after it was last touched once it ended, so that a late fill or event still merges. Infinity
 * while held (re-queued when it ends).
 */
export function deadlineOf(r: OrderRecord, h: OrderHorizon): number {
  if (held(r)) return Infinity;
  const ttl = h.reservationTtlMs;
  if (r.expiresAt === 0) return r.touchedAt + ttl; // fills or events only, no approval seen
  const working = !r.terminal && r.approved.gt(r.filled);
  if (working && !r.lapsed) return r.expiresAt;
  // kept longer while a late acknowledgement may still come; once one came (an end event that
  // reports fills, say), whether a sweep saw the TTL pass first no longer matters: a rebuild, which
  // sweeps only at its end, never sees it lapse, and both must forget it at the same time
  const keep = r.lapsed && !acknowledged(r) ? Math.max(ttl, h.idempotencyWindowMs) : 0;
  return Math.max(r.expiresAt + keep, r.touchedAt + ttl);
}

/**
 * The records in memory whose deadline came by `now`: an approval never acknowledged within its TTL
 * stops reserving, an ended record is forgotten. Memory only (a heap peek when nothing is due): a
 * check runs it before its gates, so an order past its TTL never counts against the next one while
 * it waits for the periodic sweep (red team, stop 30: refused for up to a second after each TTL,
 * and after a restart until the first sweep). Returns how many reservations it released.
 */
export function releaseDue(state: EngineState, now: number): number {
  const q = state.orderExpiry;
  let released = 0;
  for (let top = q.peek(); top !== undefined && top.at <= now; top = q.peek()) {
    q.pop();
    const r = top.item;
    const k = r.key;
    if (state.orders.hot(k) !== r) continue; // already forgotten (or on disk: sweepReservations)
    if (!r.lapsed && r.expiresAt > 0 && r.expiresAt <= now && !acknowledged(r)) {
      // the TTL passed and the OMS never acknowledged it: it stops reserving
      if (r.reserved.gt(ZERO)) released++;
      r.lapsed = true;
      syncReservation(state, r);
    }
    const due = deadlineOf(r, state.settings);
    if (due === Infinity) {
      r.queued = false; // held: syncReservation queues it again when it ends
      continue;
    }
    if (due > now) {
      q.push({ at: due, item: r }); // its deadline moved on since it was queued
      continue;
    }
    r.terminal = true; // forgotten: whatever it still reserved is released with it
    r.endFilled = ZERO; // fills the OMS reported and FILLS never brought included
    syncReservation(state, r);
    state.orders.delete(k);
    markDeleted(state, "order", k);
  }
  return released;
}

/**
 * Release what has expired by `now` and forget records that can no longer matter.
 * Called by the live engine periodically and by a rebuild at its end, with the clock.
 */
export function sweepReservations(state: EngineState, now: number): number {
  settleFillOnly(state, now); // a rebuild's orders seen in fills alone (state/fill-only.ts)
  const q = state.orderExpiry;
  let released = 0;
  // open records a load left on disk whose deadline came: read back, and handled as queued ones
  for (const k of state.orders.warmDue(now)) {
    const r = state.orders.promote(k);
    if (r) q.push({ at: 0, item: r });
  }
  released += releaseDue(state, now);
  // the ended records on disk whose time came (their forgetting is a column of their row)
  for (const k of state.orders.sweep(now)) markDeleted(state, "order", k);
  return released;
}

/**
 * Ended for good, as far as memory goes: reserving nothing, nothing unconfirmed, and either done
 * or an order this engine never approved that no OMS event says is working (known from fills or
 * events alone: the fills of orders decided elsewhere, or long ago). Such a record can leave
 * memory once the snapshot has it (state/order-store.ts); it only waits for a late fill, event or
 * decision (each reads it back: getOrderRecord) and names its order id until the sweep forgets it.
 */
export const isCold = (r: OrderRecord): boolean =>
  (isOrderDone(r) || (r.approvals.size === 0 && !r.accepted) || (r.lapsed && !acknowledged(r))) &&
  r.reserved.eq(ZERO) &&
  r.unconfirmed.size === 0;

/**
 * When the sweep forgets a cold record left alone: its deadline, or, for one never acknowledged
 * whose TTL passed (the sweep marks it lapsed first), the later deadline of a lapsed record.
 */
export function forgetAt(r: OrderRecord, h: OrderHorizon): number {
  if (!r.lapsed && r.expiresAt > 0 && !acknowledged(r)) return deadlineOf({ ...r, lapsed: true }, h);
  return deadlineOf(r, h);
}

/**
 * Done: a terminal OMS event, or filled its whole quantity (the approved quantity, or `quantity`
 * when the engine knows the order otherwise, e.g. a closing order it emitted): a fully filled
 * order is closed even when the OMS sends no event.
 */
export function isOrderDone(r: OrderRecord, quantity?: Dec): boolean {
  if (r.terminal) return true;
  const q = r.approvals.size > 0 ? r.approved : quantity;
  return q !== undefined && q.gt(ZERO) && r.filled.gte(q);
}

/**
 * Still working at the OMS/broker: not done, and either reserving, accepted without approval, or
 * of a known quantity not yet filled.
 */
export function isOpenOrder(r: OrderRecord, quantity?: Dec): boolean {
  if (isOrderDone(r, quantity)) return false;
  return r.reserved.gt(ZERO) || (r.accepted && r.approvals.size === 0) || quantity !== undefined;
}
