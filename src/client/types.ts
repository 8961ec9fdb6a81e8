/**
 * The wire types an OMS sees (CONTRACT.md "Messages"): plain JSON, decimals as strings. The
 * client's public surface uses only these (no engine internals).
 */

export type Side = "BUY" | "SELL";
export type OrderType = "MARKET" | "LIMIT" | "STOP" | "STOP_LIMIT";
export type AssetClass = "equity" | "crypto" | "option" | "future" | "fx";

/** An order as sent on mts.v1.risk.check. Decimals are strings ("100", "190.12"). */
export interface OrderRequest {
  order_id: string;
  idempotency_key: string;
  fund_id: string;
  strategy_id?: string;
  broker: string;
  symbol: string;
  asset_class?: AssetClass;
  side: Side;
  order_type: OrderType;
  quantity: string;
  limit_price?: string | null;
  stop_price?: string | null;
  time_in_force?: string;
  reduce_only?: boolean;
  created_at?: string;
  locate_id?: string;
  [field: string]: unknown;
}

/**
 * The reply to a check (and what the client returns when it decides locally: `rejecting_gate`
 * "client", ENGINE_UNAVAILABLE): the contract's own type, defined once in src/contract.
 */
import type { RiskDecision } from "../contract/schemas.js";
export type { RiskDecision };

export interface RiskEnvelope {
  fund_id: string;
  version: number;
  capital: string;
  [limit: string]: unknown;
}

export interface EngineStatus {
  instance: string;
  ready: boolean;
  halted_funds: { fund_id: string; severity: string; since: string }[];
  cursors: Record<string, number>;
  state_digest: string;
  uptime_s: number;
  /** With `status(fund)`: the fund's report (exposures, P&L, halts, stops), or null if unknown. */
  fund?: Record<string, unknown> | null;
  [field: string]: unknown;
}

/** A decision record from RISK_DECISIONS (subjects/decision-record.schema.json). */
export interface DecisionRecord {
  decision_id: string;
  instance: string;
  fund_id: string;
  at_ms: number;
  idempotency_key?: string;
  recorded: boolean;
  counted: boolean;
  replayed: boolean;
  notional?: string;
  reservation?: Record<string, unknown>;
  decision: RiskDecision;
  order?: Record<string, unknown>;
  cursors?: Record<string, number>;
  [field: string]: unknown;
}

/** An alert from RISK_CONTROL (mts.v1.risk.alert.<kind>.<fund_id>). */
export interface Alert {
  kind: string;
  fund_id: string;
  message: string;
  at: string;
  details?: Record<string, string>;
}

/** A live feed: iterate it with `for await`, stop it with `stop()` (or `break`). */
export interface Watch<T> extends AsyncIterable<T> {
  /** Resolves once the feed is subscribed (events from then on are delivered). */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}
