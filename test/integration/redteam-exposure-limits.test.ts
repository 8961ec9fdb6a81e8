/**
 * Red-team pass on the position gate (position, gross, net, sector, asset class) driven through the
 * bus: exact boundaries with multipliers and FX, NAV with average cost, realized P&L and fees,
 * reservations at order price (the mark's ask for MARKET), and their release by OMS events.
 * One nats-server and one engine on a manual clock; each case uses its own fund.
 */
import { describe, expect, it } from "vitest";
import { exposureBench } from "../support/exposure.js";
import { order } from "../support/engine.js";
describe("red-team exposure: limits at their boundaries", () => {
  const h = exposureBench();
  const { outcome, setup, quote, fill, inst, ev, check } = h;

  it("position: multiplier × FX exactly at pct × NAV passes, one unit above fails", async () => {
    const F = "rx-pos1";
    await setup(F, { max_position_pct: "0.1" }); // 100 000 USD
    await inst({ symbol: "RXFUT1", asset_class: "future", multiplier: "50", currency: "EUR" });
    await quote("EUR-USD", "1.25", "1.25");
    // 16 × 100 × 50 × 1.25 = 100 000
    expect(await check({ fund_id: F, symbol: "RXFUT1", quantity: "16", limit_price: "100" })).toBe(
      "approved",
    );
    expect(await check({ fund_id: F, symbol: "RXFUT1", quantity: "0.0001", limit_price: "100" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
  });

  it("gross: positions at mark (NAV with unrealized) + reservations at order price, exactly at the limit", async () => {
    const F = "rx-gross1";
    await setup(F, { max_gross_exposure_pct: "0.3" });
    await fill({ fund_id: F, symbol: "RXG1", quantity: "1000", price: "100" });
    await quote("RXG1", "109", "111"); // mid 110: mv 110 000, NAV 1 010 000, limit 303 000
    expect(await check({ fund_id: F, symbol: "RXG2", quantity: "500", limit_price: "200" })).toBe("approved"); // 100 000
    // 110 000 + 100 000 + 93 000 = 303 000
    expect(await check({ fund_id: F, symbol: "RXG3", quantity: "930", limit_price: "100" })).toBe("approved");
    expect(await check({ fund_id: F, symbol: "RXG4", quantity: "1", limit_price: "0.01" })).toBe(
      "position/GROSS_EXPOSURE_EXCEEDED",
    );
  });

  it("NAV = capital + realized − fees at average cost (no quote ever seen)", async () => {
    const F = "rx-nav1";
    await setup(F, { capital: "100000", max_position_pct: "0.1" });
    await fill({ fund_id: F, symbol: "RXN1", quantity: "100", price: "50", fees: "10" });
    await fill({ fund_id: F, symbol: "RXN1", side: "SELL", quantity: "50", price: "70", fees: "5" });
    // realized 50 × 20 = 1 000, fees 15: NAV 100 985, limit 10 098.5
    expect(await check({ fund_id: F, symbol: "RXN2", quantity: "100", limit_price: "100.985" })).toBe(
      "approved",
    );
    expect(await check({ fund_id: F, symbol: "RXN2", quantity: "0.001", limit_price: "1" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
  });

  it("NAV with a short at average cost and a foreign realized P&L", async () => {
    const F = "rx-nav2";
    await setup(F, { capital: "100000", max_position_pct: "0.1", enable_shorting: true });
    await inst({
      symbol: "RXN3",
      asset_class: "equity",
      currency: "GBP",
      shortable: true,
      borrow_fee_bps: "1",
    });
    await quote("GBP-USD", "2", "2");
    // short 100 @ 50 GBP, cover 40 @ 40: realized 40 × 10 = 400 GBP = 800 USD; fees 2 GBP = 4 USD
    await fill({ fund_id: F, symbol: "RXN3", side: "SELL", quantity: "100", price: "50", fees: "1" });
    await fill({ fund_id: F, symbol: "RXN3", side: "BUY", quantity: "40", price: "40", fees: "1" });
    // NAV 100 796: limit 10 079.6 USD
    expect(await check({ fund_id: F, symbol: "RXN4", quantity: "100", limit_price: "100.796" })).toBe(
      "approved",
    );
    expect(await check({ fund_id: F, symbol: "RXN4", quantity: "0.001", limit_price: "1" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
  });

  it("net: long and short net out; at the limit passes, above fails", async () => {
    const F = "rx-net1";
    await setup(F, { max_net_exposure_pct: "0.1", enable_shorting: true });
    await inst({ symbol: "RXT1", asset_class: "equity", shortable: true, borrow_fee_bps: "1" });
    await fill({ fund_id: F, symbol: "RXT1", side: "SELL", quantity: "1000", price: "100" }); // −100 000
    // +200 000 long: net +100 000 = limit
    expect(await check({ fund_id: F, symbol: "RXT2", quantity: "2000", limit_price: "100" })).toBe(
      "approved",
    );
    expect(await check({ fund_id: F, symbol: "RXT3", quantity: "1", limit_price: "0.01" })).toBe(
      "position/NET_EXPOSURE_EXCEEDED",
    );
  });

  it("sector: the order's sector sum at the limit passes; another sector is not counted", async () => {
    const F = "rx-sec1";
    await setup(F, { max_sector_pct: "0.2" });
    await inst({ symbol: "RXS1", asset_class: "equity", sector: "tech" });
    await inst({ symbol: "RXS2", asset_class: "equity", sector: "tech" });
    await inst({ symbol: "RXS3", asset_class: "equity", sector: "energy" });
    await fill({ fund_id: F, symbol: "RXS1", quantity: "1000", price: "100" });
    expect(await check({ fund_id: F, symbol: "RXS3", quantity: "2000", limit_price: "100" })).toBe(
      "approved",
    );
    expect(await check({ fund_id: F, symbol: "RXS2", quantity: "1000", limit_price: "100" })).toBe(
      "approved",
    );
    expect(await check({ fund_id: F, symbol: "RXS2", quantity: "1", limit_price: "0.01" })).toBe(
      "position/SECTOR_CONCENTRATION_EXCEEDED",
    );
  });

  it("asset class: crypto sum at the limit passes, above fails; equity not counted", async () => {
    const F = "rx-ac1";
    await setup(F, { max_asset_class_pct: { crypto: "0.2" } });
    await inst({ symbol: "RXC1", asset_class: "crypto" });
    await inst({ symbol: "RXC2", asset_class: "crypto" });
    await fill({ fund_id: F, symbol: "RXC1", quantity: "10", price: "10000" }); // 100 000
    expect(
      await check({
        fund_id: F,
        symbol: "RXCE",
        asset_class: "equity",
        quantity: "5000",
        limit_price: "100",
      }),
    ).toBe("approved");
    expect(await check({ fund_id: F, symbol: "RXC2", quantity: "100", limit_price: "1000" })).toBe(
      "approved",
    );
    expect(await check({ fund_id: F, symbol: "RXC2", quantity: "0.0001", limit_price: "1" })).toBe(
      "position/ASSET_CLASS_CONCENTRATION_EXCEEDED",
    );
  });

  it("MARKET reserves at the ask of its time; a later mark move does not change the reservation", async () => {
    const F = "rx-mkt1";
    await setup(F, { max_position_pct: "0.1" });
    await quote("RXM1", "99", "101");
    expect(
      await check({
        fund_id: F,
        symbol: "RXM1",
        order_type: "MARKET",
        quantity: "500",
        limit_price: undefined,
      }),
    ).toBe("approved"); // 50 500 reserved
    await quote("RXM1", "199", "201");
    expect(await check({ fund_id: F, symbol: "RXM1", quantity: "495", limit_price: "100" })).toBe("approved");
    expect(await check({ fund_id: F, symbol: "RXM1", quantity: "1", limit_price: "0.01" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
  });

  it("partial fill then cancel: the rest of the reservation is released, the fill stays", async () => {
    const F = "rx-rel1";
    await setup(F, { max_position_pct: "0.1" });
    const a = order({ fund_id: F, symbol: "RXR1", quantity: "1000", limit_price: "100" });
    expect(outcome(await h.bus.check(a))).toBe("approved");
    expect(await check({ fund_id: F, symbol: "RXR1", quantity: "1", limit_price: "1" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    await ev("accepted", F, a["order_id"]);
    await fill({ fund_id: F, symbol: "RXR1", quantity: "400", price: "100", order_id: a["order_id"] });
    await ev("cancelled", F, a["order_id"], { filled_quantity: "400" });
    // position 40 000 (no quote: at cost); 60 000 free
    expect(await check({ fund_id: F, symbol: "RXR1", quantity: "600", limit_price: "100" })).toBe("approved");
    expect(await check({ fund_id: F, symbol: "RXR1", quantity: "1", limit_price: "0.01" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
  });

  it("cancel reported before its fill arrives: the reported fill keeps reserving until it comes", async () => {
    const F = "rx-rel2";
    await setup(F, { max_position_pct: "0.1" });
    const a = order({ fund_id: F, symbol: "RXR2", quantity: "1000", limit_price: "100" });
    expect(outcome(await h.bus.check(a))).toBe("approved");
    await ev("accepted", F, a["order_id"]);
    await ev("cancelled", F, a["order_id"], { filled_quantity: "400" });
    expect(await check({ fund_id: F, symbol: "RXR2", quantity: "601", limit_price: "100" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    await fill({ fund_id: F, symbol: "RXR2", quantity: "400", price: "100", order_id: a["order_id"] });
    expect(await check({ fund_id: F, symbol: "RXR2", quantity: "601", limit_price: "100" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    expect(await check({ fund_id: F, symbol: "RXR2", quantity: "600", limit_price: "100" })).toBe("approved");
  });

  it("expired and rejected release the whole reservation", async () => {
    const F = "rx-rel3";
    await setup(F, { max_position_pct: "0.1" });
    const a = order({ fund_id: F, symbol: "RXR3", quantity: "1000", limit_price: "100" });
    expect(outcome(await h.bus.check(a))).toBe("approved");
    await ev("accepted", F, a["order_id"]);
    await ev("expired", F, a["order_id"]);
    const b = order({ fund_id: F, symbol: "RXR3", quantity: "1000", limit_price: "100" });
    expect(outcome(await h.bus.check(b))).toBe("approved");
    await ev("rejected", F, b["order_id"]);
    expect(await check({ fund_id: F, symbol: "RXR3", quantity: "1000", limit_price: "100" })).toBe(
      "approved",
    );
  });

  it("two reducing sells racing that together cross zero: only one is exempt", async () => {
    const F = "rx-red1";
    await setup(F, { max_position_pct: "0.01", enable_shorting: true }); // 10 000: position over it
    await inst({ symbol: "RXD1", asset_class: "equity", shortable: true, borrow_fee_bps: "1" });
    await fill({ fund_id: F, symbol: "RXD1", quantity: "100", price: "1000" }); // 100 000 > 10 000
    const s = { fund_id: F, symbol: "RXD1", side: "SELL", quantity: "60", limit_price: "1000" };
    const ds = await Promise.all([h.bus.check(order(s)), h.bus.check(order(s))]);
    expect(ds.map(outcome).sort()).toEqual(["approved", "position/MAX_POSITION_EXCEEDED"]);
  });
  it("multiplier in realized P&L and in the position at cost: NAV and headroom exact", async () => {
    const F = "rx-mult1";
    await setup(F, { max_position_pct: "0.1" });
    await inst({ symbol: "RXF1", asset_class: "future", multiplier: "50" });
    await fill({ fund_id: F, symbol: "RXF1", quantity: "10", price: "100", fees: "100" });
    await fill({ fund_id: F, symbol: "RXF1", side: "SELL", quantity: "5", price: "110" });
    // realized 5 × 10 × 50 = 2 500, fees 100: NAV 1 002 400, limit 100 240; position 5 × 100 × 50 = 25 000
    expect(await check({ fund_id: F, symbol: "RXF1", quantity: "15.048", limit_price: "100" })).toBe(
      "approved",
    );
    expect(await check({ fund_id: F, symbol: "RXF1", quantity: "0.000001", limit_price: "1" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
  });

  it("a SELL crossing zero is judged on the short it leaves; the reducing part earns nothing", async () => {
    const F = "rx-cross1";
    await setup(F, { max_position_pct: "0.01", enable_shorting: true }); // 10 000
    await inst({ symbol: "RXX1", asset_class: "equity", shortable: true, borrow_fee_bps: "1" });
    await fill({ fund_id: F, symbol: "RXX1", quantity: "100", price: "100" });
    expect(
      await check({ fund_id: F, symbol: "RXX1", side: "SELL", quantity: "201", limit_price: "100" }),
    ).toBe("position/MAX_POSITION_EXCEEDED");
    expect(
      await check({ fund_id: F, symbol: "RXX1", side: "SELL", quantity: "200", limit_price: "100" }),
    ).toBe("approved");
  });

  it("reducing: a partly filled reducing sell leaves room for exactly the rest", async () => {
    const F = "rx-red2";
    await setup(F, { max_position_pct: "0.001" }); // 1 000: the long is far over it
    await fill({ fund_id: F, symbol: "RXD2", quantity: "100", price: "1000" });
    const a = order({ fund_id: F, symbol: "RXD2", side: "SELL", quantity: "60", limit_price: "1000" });
    expect(outcome(await h.bus.check(a))).toBe("approved");
    await ev("accepted", F, a["order_id"]);
    await fill({
      fund_id: F,
      symbol: "RXD2",
      side: "SELL",
      quantity: "30",
      price: "1000",
      order_id: a["order_id"],
    });
    // position 70, pending sell 30: 40 more is reducing, 41 is not
    expect(
      await check({ fund_id: F, symbol: "RXD2", side: "SELL", quantity: "41", limit_price: "1000" }),
    ).not.toBe("approved");
    expect(
      await check({ fund_id: F, symbol: "RXD2", side: "SELL", quantity: "40", limit_price: "1000" }),
    ).toBe("approved");
    await ev("cancelled", F, a["order_id"], { filled_quantity: "30" });
    // the 30 left of a are free again: 30 more is reducing
    expect(
      await check({ fund_id: F, symbol: "RXD2", side: "SELL", quantity: "31", limit_price: "1000" }),
    ).not.toBe("approved");
    expect(
      await check({ fund_id: F, symbol: "RXD2", side: "SELL", quantity: "30", limit_price: "1000" }),
    ).toBe("approved");
  });
  it("MARKET SELL valued at the bid × multiplier × FX, exactly at the limit", async () => {
    const F = "rx-mkt2";
    await setup(F, { max_position_pct: "0.1", enable_shorting: true }); // 100 000
    await inst({
      symbol: "RXMF",
      asset_class: "future",
      multiplier: "25",
      currency: "EUR",
      shortable: true,
      borrow_fee_bps: "1",
    });
    await quote("EUR-USD", "1.6", "1.6");
    await quote("RXMF", "125", "130");
    // 20 × 125 × 25 × 1.6 = 100 000
    const m = { fund_id: F, symbol: "RXMF", side: "SELL", order_type: "MARKET", limit_price: undefined };
    expect(await check({ ...m, quantity: "20.000001" })).toBe("position/MAX_POSITION_EXCEEDED");
    expect(await check({ ...m, quantity: "20" })).toBe("approved");
    expect(await check({ ...m, quantity: "0.000001" })).toBe("position/MAX_POSITION_EXCEEDED");
  });
});
