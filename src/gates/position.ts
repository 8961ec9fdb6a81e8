/**
 * Gate 4, position and exposure against NAV. Each figure is valued at its worst case: both
 * extremes of the symbol (the position at its mark plus every open buy reservation, and minus
 * every open sell reservation), this order added to its own side, and the larger of the two in
 * absolute value is the resulting exposure (pending orders on one side are never netted against
 * the other's). The contract's resulting exposure (position + every reservation + this order)
 * lies between the two extremes, so nothing it would refuse is approved; an extreme already over
 * the limit (a mark move, a lower NAV, a lowered limit) refuses every order that is not
 * risk-reducing, whatever its side. Sums are kept incrementally per fund, so the cost of a check
 * does not grow with the number of positions.
 *
 * Every limit is a filtered exact comparison (src/decimal/approx.ts): judged in float64 with an
 * error bound, and with exact `Dec` arithmetic (`over`, which also writes the denial's figures)
 * only when the float result is not certainly within the limit.
 */
import { type Dec, ZERO, approx, approxSign, canon, max, pct } from "../decimal/index.js";
import { nav } from "../state/book.js";
import type { Book } from "../state/model.js";
import { type Shadow, fundShadow, navApprox, shadowOf } from "../state/shadow.js";
import { type Denial, type GateContext, deny, type RiskGate } from "./types.js";

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

/**
 * The worst case of both extremes once the order is in: the long extreme (position + buy
 * reservations) and the short one (position − sell reservations), the order's signed notional `o`
 * added to its own side, the larger in absolute value. A symbol's extremes give the position limit
 * and its share of gross, sector and asset class; the fund's (netLong, netShort) give net.
 */
export function worstAfter(long: Dec, short: Dec, o: Dec, buy: boolean): Dec {
  return max((buy ? long.plus(o) : long).abs(), (buy ? short : short.plus(o)).abs());
}

/** The exact figures of the order's effect, computed only when a float comparison is not certain. */
interface Exact {
  navValue: Dec;
  o: Dec; // signed order notional
  exposureAfter: Dec; // the symbol's worst case after the order (worstAfter)
  delta: Dec;
}

function exactFigures(buy: boolean, ctx: GateContext, notional: Dec, navValue: Dec): Exact {
  const o = buy ? notional : notional.neg();
  const c = ctx.book?.contrib;
  const exposureAfter = worstAfter(c?.longExt ?? ZERO, c?.shortExt ?? ZERO, o, buy);
  return { navValue, o, exposureAfter, delta: exposureAfter.minus(c?.exposure ?? ZERO) };
}

/**
 * The same figures in float64, each with its magnitude (the error bound's scale, see approx.ts).
 * Module scratch: gates run synchronously, one at a time.
 */
const F = { nav: 0, navM: 0, o: 0, oM: 0, after: 0, afterM: 0, delta: 0, deltaM: 0 };
const navOut = { v: 0, m: 0 };
/** worstAfterF's answer: the worst case and its magnitude. */
const W = { v: 0, m: 0 };

/** worstAfter in float64 with its magnitude, for the order in F (`l`, `s`: the two extremes). */
function worstAfterF(l: number, s: number, buy: boolean): typeof W {
  const L = buy ? l + F.o : l;
  const S = buy ? s : s + F.o;
  W.v = Math.max(Math.abs(L), Math.abs(S));
  W.m = Math.max(buy ? Math.abs(l) + F.oM : Math.abs(l), buy ? Math.abs(s) : Math.abs(s) + F.oM);
  return W;
}

function floatFigures(buy: boolean, book: Book | undefined, notional: Dec): void {
  const n = approx(notional);
  const c = book?.contrib;
  // a book without reservations: both extremes are its market value, the exposure its magnitude
  // (derived when read: one product, taken once here; |approx(mv)| is approx(|mv|) exactly)
  const ext = c?.ext;
  const mv = c === undefined || ext !== undefined ? 0 : approx(c.mv);
  const e = ext !== undefined ? approx(ext.exposure) : Math.abs(mv);
  F.o = buy ? n : -n;
  F.oM = Math.abs(n);
  const w = worstAfterF(
    ext !== undefined ? approx(ext.longExt) : mv,
    ext !== undefined ? approx(ext.shortExt) : mv,
    buy,
  );
  F.after = w.v;
  F.afterM = w.m;
  F.delta = F.after - e;
  F.deltaM = F.afterM + Math.abs(e);
}

