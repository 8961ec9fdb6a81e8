/**
 * An in-process model of one engine's stop worker on its streams, for property tests: every
 * stream is an append-only log with JetStream's Nats-Msg-Id dedupe; the engine folds each
 * stream's messages in order with the real projector, but only when told to (`deliver`), so the
 * streams lag each other as the follower's consumers do; it dispatches changes to the real stops
 * worker while live, ticks it on the injected clock, and a restart rebuilds its state from the
 * logs and becomes live again. The OMS side is the real decider: every closing order the worker
 * emits is checked at once, against the same state, as the OMS does before routing it.
 */
import type { PubAck } from "@nats-io/jetstream";
import { ConfigSchema, type Config } from "../../src/config/index.js";
import type { Alerter } from "../../src/engine/alerts.js";
import { toWire } from "../../src/contract/wire.js";
import { CONSUMED_STREAMS, Subjects, type StreamName } from "../../src/contract/subjects.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { DETERMINISTIC_GATES, createPipeline } from "../../src/gates/index.js";
import { silentLogger } from "../../src/obs/log.js";
import { createDecider, type Decider } from "../../src/service/decide.js";
import { type EngineState, createState, project } from "../../src/state/index.js";
import { type ManualClock, iso, manualClock } from "../../src/time/clock.js";
import { type StopsWorker, createStopsWorker, createSweeper } from "../../src/workers/stops.js";
import type { WorkerContext } from "../../src/workers/types.js";

export interface Msg {
  subject: string;
  data: Uint8Array;
  msgID?: string;
}

export interface Emitted {
  order: Record<string, unknown>;
  at: number;
  decision: RiskDecision;
  /** The fund had a KILL_SWITCH halt (as the engine knew it) when the order was emitted. */
  killSwitch: boolean;
}

const te = new TextEncoder();

function streamOf(subject: string): StreamName {
  const t = subject.split(".");
  if (t[2] === "quote") return "QUOTES";
  if (t[2] === "fill") return "FILLS";
  if (t[2] === "oms") return t[4] === "submit" || t[3] === "cancel_all" ? "OMS_INTENTS" : "OMS_ORDERS";
  if (t[2] === "risk" && t[3] === "decision") return "RISK_DECISIONS";
  if (t[2] === "risk" && t[3] === "envelope") return "RISK_ENVELOPES";
  return "RISK_CONTROL";
}

export class StopSim {
  readonly clock: ManualClock;
  readonly config: Config;
  readonly logs = new Map<StreamName, Msg[]>();
  private readonly ids = new Map<StreamName, Map<string, number>>();
  private ctx!: WorkerContext;
  state!: EngineState;
  worker!: StopsWorker;
  private sweeperTick!: () => unknown;
  private decider!: Decider;
  private seq = 0;
  private pendingChecks: Record<string, unknown>[] = [];
  readonly emitted: Emitted[] = [];
  readonly alerts: { fund: string; message: string; details: Record<string, string> }[] = [];
  readonly sweepMs: number;
  private nextTick = 0;
  private nextSweep = 0;
  restarts = 0;
  /** The worker's publishes to a subject it says yes to fail (nothing reaches the stream). */
  failPublish: ((subject: string) => boolean) | undefined;

  /** `precheck: false` takes away the worker's safety net (the engine's check before emitting). */
  constructor(
    start: string,
    private readonly flags: { sweeper_s?: number; precheck?: boolean } = {},
  ) {
    this.clock = manualClock(start);
    this.config = ConfigSchema.parse({ position_arm_sweeper: { interval_s: flags.sweeper_s ?? 5 } });
    this.sweepMs = this.config.position_arm_sweeper.interval_s * 1000;
    for (const s of [...CONSUMED_STREAMS, "OMS_INTENTS" as const]) {
      this.logs.set(s, []);
      this.ids.set(s, new Map());
    }
    this.boot();
  }

  /** JetStream publish: appended to its stream's log (deduped by msgID), delivered later. */
  publish(subject: string, body: unknown, msgID?: string): void {
    this.append(subject, body, msgID);
  }

  /** `publish`, answering its acknowledgement: the stream and sequence (of the copy held, for a duplicate). */
  private append(
    subject: string,
    body: unknown,
    msgID?: string,
  ): { stream: string; seq: number; duplicate: boolean } {
    const stream = streamOf(subject);
    const ids = this.ids.get(stream)!;
    const log = this.logs.get(stream)!;
    if (msgID !== undefined) {
      const held = ids.get(msgID);
      if (held !== undefined) return { stream, seq: held, duplicate: true };
      ids.set(msgID, log.length + 1);
    }
    log.push({ subject, data: te.encode(typeof body === "string" ? body : JSON.stringify(body)), msgID });
    if (stream === "OMS_INTENTS") this.pendingChecks.push(body as Record<string, unknown>);
    return { stream, seq: log.length, duplicate: false };
  }

