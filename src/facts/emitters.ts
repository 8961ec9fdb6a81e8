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
  /** The stream that holds the message (with `duplicate`: the sequence of the copy it held). */
  stream?: string;
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
  /** An adjustment fill (its fill_id): the fund, broker, symbol and the reconciliation pass. */
  adjustment: (fund: string, broker: string, symbol: string, passMs: number) =>
    `adj:${fund}:${broker}:${symbol}:${passMs}`,
  cancelAll: (fund: string, haltSeq: number) => `cancel_all:${fund}:${haltSeq}`,
  polledQuote: (symbol: string, timestampMs: number) => `poll:${symbol}:${timestampMs}`,
} as const;

export type FactState = "pending" | "acknowledged";

/**
 * What a fact is about (its key: one stop per fund/symbol, one baseline per fund/period, one halt
 * per fund/severity, one adjustment per fund/broker/symbol): the workers ask for the latest fact
 * they emitted about it that the state does not hold yet.
 */
export const FactKeys = {
  stop: (fund: string, symbol: string) => `stop\u0001${fund}\u0001${symbol}`,
  baseline: (fund: string, period: string) => `baseline\u0001${fund}\u0001${period}`,
  halt: (fund: string, severity: string) => `halt\u0001${fund}\u0001${severity}`,
  adjustment: (fund: string, broker: string, symbol: string) =>
    `adjustment\u0001${fund}\u0001${broker}\u0001${symbol}`,
} as const;

/** The bodies of the facts that have a key. */
export interface KeyedBodies {
  stop: StopBody & { event: StopEvent };
  baseline: BaselineBody;
  halt: HaltBody;
  adjustment: FillBody;
}
export type KeyedKind = keyof KeyedBodies;

/**
 * A fact this engine emitted that the state does not hold yet: sent (`pending`), stored by the
 * stream (`acknowledged`), or — for the kinds whose body must not be re-derived (baselines, halts:
 * `RETRY_BODY`) — `failed` to publish and kept with its body until `resend` lands it.
 */
export interface PendingFact<K extends KeyedKind = KeyedKind> {
  readonly kind: K;
  readonly msgId: string;
  readonly body: KeyedBodies[K];
  readonly state: FactState | "failed";
}

/**
 * Kinds whose failed publish keeps the fact, body and all, until it is re-sent: a baseline is the
 * equity at a period's start (taken again later it would be another number), a halt was decided
 * and alerted once. Any other failed fact is forgotten: its worker derives it again from the state.
 */
const RETRY_BODY: ReadonlySet<KeyedKind> = new Set(["baseline", "halt"]);
/** Bound on the facts remembered per key (a consumer that never reads back, e.g. a unit test). */
const MAX_PER_KEY = 16;

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
  /**
   * The latest fact about `key` (FactKeys) this engine emitted and has not read back: the worker's
   * view is the folded state plus this. Undefined: nothing in flight (a failed publish of a kind not
   * in RETRY_BODY, a read-back, a restart).
   */
  latest<K extends KeyedKind>(kind: K, key: string): PendingFact<K> | undefined;
  /** Every fact about `key` not read back yet, oldest first (as `latest`: the last of them). */
  pendingOf<K extends KeyedKind>(kind: K, key: string): PendingFact<K>[];
  /** The latest fact of every key of this kind (as `latest`). */
  latestOf<K extends KeyedKind>(kind: K): PendingFact<K>[];
  /** Publishes a `failed` fact again with its body and message id (no-op for any other). */
  resend(fact: PendingFact): void;
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

interface Entry {
  kind: KeyedKind | undefined;
  key: string | undefined;
  subject: string;
  body: unknown;
  /** What `latest` answers (the body, or the body with what the subject says, e.g. a stop's event). */
  view: unknown;
  msgId: string;
  followed: boolean;
  state: FactState | "failed";
}

