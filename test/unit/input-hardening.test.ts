/**
 * Odd input that the schemas allow must not change what the limits see (found by a red-team pass):
 *  - a sector is free text: one holding the character the category cache once used for "no
 *    sector" (\u0002) was summed with the books that have none, and escaped max_sector_pct;
 *  - `__proto__` matches the id pattern, but zod's record drops such a strategy override: the
 *    envelope is refused with a structured error rather than applied without it.
 */
import { describe, expect, it } from "vitest";
import { EnvelopeSchema } from "../../src/contract/schemas.js";
import { Subjects } from "../../src/contract/subjects.js";
import { project } from "../../src/state/index.js";
import { FUND, Feed, NOW, deciderOn, envelope, rawOrder } from "./fixtures.js";

describe("odd input the schemas allow", () => {
  it("keeps every fill id within the window when a fill stamped far ahead comes (its stream time bounds the watermark)", () => {
    const feed = new Feed();
    const body = {
      fill_id: "broker-fill-1",
      order_id: "ext-1",
      fund_id: FUND,
      broker: "paper",
      symbol: "AAPL",
      side: "BUY",
      quantity: "100",
      price: "100",
      fees: "0",
      timestamp: new Date(NOW).toISOString(),
    };
    feed.publish("FILLS", Subjects.fill(FUND, "AAPL"), body, NOW);
    // another fund's fill from a broker whose clock is wrong (2099), stored a second later
    const wrong = {
      ...body,
      fill_id: "other-1",
      fund_id: "beta",
      symbol: "MSFT",
      timestamp: "2099-01-01T00:00:00Z",
    };
    feed.publish("FILLS", Subjects.fill("beta", "MSFT"), wrong, NOW + 1000);
    // the first fill delivered again (a new stream sequence, the same fill_id)
    const again = project(
      feed.state,
      "FILLS",
      Subjects.fill(FUND, "AAPL"),
      new TextEncoder().encode(JSON.stringify(body)),
      3,
      NOW + 2000,
    );
    expect(again).toMatchObject({ ok: true, notice: { kind: "duplicate_fill" } });
    expect(feed.state.funds.get(FUND)?.books.get("AAPL")?.pos.qty.toFixed()).toBe("100");
  });

  it("counts a held position in the order's sector whatever characters the sector holds", () => {
    for (const sector of ["\u0002", "\u0001x", "tech"]) {
      const feed = new Feed().envelope({ max_sector_pct: "0.10" });
      feed.instrument({ symbol: "NOSEC", asset_class: "equity" }); // no sector
      feed.instrument({ symbol: "S1", asset_class: "equity", sector });
      feed.instrument({ symbol: "S2", asset_class: "equity", sector });
      feed.quote("NOSEC", "100", "100").quote("S1", "100", "100").quote("S2", "100", "100");
      feed.fill("NOSEC", "1", "100");
      feed.fill("S1", "900", "100"); // 90 000 in the sector
      // 90 000 held + 20 000 ordered > 10 % of ≈ 1 000 000
      const d = deciderOn(feed)(rawOrder({ symbol: "S2", quantity: "200", limit_price: "100" }));
      expect(d.rejection_code, JSON.stringify(sector)).toBe("SECTOR_CONCENTRATION_EXCEEDED");
    }
  });

  it("refuses an envelope whose strategy override is keyed __proto__, never applies it without the override", () => {
    const raw = `{"fund_id":"${FUND}","version":1,"capital":"1000000","strategies":{"__proto__":{"max_order_notional":"1000"}}}`;
    const parsed = EnvelopeSchema.safeParse(JSON.parse(raw));
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toContain("__proto__ is reserved");
    const feed = new Feed();
    const r = project(
      feed.state,
      "RISK_ENVELOPES",
      Subjects.envelopeUpdated(FUND),
      new TextEncoder().encode(raw),
      1,
    );
    expect(r.ok).toBe(false);
    expect(feed.state.funds.get(FUND)?.envelope).toBeUndefined();
    // an ordinary id still works (the next envelope message, at the next sequence)
    feed.seqs.set("RISK_ENVELOPES", 1);
    feed.envelope({ max_order_notional: "1000000", strategies: { "mom-1": { max_order_notional: "1000" } } });
    expect(deciderOn(feed)(rawOrder({ strategy_id: "mom-1" })).rejection_code).toBe(
      "MAX_ORDER_NOTIONAL_EXCEEDED",
    );
    expect(envelope().fund_id).toBe(FUND);
  });
});