/** Not certainly `sum ≤ limitPct × NAV` (in float, with its bound): the exact path decides. */
function maybeOver(sum: number, sumM: number, limitPct: Dec, slot: Shadow): boolean {
  const p = shadowOf(slot, limitPct);
  return approxSign(sum - p * F.nav, sumM + Math.abs(p) * F.navM) >= 0;
}

export const positionGate: RiskGate = {
  name: "position",
  skipWhenReducing: true,
  check(order, lim, ctx) {
    const notional = ctx.notional;
    const sh = fundShadow(ctx.fund);
    if (notional === undefined || !navApprox(ctx.fund, sh, navOut)) return undefined; // engine/static gates cover these
    const buy = order.side === "BUY";
    F.nav = navOut.v;
    F.navM = navOut.m;
    floatFigures(buy, ctx.book, notional);
    let exact: Exact | undefined;
    const ex = (): Exact => (exact ??= exactFigures(buy, ctx, notional, nav(ctx.fund)!));
    const a = ctx.fund.agg;

    if (
      lim.max_position_pct !== undefined &&
      maybeOver(F.after, F.afterM, lim.max_position_pct, sh.limits[0]!)
    ) {
      const e = ex();
      const d = over(
        "MAX_POSITION_EXCEEDED",
        `position ${order.symbol}`,
        e.exposureAfter,
        lim.max_position_pct,
        e.navValue,
      );
      if (d) return d;
    }
    if (lim.max_gross_exposure_pct !== undefined) {
      const g = shadowOf(sh.gross, a.gross);
      if (maybeOver(g + F.delta, Math.abs(g) + F.deltaM, lim.max_gross_exposure_pct, sh.limits[1]!)) {
        const e = ex();
        const d = over(
          "GROSS_EXPOSURE_EXCEEDED",
          "gross exposure",
          a.gross.plus(e.delta),
          lim.max_gross_exposure_pct,
          e.navValue,
        );
        if (d) return d;
      }
    }
    if (lim.max_net_exposure_pct !== undefined) {
      // the fund's two extremes (every buy reservation filled, or every sell)
      const w = worstAfterF(shadowOf(sh.netLong, a.netLong), shadowOf(sh.netShort, a.netShort), buy);
      if (maybeOver(w.v, w.m, lim.max_net_exposure_pct, sh.limits[2]!)) {
        const e = ex();
        const net = worstAfter(a.netLong, a.netShort, e.o, buy);
        const d = over("NET_EXPOSURE_EXCEEDED", "net exposure", net, lim.max_net_exposure_pct, e.navValue);
        if (d) return d;
      }
    }
    if (lim.max_sector_pct !== undefined) {
      const sector = ctx.instrument?.sector;
      if (sector === undefined) {
        return deny("SECTOR_CONCENTRATION_EXCEEDED", `sector of ${order.symbol} is unknown (no refdata)`, {
          sector: "",
        });
      }
      const cur = a.sector.get(sector) ?? ZERO;
      const sf = approx(cur);
      if (maybeOver(sf + F.delta, Math.abs(sf) + F.deltaM, lim.max_sector_pct, sh.limits[3]!)) {
        const e = ex();
        const sum = cur.plus(e.delta);
        const d = over(
          "SECTOR_CONCENTRATION_EXCEEDED",
          `sector ${sector}`,
          sum,
          lim.max_sector_pct,
          e.navValue,
        );
        if (d) return { ...d, details: { ...d.details, sector } };
      }
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
        const same = ctx.book?.contrib.cat.assetClass === ac;
        const cur = a.assetClass.get(ac) ?? ZERO;
        const cf = approx(cur);
        const addF = same ? F.delta : F.after;
        const addM = same ? F.deltaM : F.afterM;
        if (maybeOver(cf + addF, Math.abs(cf) + addM, limitPct, sh.limits[4]!)) {
          const e = ex();
          const sum = cur.plus(same ? e.delta : e.exposureAfter);
          const d = over(
            "ASSET_CLASS_CONCENTRATION_EXCEEDED",
            `asset class ${ac}`,
            sum,
            limitPct,
            e.navValue,
          );
          if (d) return { ...d, details: { ...d.details, asset_class: ac } };
        }
      }
    }
    return undefined;
  },
};
