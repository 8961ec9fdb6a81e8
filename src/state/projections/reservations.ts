/** Reservations: approved orders not yet filled, cancelled, rejected or expired. Order-independent merge. */
import { ZERO, max } from "../../decimal/index.js";
import type { Reservation } from "../../contract/records.js";
import { getBook, revalue, touchBook } from "../book.js";
import { type EngineState, type OrderRecord, getFund, key2, markDeleted, touch } from "../model.js";

export function getOrderRecord(
  state: EngineState,
  fund: string,
  orderId: string,
  symbol: string,
): OrderRecord {
  const k = key2(fund, orderId);
  let r = state.orders.get(k);
  if (!r) {
    r = {
      fund,
      orderId,
      symbol,
      side: undefined,
      price: ZERO,
      approvals: new Map(),
      approved: ZERO,
      unconfirmed: new Set(),
      filled: ZERO,
      terminal: false,
      accepted: false,
      expiresAt: 0,
      reserved: ZERO,
      touchedAt: 0,
    };
    state.orders.set(k, r);
    state.orderExpiry.push({ at: 0, item: r });
  }
  return r;
}

/** Bring the book's pending quantities in line with what the record should reserve now. */
export function syncReservation(state: EngineState, r: OrderRecord, expired = false): void {
  const want = r.terminal || expired || r.side === undefined ? ZERO : max(ZERO, r.approved.minus(r.filled));
  const delta = want.minus(r.reserved);
  touch(state, "order", key2(r.fund, r.orderId));
  if (delta.eq(ZERO) || r.side === undefined) return;
  const fund = getFund(state, r.fund);
  const b = getBook(state, fund, r.symbol);
  const value = delta.times(r.price);
  if (r.side === "BUY") {
    b.pendBuyQty = b.pendBuyQty.plus(delta);
    b.pendBuyValue = b.pendBuyQty.eq(ZERO) ? ZERO : b.pendBuyValue.plus(value);
  } else {
    b.pendSellQty = b.pendSellQty.plus(delta);
    b.pendSellValue = b.pendSellQty.eq(ZERO) ? ZERO : b.pendSellValue.plus(value);
  }
  r.reserved = want;
  revalue(state, fund, b); // the book's row holds its position only: nothing to write for a reservation
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
    if (!live && r.unconfirmed.delete(idemKey)) touch(state, "order", key2(fund, res.order_id));
    return;
  }
  if (live) r.unconfirmed.add(idemKey);
  if (r.side === undefined) {
    r.side = res.side;
    r.price = res.price;
    r.symbol = res.symbol;
  }
  r.approvals.set(idemKey, res.quantity);
  r.approved = r.approved.plus(res.quantity);
  r.expiresAt = Math.max(r.expiresAt, res.expires_at_ms);
  r.touchedAt = Math.max(r.touchedAt, atMs);
  if (res.asset_class !== undefined) {
    const b = getBook(state, getFund(state, fund), res.symbol);
    if (b.assetClassHint === undefined) {
      b.assetClassHint = res.asset_class;
      touchBook(state, b);
    }
  }
  syncReservation(state, r);
}

/** Removes an approval applied live and never confirmed by the journal (its write failed for certain). */
export function revokeApproval(state: EngineState, fund: string, idemKey: string, orderId: string): void {
  const r = state.orders.get(key2(fund, orderId));
  if (!r || !r.unconfirmed.has(idemKey)) return;
  const q = r.approvals.get(idemKey);
  r.unconfirmed.delete(idemKey);
  r.approvals.delete(idemKey);
  if (q !== undefined) r.approved = r.approved.minus(q);
  syncReservation(state, r);
}

export function deadlineOf(r: OrderRecord, ttl: number): number {
  return r.expiresAt > 0 ? r.expiresAt : r.touchedAt + ttl;
}

/**
 * Release what has expired by `now` and forget records that can no longer matter.
 * Called by the live engine periodically and by a rebuild at its end, with the clock.
 */
export function sweepReservations(state: EngineState, now: number): number {
  const q = state.orderExpiry;
  const ttl = state.settings.reservationTtlMs;
  let released = 0;
  for (let top = q.peek(); top !== undefined && top.at <= now; top = q.peek()) {
    q.pop();
    const r = top.item;
    const k = key2(r.fund, r.orderId);
    if (state.orders.get(k) !== r) continue; // already forgotten
    const due = deadlineOf(r, ttl);
    if (due > now) {
      q.push({ at: due, item: r }); // its deadline moved on since it was queued
      continue;
    }
    if (r.reserved.gt(ZERO)) released++;
    syncReservation(state, r, true);
    state.orders.delete(k);
    markDeleted(state, "order", k);
  }
  return released;
}

/** Still working at the OMS/broker: not terminal, and either reserving or accepted without approval. */
export function isOpenOrder(r: OrderRecord): boolean {
  return !r.terminal && (r.reserved.gt(ZERO) || (r.accepted && r.approvals.size === 0));
}
