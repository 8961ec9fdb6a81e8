/** FILLS: positions with average cost, realized P&L and fees; releases reservations. */
import type { Fill } from "../../contract/schemas.js";
import { ZERO, div, min } from "../../decimal/index.js";
import { getBook, revalueOrDefer, touchBook } from "../book.js";
import { type EngineState, getFund } from "../model.js";
import { getOrderRecord, noteFillOnly, syncReservation } from "./reservations.js";
import { boundedByStream } from "./stream-time.js";

export type FillOutcome = "applied" | "duplicate";

/** `storedMs`: when the stream stored the fill (epoch ms), if known: it bounds how far the fill's
 * timestamp moves the fill-id watermark (boundedByStream). */
export function applyFill(state: EngineState, f: Fill, storedMs?: number): FillOutcome {
  if (state.fillIds.has(f.fill_id)) return "duplicate";
  rememberFillId(state, f.fill_id, boundedByStream(f.timestamp, storedMs));

  const fund = getFund(state, f.fund_id);
  const b = getBook(state, fund, f.symbol);
  const p = b.pos;
  const q = f.quantity;
  const buy = f.side === "BUY";
  const Q = p.qty;
  if (Q.eq(ZERO) || Q.s > 0 === buy) {
    p.qty = buy ? Q.plus(q) : Q.minus(q);
    p.cost = p.cost.plus(q.times(f.price));
  } else {
    const absQ = Q.abs();
    const closed = min(q, absQ);
    const removed = closed.eq(absQ) ? p.cost : div(p.cost.times(closed), absQ);
    // an ADJUSTMENT (reconciler adoption) is booked at cost: it moves quantity, never P&L
    const proceeds = f.kind === "ADJUSTMENT" ? removed : closed.times(f.price);
    p.realized = p.realized.plus(Q.s > 0 ? proceeds.minus(removed) : removed.minus(proceeds));
    p.cost = p.cost.minus(removed);
    p.qty = buy ? Q.plus(closed) : Q.minus(closed);
    const rest = q.minus(closed);
    if (rest.gt(ZERO)) {
      p.qty = buy ? rest : rest.neg();
      p.cost = rest.times(f.price);
    } else if (p.qty.eq(ZERO)) {
      p.cost = ZERO;
    }
  }
  p.fees = p.fees.plus(f.fees);
  const bq = p.brokers.get(f.broker) ?? ZERO;
  // the position moved by ±q as well: one held at this broker alone shares its quantity (no new Dec)
  const nbq = bq === Q ? p.qty : buy ? bq.plus(q) : bq.minus(q);
  if (nbq.eq(ZERO)) p.brokers.delete(f.broker);
  else p.brokers.set(f.broker, nbq);

  if (f.kind !== "ADJUSTMENT" && !noteFillOnly(state, f.fund_id, f.order_id, f.symbol, q, f.timestamp)) {
    const r = getOrderRecord(state, f.fund_id, f.order_id, f.symbol);
    r.filled = r.filled.plus(q);
    r.touchedAt = Math.max(r.touchedAt, f.timestamp);
    syncReservation(state, r);
  }
  revalueOrDefer(state, fund, b);
  touchBook(state, b);
  return "applied";
}

function rememberFillId(state: EngineState, id: string, ts: number): void {
  state.fillIds.add(id, ts); // written by the next flush (state/fill-store.ts)
  if (ts > state.fillWatermark) state.fillWatermark = ts;
  state.fillIds.prune(state.fillWatermark - state.settings.fillDedupeWindowMs);
}
