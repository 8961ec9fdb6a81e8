/**
 * Decimal math (src/decimal): parsing, canonical strings, and the "exactly at a limit passes,
 * one smallest unit above fails" rule the gates rely on.
 */
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { Dec, canon, dec, div, parseDec, pct, sign } from "../../src/decimal/index.js";
import { OrderSchema } from "../../src/contract/schemas.js";

const CANONICAL_RE = /^-?(?:0|[1-9]\d*)(?:\.\d*[1-9])?$/;

function must(s: string): Dec {
  const d = parseDec(s);
  if (d === undefined) throw new Error(`test setup: ${s} did not parse`);
  return d;
}

/** An oracle independent of big.js: the value scaled to 18 fraction digits, as a bigint. */
function scaled(s: string): bigint {
  const neg = s.startsWith("-");
  const body = neg ? s.slice(1) : s;
  const [int = "0", frac = ""] = body.split(".");
  const v = BigInt(int + frac.padEnd(18, "0"));
  return neg ? -v : v;
}

/** Random decimal strings in the accepted grammar (≤ 30 integer digits, ≤ 18 fraction digits). */
const decimalString = fc
  .record({
    neg: fc.boolean(),
    int: fc.oneof(
      fc.constant("0"),
      fc.bigInt({ min: 1n, max: 10n ** 30n - 1n }).map(String),
      fc.integer({ min: 1, max: 1_000_000 }).map(String),
    ),
    frac: fc.option(fc.stringMatching(/^\d{1,18}$/), { nil: undefined }),
  })
  .map(({ neg, int, frac }) => `${neg ? "-" : ""}${int}${frac === undefined ? "" : `.${frac}`}`);

/** Number of fraction digits a decimal string is written with. */
function scaleOf(s: string): number {
  const i = s.indexOf(".");
  return i < 0 ? 0 : s.length - i - 1;
}

