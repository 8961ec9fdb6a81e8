/** Records the engine itself journals (RISK_DECISIONS, RISK_CONTROL), validated on the way back in. */
import { z } from "zod";
import { AssetClass, HaltSeverity, Side } from "./codes.js";
import { MAX_DUPLICATE_WINDOW_MS, dec, id, timestamp } from "./schemas.js";

/** A RiskDecision as CONTRACT.md defines it (also what a reply on the check subject must be). */
export const RiskDecisionSchema = z.object({
  order_id: z.string(),
  approved: z.boolean(),
  rejecting_gate: z.string(),
  rejection_code: z.string(),
  reason: z.string(),
  details: z.record(z.string(), z.string()),
  envelope_id: z.string(),
  decided_at: z.string(),
});

export const ReservationSchema = z.object({
  order_id: z.string().min(1),
  symbol: id,
  /** The order's broker (per-broker pending sells); absent in records journaled before it was kept. */
  broker: id.optional(),
  side: z.enum(Side),
  quantity: dec("pos", "internal"),
  price: dec("pos", "internal"),
  asset_class: z.enum(AssetClass).optional(),
  expires_at_ms: z.number().int(),
});
export type Reservation = z.output<typeof ReservationSchema>;

/** One decision as journaled on mts.v1.risk.decision.<fund_id> (RISK_DECISIONS). */
export const DecisionRecordSchema = z.object({
  decision_id: z.string().min(1),
  instance: z.string(),
  fund_id: z.string(),
  at_ms: z.number().int(),
  idempotency_key: z.string().optional(),
  fingerprint: z.string().optional(),
  /** Short per-field hashes of the order: an IDEMPOTENCY_CONFLICT names the first differing field. */
  fields: z.string().max(256).optional(),
  /** Kept in the idempotency record: schema-valid and not an engine-gate (transient) decision. */
  recorded: z.boolean(),
  /** Counted by the velocity gate: schema-valid and not a replay. */
  counted: z.boolean(),
  replayed: z.boolean(),
  notional: dec("nonneg", "internal").optional(),
  reservation: ReservationSchema.optional(),
  /**
   * The order's duplicate key (symbol|side|type|quantity|limit|stop), on decisions that count for
   * duplicate_window_ms: made while a window is set, past the engine gate, not themselves a
   * DUPLICATE_ORDER. Rebuilds the duplicate index from the journal.
   */
  dup_key: z.string().max(512).optional(),
  /**
   * The fund's duplicate window in force when it was decided (ms), with `dup_key`: a fold that reads
   * the record before that envelope version keeps the key at least that long.
   */
  dup_window_ms: z.number().int().positive().max(MAX_DUPLICATE_WINDOW_MS).optional(),
  decision: RiskDecisionSchema,
  /** The request as decoded (JSON, or protobuf mapped to JSON), when it was a schema-valid order. */
  order: z.record(z.string(), z.unknown()).optional(),
  /**
   * The last sequence of each followed stream applied to the state when the decision was made
   * (`mts-risk explain` replays the streams up to them). Absent on replays and on records written
   * before this field existed.
   */
  cursors: z.record(z.string(), z.number().int().nonnegative()).optional(),
});
export type DecisionRecord = z.output<typeof DecisionRecordSchema>;

/** Reconciliation lock state change (mts.v1.risk.reconcile.<lock|unlock>.<fund>). */
export const ReconcileEventSchema = z.object({
  fund_id: id,
  locked: z.boolean(),
  reason: z.string().max(4096),
  at: timestamp,
  brokers: z.array(id).optional(),
});
export type ReconcileEvent = z.output<typeof ReconcileEventSchema>;

export const PnlPeriod = { day: "day", week: "week", month: "month" } as const;
export type PnlPeriod = (typeof PnlPeriod)[keyof typeof PnlPeriod];

export const PnlBaselineSchema = z.object({
  fund_id: id,
  period: z.enum(PnlPeriod),
  starts_at: timestamp,
  equity: dec("any", "internal"),
  /**
   * The envelope's capital in force at the start (so trading P&L at the start is equity − capital).
   * Absent in records written before it existed: the current capital is then assumed.
   */
  capital: dec("any", "internal").optional(),
});
export type PnlBaseline = z.output<typeof PnlBaselineSchema>;

export const AlertSchema = z.object({
  kind: z.string(),
  fund_id: z.string(),
  message: z.string(),
  at: z.string(),
  details: z.record(z.string(), z.string()).optional(),
});
export type Alert = z.output<typeof AlertSchema>;

export const HaltSeveritySchema = z.enum(HaltSeverity);

export const StopEvent = { armed: "armed", triggered: "triggered", cleared: "cleared" } as const;
export type StopEvent = (typeof StopEvent)[keyof typeof StopEvent];

/** A synthetic stop's life (mts.v1.risk.stop.<armed|triggered|cleared>.<fund>, RISK_CONTROL). */
export const StopSchema = z.object({
  fund_id: id,
  symbol: id,
  side: z.enum(["LONG", "SHORT"]),
  quantity: dec("nonneg", "internal"),
  stop_price: dec("nonneg", "internal"),
  arm_seq: z.number().int().positive(),
  at: timestamp,
  /** The first closing order's id (the only one when the position is at one broker). */
  closing_order_id: z.string().optional(),
  /** Every closing order of this trigger: one per broker holding the position. */
  closing_orders: z
    .array(
      z.object({
        order_id: z.string().min(1).max(128),
        idempotency_key: z.string().min(1).max(256),
        broker: id,
        quantity: dec("pos", "internal"),
      }),
    )
    .max(64)
    .optional(),
  /** Consecutive closing orders of this position that ended with nothing filled (rejections). */
  attempt: z.number().int().nonnegative().optional(),
  /** The stop does not fire before this instant (the retry backoff after a rejection). */
  not_before: timestamp.optional(),
  reason: z.string().max(1024).optional(),
});
export type Stop = z.output<typeof StopSchema>;
