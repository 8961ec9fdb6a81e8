/**
 * Found by the red team (fixed in stop 29, exposure; a reading of the contract): a strategy override of
 * max_asset_class_pct replaces the fund's whole map instead of overriding the classes it names.
 */
import { describe, expect, it } from "vitest";
import { exposureBench } from "../support/exposure.js";
describe("red-team exposure: strategy override of a per-class limit", () => {
  const h = exposureBench();
  const { setup, inst, check } = h;

  it("a strategy override of one asset class keeps the fund's limit on the others", async () => {
    const F = "rx-strat1";
    await setup(F, {
      max_asset_class_pct: { crypto: "0.2" }, // 200 000
      strategies: { s1: { max_asset_class_pct: { equity: "0.5" } } },
    });
    await inst({ symbol: "RXCR", asset_class: "crypto" });
    expect(await check({ fund_id: F, symbol: "RXCR", quantity: "3000", limit_price: "100" })).toBe(
      "position/ASSET_CLASS_CONCENTRATION_EXCEEDED",
    );
    // Fixed in stop 29 (spec reading). CONTRACT.md: "`strategies` overrides fields for orders that carry that
    // strategy_id". The strategy narrows equity; it says nothing of crypto. Expected: the fund's
    // crypto limit (20 %) still applies to s1's crypto order: ASSET_CLASS_CONCENTRATION_EXCEEDED.
    // Before the fix: approved, 300 000 of crypto (30 % of NAV). The override replaces the whole map
    // (overlay() in src/state/projections/envelopes.ts), so a strategy that caps one class lifts
    // the fund's caps on every other class.
    expect(
      await check({ fund_id: F, strategy_id: "s1", symbol: "RXCR", quantity: "3000", limit_price: "100" }),
    ).toBe("position/ASSET_CLASS_CONCENTRATION_EXCEEDED");
  });
});