export function createFactEmitters(o: {
  publish: Transport;
  /**
   * The follower has folded this stream up to `seq` (a duplicate acknowledgement names the copy
   * the stream held: folded, it will not be read back again; not yet, it will). Absent: a
   * duplicate ends the fact at once.
   */
  folded?: (stream: string, seq: number) => boolean;
}): FactEmitters {
  const flight = new Map<string, Entry>();
  /** Facts about each key, oldest first (pending, acknowledged, failed-kept). */
  const byKey = new Map<string, Entry[]>();

  function forget(e: Entry): void {
    if (flight.get(e.msgId) === e) flight.delete(e.msgId);
    if (e.key === undefined) return;
    const list = byKey.get(e.key);
    const i = list ? list.indexOf(e) : -1;
    if (i < 0) return;
    list!.splice(i, 1);
    if (list!.length === 0) byKey.delete(e.key);
  }

  function transmit(e: Entry): Promise<FactAck> {
    e.state = "pending";
    return o.publish(e.subject, e.body, e.msgId).then(
      (ack) => {
        if (flight.get(e.msgId) !== e) return ack; // read back before its acknowledgement
        // a duplicate: the stream held it already (read back, or on its way)
        const unfolded =
          ack.duplicate && ack.stream !== undefined && o.folded?.(ack.stream, ack.seq) === false;
        if (!e.followed || (ack.duplicate && !unfolded)) forget(e);
        else e.state = "acknowledged";
        return ack;
      },
      (err: unknown) => {
        if (flight.get(e.msgId) === e) {
          if (e.kind !== undefined && RETRY_BODY.has(e.kind)) e.state = "failed";
          else forget(e);
        }
        throw err;
      },
    );
  }

  /** `followed`: the engine folds the fact's stream (else the acknowledgement is the end of it). */
  function send(
    subject: string,
    body: unknown,
    msgId: string,
    followed = true,
    kind?: KeyedKind,
    key?: string,
    view: unknown = body,
  ): Promise<FactAck> {
    if (flight.size >= MAX_IN_FLIGHT) {
      flight.clear();
      byKey.clear();
    }
    const prev = flight.get(msgId);
    if (prev) forget(prev); // sent again (a retry): the newer copy is the one in flight
    const e: Entry = { kind, key, subject, body, view, msgId, followed, state: "pending" };
    flight.set(msgId, e);
    if (key !== undefined) {
      const list = byKey.get(key);
      // a newer fact about the key supersedes one kept after a failed publish (an older period's)
      for (const old of list?.filter((x) => x.state === "failed") ?? []) forget(old);
      const rest = byKey.get(key);
      if (!rest) byKey.set(key, [e]);
      else {
        rest.push(e);
        if (rest.length > MAX_PER_KEY) forget(rest[0]!);
      }
    }
    return transmit(e);
  }

  function emit<S extends z.ZodTypeAny>(
    kind: string,
    schema: S,
    subject: string,
    body: unknown,
    msgId: string,
    followed = true,
    keyed?: { kind: KeyedKind; key: string; view?: unknown },
  ): Promise<FactAck> {
    try {
      check(kind, schema, body);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return send(subject, body, msgId, followed, keyed?.kind, keyed?.key, keyed?.view ?? body);
  }

  return {
    stop: (event, b) =>
      emit(
        "stop",
        StopSchema,
        Subjects.stop(event, b.fund_id),
        b,
        FactIds.stop(event, b.fund_id, b.symbol, b.arm_seq),
        true,
        { kind: "stop", key: FactKeys.stop(b.fund_id, b.symbol), view: { ...b, event } },
      ),
    baseline: (b, id) =>
      emit("baseline", PnlBaselineSchema, Subjects.pnlBaseline(b.fund_id), b, id, true, {
        kind: "baseline",
        key: FactKeys.baseline(b.fund_id, b.period),
      }),
    halt: (b, id) =>
      emit("halt", HaltSchema, Subjects.halt(b.fund_id), b, id, true, {
        kind: "halt",
        key: FactKeys.halt(b.fund_id, b.severity),
      }),
    reconcile: (b, id) =>
      emit(
        "reconcile",
        ReconcileEventSchema,
        Subjects.reconcile(b.locked ? "lock" : "unlock", b.fund_id),
        b,
        id,
      ),
    adjustment: (b) =>
      emit("adjustment", FillSchema, Subjects.fill(b.fund_id, b.symbol), b, b.fill_id, true, {
        kind: "adjustment",
        key: FactKeys.adjustment(b.fund_id, b.broker, b.symbol),
      }),
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
      if (msgId === undefined || flight.size === 0) return;
      const e = flight.get(msgId);
      if (e) forget(e);
    },
    inFlight(msgId) {
      const s = flight.get(msgId)?.state;
      return s === "failed" ? undefined : s;
    },
    latest<K extends KeyedKind>(kind: K, key: string): PendingFact<K> | undefined {
      const list = byKey.get(key);
      const e = list?.[list.length - 1];
      if (!e || e.kind !== kind) return undefined;
      return { kind, msgId: e.msgId, body: e.view as KeyedBodies[K], state: e.state };
    },
    pendingOf<K extends KeyedKind>(kind: K, key: string): PendingFact<K>[] {
      const list = byKey.get(key);
      if (!list) return [];
      return list
        .filter((e) => e.kind === kind)
        .map((e) => ({ kind, msgId: e.msgId, body: e.view as KeyedBodies[K], state: e.state }));
    },
    latestOf<K extends KeyedKind>(kind: K): PendingFact<K>[] {
      const out: PendingFact<K>[] = [];
      for (const list of byKey.values()) {
        const e = list[list.length - 1]!;
        if (e.kind === kind)
          out.push({ kind, msgId: e.msgId, body: e.view as KeyedBodies[K], state: e.state });
      }
      return out;
    },
    resend(fact) {
      const e = flight.get(fact.msgId);
      if (!e || e.state !== "failed") return;
      transmit(e).catch(() => undefined); // failed again: kept, resent at the next ask
    },
    counts() {
      const c: Record<FactState, number> = { pending: 0, acknowledged: 0 };
      for (const e of flight.values()) if (e.state !== "failed") c[e.state]++;
      return c;
    },
  };
}
