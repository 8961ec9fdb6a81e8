/**
 * The deterministic gates against state built by the real projections. For every limit: a value
 * exactly at the limit passes, one smallest unit (1e-18, or 1 ms) above fails with its code.
 */
import { describe, it, expect } from "vitest";
import { canon, dec } from "../../src/decimal/index.js";
import {
  DETERMINISTIC_GATES,
  buildContext,
  createPipeline,
  drawdownGate,
  positionGate,
  shortSideGate,
  staticGate,
  velocityGate,
} from "../../src/gates/index.js";
import { effectiveLimits, nav, velocityUsage } from "../../src/state/index.js";
import { FUND, Feed, NOW, codeOf, order, runGate } from "./fixtures.js";

const UNIT = "0.000000000000000001";
/** The decimal string one smallest unit (1e-18) above s. */
const up = (s: string): string => canon(dec(s).plus(UNIT));
/** The decimal string one smallest unit (1e-18) below s. */
const down = (s: string): string => canon(dec(s).minus(UNIT));

const pipeline = createPipeline(DETERMINISTIC_GATES);

function runPipeline(feed: Feed, over: Record<string, unknown>, now = NOW) {
  const o = order(over);
  const fund = feed.fund;
  const limits = effectiveLimits(fund.envelope!, o.strategy_id);
  const ctx = buildContext(feed.state, fund, o, limits, now);
  return { rejection: pipeline.runSync(o, limits, ctx), ctx };
}

