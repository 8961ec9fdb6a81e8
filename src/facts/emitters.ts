/**
 * Typed emitters for the facts the workers originate (stop arms/triggers/clears, P&L baselines,
 * halts, reconciliation locks, adjustment fills, cancel-all intents, closing orders, polled quotes).
 * Each takes the contract's wire form of its record (`z.input` of the schema in contract/), checks
 * it against that schema (a worker cannot publish what the projections would dead-letter), builds
 * the subject from the body (a fact cannot land on another fund's subject) and publishes it with
 * its message id (the fact's identity: the stream drops a second copy, whichever engine sends it).
 *
 * Every emitted fact is tracked from pending (sent) to acknowledged (the stream has it) to read
 * back (the follower folded it: `readBack(msgId)`), so "published but not yet in the state" is one
 * question (`inFlight`) rather than a per-worker guess.
 */
import type { z } from "zod";
import {
  FillSchema,
  HaltSchema,
  OrderSchema,
  PnlBaselineSchema,
  QuoteSchema,
  ReconcileEventSchema,
  StopSchema,
  firstIssue,
} from "../contract/index.js";
import type { StopEvent } from "../contract/records.js";
import { Subjects } from "../contract/subjects.js";

/** The acknowledgement of a JetStream publish (what the workers' transport returns). */
export interface FactAck {
  seq: number;
  duplicate?: boolean;
}

/** JetStream publish of a JSON body with a message id (WorkerContext.publish). */
export type Transport = (subject: string, body: unknown, msgID: string) => Promise<FactAck>;

/** A fact whose body fails its contract schema: never published. */
export class InvalidFactError extends Error {
  readonly code = "INVALID_FACT";
  constructor(kind: string, reason: string) {
    super(`${kind} not emitted: ${reason}`);
    this.name = "InvalidFactError";
  }
}

export type StopBody = z.input<typeof StopSchema>;
export type BaselineBody = z.input<typeof PnlBaselineSchema>;
export type HaltBody = z.input<typeof HaltSchema>;
export type ReconcileBody = z.input<typeof ReconcileEventSchema>;
export type FillBody = z.input<typeof FillSchema>;
export type OrderBody = z.input<typeof OrderSchema>;
export type QuoteBody = z.input<typeof QuoteSchema>;
export interface CancelAllBody {
  fund_id: string;
  reason: string;
  at: string;
}

/** The message ids of the facts: one place, stable across engines and restarts. */
export const FactIds = {
  stop: (event: StopEvent, fund: string, symbol: string, armSeq: number) =>
    `stop:${event}:${fund}:${symbol}:${armSeq}`,
  baseline: (fund: string, period: string, startMs: number) => `baseline:${fund}:${period}:${startMs}`,
  halt: (fund: string, severity: string, periodStartMs: number) =>
    `halt:${fund}:${severity}:${periodStartMs}`,
  reconcile: (event: "lock" | "unlock", fund: string, passMs: number) =>
    `reconcile:${event}:${fund}:${passMs}`,
  cancelAll: (fund: string, haltSeq: number) => `cancel_all:${fund}:${haltSeq}`,
  polledQuote: (symbol: string, timestampMs: number) => `poll:${symbol}:${timestampMs}`,
} as const;

export type FactState = "pending" | "acknowledged";

export interface FactEmitters {
  stop(event: StopEvent, body: StopBody): Promise<FactAck>;
  baseline(body: BaselineBody, msgId: string): Promise<FactAck>;
  halt(body: HaltBody, msgId: string): Promise<FactAck>;
  reconcile(body: ReconcileBody, msgId: string): Promise<FactAck>;
  /** An adjustment fill (its fill_id is its message id, as every fill's). */
  adjustment(body: FillBody): Promise<FactAck>;
  cancelAll(body: CancelAllBody, msgId: string): Promise<FactAck>;
  /** A closing order submitted to the OMS (its idempotency key is its message id). */
  order(body: OrderBody): Promise<FactAck>;
  polledQuote(body: QuoteBody, msgId: string): Promise<FactAck>;
  /** Facts are in flight (the follower then reports what it folds: `readBack`). */
  tracking(): boolean;
  /** The follower folded the message with this id (or the stream already held it). */
  readBack(msgId: string | undefined): void;
  /** Sent or acknowledged, not yet read back (undefined: not in flight). */
  inFlight(msgId: string): FactState | undefined;
  /** Facts in flight, by state. */
  counts(): Record<FactState, number>;
}

