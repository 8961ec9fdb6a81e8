/**
 * Exact decimal arithmetic for money, prices, quantities and percentages.
 * Backed by `Dec` (bigint units and a scale; exact for + - *). Division is only used for
 * display values and average cost, and rounds half-even at DIV_DP places, deterministically.
 */
import { Dec } from "./dec.js";

export { Dec, DecimalError, Rounding, type DecLike } from "./dec.js";
export { APPROX_REL, APPROX_TINY, approx, approxSign, configureApprox } from "./approx.js";

export const DIV_DP = 18;
const DECIMAL_RE = /^-?(?:0|[1-9]\d{0,29})(?:\.\d{1,18})?$/;
/** What the engine itself writes (products of wire values carry more fraction digits). */
const INTERNAL_RE = /^-?(?:0|[1-9]\d{0,299})(?:\.\d{1,300})?$/;

export const ZERO: Dec = Dec.of(0);
export const ONE: Dec = Dec.of(1);
export const HALF: Dec = Dec.of("0.5");

/** Parse a wire decimal string (no exponent, at most 30 integer and 18 fraction digits). */
export function parseDec(s: string): Dec | undefined {
  if (!DECIMAL_RE.test(s)) return undefined;
  return ofChecked(s);
}

/**
 * Dec.of of a string that passed DECIMAL_RE or INTERNAL_RE: up to 15 digits (every fill and quote
 * field) the units are summed as a safe integer, with no match array nor digit string to allocate.
 */
function ofChecked(s: string): Dec {
  const n = s.length;
  if (n > 16) return Dec.of(s);
  let units = 0;
  let scale = -1;
  let i = s.charCodeAt(0) === 45 ? 1 : 0; // "-"
  if (n - i > 15 + (s.indexOf(".") >= 0 ? 1 : 0)) return Dec.of(s);
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 46)
      scale = 0; // "."
    else {
      units = units * 10 + (c - 48);
      if (scale >= 0) scale++;
    }
  }
  const u = BigInt(units);
  return new Dec(s.charCodeAt(0) === 45 ? -u : u, scale < 0 ? 0 : scale);
}

/** Parse a decimal the engine wrote itself (snapshot, journal): wider than the wire format. */
export function parseDecInternal(s: string): Dec | undefined {
  if (!INTERNAL_RE.test(s)) return undefined;
  return ofChecked(s);
}

/** Construct from a trusted decimal string (engine-written) or safe integer; throws on anything else. */
export function dec(v: string | number): Dec {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new RangeError(`not an exact integer: ${v}`);
    return Dec.of(v);
  }
  const d = parseDecInternal(v);
  if (d === undefined) throw new RangeError(`not a decimal string: ${v}`);
  return d;
}

/** Canonical string: no exponent, no '+', no trailing zeros, '0' for any zero. */
export function canon(d: Dec): string {
  if (d.eq(ZERO)) return "0";
  return d.toFixed();
}

export function abs(d: Dec): Dec {
  return d.abs();
}

export function max(a: Dec, b: Dec): Dec {
  return a.gte(b) ? a : b;
}

export function min(a: Dec, b: Dec): Dec {
  return a.lte(b) ? a : b;
}

export function sign(d: Dec): -1 | 0 | 1 {
  return d.s === -1 && !d.eq(ZERO) ? -1 : d.eq(ZERO) ? 0 : 1;
}

/** a / b rounded half-even to DIV_DP places; deterministic. */
export function div(a: Dec, b: Dec): Dec {
  return a.div(b, DIV_DP);
}

/** Display a fraction as a percentage with one decimal place ("12.0%"). */
export function pct(fraction: Dec): string {
  return `${fraction.times(100).toFixed(1)}%`;
}
