/**
 * `Dec` (bigint units and a scale) against big.js as an oracle: the engine used big.js before, and
 * every result that reaches a limit, a journal record or the digest must be the same.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import Big from "big.js";
import { Dec, DecimalError } from "../../src/decimal/index.js";

Big.DP = 18;
Big.RM = 2; // half even, as the engine divides
Big.NE = -1e6;
Big.PE = 1e6;

/** Decimal strings: up to 30 integer and 24 fraction digits, some negative, some zero. */
const text = fc
  .record({
    neg: fc.boolean(),
    int: fc.oneof(fc.constant("0"), fc.bigInt({ min: 1n, max: 10n ** 30n }).map(String)),
    frac: fc.option(fc.stringMatching(/^\d{1,24}$/), { nil: undefined }),
  })
  .map(({ neg, int, frac }) => `${neg ? "-" : ""}${int}${frac === undefined ? "" : `.${frac}`}`);

/** big.js prints "-0" for a negative zero; Dec has no negative zero. */
const big = (s: string): string => {
  const t = new Big(s).toFixed();
  return t === "-0" ? "0" : t;
};

describe("Dec agrees with big.js", () => {
  it("given two decimals, when added, subtracted, multiplied and compared, then the results are big.js's", () => {
    fc.assert(
      fc.property(text, text, (a, b) => {
        const x = Dec.of(a);
        const y = Dec.of(b);
        expect(x.plus(y).toFixed()).toBe(big(new Big(a).plus(b).toFixed()));
        expect(x.minus(y).toFixed()).toBe(big(new Big(a).minus(b).toFixed()));
        expect(x.times(y).toFixed()).toBe(big(new Big(a).times(b).toFixed()));
        expect(x.cmp(y)).toBe(new Big(a).cmp(b));
        expect(x.eq(y)).toBe(new Big(a).eq(b));
        expect(x.abs().toFixed()).toBe(big(new Big(a).abs().toFixed()));
        expect(x.neg().toFixed()).toBe(big(new Big(a).neg().toFixed()));
      }),
      { numRuns: 2000 },
    );
  });

  it("given a non-zero divisor, when divided, then the quotient is big.js's at 18 places, half even", () => {
    fc.assert(
      fc.property(
        text,
        text.filter((b) => !new Big(b).eq(0)),
        (a, b) => {
          expect(Dec.of(a).div(b).toFixed()).toBe(big(new Big(a).div(b).toFixed()));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("given any places and rounding mode, when rounded or printed fixed, then the text is big.js's", () => {
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 20 }), fc.constantFrom(0, 1, 2, 3), (a, dp, rm) => {
        const mode = rm;
        expect(Dec.of(a).round(dp, mode).toFixed()).toBe(big(new Big(a).round(dp, mode).toFixed()));
        const fixed = new Big(a).toFixed(dp);
        // big.js keeps the sign of a negative value that rounds to zero ("-0.0"); Dec does not
        expect(Dec.of(a).toFixed(dp)).toBe(/^-0(\.0*)?$/.test(fixed) ? fixed.slice(1) : fixed);
      }),
      { numRuns: 2000 },
    );
  });

  it("given exact halves, when rounded half even, then they go to the even neighbour", () => {
    expect(Dec.of("0.125").round(2).toFixed()).toBe("0.12");
    expect(Dec.of("0.135").round(2).toFixed()).toBe("0.14");
    expect(Dec.of("-2.5").round(0).toFixed()).toBe("-2");
    expect(Dec.of("1").div(3).toFixed()).toBe("0.333333333333333333");
    expect(Dec.of("2").div(3).toFixed()).toBe("0.666666666666666667");
  });

  it("given bad input, when constructed or divided by zero, then a DecimalError with a code is thrown", () => {
    for (const bad of ["", "1e5", "NaN", "1.", ".5", "+1", "0x10"]) {
      expect(() => Dec.of(bad)).toThrow(DecimalError);
    }
    expect(() => Dec.of(0.5)).toThrow(DecimalError);
    expect(() => Dec.of(Number.MAX_SAFE_INTEGER + 1)).toThrow(DecimalError);
    expect(() => Dec.of(1).div(0)).toThrow(/division by zero/);
    try {
      Dec.of("x");
    } catch (e) {
      expect((e as DecimalError).code).toBe("DECIMAL_INVALID");
    }
  });

  it("given values of different scales, when equal in value, then they compare equal and print the same", () => {
    expect(Dec.of("1.500").eq("1.5")).toBe(true);
    expect(Dec.of("1.500").toFixed()).toBe("1.5");
    expect(Dec.of("-0.000").toFixed()).toBe("0");
    expect(Dec.of("100").times("0.010").toFixed()).toBe("1");
    expect(JSON.stringify({ v: Dec.of("2.50") })).toBe('{"v":"2.5"}');
  });
});
