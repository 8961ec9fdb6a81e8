/**
 * Soft limits (envelope `warn_at_pct`): when an approved decision or a fill takes one of the fund's
 * exposure measures above that share of its limit, one `limit_warning` alert
 * (mts.v1.risk.alert.limit_warning.<fund_id>) per upward crossing; the measure re-arms once an
 * event finds it back at or below the share. Measures, valued as the position gate values them
 * (positions at marks plus reservations, in the base currency), against the fund-level limits:
 * `position` (the symbol of the event), `gross`, `net`, `sector` and `asset_class` (those of the
 * symbol). O(1) per event (the aggregates are incremental), but every book of the fund after a fill
 * that lowered NAV (every limit fell with it; at most once a second). The armed/crossed state is the live
 * engine's alone (alerts carry no state): after a restart a measure above its share warns once more.
 */
import { type Dec, ZERO, canon, div, max } from "../decimal/index.js";
import { nav, settle } from "../state/book.js";
import { type Book, type FundState, key2 } from "../state/model.js";
import type { Change, Worker, WorkerContext } from "./types.js";

export const LIMIT_WARNING = "limit_warning";

/** Every book of the fund (see measures()). */
const ALL = Symbol("all books");
/** How often a fund whose NAV fell has every book judged again. */
const SCAN_EVERY_MS = 1000;

export interface LimitWarnings extends Worker {
  /** After an approved decision of the fund on the symbol (its reservation moved the measures). */
  afterDecision(fundId: string, symbol: string, decisionId: string): void;
  /** Checks the fund's measures touched by the symbol; returns the measures that crossed now. */
  evaluate(fund: FundState, symbol: string | undefined, eventId: string): string[];
}

interface Measure {
  measure: "position" | "gross" | "net" | "sector" | "asset_class";
  scope: string;
  value: Dec;
  limitPct: Dec | undefined;
}