describe("static gate", () => {
  describe("fail-closed lists", () => {
    it("given an envelope without allowed_brokers, when any order arrives, then it is BROKER_NOT_ALLOWED", () => {
      const feed = new Feed().envelope({ allowed_brokers: undefined });
      expect(codeOf(runGate(feed.state, staticGate))).toBe("BROKER_NOT_ALLOWED");
    });

    it("given an envelope with an empty allowed_brokers, when any order arrives, then it is BROKER_NOT_ALLOWED", () => {
      const feed = new Feed().envelope({ allowed_brokers: [] });
      expect(codeOf(runGate(feed.state, staticGate))).toBe("BROKER_NOT_ALLOWED");
    });

    it("given allowed_brokers [paper], when the order uses ibkr, then it is BROKER_NOT_ALLOWED, and paper passes", () => {
      const feed = new Feed().envelope({ allowed_brokers: ["paper"] });
      expect(codeOf(runGate(feed.state, staticGate, { broker: "ibkr" }))).toBe("BROKER_NOT_ALLOWED");
      expect(codeOf(runGate(feed.state, staticGate, { broker: "paper" }))).toBe("");
    });

    it("given an envelope without allowed_order_types, when a LIMIT order arrives, then it is ORDER_TYPE_NOT_ALLOWED", () => {
      const feed = new Feed().envelope({ allowed_order_types: undefined });
      expect(codeOf(runGate(feed.state, staticGate))).toBe("ORDER_TYPE_NOT_ALLOWED");
    });

    it("given allowed_order_types [LIMIT], when a MARKET order arrives, then it is ORDER_TYPE_NOT_ALLOWED", () => {
      const feed = new Feed().envelope({ allowed_order_types: ["LIMIT"] }).quote("AAPL", "99", "101");
      expect(codeOf(runGate(feed.state, staticGate, { order_type: "MARKET", limit_price: undefined }))).toBe(
        "ORDER_TYPE_NOT_ALLOWED",
      );
      expect(codeOf(runGate(feed.state, staticGate))).toBe("");
    });

    it("given allowed_asset_classes and no asset class from order or refdata, when ordering, then it is ASSET_CLASS_NOT_ALLOWED", () => {
      const feed = new Feed().envelope({ allowed_asset_classes: ["equity"] });
      expect(codeOf(runGate(feed.state, staticGate))).toBe("ASSET_CLASS_NOT_ALLOWED");
      expect(codeOf(runGate(feed.state, staticGate, { asset_class: "equity" }))).toBe("");
      feed.instrument({ symbol: "AAPL", asset_class: "equity" });
      expect(codeOf(runGate(feed.state, staticGate))).toBe("");
      expect(codeOf(runGate(feed.state, staticGate, { asset_class: "crypto" }))).toBe(
        "ASSET_CLASS_NOT_ALLOWED",
      );
    });

    it("given a restricted symbol, when ordering it, then it is SYMBOL_RESTRICTED", () => {
      const feed = new Feed().envelope({ restricted_symbols: ["GME"] });
      expect(codeOf(runGate(feed.state, staticGate, { symbol: "GME" }))).toBe("SYMBOL_RESTRICTED");
      expect(codeOf(runGate(feed.state, staticGate, { symbol: "AAPL" }))).toBe("");
    });
  });

  describe("max_order_qty", () => {
    const feed = new Feed().envelope({ max_order_qty: "10000" });
    it("given max_order_qty 10000, when ordering exactly 10000, then it passes", () => {
      expect(codeOf(runGate(feed.state, staticGate, { quantity: "10000", limit_price: "1" }))).toBe("");
    });
    it("given max_order_qty 10000, when ordering 10000 + 1e-18, then it is MAX_ORDER_QTY_EXCEEDED", () => {
      const c = runGate(feed.state, staticGate, { quantity: up("10000"), limit_price: "1" });
      expect(codeOf(c)).toBe("MAX_ORDER_QTY_EXCEEDED");
      expect(c.result?.details).toEqual({ quantity: "10000.000000000000000001", limit: "10000" });
    });
  });

  describe("max_order_notional", () => {
    const feed = new Feed().envelope({ max_order_notional: "50000" }).quote("AAPL", "99", "101");
    it("given max_order_notional 50000, when a LIMIT order is exactly 50000, then it passes", () => {
      expect(codeOf(runGate(feed.state, staticGate, { quantity: "1", limit_price: "50000" }))).toBe("");
      expect(codeOf(runGate(feed.state, staticGate, { quantity: "500", limit_price: "100" }))).toBe("");
    });
    it("given max_order_notional 50000, when a LIMIT order is 50000 + 1e-18, then it is MAX_ORDER_NOTIONAL_EXCEEDED", () => {
      const c = runGate(feed.state, staticGate, { quantity: "1", limit_price: up("50000") });
      expect(codeOf(c)).toBe("MAX_ORDER_NOTIONAL_EXCEEDED");
      expect(c.result?.details?.["notional"]).toBe("50000.000000000000000001");
    });
    it("given a quote 99/101, when a MARKET BUY is valued, then it uses the ask, and a SELL uses the bid", () => {
      const mkt = { order_type: "MARKET", limit_price: undefined };
      // BUY 495.04950495... would not be exact; use quantities landing on the limit exactly.
      const buyFeed = new Feed().envelope({ max_order_notional: "10100" }).quote("AAPL", "99", "101");
      expect(codeOf(runGate(buyFeed.state, staticGate, { ...mkt, quantity: "100" }))).toBe("");
      expect(codeOf(runGate(buyFeed.state, staticGate, { ...mkt, quantity: up("100") }))).toBe(
        "MAX_ORDER_NOTIONAL_EXCEEDED",
      );
      const sellFeed = new Feed().envelope({ max_order_notional: "9900" }).quote("AAPL", "99", "101");
      expect(codeOf(runGate(sellFeed.state, staticGate, { ...mkt, side: "SELL", quantity: "100" }))).toBe("");
      expect(codeOf(runGate(sellFeed.state, staticGate, { ...mkt, side: "SELL", quantity: up("100") }))).toBe(
        "MAX_ORDER_NOTIONAL_EXCEEDED",
      );
    });
  });

  describe("price_collar_pct", () => {
    // mid = 100, band = 5
    const feed = new Feed().envelope({ price_collar_pct: "0.05" }).quote("AAPL", "99.9", "100.1");
    it("given a 5% collar around mid 100, when the limit is exactly 105 (upper edge), then it passes", () => {
      expect(codeOf(runGate(feed.state, staticGate, { limit_price: "105" }))).toBe("");
    });
    it("given a 5% collar around mid 100, when the limit is 105 + 1e-18, then it is PRICE_COLLAR_BREACHED", () => {
      const c = runGate(feed.state, staticGate, { limit_price: up("105") });
      expect(codeOf(c)).toBe("PRICE_COLLAR_BREACHED");
      expect(c.result?.details).toMatchObject({ mark: "100", band: "5" });
    });
    it("given a 5% collar around mid 100, when the limit is exactly 95 (lower edge), then it passes", () => {
      expect(codeOf(runGate(feed.state, staticGate, { limit_price: "95", side: "SELL" }))).toBe("");
    });
    it("given a 5% collar around mid 100, when the limit is 95 − 1e-18, then it is PRICE_COLLAR_BREACHED", () => {
      expect(codeOf(runGate(feed.state, staticGate, { limit_price: down("95"), side: "SELL" }))).toBe(
        "PRICE_COLLAR_BREACHED",
      );
    });
    it("given a collar and no quote at all, when a LIMIT order arrives, then it is STALE_MARKET_DATA (fail closed)", () => {
      const noMark = new Feed().envelope({ price_collar_pct: "0.05" });
      expect(codeOf(runGate(noMark.state, staticGate))).toBe("STALE_MARKET_DATA");
    });
  });

  describe("max_quote_age_ms", () => {
    const mkt = { order_type: "MARKET", limit_price: undefined };
    it("given max_quote_age_ms 2000 and a quote exactly 2000 ms old, when a MARKET order arrives, then it passes", () => {
      const feed = new Feed().envelope({ max_quote_age_ms: 2000 }).quote("AAPL", "99", "101", NOW - 2000);
      const c = runGate(feed.state, staticGate, mkt);
      expect(codeOf(c)).toBe("");
      expect(c.ctx.fresh).toBe(true);
    });
    it("given max_quote_age_ms 2000 and a quote 2001 ms old, when a MARKET order arrives, then it is STALE_MARKET_DATA", () => {
      const feed = new Feed().envelope({ max_quote_age_ms: 2000 }).quote("AAPL", "99", "101", NOW - 2001);
      const c = runGate(feed.state, staticGate, mkt);
      expect(codeOf(c)).toBe("STALE_MARKET_DATA");
      expect(c.result?.details).toEqual({ symbol: "AAPL", quote_age_ms: "2001" });
    });
    it("given a quote stamped 2001 ms in the future, when a MARKET order arrives, then it is STALE_MARKET_DATA (2000 ms passes)", () => {
      const ahead = new Feed().envelope({ max_quote_age_ms: 2000 }).quote("AAPL", "99", "101", NOW + 2001);
      expect(codeOf(runGate(ahead.state, staticGate, mkt))).toBe("STALE_MARKET_DATA");
      const edge = new Feed().envelope({ max_quote_age_ms: 2000 }).quote("AAPL", "99", "101", NOW + 2000);
      expect(codeOf(runGate(edge.state, staticGate, mkt))).toBe("");
    });
    it("given a quote stamped an hour ahead of its arrival then a correct later one, when the mark is read, then the later one is the mark (the lead counts for 1 s at most)", () => {
      const feed = new Feed()
        .envelope()
        .quote("AAPL", "99", "101", NOW + 3_600_000, NOW)
        .quote("AAPL", "199", "201", NOW + 1001, NOW + 1001);
      expect(canon(feed.state.marks.get("AAPL")!.mid)).toBe("200");
      // within the lead, the timestamp still ranks it: a quote stamped before NOW + 1000 is older
      feed.quote("AAPL", "9", "11", NOW + 999, NOW + 5000);
      expect(canon(feed.state.marks.get("AAPL")!.mid)).toBe("200");
    });
    it("given quotes out of order (case 10), when the mark is read, then the latest by timestamp is the mark, ties go to the later message", () => {
      const feed = new Feed()
        .envelope()
        .quote("AAPL", "99", "101", NOW)
        .quote("AAPL", "49", "51", NOW - 1);
      expect(canon(feed.state.marks.get("AAPL")!.mid)).toBe("100");
      feed.quote("AAPL", "59", "61", NOW);
      expect(canon(feed.state.marks.get("AAPL")!.mid)).toBe("60");
      feed.quote("AAPL", "69", "71", NOW + 1);
      expect(canon(feed.state.marks.get("AAPL")!.mid)).toBe("70");
    });
    it("given no max_quote_age_ms, when the quote is 5000 ms old it passes and at 5001 ms it is STALE_MARKET_DATA", () => {
      const feed = new Feed().envelope().quote("AAPL", "99", "101", NOW - 5000);
      expect(codeOf(runGate(feed.state, staticGate, mkt))).toBe("");
      expect(codeOf(runGate(feed.state, staticGate, mkt, NOW + 1))).toBe("STALE_MARKET_DATA");
    });
    it("given no quote, when a STOP order arrives, then it is STALE_MARKET_DATA; a plain LIMIT needs no mark", () => {
      const feed = new Feed().envelope();
      expect(
        codeOf(
          runGate(feed.state, staticGate, { order_type: "STOP", limit_price: undefined, stop_price: "90" }),
        ),
      ).toBe("STALE_MARKET_DATA");
      expect(codeOf(runGate(feed.state, staticGate))).toBe("");
    });
  });

  describe("multiplier", () => {
    it("given refdata multiplier 50, when a LIMIT order is 2 × 100, then its notional is 10000 and the limit applies to it", () => {
      const feed = new Feed()
        .envelope({ max_order_notional: "10000" })
        .instrument({ symbol: "ESZ6", asset_class: "future", multiplier: "50" });
      const at = runGate(feed.state, staticGate, { symbol: "ESZ6", quantity: "2", limit_price: "100" });
      expect(codeOf(at)).toBe("");
      expect(canon(at.ctx.notional!)).toBe("10000");
      const above = runGate(feed.state, staticGate, {
        symbol: "ESZ6",
        quantity: "2",
        limit_price: up("100"),
      });
      expect(codeOf(above)).toBe("MAX_ORDER_NOTIONAL_EXCEEDED");
      expect(above.result?.details?.["notional"]).toBe("10000.0000000000000001");
    });
  });

  describe("per-strategy overrides", () => {
    const feed = new Feed().envelope({
      max_order_notional: "50000",
      strategies: { "mom-1": { max_order_notional: "20000" } },
    });
    it("given mom-1 overrides max_order_notional to 20000, when mom-1 orders 20000, then it passes", () => {
      expect(
        codeOf(
          runGate(feed.state, staticGate, { strategy_id: "mom-1", quantity: "1", limit_price: "20000" }),
        ),
      ).toBe("");
    });
    it("given mom-1 overrides max_order_notional to 20000, when mom-1 orders 20000 + 1e-18, then it is rejected", () => {
      expect(
        codeOf(
          runGate(feed.state, staticGate, { strategy_id: "mom-1", quantity: "1", limit_price: up("20000") }),
        ),
      ).toBe("MAX_ORDER_NOTIONAL_EXCEEDED");
    });
    it("given the override, when another strategy or no strategy orders 50000, then the base limit applies", () => {
      for (const strategy_id of [undefined, "mr-2"]) {
        expect(
          codeOf(runGate(feed.state, staticGate, { strategy_id, quantity: "1", limit_price: "50000" })),
        ).toBe("");
        expect(
          codeOf(runGate(feed.state, staticGate, { strategy_id, quantity: "1", limit_price: up("50000") })),
        ).toBe("MAX_ORDER_NOTIONAL_EXCEEDED");
      }
    });
    it("given the override, when limits are resolved, then the envelope id is the fund's and other fields are inherited", () => {
      const c = runGate(feed.state, staticGate, { strategy_id: "mom-1" });
      expect(c.limits.envelope_id).toBe(`${FUND}@v1`);
      expect(c.limits.allowed_brokers).toEqual(["paper", "ibkr"]);
    });
  });
});

