/**
 * Gate 3, static limits: brokers, order types, asset classes, restricted symbols, size (quantity,
 * share of ADV, notional), collar, stale data (the order's mark, its FX rate).
 */
import { approx, approxSign, canon, pct } from "../decimal/index.js";
import { checkAdv, checkFx } from "./market-data.js";
import { deny, type RiskGate } from "./types.js";

export const staticGate: RiskGate = {
  name: "static",
  check(order, lim, ctx) {
    if (!(lim.allowed_brokers ?? []).includes(order.broker)) {
      return deny("BROKER_NOT_ALLOWED", `broker ${order.broker} is not allowed for ${lim.fund_id}`, {
        broker: order.broker,
      });
    }
    if (!(lim.allowed_order_types ?? []).includes(order.order_type)) {
      return deny("ORDER_TYPE_NOT_ALLOWED", `order type ${order.order_type} is not allowed`, {
        order_type: order.order_type,
      });
    }
    const classes = lim.allowed_asset_classes;
    if (classes !== undefined) {
      const ac = order.asset_class ?? ctx.instrument?.asset_class;
      if (ac === undefined || !(classes as readonly string[]).includes(ac)) {
        return deny(
          "ASSET_CLASS_NOT_ALLOWED",
          ac === undefined
            ? `asset class of ${order.symbol} is unknown (no asset_class, no refdata)`
            : `asset class ${ac} is not allowed`,
          { asset_class: ac ?? "" },
        );
      }
    }
    if (lim.restricted_symbols?.includes(order.symbol)) {
      return deny("SYMBOL_RESTRICTED", `${order.symbol} is restricted`, { symbol: order.symbol });
    }
    if (lim.max_order_qty !== undefined && order.quantity.gt(lim.max_order_qty)) {
      return deny(
        "MAX_ORDER_QTY_EXCEEDED",
        `quantity ${canon(order.quantity)} exceeds ${canon(lim.max_order_qty)}`,
        { quantity: canon(order.quantity), limit: canon(lim.max_order_qty) },
      );
    }
    if (lim.max_adv_pct !== undefined) {
      const d = checkAdv(order.symbol, order.quantity, lim.max_adv_pct, ctx.instrument?.adv);
      if (d) return d;
    }
    if (
      lim.max_order_notional !== undefined &&
      ctx.notional !== undefined &&
      ctx.notional.gt(lim.max_order_notional)
    ) {
      return deny(
        "MAX_ORDER_NOTIONAL_EXCEEDED",
        `notional ${canon(ctx.notional)} exceeds ${canon(lim.max_order_notional)}`,
        { notional: canon(ctx.notional), limit: canon(lim.max_order_notional) },
      );
    }
    const collar = lim.price_collar_pct;
    if (collar !== undefined && order.limit_price !== undefined && ctx.fresh && ctx.mark) {
      const mid = ctx.mark.mid;
      // filtered exact (src/decimal/approx.ts): |limit − mid| > collar × mid, exactly when not certain
      const l = approx(order.limit_price);
      const m = approx(mid);
      const c = approx(collar);
      const inBand =
        approxSign(Math.abs(l - m) - c * m, Math.abs(l) + Math.abs(m) + Math.abs(c) * Math.abs(m)) < 0;
      const band = inBand ? undefined : collar.times(mid);
      const off = inBand ? undefined : order.limit_price.minus(mid).abs();
      if (band !== undefined && off !== undefined && off.gt(band)) {
        return deny(
          "PRICE_COLLAR_BREACHED",
          `limit ${canon(order.limit_price)} is ${canon(off)} from mark ${canon(mid)}, collar ${pct(collar)}`,
          { limit_price: canon(order.limit_price), mark: canon(mid), band: canon(band) },
        );
      }
    }
    const needsMark =
      order.order_type === "MARKET" ||
      order.order_type === "STOP" ||
      collar !== undefined ||
      lim.require_fresh_mark === true;
    if (needsMark && !ctx.fresh) {
      const age = ctx.mark ? String(ctx.now - ctx.mark.ts) : "";
      const refused = ctx.mark?.refused;
      return deny(
        "STALE_MARKET_DATA",
        refused !== undefined
          ? `the latest quote for ${order.symbol} was refused (${refused}); no sound mark since`
          : ctx.mark
            ? `mark for ${order.symbol} is ${age} ms old`
            : `no mark for ${order.symbol}`,
        {
          symbol: order.symbol,
          quote_age_ms: age,
          ...(refused !== undefined ? { quote_refused: refused } : {}),
        },
      );
    }
    return checkFx(order.symbol, ctx);
  },
};
