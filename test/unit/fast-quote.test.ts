import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fastParseQuote } from "../../src/contract/fast-quote.js";
import { QuoteSchema } from "../../src/contract/schemas.js";
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
        {},
        [],
      ),
      weight: 1,
    },
    { arbitrary: fc.string({ maxLength: 8 }), weight: 1 },
  );

const quoteish = fc.record(
  {
    symbol: value(["AAPL", "BTC-USD", "bad.sym"]),
    bid: value(["99.99", "100", "100.01", "0.000000000000000001", "0", "0.00"]),
    ask: value(["100.01", "100", "99.98", "0", "0.0"]),
    bid_size: value(["10", "0"]),
    ask_size: value(["5", "0.5"]),
    venue: value(["XNAS", "v".repeat(65)]),
    timestamp: value(["2026-11-21T14:30:00Z", "2026-11-21T14:30:00.123+02:00", "2026-13-45T99:99:99Z"]),
  },
  { requiredKeys: ["symbol", "bid", "ask", "timestamp"] },
);

describe("fast quote parse", () => {
  it("given any quote-like object, when the fast path accepts it, then zod accepts it with the same value; and it never accepts what zod rejects", () => {
    let accepted = 0;
    fc.assert(
      fc.property(quoteish, (q) => {
        const fast = fastParseQuote(q);
        if (fast) accepted++;
        const slow = QuoteSchema.safeParse(q);
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

  it("given a well-formed quote, when parsed, then the fast path takes it; with an unknown field, zod decides", () => {
    const q = { symbol: "AAPL", bid: "99.99", ask: "100.01", timestamp: "2026-11-21T14:30:00Z" };
    expect(fastParseQuote(q)).toMatchObject({ symbol: "AAPL", timestamp: Date.parse(q.timestamp) });
    expect(fastParseQuote({ ...q, extra: 1 })).toBeUndefined();
    expect(QuoteSchema.safeParse({ ...q, extra: 1 }).success).toBe(true);
  });
});
