/**
 * Red-team s30b: fills naming an approved order's id but another symbol or side. CONTRACT.md
 * "Semantics": "Resulting exposure counts the current position plus every approved order not yet
 * filled, cancelled, rejected or expired (its reservation), plus this order." A fill in symbol Q
 * moves the position in Q; it does not fill an order for symbol P, so P's reservation stays until
 * fills in P (or an end event) come.
 */
import { describe, expect, it } from "vitest";
import { order } from "../support/engine.js";
import { exposureBench } from "../support/exposure.js";

describe("red-team s30b: fills whose symbol or side is not the order's", () => {
  const t = exposureBench();
  const POS = "position/MAX_POSITION_EXCEEDED";

  it("regression guard: an order id known only from fills is DUPLICATE_ORDER_ID and reserves nothing (README: order identity)", async () => {
    const F = "s30b-fm-ghost";
    await t.setup(F, { max_position_pct: "0.1" });
    await t.fill({ fund_id: F, order_id: "s30b-ghost-1", symbol: "FMQ2", quantity: "600", price: "100" });
    const a = order({
      fund_id: F,
      order_id: "s30b-ghost-1",
      symbol: "FMP2",
      quantity: "1000",
      limit_price: "100",
    });
    expect(t.outcome(await t.bus.check(a))).toBe("idempotency/DUPLICATE_ORDER_ID");
    expect(await t.check({ fund_id: F, symbol: "FMP2", quantity: "1000.01", limit_price: "100" })).toBe(POS);
    expect(await t.check({ fund_id: F, symbol: "FMP2", quantity: "1000", limit_price: "100" })).toBe(
      "approved",
    );
  });

  it("regression guard: fills in the order's own symbol release exactly their quantity", async () => {
    const F = "s30b-fm-own";
    await t.setup(F, { max_position_pct: "0.1" });
    const a = order({ fund_id: F, symbol: "FMP3", quantity: "1000", limit_price: "100" });
    expect(t.outcome(await t.bus.check(a))).toBe("approved");
    await t.fill({ fund_id: F, order_id: a["order_id"], symbol: "FMP3", quantity: "400", price: "50" });
    // 400 at cost 20 000 + 600 × 100 reserved = 80 000: 20 000 left
    expect(await t.check({ fund_id: F, symbol: "FMP3", quantity: "200.01", limit_price: "100" })).toBe(POS);
    expect(await t.check({ fund_id: F, symbol: "FMP3", quantity: "200", limit_price: "100" })).toBe(
      "approved",
    );
  });
});
