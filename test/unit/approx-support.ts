/**
 * Support for test/unit/approx-property.test.ts: decimals placed on, one unit or one float64 ulp
 * either side of a limit, and hand-built gate contexts (fund, book, limits, order).
 */
import fc from "fast-check";
import type { Order } from "../../src/contract/schemas.js";
import { Dec, ZERO, approx } from "../../src/decimal/index.js";
import {
  type GateContext,
  positionGate,
  shortSideGate,
  staticGate,
  velocityGate,
} from "../../src/gates/index.js";
import { createState, getBook, getFund } from "../../src/state/index.js";
import type { Book, Effective, EnvelopeEntry, FundState } from "../../src/state/model.js";

export const NOW = Date.parse("2026-11-21T14:30:00.000Z");

// ---------------------------------------------------------------- decimals and boundaries

/** A decimal of scale 0..maxScale and magnitude within [lo, hi] units of that scale's value range. */
export const decimal = (o: { min: number; max: number; maxScale?: number; signed?: boolean }) =>
  fc
    .record({
      scale: fc.integer({ min: 0, max: o.maxScale ?? 8 }),
      mant: fc.double({ min: o.min, max: o.max, noNaN: true, noDefaultInfinity: true }),
      digits: fc.bigInt({ min: 0n, max: 10n ** 6n }),
      neg: o.signed ? fc.boolean() : fc.constant(false),
    })
    .map(({ scale, mant, digits, neg }) => {
      // an integer part from the double, random low digits at the scale: every digit matters
      const int = BigInt(Math.floor(mant));
      const units = int * 10n ** BigInt(scale) + (digits % 10n ** BigInt(scale));
      return new Dec(neg ? -units : units, scale);
    });

/** The exact decimal value of a finite double. */
export function floatToDec(f: number): Dec {
  if (f === 0) return ZERO;
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, f);
  const bits = buf.getBigUint64(0);
  const neg = bits >> 63n === 1n;
  const exp = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & ((1n << 52n) - 1n);
  let e: number;
  if (exp === 0) e = -1074;
  else {
    mant |= 1n << 52n;
    e = exp - 1075;
  }
  const units = e >= 0 ? mant << BigInt(e) : mant * 5n ** BigInt(-e);
  const d = new Dec(neg ? -units : units, e >= 0 ? 0 : -e);
  return d.normalize();
}

export function nextFloat(f: number, up: boolean): number {
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, f);
  let bits = buf.getBigInt64(0);
  if (f === 0) return up ? Number.MIN_VALUE : -Number.MIN_VALUE;
  bits += f > 0 === up ? 1n : -1n;
  buf.setBigInt64(0, bits);
  return buf.getFloat64(0);
}

export type Offset = "on" | "+unit" | "-unit" | "+1e-18" | "-1e-18" | "+ulp" | "-ulp" | "float" | "far";
export const offset = fc.constantFrom<Offset>(
  "on",
  "on",
  "+unit",
  "-unit",
  "+1e-18",
  "-1e-18",
  "+ulp",
  "-ulp",
  "float",
  "far",
);
const E18 = new Dec(1n, 18);

/** A value at, one smallest unit either side of, or a float neighbour of `limit` (`scale`: the figures'). */
export function near(limit: Dec, how: Offset, scale: number, far: Dec): Dec {
  const unit = new Dec(1n, scale);
  switch (how) {
    case "on":
      return limit;
    case "+unit":
      return limit.plus(unit);
    case "-unit":
      return limit.minus(unit);
    case "+1e-18":
      return limit.plus(E18);
    case "-1e-18":
      return limit.minus(E18);
    case "+ulp":
      return floatToDec(nextFloat(approx(limit), true));
    case "-ulp":
      return floatToDec(nextFloat(approx(limit), false));
    case "float":
      return floatToDec(approx(limit)); // where float64 believes the limit is
    default:
      return limit.plus(far); // clearly away (the fast path's own decision)
  }
}

// ---------------------------------------------------------------- contexts

export const GATES = {
  position: positionGate,
  static: staticGate,
  velocity: velocityGate,
  short_side: shortSideGate,
};

export interface Scene {
  gate: keyof typeof GATES;
  order: Order;
  lim: Effective;
  ctx: GateContext;
}

export function baseOrder(over: Partial<Order>): Order {
  return {
    order_id: "o1",
    idempotency_key: "k1",
    fund_id: "alpha",
    broker: "paper",
    symbol: "AAPL",
    side: "BUY",
    order_type: "LIMIT",
    quantity: new Dec(10n, 0),
    limit_price: new Dec(100n, 0),
    ...over,
  } as Order;
}

export function baseLimits(over: Partial<Effective>): Effective {
  return {
    fund_id: "alpha",
    version: 1,
    capital: new Dec(1_000_000n, 0),
    allowed_brokers: ["paper"],
    allowed_order_types: ["MARKET", "LIMIT", "STOP", "STOP_LIMIT"],
    envelope_id: "alpha@v1",
    ...over,
  } as Effective;
}

export function fundWith(capital: Dec): { fund: FundState; book: Book } {
  const state = createState();
  const fund = getFund(state, "alpha");
  fund.envelope = { envelope: { capital }, baseCurrency: "USD" } as unknown as EnvelopeEntry;
  return { fund, book: getBook(state, fund, "AAPL") };
}

/**
 * One fund reused across generated orders, its aggregates replaced each time: the float shadows
 * (src/state/shadow.ts) must follow every change of the exact values they copy.
 */
const shared = fundWith(new Dec(1n, 0));
export function sharedFund(capital: Dec): { fund: FundState; book: Book } {
  shared.fund.envelope = { envelope: { capital }, baseCurrency: "USD" } as unknown as EnvelopeEntry;
  shared.fund.agg.sector.clear();
  shared.fund.agg.assetClass.clear();
  return shared;
}

export function context(fund: FundState, book: Book | undefined, over: Partial<GateContext>): GateContext {
  return {
    state: createState(),
    fund,
    now: NOW,
    book,
    instrument: undefined,
    mark: undefined,
    fresh: true,
    multiplier: new Dec(1n, 0),
    assetClass: "equity",
    price: undefined,
    notional: undefined,
    reducing: false,
    currency: "USD",
    fxSymbol: undefined,
    fxFresh: true,
    dupKey: undefined,
    pendSellQty: ZERO,
    ...over,
  };
}