describe("velocity gate", () => {
  it("given max_orders 3 and 2 orders in the window, when a 3rd arrives, then it passes", () => {
    const feed = new Feed().envelope({ velocity: { window_s: 1, max_orders: 3 } });
    feed.counted("0").counted("0");
    expect(codeOf(runGate(feed.state, velocityGate))).toBe("");
  });

  it("given max_orders 3 and 3 orders in the window, when a 4th arrives, then it is VELOCITY_EXCEEDED", () => {
    const feed = new Feed().envelope({ velocity: { window_s: 1, max_orders: 3 } });
    feed.counted("0").counted("0").counted("0");
    const c = runGate(feed.state, velocityGate);
    expect(codeOf(c)).toBe("VELOCITY_EXCEEDED");
    expect(c.result?.details).toMatchObject({ orders: "4", limit_orders: "3" });
  });

  it("given max_notional 30000 and 20000 in the window, when a 10000 order arrives, then it passes", () => {
    const feed = new Feed().envelope({ velocity: { window_s: 1, max_notional: "30000" } });
    feed.counted("15000").counted("5000");
    expect(codeOf(runGate(feed.state, velocityGate, { quantity: "1", limit_price: "10000" }))).toBe("");
  });

  it("given max_notional 30000 and 20000 in the window, when a 10000 + 1e-18 order arrives, then it is VELOCITY_EXCEEDED", () => {
    const feed = new Feed().envelope({ velocity: { window_s: 1, max_notional: "30000" } });
    feed.counted("15000").counted("5000");
    const c = runGate(feed.state, velocityGate, { quantity: "1", limit_price: up("10000") });
    expect(codeOf(c)).toBe("VELOCITY_EXCEEDED");
    expect(c.result?.details).toMatchObject({
      notional: "30000.000000000000000001",
      limit_notional: "30000",
    });
  });

  it("given a 1 s window, then an order exactly 1000 ms old has left it and one 999 ms old still counts", () => {
    const feed = new Feed().envelope({ velocity: { window_s: 1, max_orders: 1 } });
    feed.counted("0", NOW - 1000);
    expect(velocityUsage(feed.fund.velocity, NOW, 1).count).toBe(0);
    expect(codeOf(runGate(feed.state, velocityGate))).toBe("");
    feed.counted("0", NOW - 999);
    expect(velocityUsage(feed.fund.velocity, NOW, 1).count).toBe(1);
    expect(codeOf(runGate(feed.state, velocityGate))).toBe("VELOCITY_EXCEEDED");
  });
});

