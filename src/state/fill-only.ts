/**
 * A rebuild's orders seen in fills alone (issue 11). A fill of an order with no record creates one
 * (its id is in use: DUPLICATE_ORDER_ID) that reserves nothing, and in a rebuild most are forgotten
 * again by the closing sweep (their TTL after their last fill passed long ago). While a rebuild
 * folds (`EngineState.fillOnly` set), such an order is kept as what the record would hold (first
 * fill's symbol, quantity filled, last fill's time) and the record is made only when something
 * else about the order arrives (getOrderRecord, projections/reservations.ts) or, at the sweep,
 * when it is still within its TTL. Equal, field for field, to folding eagerly: a record of fills
 * alone changes nothing but `filled` and `touchedAt`, and the sweep forgets it exactly when
 * `touchedAt + TTL <= now` (deadlineOf: no approval, so not held).
 */
import type { Dec } from "../decimal/index.js";

export interface FillOnlyOrder {
  /** The first fill's symbol (the record's, as getOrderRecord made it). */
  readonly symbol: string;
  filled: Dec;
  touchedAt: number;
}

/** By fund, then order id (no joined key made per fill). */
export type FillOnlyOrders = Map<string, Map<string, FillOnlyOrder>>;

export function createFillOnlyOrders(): FillOnlyOrders {
  return new Map();
}

/** The entry of this order, removed (its record is being made), if any. */
export function takeFillOnly(all: FillOnlyOrders, fund: string, orderId: string): FillOnlyOrder | undefined {
  const m = all.get(fund);
  const e = m?.get(orderId);
  if (e !== undefined) m!.delete(orderId);
  return e;
}
