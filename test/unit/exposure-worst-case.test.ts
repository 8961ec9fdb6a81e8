/**
 * Position and net limits count every open reservation: both extremes of the symbol (and of the
 * fund's net), this order on its own side, the larger in absolute value. Before, only the order's
 * own side was counted, so an order on the other side passed while the side it does not touch was
 * over the limit (a mark move, a lowered limit): the contract's resulting exposure (position +
 * every reservation + this order) was over it. Found by a red-team pass.
 */
import { describe, it, expect } from "vitest";
import { Feed, deciderOn, rawOrder } from "./fixtures.js";

describe("resulting exposure counts every open reservation, not only the order's side", () => {
  it("net: short 100 000 and a pending short of 40 000, the mark up 20 %: a BUY of 1 200 elsewhere is refused", () => {
    const feed = new Feed()
      .envelope({ max_net_exposure_pct: "0.15", enable_shorting: true })
      .instrument({ symbol: "AAPL", asset_class: "equity", shortable: true })
      .instrument({ symbol: "MSFT", asset_class: "equity", shortable: true });
    feed.quote("AAPL", "100", "100").fill("AAPL", "-1000", "100"); // short 1 000 @ 100
    const decide = deciderOn(feed);
    // net −100 000 − 40 000 = −140 000 within 150 000: approved, reserving
    expect(
      decide(rawOrder({ symbol: "AAPL", side: "SELL", quantity: "400", limit_price: "100" })).approved,
    ).toBe(true);
    feed.quote("AAPL", "120", "120"); // position −120 000; NAV 980 000: the limit is 147 000
    // |−120 000 − 40 000 + 1 200| = 158 800 > 147 000
    const d = decide(rawOrder({ symbol: "MSFT", side: "BUY", quantity: "10", limit_price: "120" }));
    expect(d).toMatchObject({ approved: false, rejection_code: "NET_EXPOSURE_EXCEEDED" });
    expect(d.details["resulting_notional"]).toBe("160000"); // the short extreme, untouched by a BUY
  });

  it("position: flat, a pending BUY of 90 000, the limit lowered to 50 000: a SELL of 10 000 is refused", () => {
    const feed = new Feed()
      .envelope({ max_position_pct: "0.10", enable_shorting: true })
      .instrument({ symbol: "AAPL", asset_class: "equity", shortable: true });
    const decide = deciderOn(feed);
    expect(decide(rawOrder({ side: "BUY", quantity: "900", limit_price: "100" })).approved).toBe(true);
    feed.envelope({ version: 2, max_position_pct: "0.05", enable_shorting: true }); // 50 000
    // |0 + 90 000 − 10 000| = 80 000 > 50 000 (and the long extreme is 90 000)
    const d = decide(rawOrder({ side: "SELL", quantity: "100", limit_price: "100" }));
    expect(d).toMatchObject({
      approved: false,
      rejection_code: "MAX_POSITION_EXCEEDED",
      envelope_id: "alpha@v2",
    });
    expect(d.details["resulting_notional"]).toBe("90000");
  });

  it("an order on the other side still passes while both extremes are within the limit", () => {
    const feed = new Feed()
      .envelope({ max_position_pct: "0.10", max_net_exposure_pct: "0.10", enable_shorting: true })
      .instrument({ symbol: "AAPL", asset_class: "equity", shortable: true });
    const decide = deciderOn(feed);
    expect(decide(rawOrder({ side: "BUY", quantity: "900", limit_price: "100" })).approved).toBe(true); // 90 000
    expect(decide(rawOrder({ side: "SELL", quantity: "1000", limit_price: "100" })).approved).toBe(true); // −100 000
    const d = decide(rawOrder({ side: "SELL", quantity: "1", limit_price: "100" })); // −100 100
    expect(d.rejection_code).toBe("MAX_POSITION_EXCEEDED");
  });
});
