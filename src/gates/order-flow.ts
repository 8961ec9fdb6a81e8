/**
 * Velocity-gate checks on the fund's order flow that come before the rate limits (the contract's
 * order: DUPLICATE_ORDER, MAX_OPEN_ORDERS_EXCEEDED, VELOCITY_EXCEEDED). Both are O(1): a keyed
 * lookup in the fund's duplicate index, and its incremental count of open (reserving) orders.
 */
import type { Order } from "../contract/schemas.js";
import type { Effective } from "../state/model.js";
import { findDuplicate } from "../state/duplicates.js";
import { type Denial, type GateContext, deny } from "./types.js";

/** Same symbol/side/type/quantity/limit/stop as an order decided under another key less than the window ago. */
export function checkDuplicate(order: Order, lim: Effective, ctx: GateContext): Denial | undefined {
  const w = lim.duplicate_window_ms;
  if (w === undefined || ctx.dupKey === undefined) return undefined;
  const prev = findDuplicate(ctx.fund.dups, ctx.dupKey, order.idempotency_key, ctx.now, w);
  if (!prev) return undefined;
  const ago = ctx.now - prev.at;
  return deny(
    "DUPLICATE_ORDER",
    `same ${order.side} ${order.order_type} ${order.symbol} order decided ${ago} ms ago under key ${prev.key}, window ${w} ms`,
    { previous_idempotency_key: prev.key, elapsed_ms: String(ago), window_ms: String(w) },
  );
}

/** Approved orders of the fund still open (reserving), plus this one, within the limit. */
export function checkOpenOrders(lim: Effective, ctx: GateContext): Denial | undefined {
  const m = lim.max_open_orders;
  if (m === undefined || ctx.fund.openOrders + 1 <= m) return undefined;
  const n = ctx.fund.openOrders + 1;
  return deny("MAX_OPEN_ORDERS_EXCEEDED", `${n} open orders with this one, limit ${m}`, {
    open_orders: String(n),
    limit: String(m),
  });
}
