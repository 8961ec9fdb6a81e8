/**
 * Gate 6, short side: a SELL is a short sale when it exceeds the long position the fund holds at
 * the order's broker, less that broker's pending sells (CONTRACT.md "Semantics"), whatever the
 * fund holds elsewhere: shares at `ibkr` cannot be delivered against a sale at `paper`. A short
 * sale needs shorting enabled, a known borrow fee within the ceiling, and a shortable instrument
 * or a locate (`locate_id` on the order). Position and pending sells per broker are kept
 * incrementally in the book: no scan per order.
 */
import { ZERO, approx, approxSign, canon } from "../decimal/index.js";
import { atBroker, pendingAtBroker } from "../state/book.js";
import { deny, type RiskGate } from "./types.js";

export const shortSideGate: RiskGate = {
  name: "short_side",
  check(order, lim, ctx) {
    if (order.side !== "SELL") return undefined;
    const held = ctx.book ? atBroker(ctx.book.pos.brokers, order.broker) : ZERO;
    const pending = ctx.book ? pendingAtBroker(ctx.book.pendSellByBroker, order.broker) : ZERO;
    // filtered exact (src/decimal/approx.ts): held − pending − quantity ≥ 0, exactly when not certain
    const h = approx(held);
    const p = approx(pending);
    const q = approx(order.quantity);
    const s = approxSign(h - p - q, Math.abs(h) + Math.abs(p) + Math.abs(q));
    if (s > 0 || (s === 0 && held.minus(pending).minus(order.quantity).gte(ZERO))) return undefined;
    if (lim.enable_shorting !== true) {
      return deny(
        "SHORTING_DISABLED",
        `selling ${canon(order.quantity)} ${order.symbol} would open a short; shorting is disabled`,
        {
          broker: order.broker,
          position: canon(held),
          pending_sells: canon(pending),
          fund_position: canon(ctx.book?.pos.qty ?? ZERO),
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