describe("position gate", () => {
  describe("max_position_pct", () => {
    // capital 1 000 000, no positions: NAV 1 000 000, limit 100 000
    const feed = new Feed().envelope({ max_position_pct: "0.10" });
    it("given 10% of NAV 1 000 000, when buying exactly 100 000, then it passes", () => {
      expect(codeOf(runGate(feed.state, positionGate, { quantity: "1", limit_price: "100000" }))).toBe("");
    });
    it("given 10% of NAV 1 000 000, when buying 100 000 + 1e-18, then it is MAX_POSITION_EXCEEDED", () => {
      const c = runGate(feed.state, positionGate, { quantity: "1", limit_price: up("100000") });
      expect(codeOf(c)).toBe("MAX_POSITION_EXCEEDED");
      expect(c.result?.details).toEqual({
        resulting_notional: "100000.000000000000000001",
        limit_notional: "100000",
        nav: "1000000",
      });
    });
    it("given a long 40 000 at cost, when buying 60 000 it passes and 60 000 + 1e-18 fails", () => {
      const f = new Feed().envelope({ max_position_pct: "0.10" }).fill("AAPL", "400", "100");
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: "60000" }))).toBe("");
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: up("60000") }))).toBe(
        "MAX_POSITION_EXCEEDED",
      );
    });
    it("given a long 40 000, when selling through to a short of exactly 100 000, then it passes, and 1e-18 more fails", () => {
      const f = new Feed().envelope({ max_position_pct: "0.10" }).fill("AAPL", "400", "100");
      const sell = { side: "SELL", quantity: "1" };
      expect(codeOf(runGate(f.state, positionGate, { ...sell, limit_price: "140000" }))).toBe("");
      expect(codeOf(runGate(f.state, positionGate, { ...sell, limit_price: up("140000") }))).toBe(
        "MAX_POSITION_EXCEEDED",
      );
    });
    it("given a pending buy of 30 000, when buying 70 000 it passes and 70 000 + 1e-18 fails", () => {
      const f = new Feed().envelope({ max_position_pct: "0.10" }).reserve("p-1", "AAPL", "BUY", "300", "100");
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: "70000" }))).toBe("");
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: up("70000") }))).toBe(
        "MAX_POSITION_EXCEEDED",
      );
    });
    it("given the pending buy is cancelled, when buying 100 000, then the headroom is back", () => {
      const f = new Feed().envelope({ max_position_pct: "0.10" }).reserve("p-1", "AAPL", "BUY", "300", "100");
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: "100000" }))).toBe(
        "MAX_POSITION_EXCEEDED",
      );
      f.orderEvent("p-1", "cancelled");
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: "100000" }))).toBe("");
    });
  });

  describe("NAV at marks", () => {
    it("given a long 100 @ 100 and no quote, when buying, then NAV is capital and the headroom is 90 000", () => {
      const f = new Feed().envelope({ max_position_pct: "0.10" }).fill("AAPL", "100", "100");
      expect(canon(nav(f.fund)!)).toBe("1000000");
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: "90000" }))).toBe("");
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: up("90000") }))).toBe(
        "MAX_POSITION_EXCEEDED",
      );
    });
    it("given a long 100 @ 100 marked at 200, when buying, then NAV is 1 010 000 and the headroom is 81 000", () => {
      const f = new Feed()
        .envelope({ max_position_pct: "0.10" })
        .fill("AAPL", "100", "100")
        .quote("AAPL", "199", "201");
      expect(canon(nav(f.fund)!)).toBe("1010000");
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: "81000" }))).toBe("");
      const c = runGate(f.state, positionGate, { quantity: "1", limit_price: up("81000") });
      expect(codeOf(c)).toBe("MAX_POSITION_EXCEEDED");
      expect(c.result?.details).toMatchObject({ limit_notional: "101000", nav: "1010000" });
    });
    it("given realized P&L and fees, when NAV is computed, then it is capital + realized + unrealized − fees", () => {
      const f = new Feed()
        .envelope()
        .fill("AAPL", "100", "100", { fees: "5" })
        .fill("AAPL", "-40", "110", { fees: "3" })
        .quote("AAPL", "119", "121");
      // realized 40 × 10 = 400; open 60 at cost 100 marked at 120: +1200; fees 8
      expect(canon(nav(f.fund)!)).toBe("1001592");
    });
    it("given a multiplier of 50 and a long 2 @ 100 marked at 110, when NAV is computed, then P&L is scaled by 50", () => {
      const f = new Feed()
        .envelope({ max_position_pct: "0.10" })
        .instrument({ symbol: "ESZ6", asset_class: "future", multiplier: "50" })
        .fill("ESZ6", "2", "100")
        .quote("ESZ6", "109", "111");
      expect(canon(nav(f.fund)!)).toBe("1001000");
      // position at mark 2 × 110 × 50 = 11 000; limit 100 100; headroom 89 100 = 1 × 1782 × 50
      expect(
        codeOf(runGate(f.state, positionGate, { symbol: "ESZ6", quantity: "1", limit_price: "1782" })),
      ).toBe("");
      expect(
        codeOf(runGate(f.state, positionGate, { symbol: "ESZ6", quantity: "1", limit_price: up("1782") })),
      ).toBe("MAX_POSITION_EXCEEDED");
    });
  });

  describe("max_gross_exposure_pct", () => {
    // long MSFT 1 000 000 at cost; 150% of 1 000 000 = 1 500 000
    const f = new Feed().envelope({ max_gross_exposure_pct: "1.50" }).fill("MSFT", "10000", "100");
    it("given gross 1 000 000 and a 150% limit, when buying 500 000 more, then it passes", () => {
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: "500000" }))).toBe("");
    });
    it("given gross 1 000 000 and a 150% limit, when buying 500 000 + 1e-18, then it is GROSS_EXPOSURE_EXCEEDED", () => {
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: up("500000") }))).toBe(
        "GROSS_EXPOSURE_EXCEEDED",
      );
    });
    it("given gross 1 000 000, when selling short 500 000 of another symbol, then the short counts in gross", () => {
      const sell = { side: "SELL", quantity: "1" };
      expect(codeOf(runGate(f.state, positionGate, { ...sell, limit_price: "500000" }))).toBe("");
      expect(codeOf(runGate(f.state, positionGate, { ...sell, limit_price: up("500000") }))).toBe(
        "GROSS_EXPOSURE_EXCEEDED",
      );
    });
  });

  describe("max_net_exposure_pct", () => {
    // long MSFT 600 000; 100% of 1 000 000
    const f = new Feed().envelope({ max_net_exposure_pct: "1.00" }).fill("MSFT", "6000", "100");
    it("given net long 600 000, when buying 400 000, then it passes", () => {
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: "400000" }))).toBe("");
    });
    it("given net long 600 000, when buying 400 000 + 1e-18, then it is NET_EXPOSURE_EXCEEDED", () => {
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: up("400000") }))).toBe(
        "NET_EXPOSURE_EXCEEDED",
      );
    });
    it("given net long 600 000, when selling 1 600 000 (net −1 000 000) it passes and 1e-18 more fails", () => {
      const sell = { side: "SELL", quantity: "1" };
      expect(codeOf(runGate(f.state, positionGate, { ...sell, limit_price: "1600000" }))).toBe("");
      expect(codeOf(runGate(f.state, positionGate, { ...sell, limit_price: up("1600000") }))).toBe(
        "NET_EXPOSURE_EXCEEDED",
      );
    });
  });

  describe("max_sector_pct", () => {
    const f = new Feed()
      .envelope({ max_sector_pct: "0.30" })
      .instrument({ symbol: "AAPL", asset_class: "equity", sector: "tech" })
      .instrument({ symbol: "MSFT", asset_class: "equity", sector: "tech" })
      .instrument({ symbol: "XOM", asset_class: "equity", sector: "energy" })
      .fill("MSFT", "1000", "100") // tech 100 000
      .fill("XOM", "2500", "100"); // energy 250 000
    it("given tech 100 000 and a 30% sector limit, when buying 200 000 of AAPL, then it passes", () => {
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: "200000" }))).toBe("");
    });
    it("given tech 100 000, when buying 200 000 + 1e-18 of AAPL, then it is SECTOR_CONCENTRATION_EXCEEDED for tech", () => {
      const c = runGate(f.state, positionGate, { quantity: "1", limit_price: up("200000") });
      expect(codeOf(c)).toBe("SECTOR_CONCENTRATION_EXCEEDED");
      expect(c.result?.details?.["sector"]).toBe("tech");
    });
    it("given energy 250 000, when buying 50 000 of XOM it passes and 1e-18 more fails", () => {
      const xom = { symbol: "XOM", quantity: "1" };
      expect(codeOf(runGate(f.state, positionGate, { ...xom, limit_price: "50000" }))).toBe("");
      expect(codeOf(runGate(f.state, positionGate, { ...xom, limit_price: up("50000") }))).toBe(
        "SECTOR_CONCENTRATION_EXCEEDED",
      );
    });
    it("given a sector limit and a symbol without refdata, when ordering it, then it is rejected (fail closed)", () => {
      expect(codeOf(runGate(f.state, positionGate, { symbol: "UNKNOWN", quantity: "1" }))).toBe(
        "SECTOR_CONCENTRATION_EXCEEDED",
      );
    });
  });

  describe("max_asset_class_pct", () => {
    const f = new Feed()
      .envelope({ max_asset_class_pct: { crypto: "0.20" } })
      .instrument({ symbol: "BTC-USD", asset_class: "crypto" })
      .instrument({ symbol: "ETH-USD", asset_class: "crypto" })
      .instrument({ symbol: "AAPL", asset_class: "equity" })
      .fill("ETH-USD", "50", "1000"); // crypto 50 000
    it("given crypto 50 000 and a 20% limit, when buying 150 000 of BTC-USD, then it passes", () => {
      expect(
        codeOf(runGate(f.state, positionGate, { symbol: "BTC-USD", quantity: "1", limit_price: "150000" })),
      ).toBe("");
    });
    it("given crypto 50 000, when buying 150 000 + 1e-18 of BTC-USD, then it is ASSET_CLASS_CONCENTRATION_EXCEEDED", () => {
      const c = runGate(f.state, positionGate, {
        symbol: "BTC-USD",
        quantity: "1",
        limit_price: up("150000"),
      });
      expect(codeOf(c)).toBe("ASSET_CLASS_CONCENTRATION_EXCEEDED");
      expect(c.result?.details?.["asset_class"]).toBe("crypto");
    });
    it("given only a crypto limit, when buying 900 000 of an equity, then it is not limited by the crypto limit", () => {
      expect(codeOf(runGate(f.state, positionGate, { quantity: "1", limit_price: "900000" }))).toBe("");
    });
    it("given a class limit and no asset class anywhere, when ordering, then it is rejected (fail closed)", () => {
      expect(codeOf(runGate(f.state, positionGate, { symbol: "NOREF", quantity: "1" }))).toBe(
        "ASSET_CLASS_CONCENTRATION_EXCEEDED",
      );
    });
  });
});

