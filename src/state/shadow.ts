/**
 * Float shadows of a fund's exact aggregates, for the filtered comparisons of the gates
 * (src/decimal/approx.ts). A shadow is recomputed from the exact value when that value changed:
 * aggregates are immutable `Dec`s replaced on every change, so an identity test tells. Nothing
 * that writes the aggregates has to know about the shadows; the exact values stay the truth.
 */
import { type Dec, approx } from "../decimal/index.js";
import type { FundState } from "./model.js";

/** A float copy of one exact value and the value it was taken from. */
export interface Shadow {
  d: Dec | undefined;
  f: number;
}

const slot = (): Shadow => ({ d: undefined, f: NaN });

/** The float of `d`, from the slot when `d` is the value it was taken from. */
export function shadowOf(s: Shadow, d: Dec): number {
  if (s.d !== d) {
    s.f = approx(d);
    s.d = d;
  }
  return s.f;
}

export interface FundShadow {
  capital: Shadow;
  realized: Shadow;
  mv: Shadow;
  cost: Shadow;
  fees: Shadow;
  gross: Shadow;
  netLong: Shadow;
  netShort: Shadow;
  /** Limits read every order (the position gate's percentages), by the gate's own numbering. */
  limits: Shadow[];
}

const shadows = new WeakMap<FundState, FundShadow>();

export function fundShadow(fund: FundState): FundShadow {
  let s = shadows.get(fund);
  if (!s) {
    s = {
      capital: slot(),
      realized: slot(),
      mv: slot(),
      cost: slot(),
      fees: slot(),
      gross: slot(),
      netLong: slot(),
      netShort: slot(),
      limits: [slot(), slot(), slot(), slot(), slot()],
    };
    shadows.set(fund, s);
  }
  return s;
}

/**
 * NAV in float (capital + realized + mv − cost − fees, as `nav()` computes it exactly) and its
 * magnitude (the sum of the terms' absolute values: the error bound's scale), into `out`.
 * Undefined when the fund has no envelope (no NAV).
 */
export function navApprox(fund: FundState, s: FundShadow, out: { v: number; m: number }): boolean {
  const env = fund.envelope;
  if (!env) return false;
  const a = fund.agg;
  const cap = shadowOf(s.capital, env.envelope.capital);
  const re = shadowOf(s.realized, a.realized);
  const mv = shadowOf(s.mv, a.mv);
  const co = shadowOf(s.cost, a.cost);
  const fe = shadowOf(s.fees, a.fees);
  out.v = cap + (re + mv - co - fe);
  out.m = Math.abs(cap) + Math.abs(re) + Math.abs(mv) + Math.abs(co) + Math.abs(fe);
  return true;
}
