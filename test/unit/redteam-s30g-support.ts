/**
 * Red team s30g: live engine against rebuild and snapshot restart, in process.
 *
 * `LiveSim` keeps one append-only log per consumed stream and a live state folded from them as the
 * engine folds (project with per-stream sequences, `settleAll` after each burst, its own decisions
 * journaled on RISK_DECISIONS and read back, the periodic sweep with the clock). Decisions are made
 * by the real decider with the deterministic gates. Messages may be held back (not yet delivered
 * to the live engine) when a check is decided: publish-then-check has no order on the bus.
 */
import { CONSUMED_STREAMS, Subjects, type StreamName } from "../../src/contract/subjects.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { toWire } from "../../src/contract/wire.js";
import { DETERMINISTIC_GATES, createPipeline } from "../../src/gates/index.js";
import { createDecider, type Decider } from "../../src/service/decide.js";
import {
  type EngineState,
  type StateSettings,
  createState,
  project,
  settleAll,
  sweepIdempotency,
  sweepReservations,
} from "../../src/state/index.js";
import { key2 } from "../../src/state/model.js";
import { type ManualClock, manualClock } from "../../src/time/clock.js";

const te = new TextEncoder();
const td = new TextDecoder();
export const isoOf = (ms: number): string => new Date(ms).toISOString();

export interface LogMsg {
  subject: string;
  data: Uint8Array;
  storedMs: number;
  /** The Mts-Batch header of a group commit (a JSON array of decision records). */
  batch?: string | undefined;
}
export type Logs = Map<StreamName, LogMsg[]>;

export interface Step {
  stream: StreamName;
  seq: number;
  msg: LogMsg;
}

/** Applies steps to a state, throwing on a message the projector refuses to apply. */
export function applySteps(state: EngineState, steps: Iterable<Step>, tolerate = true): string[] {
  const refused: string[] = [];
  for (const { stream, seq, msg } of steps) {
    const r = project(state, stream, msg.subject, msg.data, seq, msg.storedMs, msg.batch ?? null);
    if (!r.ok) {
      if (!tolerate) throw new Error(`${stream}#${seq}: ${r.reason}`);
      refused.push(`${stream}#${seq}`);
    }
  }
  settleAll(state);
  return refused;
}

/** Streams one after another, in the given order. */
export function sequential(logs: Logs, order: readonly StreamName[]): Step[] {
  const out: Step[] = [];
  for (const s of order) (logs.get(s) ?? []).forEach((msg, i) => out.push({ stream: s, seq: i + 1, msg }));
  return out;
}

/** A random merge keeping each stream's own order. */
export function randomMerge(logs: Logs, choices: readonly number[]): Step[] {
  const next = new Map<StreamName, number>(CONSUMED_STREAMS.map((s) => [s, 0]));
  const out: Step[] = [];
  let c = 0;
  for (;;) {
    const open = CONSUMED_STREAMS.filter((s) => next.get(s)! < (logs.get(s)?.length ?? 0));
    if (open.length === 0) return out;
    const s = open[(choices[c++ % Math.max(1, choices.length)] ?? 0) % open.length]!;
    const i = next.get(s)!;
    next.set(s, i + 1);
    out.push({ stream: s, seq: i + 1, msg: logs.get(s)![i]! });
  }
}

export function deciderFor(state: EngineState, clock: ManualClock, prefix: string): Decider {
  let n = 0;
  return createDecider({
    state,
    pipeline: createPipeline(DETERMINISTIC_GATES),
    clock,
    instance: "s30g",
    ready: () => true,
    nextId: () => `${prefix}-${++n}`,
  });
}

/** Decides synchronously and returns the decision with its record (as journaled). */
export function decideOn(decider: Decider, raw: unknown) {
  const e = decider.decide({ raw });
  if (e instanceof Promise) throw new Error("s30g: no async gates");
  return e;
}

export class LiveSim {
  readonly clock: ManualClock;
  readonly logs: Logs = new Map();
  readonly state: EngineState;
  readonly decider: Decider;
  /** Messages published but not yet delivered to the live engine, per stream (held back). */
  private held = new Set<StreamName>();
  readonly refusedLive: string[] = [];
  /**
   * Fills, OMS events or decisions that reached an order record the live engine had already
   * forgotten (README "Known limits", bounded streams against live memory: such a record "meets a
   * late fill or accepted differently from a rebuild"): runs with any are excluded.
   */
  lateAfterForget = 0;
  private readonly everHeld = new Set<string>();

