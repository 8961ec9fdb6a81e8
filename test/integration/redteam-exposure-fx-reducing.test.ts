/**
 * Found by the red team (fixed in stop 29, exposure; a valid order refused): while a fund holds a currency with no usable
 * FX rate (never seen, or a quote with no bid), every order of the fund is STALE_MARKET_DATA,
 * including a risk-reducing order on an instrument in the base currency, which needs neither the
 * rate nor NAV. The fund cannot cut risk anywhere until the FX feed recovers.
 */
import { describe, expect, it } from "vitest";
import { order } from "../support/engine.js";
import { exposureBench } from "../support/exposure.js";
describe("red-team exposure: reducing orders while a rate is missing", () => {
  const h = exposureBench();
  const { outcome, setup, quote, fill, inst, check } = h;

  it("a risk-reducing SELL of a USD position passes while an unrelated EUR rate has no bid", async () => {
    const F = "rx-fxred1";
    await setup(F, { max_gross_exposure_pct: "1" });
    await inst({ symbol: "RXFR1", asset_class: "equity", currency: "EUR" });
    await inst({ symbol: "RXFR2", asset_class: "equity" });
    await quote("EUR-USD", "1.1", "1.1");
    await fill({ fund_id: F, symbol: "RXFR1", quantity: "100", price: "50" });
    await fill({ fund_id: F, symbol: "RXFR2", quantity: "1000", price: "100" });
    expect(
      await check({ fund_id: F, symbol: "RXFR2", side: "SELL", quantity: "10", limit_price: "100" }),
    ).toBe("approved");
    await quote("EUR-USD", "0", "1.1"); // the EUR rate has no bid: no rate
    // Fixed in stop 29. CONTRACT.md: "An instrument priced in another currency is converted at the fresh FX
    // mark `<CCY>-<BASE>`; with none, an order on it is STALE_MARKET_DATA" and "A risk-reducing
    // order ... passes the position, velocity, drawdown and reconciliation gates". This SELL is on a
    // USD instrument and reduces a USD long: it needs neither the EUR rate nor NAV. Expected: approved.
    // Before the fix: static/STALE_MARKET_DATA ("the fund holds EUR with no FX rate ...: NAV unknown",
    // checkFx in src/gates/market-data.ts refuses every order of the fund): the fund cannot cut risk
    // in any currency while one rate has no bid, or was never seen.
    const d = await h.bus.check(
      order({ fund_id: F, symbol: "RXFR2", side: "SELL", quantity: "10", limit_price: "100" }),
    );
    expect(outcome(d)).toBe("approved");
  });

  it("a risk-reducing SELL of a USD position passes while a CHF position's rate was never seen", async () => {
    const F = "rx-fxred2";
    await setup(F, { max_gross_exposure_pct: "1" });
    await inst({ symbol: "RXFR3", asset_class: "equity", currency: "CHF" });
    await inst({ symbol: "RXFR4", asset_class: "equity" });
    await fill({ fund_id: F, symbol: "RXFR3", quantity: "100", price: "50" }); // a transfer in: no CHF-USD ever
    await fill({ fund_id: F, symbol: "RXFR4", quantity: "1000", price: "100" });
    // Fixed in stop 29 (same rule as above). Expected approved; actual static/STALE_MARKET_DATA.
    const d = await h.bus.check(
      order({ fund_id: F, symbol: "RXFR4", side: "SELL", quantity: "10", limit_price: "100" }),
    );
    expect(outcome(d)).toBe("approved");
  });
});