describe("short-side gate", () => {
  const shortable = { symbol: "AAPL", asset_class: "equity", shortable: true };
  it("given shorting disabled and no position, when selling, then it is SHORTING_DISABLED", () => {
    const f = new Feed().envelope();
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL" }))).toBe("SHORTING_DISABLED");
  });
  it("given a long 100 and a pending sell 60, when selling 40 it is not a short, and 41 is SHORTING_DISABLED", () => {
    const f = new Feed().envelope().fill("AAPL", "100", "100").reserve("s-1", "AAPL", "SELL", "60", "100");
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL", quantity: "40" }))).toBe("");
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL", quantity: "41" }))).toBe(
      "SHORTING_DISABLED",
    );
  });
  it("given max_borrow_fee_bps 300 and a fee of exactly 300, when opening a short, then it passes", () => {
    const f = new Feed()
      .envelope({ enable_shorting: true, max_borrow_fee_bps: "300" })
      .instrument({ ...shortable, borrow_fee_bps: "300" });
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL" }))).toBe("");
  });
  it("given max_borrow_fee_bps 300 and a fee of 300 + 1e-18, when opening a short, then it is BORROW_FEE_TOO_HIGH", () => {
    const f = new Feed()
      .envelope({ enable_shorting: true, max_borrow_fee_bps: "300" })
      .instrument({ ...shortable, borrow_fee_bps: up("300") });
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL" }))).toBe("BORROW_FEE_TOO_HIGH");
  });
  it("given a borrow-fee ceiling and an unknown fee, when opening a short, then it is BORROW_FEE_TOO_HIGH", () => {
    const f = new Feed().envelope({ enable_shorting: true, max_borrow_fee_bps: "300" }).instrument(shortable);
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL" }))).toBe("BORROW_FEE_TOO_HIGH");
  });
  it("given a non-shortable instrument, when opening a short, then a locate_id is required", () => {
    const f = new Feed()
      .envelope({ enable_shorting: true })
      .instrument({ symbol: "AAPL", asset_class: "equity" });
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL" }))).toBe("LOCATE_REQUIRED");
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL", locate_id: "loc-1" }))).toBe("");
  });
});

