/**
 * Gate 6, short side: an order that opens or adds to a short (a SELL beyond the long position,
 * counting pending sells) needs shorting enabled, a known borrow fee within the ceiling, and a
 * shortable instrument or a locate (`locate_id` on the order).
 */
import { ZERO, canon } from "../decimal/index.js";
import { deny, type RiskGate } from "./types.js";

export const shortSideGate: RiskGate = {
  name: "short_side",
  check(order, lim, ctx) {
    if (order.side !== "SELL") return undefined;
    const held = ctx.book?.pos.qty ?? ZERO;
    const pending = ctx.pendSellQty;
    if (held.minus(pending).minus(order.quantity).gte(ZERO)) return undefined;
    if (lim.enable_shorting !== true) {
      return deny(
        "SHORTING_DISABLED",
        `selling ${canon(order.quantity)} ${order.symbol} would open a short; shorting is disabled`,
        {
          position: canon(held),
          pending_sells: canon(pending),
        },
      );
    }
    if (lim.max_borrow_fee_bps !== undefined) {
      const fee = ctx.instrument?.borrow_fee_bps;
      if (fee === undefined || fee.gt(lim.max_borrow_fee_bps)) {
        return deny(
          "BORROW_FEE_TOO_HIGH",
          fee === undefined
            ? `borrow fee of ${order.symbol} is unknown`
            : `borrow fee ${canon(fee)} bps exceeds ${canon(lim.max_borrow_fee_bps)} bps`,
          { borrow_fee_bps: fee ? canon(fee) : "", limit_bps: canon(lim.max_borrow_fee_bps) },
        );
      }
    }
    if (ctx.instrument?.shortable !== true && order.locate_id === undefined) {
      return deny("LOCATE_REQUIRED", `${order.symbol} is not marked shortable: a locate_id is required`, {
        symbol: order.symbol,
      });
    }
    return undefined;
  },
};