export function createLimitWarnings(ctx: WorkerContext): LimitWarnings {
  const { state } = ctx;
  /** fund -> measures (`measure|scope`) currently above their share. */
  const above = new Map<string, Set<string>>();
  /** fund -> the NAV every book was last judged at (a rise raises it), and when. */
  const lastScan = new Map<string, { nav: Dec; at: number }>();

  /** The keys (`measure|scope`) of one book's measures: its position, its sector's, its class's. */
  function bookKeys(b: Book, into: Set<string>): void {
    const c = b.contrib.cat;
    into.add(`position|${b.symbol}`);
    if (c.sector !== undefined) into.add(`sector|${c.sector}`);
    if (c.assetClass !== undefined) into.add(`asset_class|${c.assetClass}`);
  }

  /**
   * The fund-level measures and those of `symbol`'s book, or of every book (`ALL`: after NAV fell,
   * every limit fell with it).
   */
  function measures(fund: FundState, symbol: string | undefined | typeof ALL): Measure[] {
    const keys = new Set<string>(["gross|fund", "net|fund"]);
    if (symbol === ALL) for (const b of fund.books.values()) bookKeys(b, keys);
    else {
      const b = symbol === undefined ? undefined : fund.books.get(symbol);
      if (b) bookKeys(b, keys);
    }
    const out: Measure[] = [];
    for (const k of keys) {
      const m = measureByKey(fund, k);
      if (m) out.push(m);
    }
    return out;
  }

  /**
   * `rearmOnly`: an event that is neither a decision nor a fill (an OMS event releasing a
   * reservation) only re-arms the measures it finds at or below their share, so that the next
   * decision or fill taking one above again is a new upward crossing; it warns about nothing.
   */
  function evaluate(
    fund: FundState,
    symbol: string | undefined | typeof ALL,
    eventId: string,
    rearmOnly = false,
  ): string[] {
    const share = fund.envelope?.envelope.warn_at_pct;
    if (share === undefined) return [];
    settle(fund); // conflated quotes folded in before the measures are read
    const navValue = nav(fund);
    if (navValue === undefined || !navValue.gt(ZERO)) return [];
    // NAV below what the last scan saw: every limit (pct × NAV) fell, so a measure of any book may
    // be above its share now, not only the event's (a fee or a loss elsewhere). Every book is
    // scanned then, at most once a second per fund (nearly every fill pays a fee): a crossing by
    // NAV alone is warned at the first event after that second.
    let scope: string | undefined | typeof ALL = symbol;
    if (!rearmOnly) {
      const at = ctx.clock.now();
      const last = lastScan.get(fund.id);
      if (last === undefined) lastScan.set(fund.id, { nav: navValue, at: -Infinity });
      else if (navValue.lt(last.nav) && at - last.at >= SCAN_EVERY_MS) {
        scope = ALL;
        lastScan.set(fund.id, { nav: navValue, at });
      } else if (navValue.gt(last.nav)) last.nav = navValue;
    }
    let set = above.get(fund.id);
    const crossed: string[] = [];
    for (const m of measures(fund, scope)) {
      if (m.limitPct === undefined) continue;
      const limit = m.limitPct.times(navValue);
      const k = `${m.measure}|${m.scope}`;
      if (!m.value.gt(share.times(limit))) {
        set?.delete(k);
        continue;
      }
      if (rearmOnly) continue;
      if (!set) above.set(fund.id, (set = new Set()));
      if (set.has(k)) continue;
      set.add(k);
      crossed.push(k);
      const used = limit.gt(ZERO) ? canon(div(m.value, limit).round(6, 2)) : "";
      const what = m.scope === "fund" ? m.measure : `${m.measure} ${m.scope}`;
      ctx.alerter.alert(
        LIMIT_WARNING,
        fund.id,
        `${what} is ${canon(m.value)}, above ${canon(share)} of its limit ${canon(limit)}`,
        {
          measure: m.measure,
          scope: m.scope,
          value: canon(m.value),
          limit: canon(limit),
          share: used,
          warn_at_pct: canon(share),
        },
        `limit_warning:${fund.id}:${k}:${eventId}`,
      );
    }
    return crossed;
  }

  /** The measure a key of the `above` set names, as measures() values it. */
  function measureByKey(fund: FundState, k: string): Measure | undefined {
    const lim = fund.envelope!.base;
    const a = fund.agg;
    const i = k.indexOf("|");
    const scope = k.slice(i + 1);
    switch (k.slice(0, i)) {
      case "gross":
        return { measure: "gross", scope, value: a.gross, limitPct: lim.max_gross_exposure_pct };
      case "net":
        return {
          measure: "net",
          scope,
          value: max(a.netLong.abs(), a.netShort.abs()),
          limitPct: lim.max_net_exposure_pct,
        };
      case "position": {
        const b = fund.books.get(scope);
        return b && { measure: "position", scope, value: b.contrib.exposure, limitPct: lim.max_position_pct };
      }
      case "sector":
        return { measure: "sector", scope, value: a.sector.get(scope) ?? ZERO, limitPct: lim.max_sector_pct };
      case "asset_class":
        return {
          measure: "asset_class",
          scope,
          value: a.assetClass.get(scope) ?? ZERO,
          limitPct: (lim.max_asset_class_pct as Record<string, Dec | undefined> | undefined)?.[scope],
        };
    }
    return undefined;
  }

  /** Drops from `set` the measures now at or below their share (no warning). */
  function rearm(fund: FundState, set: Set<string>): void {
    const share = fund.envelope?.envelope.warn_at_pct;
    if (share === undefined) return;
    settle(fund);
    const navValue = nav(fund);
    if (navValue === undefined || !navValue.gt(ZERO)) return;
    for (const k of set) {
      const m = measureByKey(fund, k);
      if (m?.limitPct === undefined || !m.value.gt(share.times(m.limitPct.times(navValue)))) set.delete(k);
    }
  }

  return {
    name: "limit-warnings",
    evaluate,
    afterDecision(fundId, symbol, decisionId) {
      const f = state.funds.get(fundId);
      if (f?.envelope?.envelope.warn_at_pct !== undefined) evaluate(f, symbol, decisionId);
    },
    onChange(c: Change) {
      if (c.kind === "quote") {
        // a mark move may take a measure back below its share: re-armed now, so that the next
        // decision or fill taking it above again warns (only the measures above their share, of
        // the funds holding the symbol: O(warnings outstanding))
        for (const b of state.holders.get(c.symbol) ?? []) {
          const set = above.get(b.owner.id);
          if (set?.size) rearm(b.owner, set);
        }
        return;
      }
      if (c.kind === "order") {
        // a cancel, reject, expiry or done releases a reservation: the measures may be back below
        if (!above.get(c.fund)?.size) return;
        const f = state.funds.get(c.fund);
        const symbol = state.orders.get(key2(c.fund, c.orderId))?.symbol;
        if (f?.envelope?.envelope.warn_at_pct !== undefined) evaluate(f, symbol, "", true);
        return;
      }
      if (c.kind !== "fill") return;
      const f = state.funds.get(c.fund);
      if (f?.envelope?.envelope.warn_at_pct !== undefined) evaluate(f, c.symbol, `fill-${c.seq ?? 0}`);
    },
    stop() {
      above.clear();
      lastScan.clear();
    },
  };
}