describe("short-side gate across brokers (issue 8 case 7)", () => {
  const atIbkr = () => new Feed().envelope().fill("AAPL", "100", "100", { broker: "ibkr" });
  it("given long 100 at ibkr only, when selling 100 at paper, then it is a short sale (SHORTING_DISABLED); at ibkr it is not", () => {
    const f = atIbkr();
    const r = runGate(f.state, shortSideGate, { side: "SELL", quantity: "100", broker: "paper" });
    expect(codeOf(r)).toBe("SHORTING_DISABLED");
    expect(r.result?.details).toMatchObject({ broker: "paper", position: "0", fund_position: "100" });
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL", quantity: "100", broker: "ibkr" }))).toBe(
      "",
    );
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL", quantity: "101", broker: "ibkr" }))).toBe(
      "SHORTING_DISABLED",
    );
  });
  it("given long 100 at ibkr and a pending sell 60 there, when selling 40 at ibkr it passes, 41 is a short sale", () => {
    const f = atIbkr().reserve("s-1", "AAPL", "SELL", "60", "100", "ibkr");
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL", quantity: "40", broker: "ibkr" }))).toBe(
      "",
    );
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL", quantity: "41", broker: "ibkr" }))).toBe(
      "SHORTING_DISABLED",
    );
  });
  it("given a pending sell at paper, when selling the whole ibkr long at ibkr, then paper's pending sell does not use ibkr's long", () => {
    const f = atIbkr().reserve("s-1", "AAPL", "SELL", "60", "100", "paper");
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL", quantity: "100", broker: "ibkr" }))).toBe(
      "",
    );
  });
  it("given a pending sell journaled without a broker, when selling at any broker, then it counts there (conservative)", () => {
    const f = atIbkr().reserve("s-1", "AAPL", "SELL", "60", "100");
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL", quantity: "41", broker: "ibkr" }))).toBe(
      "SHORTING_DISABLED",
    );
  });
  it("given the pending sell at ibkr is filled there, when selling the rest at ibkr, then only the broker's remaining long counts", () => {
    const f = atIbkr().reserve("s-1", "AAPL", "SELL", "60", "100", "ibkr");
    f.fill("AAPL", "-60", "100", { order_id: "s-1", broker: "ibkr" });
    const book = f.state.funds.get(FUND)!.books.get("AAPL")!;
    expect(book.pendSellByBroker.size).toBe(0);
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL", quantity: "40", broker: "ibkr" }))).toBe(
      "",
    );
    expect(codeOf(runGate(f.state, shortSideGate, { side: "SELL", quantity: "41", broker: "ibkr" }))).toBe(
      "SHORTING_DISABLED",
    );
  });
  it("given long 100 at ibkr, when selling 50 at paper, then it is not risk-reducing (it opens a short at paper); at ibkr it is", () => {
    const f = atIbkr();
    expect(runGate(f.state, staticGate, { side: "SELL", quantity: "50", broker: "paper" }).ctx.reducing).toBe(
      false,
    );
    expect(runGate(f.state, staticGate, { side: "SELL", quantity: "50", broker: "ibkr" }).ctx.reducing).toBe(
      true,
    );
  });
  it("given short 100 at ibkr, when buying 50 at paper, then it is not risk-reducing; at ibkr it is", () => {
    const f = new Feed().envelope().fill("AAPL", "-100", "100", { broker: "ibkr" });
    expect(runGate(f.state, staticGate, { side: "BUY", quantity: "50", broker: "paper" }).ctx.reducing).toBe(
      false,
    );
    expect(runGate(f.state, staticGate, { side: "BUY", quantity: "50", broker: "ibkr" }).ctx.reducing).toBe(
      true,
    );
  });
  it("given a halted fund long 100 at ibkr, when selling 50 at paper, then it is FUND_HALTED (no reducing exemption)", () => {
    const f = atIbkr().halt("MANUAL");
    expect(runPipeline(f, { side: "SELL", quantity: "50", broker: "paper" }).rejection?.denial.code).toBe(
      "FUND_HALTED",
    );
    expect(runPipeline(f, { side: "SELL", quantity: "50", broker: "ibkr" }).rejection).toBeUndefined();
  });
});

