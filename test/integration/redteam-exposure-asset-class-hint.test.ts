/**
 * Red-team (exposure), fixed in stop 29: an order on a symbol refdata does not know may state its asset
 * class (CONTRACT.md: "when absent, the instrument's refdata gives it"). When two orders on the same
 * symbol state different classes, the position gate judges the second with the whole book in the
 * second's class, but the book stays summed under the first's class (assetClassHint is set once, in
 * applyApproval, src/state/projections/reservations.ts). The crypto headroom the second approval
 * used is then free again for the next crypto order: approved over the limit.
 */
import { describe, expect, it } from "vitest";
import { order } from "../support/engine.js";
import { exposureBench } from "../support/exposure.js";
describe("red-team exposure: asset class stated by orders", () => {
  const h = exposureBench();
  const { outcome, setup, check } = h;

  it("an asset class stated by orders (no refdata): an approval counted as crypto stays crypto", async () => {
    const F = "rx-acx";
    await setup(F, { max_asset_class_pct: { crypto: "0.2" } }); // 200 000
    // the first order on RXAC1 calls it equity (no refdata): no equity limit
    expect(
      await check({
        fund_id: F,
        symbol: "RXAC1",
        asset_class: "equity",
        quantity: "1000",
        limit_price: "100",
      }),
    ).toBe("approved");
    // the second calls it crypto. Before stop 29 it was approved, judged with the whole book as
    // crypto (100 000 + 100 000 = 200 000), while its reservation was summed under equity (the book
    // keeps the class of its first order: assetClassHint), so a later crypto order did not see it
    // and 150 000 more crypto was approved over the 200 000 limit. Now one symbol has one class in
    // a fund: with no refdata, the class its earlier orders established; another is SCHEMA_INVALID
    // at asset_class, as an order contradicting refdata is.
    const second = await h.bus.check(
      order({ fund_id: F, symbol: "RXAC1", asset_class: "crypto", quantity: "1000", limit_price: "100" }),
    );
    expect(`${outcome(second)} ${second.details["path"]} ${second.details["book_asset_class"]}`).toBe(
      "schema/SCHEMA_INVALID asset_class equity",
    );
    // an order on it stating equity, or none, is judged as before
    expect(
      await check({ fund_id: F, symbol: "RXAC1", asset_class: "equity", quantity: "10", limit_price: "100" }),
    ).toBe("approved");
    // the crypto limit holds: 150 000 crypto fits 200 000, 60 000 more does not
    expect(
      await check({
        fund_id: F,
        symbol: "RXAC2",
        asset_class: "crypto",
        quantity: "1500",
        limit_price: "100",
      }),
    ).toBe("approved");
    expect(
      await check({
        fund_id: F,
        symbol: "RXAC3",
        asset_class: "crypto",
        quantity: "600",
        limit_price: "100",
      }),
    ).toBe("position/ASSET_CLASS_CONCENTRATION_EXCEEDED");
  });
});