describe("parseDec and canon", () => {
  it.each([
    ["10", "10"],
    ["0.5", "0.5"],
    ["190.12", "190.12"],
    ["-0", "0"],
    ["-0.000", "0"],
    ["0.0", "0"],
    ["1.50", "1.5"],
    ["100.000", "100"],
    ["-2.250", "-2.25"],
    ["0.000000000000000001", "0.000000000000000001"],
    ["123456789012345678901234567890", "123456789012345678901234567890"],
    [
      "123456789012345678901234567890.123456789012345678",
      "123456789012345678901234567890.123456789012345678",
    ],
  ])("given the string %s, when parsed and canonicalised, then it reads %s", (input, expected) => {
    const d = parseDec(input);
    expect(d).toBeDefined();
    expect(canon(d!)).toBe(expected);
  });

  it.each([
    ["1e5"],
    ["1E5"],
    ["NaN"],
    ["Infinity"],
    ["-Infinity"],
    ["+1"],
    [".5"],
    ["1."],
    [""],
    ["-"],
    [" 1"],
    ["1 "],
    ["01"],
    ["00.5"],
    ["1,5"],
    ["1_000"],
    ["0x10"],
    ["1.2.3"],
    ["--1"],
    ["1234567890123456789012345678901"], // 31 integer digits
    ["0.1234567890123456789"], // 19 fraction digits
  ])("given the non-canonical-grammar string %j, when parsed, then it is rejected", (input) => {
    expect(parseDec(input)).toBeUndefined();
    // dec() reads what the engine wrote itself: longer digit strings are fine there, bad grammar is not
    if (/^-?(0|[1-9]\d*)(\.\d+)?$/.test(input)) expect(canon(dec(input))).toBe(input);
    else expect(() => dec(input)).toThrow(RangeError);
  });

  it("given numbers, when constructed with dec, then only exact integers are accepted", () => {
    expect(canon(dec(42))).toBe("42");
    expect(canon(dec(-7))).toBe("-7");
    expect(canon(dec(-0))).toBe("0");
    expect(() => dec(0.5)).toThrow(RangeError);
    expect(() => dec(Number.NaN)).toThrow(RangeError);
    expect(() => dec(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => dec(2 ** 53)).toThrow(RangeError);
  });

  it("given an order with a JSON-number quantity, when parsed, then exact integers pass and fractions or exponents fail", () => {
    const base = {
      order_id: "o",
      idempotency_key: "k",
      fund_id: "alpha",
      broker: "paper",
      symbol: "AAPL",
      side: "BUY",
      order_type: "MARKET",
    };
    const ok = OrderSchema.safeParse({ ...base, quantity: 100 });
    expect(ok.success && canon(ok.data.quantity)).toBe("100");
    for (const q of [1.5, "1e5", 1e300, "NaN", "Infinity", "+1", ".5", "1.", ""]) {
      const r = OrderSchema.safeParse({ ...base, quantity: q });
      expect(r.success, `quantity ${String(q)}`).toBe(false);
      if (!r.success) expect(r.error.issues[0]?.path).toEqual(["quantity"]);
    }
  });

  it("given small helpers, when applied, then sign, div and pct are exact and deterministic", () => {
    expect(sign(must("-0"))).toBe(0);
    expect(sign(must("-0.1"))).toBe(-1);
    expect(sign(must("3"))).toBe(1);
    expect(canon(div(must("1"), must("3")))).toBe("0.333333333333333333");
    expect(canon(div(must("2"), must("3")))).toBe("0.666666666666666667");
    expect(pct(must("0.12"))).toBe("12.0%");
  });

  it("given any accepted decimal string, short (the summed fast path) or long, when parsed, then it is Dec.of's value at Dec.of's scale", () => {
    const short = fc
      .record({
        neg: fc.boolean(),
        int: fc.oneof(fc.constant("0"), fc.integer({ min: 1, max: 999_999_999 }).map(String)),
        frac: fc.option(fc.stringMatching(/^\d{1,8}$/), { nil: undefined }),
      })
      .map(({ neg, int, frac }) => `${neg ? "-" : ""}${int}${frac === undefined ? "" : `.${frac}`}`);
    // 15 digits and 16 (the edge of the safe-integer path), with and without a sign and a point
    const edges = [
      "999999999999999",
      "-999999999999999",
      "99999999.9999999",
      "9999999999999999",
      "-0.000000000000001",
      "9007199254740993",
      "-900719925474099.3",
    ];
    for (const s of [...edges, ...fc.sample(short, 2000), ...fc.sample(decimalString, 2000)]) {
      const want = Dec.of(s);
      for (const got of [parseDec(s), dec(s)]) {
        expect(got?.units, s).toBe(want.units);
        expect(got?.scale, s).toBe(want.scale);
      }
    }
  });

  it("given any accepted decimal string, when canonicalised twice, then the result is stable and canonical", () => {
    fc.assert(
      fc.property(decimalString, (s) => {
        const once = canon(must(s));
        const twice = canon(must(once));
        expect(twice).toBe(once);
        expect(once).toMatch(CANONICAL_RE);
        expect(once).not.toBe("-0");
        expect(scaled(once)).toBe(scaled(s)); // same value as written
      }),
      { numRuns: 300 },
    );
  });

  it("given units and a scale with trailing zeros, leading fraction zeros or a sign, when written exactly, then toFixed() is the shortest exact text", () => {
    const cases: [bigint, number, string][] = [
      [0n, 0, "0"],
      [0n, 7, "0"],
      [1000n, 3, "1"],
      [1000n, 2, "10"],
      [1000n, 0, "1000"],
      [-1000n, 3, "-1"],
      [5n, 1, "0.5"],
      [-5n, 1, "-0.5"],
      [100n, 6, "0.0001"],
      [-100n, 6, "-0.0001"],
      [123450n, 3, "123.45"],
      [10n ** 40n, 40, "1"],
      [10n ** 40n + 10n, 40, "1.000000000000000000000000000000000000001"],
    ];
    for (const [u, s, text] of cases) expect(new Dec(u, s).toFixed()).toBe(text);
    // against the value itself: any units and scale, written, parse back to the same value
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
        fc.integer({ min: 0, max: 40 }),
        (u, s) => {
          const d = new Dec(u, s);
          const text = d.toFixed();
          expect(text).toMatch(CANONICAL_RE);
          expect(Dec.of(text).eq(d)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("given two accepted decimal strings, when compared, then lte agrees with exact integer arithmetic", () => {
    fc.assert(
      fc.property(decimalString, decimalString, (a, l) => {
        expect(must(a).lte(must(l))).toBe(scaled(a) <= scaled(l));
      }),
      { numRuns: 300 },
    );
  });
});

describe("limit boundaries", () => {
  it("given a limit L, when a value is exactly L, then it passes; when one unit at 18 dp above, then it fails", () => {
    fc.assert(
      fc.property(decimalString, (l) => {
        const limit = must(l);
        const atLimit = must(canon(limit));
        expect(atLimit.lte(limit)).toBe(true);
        const above = must(canon(limit.plus(must("0.000000000000000001"))));
        expect(above.lte(limit)).toBe(false);
        expect(scaled(canon(above)) - scaled(l)).toBe(1n);
      }),
      { numRuns: 300 },
    );
  });

  it("given a limit L, when a value is one unit of L's own scale above, then it fails, and one below passes", () => {
    fc.assert(
      fc.property(decimalString, (l) => {
        const limit = must(l);
        const unit = must(scaleOf(l) === 0 ? "1" : `0.${"1".padStart(scaleOf(l), "0")}`);
        expect(limit.plus(unit).lte(limit)).toBe(false);
        expect(limit.minus(unit).lte(limit)).toBe(true);
        expect(limit.lte(limit)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("given a product quantity × price, when it lands exactly on a limit, then lte passes with no rounding", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.integer({ min: 0, max: 9 }),
        fc.bigInt({ min: 1n, max: 10n ** 9n }),
        fc.integer({ min: 0, max: 9 }),
        (qi, qs, pi, ps) => {
          const q = must(canon(dec(qi.toString()).div(10 ** qs)));
          const p = must(canon(dec(pi.toString()).div(10 ** ps)));
          const limit = must(canon(q.times(p)));
          expect(q.times(p).lte(limit)).toBe(true);
          expect(q.times(p).plus(must("0.000000000000000001")).lte(limit)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });
});
