/** The gate interface (seed 004's RiskGate): a name and a check of order, limits and context. */
import type { RejectionCode } from "../contract/codes.js";
import type { Instrument, Order } from "../contract/schemas.js";
import type { Dec } from "../decimal/index.js";
import type { Book, Effective, EngineState, FundState, Mark } from "../state/model.js";

/** A rejection as data: the code, a human reason, and flat string details. */
export interface Denial {
  code: RejectionCode;
  reason: string;
  details?: Record<string, string>;
}

/** Everything a gate may read, computed once per order. */
export interface GateContext {
  readonly state: EngineState;
  readonly fund: FundState;
  readonly now: number; // engine clock, epoch ms
  readonly book: Book | undefined;
  readonly instrument: Instrument | undefined;
  readonly mark: Mark | undefined;
  readonly fresh: boolean; // the mark is within max_quote_age_ms
  readonly multiplier: Dec;
  readonly assetClass: string | undefined;
  /** Order price: limit price for LIMIT/STOP_LIMIT, else the fresh mark's ask (BUY) or bid (SELL). */
  readonly price: Dec | undefined;
  /** quantity × price × multiplier (× the fresh FX rate: in the fund's base currency), when known. */
  readonly notional: Dec | undefined;
  /** Brings |position| toward zero without crossing it, counting pending orders on the same side. */
  readonly reducing: boolean;
  /** Currency of the instrument's prices (default the fund's base currency). */
  readonly currency: string;
  /** The FX symbol `<CCY>-<BASE>` the order converts through; undefined in the base currency. */
  readonly fxSymbol: string | undefined;
  /** A fresh FX mark for fxSymbol (always true in the base currency). */
  readonly fxFresh: boolean;
  /** The order's duplicate key, when the fund's envelope sets a duplicate window. */
  readonly dupKey: string | undefined;
  /** Sell quantity reserved in the book by open orders (those previewed ahead of this one included). */
  readonly pendSellQty: Dec;
}

export type GateResult = Denial | undefined;

export interface RiskGate {
  readonly name: string;
  /** Risk-reducing orders skip this gate (position, velocity, drawdown, reconciliation). */
  readonly skipWhenReducing?: boolean;
  /**
   * "async" gates (the CRO veto, anything that asks the network) run after every synchronous
   * gate has passed; the synchronous gates are then checked again against the state of that
   * moment, so headroom used by orders decided meanwhile is never used twice.
   */
  readonly mode?: "sync" | "async";
  check(order: Order, limits: Effective, ctx: GateContext): GateResult | Promise<GateResult>;
}

export const deny = (code: RejectionCode, reason: string, details?: Record<string, string>): Denial =>
  details ? { code, reason, details } : { code, reason };
