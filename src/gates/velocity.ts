/**
 * Velocity: orders and notional per fund in a sliding window. Every schema-valid, non-replayed
 * order of the fund counts (approved or not), this one included. Before the rates: duplicates
 * (duplicate_window_ms) and the count of open orders (max_open_orders), see order-flow.ts.
 */
import { ZERO, approx, approxSign, canon } from "../decimal/index.js";
import { velocityUsage } from "../state/velocity.js";
import { checkDuplicate, checkOpenOrders } from "./order-flow.js";
import { deny, type RiskGate } from "./types.js";

export const velocityGate: RiskGate = {
  name: "velocity",
  skipWhenReducing: true,
  check(order, lim, ctx) {
    const flow = checkDuplicate(order, lim, ctx) ?? checkOpenOrders(lim, ctx);
    if (flow) return flow;
    const v = lim.velocity;
    if (!v) return undefined;
    const used = velocityUsage(ctx.fund.velocity, ctx.now, v.window_s);
    if (v.max_orders !== undefined && used.count + 1 > v.max_orders) {
      return deny("VELOCITY_EXCEEDED", `${used.count + 1} orders in ${v.window_s}s, limit ${v.max_orders}`, {
        orders: String(used.count + 1),
        limit_orders: String(v.max_orders),
        window_s: String(v.window_s),
      });
    }
    if (v.max_notional !== undefined) {
      // filtered exact (src/decimal/approx.ts): used + this order ≤ the limit, exactly when not certain
      const u = approx(used.notional);
      const n = ctx.notional === undefined ? 0 : approx(ctx.notional);
      const m = approx(v.max_notional);
      if (approxSign(u + n - m, Math.abs(u) + Math.abs(n) + Math.abs(m)) < 0) return undefined;
      const total = used.notional.plus(ctx.notional ?? ZERO);
      if (total.gt(v.max_notional)) {
        return deny(
          "VELOCITY_EXCEEDED",
          `notional ${canon(total)} in ${v.window_s}s, limit ${canon(v.max_notional)}`,
          { notional: canon(total), limit_notional: canon(v.max_notional), window_s: String(v.window_s) },
        );
      }
    }
    return undefined;
  },
};