  /** Messages of a stream not yet folded into the engine's state. */
  pending(stream: StreamName): number {
    return this.logs.get(stream)!.length - (this.state.cursors.get(stream) ?? 0);
  }

  /** Folds up to `n` more messages of `stream` (dispatching each to the live worker). */
  deliver(stream: StreamName, n = Infinity): void {
    const log = this.logs.get(stream)!;
    for (let i = 0; i < n; i++) {
      const seq = (this.state.cursors.get(stream) ?? 0) + 1;
      const m = log[seq - 1];
      if (!m) return;
      const r = project(this.state, stream, m.subject, m.data, seq);
      if (!r.ok) throw new Error(`sim: ${stream} seq ${seq} not applied: ${r.reason}`);
      // the engine's follower: a fact of its own read back is no longer in flight
      if (this.ctx.facts?.tracking()) this.ctx.facts.readBack(m.msgID);
      const c = r.change;
      if (c) this.worker.onChange!(c);
      this.checkEmitted();
    }
  }

  deliverAll(): void {
    for (const s of CONSUMED_STREAMS) this.deliver(s);
  }

  /** Moves the clock; the worker's 1 s tick and the sweeper's run as their timers would. */
  advance(ms: number): void {
    const end = this.clock.now() + ms;
    for (;;) {
      const next = Math.min(this.nextTick, this.nextSweep);
      if (next > end) break;
      this.clock.set(next);
      if (next === this.nextTick) {
        this.worker.watch();
        this.worker.review();
        this.nextTick += 1000;
      } else {
        this.sweeperTick();
        this.nextSweep += this.sweepMs;
      }
      this.checkEmitted();
    }
    this.clock.set(end);
  }

  /** A crash and restart: state rebuilt from the streams, a new worker, live again. */
  restart(): void {
    this.restarts++;
    this.boot();
  }

  /** An OMS check of an order (a strategy's, or the OMS routing a closing order). */
  check(order: Record<string, unknown>): RiskDecision {
    const e = this.decider.decide({ raw: order });
    if (e instanceof Promise) throw new Error("sim: no async gates");
    this.publish(Subjects.decision(e.record.fund_id), JSON.stringify(toWire(e.record)));
    return e.decision;
  }

  fill(f: Record<string, unknown>): void {
    this.publish(
      Subjects.fill(String(f["fund_id"]), String(f["symbol"])),
      { fees: "0", timestamp: iso(this.clock.now()), ...f },
      String(f["fill_id"]),
    );
  }

  private checkEmitted(): void {
    while (this.pendingChecks.length > 0) {
      const order = this.pendingChecks.shift()!;
      const killSwitch = this.state.funds.get(String(order["fund_id"]))?.halts.has("KILL_SWITCH") ?? false;
      this.emitted.push({ order, at: this.clock.now(), decision: this.check(order), killSwitch });
    }
  }

  private boot(): void {
    const state = createState();
    for (const s of CONSUMED_STREAMS) {
      this.logs.get(s)!.forEach((m, i) => {
        const r = project(state, s, m.subject, m.data, i + 1);
        if (!r.ok) throw new Error(`sim replay: ${s} seq ${i + 1}: ${r.reason}`);
      });
    }
    this.state = state;
    const clock = this.clock;
    const instance = `sim-${this.restarts}`;
    this.decider = createDecider({
      state,
      pipeline: createPipeline(DETERMINISTIC_GATES),
      clock,
      instance,
      ready: () => true,
      nextId: () => `${instance}-${++this.seq}`,
    });
    const alerter: Alerter = {
      alert: (kind, fund, message, details, msgID) => {
        this.alerts.push({ fund, message, details: details ?? {} });
        this.publish(
          Subjects.alert(kind, fund),
          { kind, fund_id: fund, message, at: iso(clock.now()), details },
          msgID,
        );
      },
      deadLetter: () => undefined,
      count: () => ({ alerts: this.alerts.length, deadLetters: 0 }),
    };
    const ctx: WorkerContext = {
      state,
      clock,
      log: silentLogger,
      alerter,
      config: this.config,
      nc: undefined as never, // poll() is not driven in-process (no quote service)
      js: undefined as never,
      publish: (subject, body, msgID) =>
        this.failPublish?.(subject)
          ? Promise.reject(new Error(`sim: publish to ${subject} failed`))
          : Promise.resolve({ ...this.append(subject, body, msgID), domain: "" } as unknown as PubAck),
      precheck: (order, ahead) =>
        this.flags.precheck === false ? undefined : this.decider.preview(order, ahead),
    };
    this.ctx = ctx;
    this.worker = createStopsWorker(ctx);
    const sweeper = createSweeper(ctx, this.worker);
    this.sweeperTick = () => sweeper.tick!();
    const now = clock.now();
    this.nextTick = now + 1000;
    this.nextSweep = now + this.sweepMs;
    this.worker.onReady!();
    this.checkEmitted();
  }
}
