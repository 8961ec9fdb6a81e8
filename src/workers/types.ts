/** The worker interface: reacts to stream changes once the engine is live, and ticks on a timer. */
import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Config } from "../config/index.js";
import type { Alerter } from "../engine/alerts.js";
import type { GateRejection, PendingAhead } from "../gates/index.js";
import type { Logger } from "../obs/log.js";
import type { EngineState } from "../state/model.js";
import type { Clock } from "../time/clock.js";
import type { ReconcileReport } from "./reconciler.js";
import { type FactEmitters, createFactEmitters } from "../facts/emitters.js";
import type { StreamName } from "../contract/subjects.js";

export interface WorkerContext {
  state: EngineState;
  nc: NatsConnection;
  js: JetStreamClient;
  clock: Clock;
  log: Logger;
  alerter: Alerter;
  config: Config;
  /**
   * Several engines: true when this engine owns (decides) the fund. Workers act only for owned
   * funds, so two engines never both emit a closing order, a halt or a baseline. Absent: all.
   */
  owns?: (fund: string) => boolean;
  /**
   * JetStream publish of a JSON body; `msgID` dedupes on the stream's duplicate window. The
   * transport under `facts`: workers emit through the typed emitters, not through this.
   */
  publish(subject: string, body: unknown, msgID?: string): Promise<PubAck>;
  /** Typed emitters of the facts the workers originate (absent: built on `publish`). */
  facts?: FactEmitters;
  /**
   * What the engine's own check would answer for an order at this moment, applying nothing
   * (undefined: approved). Orders the engine emits are emitted only when it approves them.
   */
  precheck(order: unknown, ahead?: PendingAhead): GateRejection | undefined;
  /** Each reconciliation pass's report (metrics, dashboard). */
  onReconcile?(report: ReconcileReport): void;
}

/** What changed in the state: the change the projection that applied a message returned. */
import type { Change } from "../state/projections/table.js";
export type { Change };

export interface Worker {
  readonly name: string;
  /** Period of `tick`, in milliseconds (none: no timer). */
  readonly intervalMs?: number;
  /** Called once when the engine becomes live (after catching up), and after each reconnect. */
  onReady?(): void;
  onChange?(c: Change): void;
  /** Called (while live) before each stream message is applied to the state. Must be cheap. */
  beforeApply?(): void;
  tick?(): unknown;
  stop?(): void;
}

/** The context's emitters (built once on its transport when the engine did not give them). */
export function factsOf(ctx: WorkerContext): FactEmitters {
  return (ctx.facts ??= createFactEmitters({
    publish: (s, b, id) => ctx.publish(s, b, id),
    folded: (stream, seq) => (ctx.state.cursors.get(stream as StreamName) ?? 0) >= seq,
  }));
}
