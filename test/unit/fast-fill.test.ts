import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fastParseFill } from "../../src/contract/fast-fill.js";
import { FillSchema } from "../../src/contract/schemas.js";
import { toWire } from "../../src/contract/wire.js";

const value = (good: unknown[]) =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...good), weight: 14 },
    {
      arbitrary: fc.constantFrom(
        undefined,
        null,
        "",
        " ",
        0,
        1,
        -1,
        1.5,
        true,
        "NaN",
        "1e3",
        "-5",
        "0",
        {},
        [],
      ),
      weight: 1,
    },
    { arbitrary: fc.string({ maxLength: 8 }), weight: 1 },
  );

const fillish = fc.record(
  {
    fill_id: value(["f-1", "fill/2.x"]),
    order_id: value(["o-1"]),
    fund_id: value(["alpha", "a_b-9", "bad.fund"]),
    strategy_id: value(["mom-1", "bad id"]),
    broker: value(["paper"]),
    symbol: value(["AAPL", "BTC-USD"]),
    side: value(["BUY", "SELL", "buy"]),
    quantity: value(["100", "0.5", "1.000000000000000001"]),
    price: value(["190.12", "1", "0", "0.000"]),
    fees: value(["0", "1.25", "-0.5"]),
    venue: value(["XNAS", "v".repeat(65)]),
    timestamp: value(["2026-11-21T14:30:00Z", "2026-11-21T14:30:00.123+02:00", "2026-13-45T99:99:99Z"]),
    kind: value(["TRADE", "ADJUSTMENT", "OTHER"]),
  },
  {
    requiredKeys: [
      "fill_id",
      "order_id",
      "fund_id",
      "broker",
      "symbol",
      "side",
      "quantity",
      "price",
      "timestamp",
    ],
  },
);

describe("fast fill parse", () => {
  it("given any fill-like object, when the fast path accepts it, then zod accepts it with the same value; and it never accepts what zod rejects", () => {
    let accepted = 0;
    fc.assert(
      fc.property(fillish, (f) => {
        const fast = fastParseFill(f);
        if (fast) accepted++;
        const slow = FillSchema.safeParse(f);
        if (fast !== undefined) {
          expect(slow.success).toBe(true);
          if (slow.success) expect(toWire(fast)).toEqual(toWire(slow.data));
        }
        if (!slow.success) expect(fast).toBeUndefined();
      }),
      { numRuns: 5000 },
    );
    // the property saw the fast path take many inputs (≈ 120 of 5 000 on average, 98 seen: > 50)
    expect(accepted).toBeGreaterThan(50);
  });

  it("given a well-formed fill without fees, when parsed, then the fast path takes it with zero fees; an unknown field goes to zod", () => {
    const f = {
      fill_id: "f",
      order_id: "o",
      fund_id: "alpha",
      broker: "paper",
      symbol: "AAPL",
      side: "BUY",
      quantity: "10",
      price: "100",
      timestamp: "2026-11-21T14:30:00Z",
    };
    expect(toWire(fastParseFill(f))).toEqual(toWire(FillSchema.parse(f)));
    expect(fastParseFill(f)?.fees.toFixed()).toBe("0");
    expect(fastParseFill({ ...f, extra: 1 })).toBeUndefined();
  });
});