describe("risk-reducing detection", () => {
  it("given a long 100 and a pending sell 60, when selling 40, then it is risk-reducing", () => {
    const f = new Feed().envelope().fill("AAPL", "100", "100").reserve("s-1", "AAPL", "SELL", "60", "100");
    expect(runGate(f.state, staticGate, { side: "SELL", quantity: "40" }).ctx.reducing).toBe(true);
  });
  it("given a long 100 and a pending sell 60, when selling 41, then it is not risk-reducing", () => {
    const f = new Feed().envelope().fill("AAPL", "100", "100").reserve("s-1", "AAPL", "SELL", "60", "100");
    expect(runGate(f.state, staticGate, { side: "SELL", quantity: "41" }).ctx.reducing).toBe(false);
  });
  it("given a long 100, when buying, then it is not risk-reducing", () => {
    const f = new Feed().envelope().fill("AAPL", "100", "100");
    expect(runGate(f.state, staticGate, { side: "BUY", quantity: "1" }).ctx.reducing).toBe(false);
  });
  it("given a short 100 and a pending buy 30, when buying 70 it is risk-reducing, and 71 is not", () => {
    const f = new Feed().envelope().fill("AAPL", "-100", "100").reserve("b-1", "AAPL", "BUY", "30", "100");
    expect(runGate(f.state, staticGate, { side: "BUY", quantity: "70" }).ctx.reducing).toBe(true);
    expect(runGate(f.state, staticGate, { side: "BUY", quantity: "71" }).ctx.reducing).toBe(false);
  });
  it("given a short 100, when selling more, then it is not risk-reducing", () => {
    const f = new Feed().envelope().fill("AAPL", "-100", "100");
    expect(runGate(f.state, staticGate, { side: "SELL", quantity: "1" }).ctx.reducing).toBe(false);
  });
  it("given a flat book, when selling or buying, then it is not risk-reducing", () => {
    const f = new Feed().envelope();
    expect(runGate(f.state, staticGate, { side: "SELL" }).ctx.reducing).toBe(false);
    expect(runGate(f.state, staticGate, { side: "BUY" }).ctx.reducing).toBe(false);
  });
  it("given the pending sell is filled, when selling the rest, then only the remaining position counts", () => {
    const f = new Feed().envelope().fill("AAPL", "100", "100").reserve("s-1", "AAPL", "SELL", "60", "100");
    f.fill("AAPL", "-60", "100", { order_id: "s-1" }); // position 40, nothing pending
    expect(runGate(f.state, staticGate, { side: "SELL", quantity: "40" }).ctx.reducing).toBe(true);
    expect(runGate(f.state, staticGate, { side: "SELL", quantity: "41" }).ctx.reducing).toBe(false);
  });
});

