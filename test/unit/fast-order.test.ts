import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fastParseOrder } from "../../src/contract/fast-order.js";
import { OrderSchema } from "../../src/contract/schemas.js";
import { toWire } from "../../src/contract/wire.js";

const value = (good: unknown[]) =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...good), weight: 12 },
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
        "x".repeat(300),
        {},
        [],
      ),
      weight: 1,
    },
    { arbitrary: fc.string({ maxLength: 8 }), weight: 1 },
  );

const orderish = fc.record(
  {
    order_id: value(["o-1", "ord.7/x"]),
    idempotency_key: value(["k-1"]),
    fund_id: value(["alpha", "a_b-9", "bad.fund"]),
    strategy_id: value(["mom-1"]),
    broker: value(["paper"]),
    symbol: value(["AAPL", "BTC-USD"]),
    asset_class: value(["equity", "crypto", "stock"]),
    side: value(["BUY", "SELL", "buy"]),
    order_type: value(["MARKET", "LIMIT", "STOP", "STOP_LIMIT"]),
    quantity: value(["100", "0.5", "1.000000000000000001", "100"]),
    limit_price: value(["190.12", "1"]),
    stop_price: value(["180", "2"]),
    time_in_force: value(["DAY", "IOC", "GTC_TOO_LONG_FOR_IT"]),
    reduce_only: value([false, true]),
    created_at: value(["2026-11-21T14:30:00Z", "2026-11-21T14:30:00.123+02:00", "2026-13-45T99:99:99Z"]),
    locate_id: value(["loc-1"]),
  },
  {
    requiredKeys: [
      "order_id",
      "idempotency_key",
      "fund_id",
      "broker",
      "symbol",
      "side",
      "order_type",
      "quantity",
    ],
  },
);

describe("fast order parse", () => {
  it("given any order-like object, when the fast path accepts it, then zod accepts it with the same value; and it never accepts what zod rejects", () => {
    let accepted = 0;
    fc.assert(
      fc.property(orderish, (o) => {
        const fast = fastParseOrder(o);
        if (fast) accepted++;
        const slow = OrderSchema.safeParse(o);
        if (fast !== undefined) {
          expect(slow.success).toBe(true);
          if (slow.success) expect(toWire(fast)).toEqual(toWire(slow.data));
        }
        if (!slow.success) expect(fast).toBeUndefined();
      }),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(100); // the property saw the fast path take many inputs
  });
  it("given a well-formed order, when parsed, then the fast path takes it", () => {
    const o = {
      order_id: "o",
      idempotency_key: "k",
      fund_id: "f",
      broker: "b",
      symbol: "S",
      side: "BUY",
      order_type: "LIMIT",
      quantity: "1",
      limit_price: "2",
    };
    expect(fastParseOrder(o)).toBeDefined();
  });
});
