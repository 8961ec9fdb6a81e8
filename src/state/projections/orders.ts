/** OMS_ORDERS: terminal order events release reservations. */
import { TERMINAL_ORDER_EVENTS } from "../../contract/codes.js";
import type { OrderEvent } from "../../contract/schemas.js";
import type { EngineState } from "../model.js";
import { getOrderRecord, syncReservation } from "./reservations.js";

export function applyOrderEvent(state: EngineState, e: OrderEvent): void {
  const r = getOrderRecord(state, e.fund_id, e.order_id, "");
  if (e.event === "accepted") r.accepted = true;
  else if (TERMINAL_ORDER_EVENTS.has(e.event)) {
    r.terminal = true;
    if (e.filled_quantity !== undefined && e.filled_quantity.gt(r.endFilled)) r.endFilled = e.filled_quantity;
  }
  r.touchedAt = Math.max(r.touchedAt, e.at);
  syncReservation(state, r);
}
