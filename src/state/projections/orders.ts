/** OMS_ORDERS: terminal order events release reservations. */
import { TERMINAL_ORDER_EVENTS } from "../../contract/codes.js";
import type { OrderEvent } from "../../contract/schemas.js";
import { type EngineState, key2 } from "../model.js";
import { getOrderRecord, syncReservation } from "./reservations.js";

export function applyOrderEvent(state: EngineState, e: OrderEvent): void {
  const existing = state.orders.get(key2(e.fund_id, e.order_id));
  const r = existing ?? getOrderRecord(state, e.fund_id, e.order_id, "");
  if (e.event === "accepted") r.accepted = true;
  else if (TERMINAL_ORDER_EVENTS.has(e.event)) r.terminal = true;
  r.touchedAt = Math.max(r.touchedAt, e.at);
  syncReservation(state, r);
}