describe("pipeline: reducing orders and halts", () => {
  it("given a halted fund, when an increasing order arrives, then it is FUND_HALTED with the severity", () => {
    const f = new Feed().envelope().fill("AAPL", "100", "100").halt("DAILY_LOSS");
    const { rejection } = runPipeline(f, { side: "BUY", quantity: "10" });
    expect(rejection?.gate).toBe("drawdown");
    expect(rejection?.denial.code).toBe("FUND_HALTED");
    expect(rejection?.denial.details?.["severity"]).toBe("DAILY_LOSS");
  });

  it("given several halts, when rejected, then the most severe one is reported", () => {
    const f = new Feed().envelope().halt("DAILY_LOSS").halt("KILL_SWITCH").halt("MANUAL");
    expect(runPipeline(f, {}).rejection?.denial.details?.["severity"]).toBe("KILL_SWITCH");
  });

  it("given a halted fund with a long 100, when selling 50, then the drawdown gate is skipped and it is approved", () => {
    const f = new Feed().envelope().fill("AAPL", "100", "100").halt("MANUAL");
    const { rejection, ctx } = runPipeline(f, { side: "SELL", quantity: "50" });
    expect(ctx.reducing).toBe(true);
    expect(rejection).toBeUndefined();
    // the gate itself would have rejected it: the pipeline did the skipping
    expect(
      drawdownGate.check(order({ side: "SELL", quantity: "50" }), ctx.fund.envelope!.base, ctx),
    ).toMatchObject({
      code: "FUND_HALTED",
    });
  });

  it("given a halt then a resume, when an increasing order arrives, then it passes", () => {
    const f = new Feed().envelope().halt("MANUAL").resume();
    expect(runPipeline(f, {}).rejection).toBeUndefined();
  });

  it("given a reconciliation lock, when increasing it is RECONCILIATION_LOCK and when reducing it passes", () => {
    const f = new Feed().envelope().fill("AAPL", "100", "100");
    f.publish("RISK_CONTROL", "mts.v1.risk.reconcile.lock.alpha", {
      fund_id: FUND,
      locked: true,
      reason: "drift",
      at: "2026-11-21T14:30:00.000Z",
      brokers: ["paper"],
    });
    expect(runPipeline(f, { quantity: "1" }).rejection?.denial.code).toBe("RECONCILIATION_LOCK");
    expect(runPipeline(f, { side: "SELL", quantity: "100" }).rejection).toBeUndefined();
  });

  it("given a position far over its limit, when reducing it, then the position gate is skipped", () => {
    const f = new Feed()
      .envelope({ max_position_pct: "0.01", max_gross_exposure_pct: "0.01" })
      .fill("AAPL", "1000", "100");
    expect(runPipeline(f, { quantity: "1" }).rejection?.denial.code).toBe("MAX_POSITION_EXCEEDED");
    expect(runPipeline(f, { side: "SELL", quantity: "500" }).rejection).toBeUndefined();
  });

  it("given the velocity limit is used up, when reducing, then velocity is skipped but increasing is rejected", () => {
    const f = new Feed().envelope({ velocity: { window_s: 10, max_orders: 1 } }).fill("AAPL", "100", "100");
    f.counted("0");
    expect(runPipeline(f, { quantity: "1" }).rejection?.denial.code).toBe("VELOCITY_EXCEEDED");
    expect(runPipeline(f, { side: "SELL", quantity: "1" }).rejection).toBeUndefined();
  });

  it("given a halted fund, when a reducing order breaks a static limit, then the static gate still rejects it", () => {
    const f = new Feed().envelope({ max_order_qty: "10" }).fill("AAPL", "100", "100").halt();
    const { rejection, ctx } = runPipeline(f, { side: "SELL", quantity: "50" });
    expect(ctx.reducing).toBe(true);
    expect(rejection?.gate).toBe("static");
    expect(rejection?.denial.code).toBe("MAX_ORDER_QTY_EXCEEDED");
  });

  it("given the contract order of gates, when an order breaks static and position limits, then static answers first", () => {
    const f = new Feed().envelope({ max_order_qty: "10", max_position_pct: "0.0001" }).halt();
    expect(runPipeline(f, { quantity: "11" }).rejection?.gate).toBe("static");
    expect(runPipeline(f, { quantity: "10" }).rejection?.gate).toBe("position");
  });
});
