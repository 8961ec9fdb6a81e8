/** Gates and rejection codes of CONTRACT.md, in contract order. Denials are data. */

export const Gate = {
  idempotency: "idempotency",
  schema: "schema",
  engine: "engine",
  static: "static",
  velocity: "velocity",
  position: "position",
  drawdown: "drawdown",
  reconciliation: "reconciliation",
  short_side: "short_side",
  cro_veto: "cro_veto",
} as const;
export type Gate = (typeof Gate)[keyof typeof Gate];

export const RejectionCode = {
  IDEMPOTENCY_CONFLICT: "IDEMPOTENCY_CONFLICT",
  DUPLICATE_ORDER_ID: "DUPLICATE_ORDER_ID",
  SCHEMA_INVALID: "SCHEMA_INVALID",
  NO_ENVELOPE: "NO_ENVELOPE",
  STATE_NOT_READY: "STATE_NOT_READY",
  BROKER_NOT_ALLOWED: "BROKER_NOT_ALLOWED",
  ORDER_TYPE_NOT_ALLOWED: "ORDER_TYPE_NOT_ALLOWED",
  ASSET_CLASS_NOT_ALLOWED: "ASSET_CLASS_NOT_ALLOWED",
  SYMBOL_RESTRICTED: "SYMBOL_RESTRICTED",
  MAX_ORDER_QTY_EXCEEDED: "MAX_ORDER_QTY_EXCEEDED",
  MAX_ADV_PCT_EXCEEDED: "MAX_ADV_PCT_EXCEEDED",
  MAX_ORDER_NOTIONAL_EXCEEDED: "MAX_ORDER_NOTIONAL_EXCEEDED",
  PRICE_COLLAR_BREACHED: "PRICE_COLLAR_BREACHED",
  STALE_MARKET_DATA: "STALE_MARKET_DATA",
  DUPLICATE_ORDER: "DUPLICATE_ORDER",
  MAX_OPEN_ORDERS_EXCEEDED: "MAX_OPEN_ORDERS_EXCEEDED",
  VELOCITY_EXCEEDED: "VELOCITY_EXCEEDED",
  MAX_POSITION_EXCEEDED: "MAX_POSITION_EXCEEDED",
  GROSS_EXPOSURE_EXCEEDED: "GROSS_EXPOSURE_EXCEEDED",
  NET_EXPOSURE_EXCEEDED: "NET_EXPOSURE_EXCEEDED",
  SECTOR_CONCENTRATION_EXCEEDED: "SECTOR_CONCENTRATION_EXCEEDED",
  ASSET_CLASS_CONCENTRATION_EXCEEDED: "ASSET_CLASS_CONCENTRATION_EXCEEDED",
  FUND_HALTED: "FUND_HALTED",
  RECONCILIATION_LOCK: "RECONCILIATION_LOCK",
  SHORTING_DISABLED: "SHORTING_DISABLED",
  BORROW_FEE_TOO_HIGH: "BORROW_FEE_TOO_HIGH",
  LOCATE_REQUIRED: "LOCATE_REQUIRED",
  CRO_VETO: "CRO_VETO",
} as const;
export type RejectionCode = (typeof RejectionCode)[keyof typeof RejectionCode];

/** Which gate owns each code (the contract's table). */
export const GATE_OF_CODE: Record<RejectionCode, Gate> = {
  IDEMPOTENCY_CONFLICT: Gate.idempotency,
  DUPLICATE_ORDER_ID: Gate.idempotency,
  SCHEMA_INVALID: Gate.schema,
  NO_ENVELOPE: Gate.engine,
  STATE_NOT_READY: Gate.engine,
  BROKER_NOT_ALLOWED: Gate.static,
  ORDER_TYPE_NOT_ALLOWED: Gate.static,
  ASSET_CLASS_NOT_ALLOWED: Gate.static,
  SYMBOL_RESTRICTED: Gate.static,
  MAX_ORDER_QTY_EXCEEDED: Gate.static,
  MAX_ADV_PCT_EXCEEDED: Gate.static,
  MAX_ORDER_NOTIONAL_EXCEEDED: Gate.static,
  PRICE_COLLAR_BREACHED: Gate.static,
  STALE_MARKET_DATA: Gate.static,
  DUPLICATE_ORDER: Gate.velocity,
  MAX_OPEN_ORDERS_EXCEEDED: Gate.velocity,
  VELOCITY_EXCEEDED: Gate.velocity,
  MAX_POSITION_EXCEEDED: Gate.position,
  GROSS_EXPOSURE_EXCEEDED: Gate.position,
  NET_EXPOSURE_EXCEEDED: Gate.position,
  SECTOR_CONCENTRATION_EXCEEDED: Gate.position,
  ASSET_CLASS_CONCENTRATION_EXCEEDED: Gate.position,
  FUND_HALTED: Gate.drawdown,
  RECONCILIATION_LOCK: Gate.reconciliation,
  SHORTING_DISABLED: Gate.short_side,
  BORROW_FEE_TOO_HIGH: Gate.short_side,
  LOCATE_REQUIRED: Gate.short_side,
  CRO_VETO: Gate.cro_veto,
};

export const Side = { BUY: "BUY", SELL: "SELL" } as const;
export type Side = (typeof Side)[keyof typeof Side];

export const OrderType = {
  MARKET: "MARKET",
  LIMIT: "LIMIT",
  STOP: "STOP",
  STOP_LIMIT: "STOP_LIMIT",
} as const;
export type OrderType = (typeof OrderType)[keyof typeof OrderType];

export const AssetClass = {
  equity: "equity",
  crypto: "crypto",
  option: "option",
  future: "future",
  fx: "fx",
} as const;
export type AssetClass = (typeof AssetClass)[keyof typeof AssetClass];

export const HaltSeverity = {
  DAILY_LOSS: "DAILY_LOSS",
  WEEKLY_LOSS: "WEEKLY_LOSS",
  MONTHLY_LOSS: "MONTHLY_LOSS",
  MANUAL: "MANUAL",
  RECONCILIATION: "RECONCILIATION",
  KILL_SWITCH: "KILL_SWITCH",
} as const;
export type HaltSeverity = (typeof HaltSeverity)[keyof typeof HaltSeverity];

/** Most severe first: the severity reported in FUND_HALTED when several halts are active. */
export const HALT_PRECEDENCE: readonly HaltSeverity[] = [
  "KILL_SWITCH",
  "MANUAL",
  "RECONCILIATION",
  "MONTHLY_LOSS",
  "WEEKLY_LOSS",
  "DAILY_LOSS",
];

export const OrderEventKind = {
  accepted: "accepted",
  cancelled: "cancelled",
  rejected: "rejected",
  expired: "expired",
  done: "done",
} as const;
export type OrderEventKind = (typeof OrderEventKind)[keyof typeof OrderEventKind];

/** Order events after which an order can no longer fill: its reservation is released. */
export const TERMINAL_ORDER_EVENTS: ReadonlySet<OrderEventKind> = new Set([
  "cancelled",
  "rejected",
  "expired",
  "done",
]);
