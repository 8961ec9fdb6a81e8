/**
 * Gate 4, position and exposure against NAV. Each side is valued at its worst case: the
 * position at its mark plus every open reservation on the order's side plus this order
 * (pending orders on the other side are not netted against it). Sums are kept incrementally
 * per fund, so the cost of a check does not grow with the number of positions.
 */
import { type Dec, ZERO, canon, max, pct } from "../decimal/index.js";
import { nav } from "../state/book.js";
import { type Denial, deny, type RiskGate } from "./types.js";

function over(
  code: Denial["code"],
  what: string,
  resulting: Dec,
  limitPct: Dec,
  navValue: Dec,
): Denial | undefined {
  const limit = limitPct.times(navValue);
  if (resulting.lte(limit)) return undefined;
  const share = navValue.gt(ZERO) ? pct(resulting.div(navValue)) : "∞";
  return deny(code, `${what} would be ${share} of NAV, limit ${pct(limitPct)}`, {
    resulting_notional: canon(resulting),
    limit_notional: canon(limit),
    nav: canon(navValue),
  });
}

export const positionGate: RiskGate = {
  name: "position",
  skipWhenReducing: true,
  check(order, lim, ctx) {
    const navValue = nav(ctx.fund);
    if (navValue === undefined || ctx.notional === undefined) return undefined; // engine/static gates cover these
    const buy = order.side === "BUY";
    const o = buy ? ctx.notional : ctx.notional.neg();
    const c = ctx.book?.contrib;
    const longExt = c?.longExt ?? ZERO;
    const shortExt = c?.shortExt ?? ZERO;
    const exposure = c?.exposure ?? ZERO;
    const L = buy ? longExt.plus(o) : longExt;
    const S = buy ? shortExt : shortExt.plus(o);
    const resulting = buy ? L.abs() : S.abs();
    const exposureAfter = max(L.abs(), S.abs());
    const delta = exposureAfter.minus(exposure);
    const a = ctx.fund.agg;

    if (lim.max_position_pct !== undefined) {
      const d = over(
        "MAX_POSITION_EXCEEDED",
        `position ${order.symbol}`,
        resulting,
        lim.max_position_pct,
        navValue,
      );
      if (d) return d;
    }
    if (lim.max_gross_exposure_pct !== undefined) {
      const d = over(
        "GROSS_EXPOSURE_EXCEEDED",
        "gross exposure",
        a.gross.plus(delta),
        lim.max_gross_exposure_pct,
        navValue,
      );
      if (d) return d;
    }
    if (lim.max_net_exposure_pct !== undefined) {
      const net = (buy ? a.netLong : a.netShort).plus(o).abs();
      const d = over("NET_EXPOSURE_EXCEEDED", "net exposure", net, lim.max_net_exposure_pct, navValue);
      if (d) return d;
    }
    if (lim.max_sector_pct !== undefined) {
      const sector = ctx.instrument?.sector;
      if (sector === undefined) {
        return deny("SECTOR_CONCENTRATION_EXCEEDED", `sector of ${order.symbol} is unknown (no refdata)`, {
          sector: "",
        });
      }
      const sum = (a.sector.get(sector) ?? ZERO).plus(delta);
      const d = over("SECTOR_CONCENTRATION_EXCEEDED", `sector ${sector}`, sum, lim.max_sector_pct, navValue);
      if (d) return { ...d, details: { ...d.details, sector } };
    }
    const classLimits = lim.max_asset_class_pct;
    if (classLimits !== undefined && Object.keys(classLimits).length > 0) {
      const ac = ctx.assetClass;
      if (ac === undefined) {
        return deny("ASSET_CLASS_CONCENTRATION_EXCEEDED", `asset class of ${order.symbol} is unknown`, {
          asset_class: "",
        });
      }
      const limitPct = (classLimits as Record<string, Dec | undefined>)[ac];
      if (limitPct !== undefined) {
        const bookClass = c?.assetClass;
        const sum = (a.assetClass.get(ac) ?? ZERO).plus(bookClass === ac ? delta : exposureAfter);
        const d = over("ASSET_CLASS_CONCENTRATION_EXCEEDED", `asset class ${ac}`, sum, limitPct, navValue);
        if (d) return { ...d, details: { ...d.details, asset_class: ac } };
      }
    }
    return undefined;
  },
};
