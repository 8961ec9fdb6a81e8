/**
 * Filtered exact predicates: a comparison against a limit is first evaluated in float64 with a
 * rigorous error bound, and only when the float result lies within that bound of the limit is it
 * decided again with exact `Dec` arithmetic (the "static filter" of robust geometric predicates).
 * The answer is always the exact one; the float path only decides when it is certain.
 *
 * The bound. Every input is a `Dec` converted by `approx()`: `Number(units) / 10^scale`, with the
 * power of ten parsed from its literal (correctly rounded), so the conversion's relative error is
 * at most 3u + O(u²) (u = 2^-53): units rounded, 10^scale rounded, the quotient rounded. An
 * expression of +, −, ×, |·| and max over such inputs, evaluated in float64, differs from its exact
 * value by at most γ_N · M, where M is its *magnitude* (the same expression over |inputs| with every
 * − replaced by +, and max kept as max) and N the number of roundings on any one monomial (Higham,
 * "Accuracy and Stability of Numerical Algorithms", §3.1–3.3; |·| and max are 1-Lipschitz). The
 * engine's predicates have N < 60 (at most six converted inputs of ≤ 4 roundings on a monomial,
 * plus fewer than 20 operations); REL = 2^-40 ≈ 9.1e-13 is above γ_N for any N ≤ 8 000, which also
 * covers the rounding of M itself. `TINY` covers underflow (a subnormal's absolute error), which
 * the relative model does not: converted inputs are 0 or ≥ 1e-300 in magnitude, and a product of
 * such can underflow only far below TINY. Any NaN or ±Infinity (an input too large or of too large
 * a scale) makes every test below false: undecided, so exact.
 *
 * `sign(v, m)` is 1 or −1 when the exact value's sign is certain, 0 when the exact path must
 * decide. `test/unit/approx-property.test.ts` holds every gate to the exact path on values built
 * to sit on, and one unit of the smallest scale either side of, each limit.
 */
import type { Dec } from "./dec.js";

export const APPROX_REL = 2 ** -40;
export const APPROX_TINY = 2 ** -900;

/** The bound in force (the property test turns the filter off, or breaks it, to prove it can fail). */
const filter = { rel: APPROX_REL, tiny: APPROX_TINY };

/**
 * For tests only: `off` makes every float test undecided (every limit judged exactly: the
 * reference the fast path is held to); `rel`/`tiny` replace the bound; `reset` restores it.
 */
export function configureApprox(c: { off?: boolean; rel?: number; tiny?: number; reset?: boolean }): void {
  if (c.reset) {
    filter.rel = APPROX_REL;
    filter.tiny = APPROX_TINY;
  }
  if (c.off) {
    filter.rel = Infinity;
    filter.tiny = Infinity;
  }
  if (c.rel !== undefined) filter.rel = c.rel;
  if (c.tiny !== undefined) filter.tiny = c.tiny;
}

/** 10^s, correctly rounded (a parsed literal), for the scales a converted value may carry. */
const MAX_SCALE = 300;
const P10: number[] = Array.from({ length: MAX_SCALE + 1 }, (_, s) => Number(`1e${s}`));

/** The float64 value of a Dec (relative error ≤ 3u); NaN when its scale is out of range. */
export function approx(d: Dec): number {
  const s = d.scale;
  if (s === 0) return Number(d.units);
  return s <= MAX_SCALE ? Number(d.units) / P10[s]! : NaN;
}

/**
 * The sign of an exact value whose float evaluation is `v` with magnitude `m` (see above): 1 or
 * −1 when certain, 0 when |v| is within the error bound (or anything is not finite).
 */
export function approxSign(v: number, m: number): -1 | 0 | 1 {
  const bound = filter.rel * m + filter.tiny;
  if (v > bound) return 1;
  if (v < -bound) return -1;
  return 0;
}