  /** Whether the live engine holds a record of this order (in memory or in its snapshot). */
  holds(fund: string, orderId: string): boolean {
    return this.state.orders.has(key2(fund, orderId));
  }

  private orderKeysOf(stream: StreamName, m: LogMsg): string[] {
    if (stream !== "FILLS" && stream !== "OMS_ORDERS" && stream !== "RISK_DECISIONS") return [];
    const body = JSON.parse(td.decode(m.data)) as unknown;
    const items = (Array.isArray(body) ? body : [body]) as Record<string, unknown>[];
    return items.flatMap((b) => {
      const id =
        stream === "RISK_DECISIONS"
          ? (b["reservation"] as { order_id?: unknown } | undefined)?.order_id
          : b["order_id"];
      return typeof id === "string" && typeof b["fund_id"] === "string" ? [key2(b["fund_id"], id)] : [];
    });
  }

  constructor(
    start: number,
    readonly settings: Partial<StateSettings>,
  ) {
    this.clock = manualClock(start);
    for (const s of CONSUMED_STREAMS) this.logs.set(s, []);
    this.state = createState(settings);
    this.decider = deciderFor(this.state, this.clock, "live");
  }

  /** Appends a message; it reaches the live engine at the next `deliver` unless `hold`. */
  publish(stream: StreamName, subject: string, body: unknown, hold = false, batch?: string): void {
    this.logs.get(stream)!.push({
      subject,
      data: te.encode(typeof body === "string" ? body : JSON.stringify(body)),
      storedMs: this.clock.now(),
      batch,
    });
    if (hold) this.held.add(stream);
    else this.deliver();
  }

  /** Folds every stream (except those held back) to its end, in the given stream order. */
  deliver(order: readonly StreamName[] = CONSUMED_STREAMS, all = false): void {
    if (all) this.held.clear();
    for (const s of order) {
      if (this.held.has(s)) continue;
      const log = this.logs.get(s)!;
      for (;;) {
        const seq = (this.state.cursors.get(s) ?? 0) + 1;
        const m = log[seq - 1];
        if (!m) break;
        const keys = this.orderKeysOf(s, m);
        for (const k of keys) if (this.everHeld.has(k) && !this.state.orders.has(k)) this.lateAfterForget++;
        const r = project(this.state, s, m.subject, m.data, seq, m.storedMs, m.batch ?? null);
        if (!r.ok) this.refusedLive.push(`${s}#${seq}`);
        for (const k of keys) if (this.state.orders.has(k)) this.everHeld.add(k);
      }
    }
    settleAll(this.state);
  }

  /** An OMS check decided live; its record journaled and read back. */
  /** An order id reused after the live engine forgot its record (the decider reads the record). */
  private reuse(raw: Record<string, unknown>): void {
    const k = key2(String(raw["fund_id"]), String(raw["order_id"]));
    if (this.everHeld.has(k) && !this.state.orders.has(k)) this.lateAfterForget++;
  }

  check(raw: Record<string, unknown>, holdJournal = false): RiskDecision {
    this.reuse(raw);
    const e = decideOn(this.decider, raw);
    this.publish("RISK_DECISIONS", Subjects.decision(e.record.fund_id || "_"), toWire(e.record), holdJournal);
    return e.decision;
  }

  /** Several checks of one fund journaled as one group commit (`Mts-Batch: n`). */
  checkBatch(fund: string, raws: Record<string, unknown>[], holdJournal = false): RiskDecision[] {
    const es = raws.map((raw) => {
      this.reuse(raw);
      return decideOn(this.decider, raw);
    });
    const recs = es.map((e) => toWire(e.record));
    this.publish("RISK_DECISIONS", Subjects.decision(fund), recs, holdJournal, String(recs.length));
    return es.map((e) => e.decision);
  }

  /** The engine's periodic sweep (once a second) at the clock. */
  sweep(): void {
    sweepReservations(this.state, this.clock.now());
    sweepIdempotency(this.state, this.clock.now());
  }
}