/** Bound on the facts remembered in flight (a fact of a stream this engine does not follow is never read back). */
const MAX_IN_FLIGHT = 10_000;

function check<S extends z.ZodTypeAny>(kind: string, schema: S, body: unknown): void {
  const r = schema.safeParse(body);
  if (r.success) return;
  const i = firstIssue(r.error);
  throw new InvalidFactError(kind, `${i.path || "(root)"}: ${i.message}`);
}

export function createFactEmitters(o: { publish: Transport }): FactEmitters {
  const flight = new Map<string, FactState>();

  /** `followed`: the engine folds the fact's stream (else the acknowledgement is the end of it). */
  function send(subject: string, body: unknown, msgId: string, followed = true): Promise<FactAck> {
    if (flight.size >= MAX_IN_FLIGHT) flight.clear();
    flight.set(msgId, "pending");
    return o.publish(subject, body, msgId).then(
      (ack) => {
        // a duplicate: the stream held it already (read back, or on its way)
        if (ack.duplicate || !followed) flight.delete(msgId);
        else if (flight.get(msgId) === "pending") flight.set(msgId, "acknowledged");
        return ack;
      },
      (err: unknown) => {
        flight.delete(msgId);
        throw err;
      },
    );
  }

  function emit<S extends z.ZodTypeAny>(
    kind: string,
    schema: S,
    subject: string,
    body: unknown,
    msgId: string,
    followed = true,
  ): Promise<FactAck> {
    try {
      check(kind, schema, body);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return send(subject, body, msgId, followed);
  }

  return {
    stop: (event, b) =>
      emit(
        "stop",
        StopSchema,
        Subjects.stop(event, b.fund_id),
        b,
        FactIds.stop(event, b.fund_id, b.symbol, b.arm_seq),
      ),
    baseline: (b, id) => emit("baseline", PnlBaselineSchema, Subjects.pnlBaseline(b.fund_id), b, id),
    halt: (b, id) => emit("halt", HaltSchema, Subjects.halt(b.fund_id), b, id),
    reconcile: (b, id) =>
      emit(
        "reconcile",
        ReconcileEventSchema,
        Subjects.reconcile(b.locked ? "lock" : "unlock", b.fund_id),
        b,
        id,
      ),
    adjustment: (b) => emit("adjustment", FillSchema, Subjects.fill(b.fund_id, b.symbol), b, b.fill_id),
    cancelAll(b, id) {
      if (!b.fund_id) return Promise.reject(new InvalidFactError("cancel_all", "fund_id: required"));
      return send(Subjects.cancelAll(b.fund_id), b, id, false); // OMS_INTENTS: not followed
    },
    order: (b) =>
      emit(
        "order",
        OrderSchema,
        Subjects.orderSubmit(String(b.fund_id)),
        b,
        String(b.idempotency_key),
        false,
      ),
    polledQuote: (b, id) => emit("quote", QuoteSchema, Subjects.quote(b.symbol), b, id),
    tracking: () => flight.size > 0,
    readBack(msgId) {
      if (msgId !== undefined && flight.size > 0) flight.delete(msgId);
    },
    inFlight: (msgId) => flight.get(msgId),
    counts() {
      const c: Record<FactState, number> = { pending: 0, acknowledged: 0 };
      for (const s of flight.values()) c[s]++;
      return c;
    },
  };
}
