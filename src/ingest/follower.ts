/**
 * Follows the consumed streams with ordered (ephemeral) consumers, starting after each stream's
 * cursor, and folds every message into the state through the projector. Knows when it has
 * caught up with the last sequence each stream had when it (re)measured.
 */
import {
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { setTimeout as delay } from "node:timers/promises";
import type { StreamName } from "../contract/subjects.js";
import type { Logger } from "../obs/log.js";
import { isTransientJsError } from "../bus/transient.js";
import { type EngineState, type ProjectResult, project, settleAll } from "../state/index.js";
import { type Delivered, type PacedLane, openPacedLane, startAfter } from "./paced-lane.js";

export type { Delivered } from "./paced-lane.js";

/** Messages a pull request asks for (the rebuild's limit measurement, bench/bareread.ts, uses it too). */
export const FOLLOW_BATCH = 1000;

/** How long `open` keeps retrying a consumer create that times out. */
const OPEN_DEADLINE_MS = 30_000;

/**
 * When the stream stored a QUOTES or FILLS message (epoch ms): it bounds how far ahead its own
 * timestamp may rank a quote (applyQuote) or move the fill-id watermark (applyFill); undefined for
 * every other stream. Every reader that folds them passes it (the follower, so a rebuild too, and
 * `mts-risk explain`'s replay), so they all fold every message the same.
 */
export function storedMsOf(stream: StreamName, m: Delivered): number | undefined {
  return stream === "QUOTES" || stream === "FILLS" || stream === "RISK_CONTROL"
    ? Math.floor(m.info.timestampNanos / 1e6)
    : undefined;
}

export interface FollowerOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  state: EngineState;
  streams: readonly StreamName[];
  log: Logger;
  /** Called before each message is folded in (the workers' view of the state just before it). */
  beforeProject?: (stream: StreamName) => void;
  /**
   * Folds a message the engine itself originated, from memory (facts/decisions.ts); undefined:
   * not its own, the projector folds it.
   */
  recognise?: (stream: StreamName, msg: Delivered) => ProjectResult | undefined;
  /** Called after each message is folded in (alerts, dead letters, progress). */
  onResult?: (stream: StreamName, msg: Delivered, result: ProjectResult) => void;
  /**
   * Streams read by paced pulls (./paced-lane.ts) instead of an ordered consumer: the live engine's
   * quotes when `engine.quote_pace_ms` > 0 (opt-in). Absent, or `paceMs` 0 (the default): every
   * stream has an ordered consumer.
   */
  paced?: {
    nc: NatsConnection;
    streams: readonly StreamName[];
    paceMs: number;
    inboxPrefix?: string | undefined;
  };
}

export interface Follower {
  start(): Promise<void>;
  /** Re-measure each stream's last sequence; caught-up becomes false until reached again. */
  remeasure(): Promise<void>;
  caughtUp(): boolean;
  waitCaughtUp(signal?: AbortSignal): Promise<void>;
  /** Messages still to apply to reach the measured targets (approximate, for progress). */
  behind(): number;
  /** Each stream's last sequence as last measured (at start or reconnect). */
  targets(): Map<StreamName, number>;
  /** Closes and reopens a stream's consumer from its cursor (recovery from a stalled consumer). */
  reopen(stream: StreamName): Promise<void>;
  stop(): Promise<void>;
}

interface Lane {
  stream: StreamName;
  target: number;
  caught: boolean;
  sub: ConsumerMessages | undefined;
  paced: PacedLane | undefined;
  pendingHint: number;
  /** The lane's reopens, one after the other (two reconnects in a row must not open it twice). */
  chain: Promise<void>;
}

export function createFollower(o: FollowerOptions): Follower {
  const lanes = new Map<StreamName, Lane>();
  let stopped = false;
  let waiters: (() => void)[] = [];
  const log = o.log.child({ module: "follower" });

  function allCaught(): boolean {
    for (const l of lanes.values()) if (!l.caught) return false;
    return true;
  }
  function settle(): void {
    if (!allCaught()) return;
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  }

  async function measure(l: Lane): Promise<void> {
    const info = await o.jsm.streams.info(l.stream);
    const cursor = o.state.cursors.get(l.stream) ?? 0;
    l.target = info.state.messages === 0 ? 0 : info.state.last_seq;
    l.caught = cursor >= l.target;
    l.pendingHint = Math.max(0, l.target - cursor);
  }

  /**
   * Quotes are conflated (see markSymbol): the marks move with each message, the aggregates of
   * their holders once the burst the socket delivered is in (a reader settles its fund earlier).
   */
  let settleQueued = false;
  const settleLater = (): void => {
    if (settleQueued || o.state.staleFunds.size === 0) return;
    settleQueued = true;
    setImmediate(() => {
      settleQueued = false;
      settleAll(o.state);
    });
  };

  function handle(l: Lane, m: Delivered): void {
    o.beforeProject?.(l.stream);
    // the stream's own time of a quote bounds how far ahead its timestamp may rank it (see applyQuote)
    const storedMs = storedMsOf(l.stream, m);
    const batch = l.stream === "RISK_DECISIONS" ? m.headers?.get("Mts-Batch") || null : undefined;
    const r =
      o.recognise?.(l.stream, m) ?? project(o.state, l.stream, m.subject, m.data, m.seq, storedMs, batch);
    if (l.stream === "QUOTES") settleLater();
    if (o.onResult) o.onResult(l.stream, m, r);
    l.pendingHint = m.info.pending;
    if (!l.caught && (m.seq >= l.target || m.info.pending === 0)) {
      l.caught = true;
      settle();
    }
  }

  /**
   * Create the lane's ordered consumer, retried on a timeout: right after a cluster node dies, the
   * server may still place a new (R1) consumer on that node, and such a create is never answered.
   */
  async function createConsumer(l: Lane): Promise<Consumer> {
    const deadline = Date.now() + OPEN_DEADLINE_MS;
    for (let attempt = 1; ; attempt++) {
      const cursor = o.state.cursors.get(l.stream) ?? 0;
      try {
        return await o.js.consumers.get(l.stream, startAfter(cursor));
      } catch (err) {
        if (!isTransientJsError(err) || Date.now() >= deadline) throw err;
        log.warn({ err, stream: l.stream, attempt }, "consumer create failed (transient); retrying");
        await delay(Math.min(100 * attempt, 1000));
      }
    }
  }

  function guarded(l: Lane, m: Delivered): void {
    try {
      handle(l, m);
    } catch (err) {
      // A projection bug must not stop the stream: the message is reported and skipped.
      log.error({ err, stream: l.stream, seq: m.seq }, "projection failed");
      o.onResult?.(l.stream, m, { ok: false, reason: `projection failed: ${String(err)}`, fund: "_" });
    }
  }

  async function open(l: Lane): Promise<void> {
    const p = o.paced;
    if (p && p.paceMs > 0 && p.streams.includes(l.stream)) {
      l.paced = await openPacedLane({
        nc: p.nc,
        jsm: o.jsm,
        stream: l.stream,
        cursor: () => o.state.cursors.get(l.stream) ?? 0,
        paceMs: p.paceMs,
        inboxPrefix: p.inboxPrefix,
        log,
        onMessage: (m) => guarded(l, m),
      });
      return;
    }
    const c = await createConsumer(l);
    l.sub = await c.consume({ max_messages: FOLLOW_BATCH, callback: (m: JsMsg) => guarded(l, m) });
  }

  async function close(l: Lane): Promise<void> {
    if (l.sub) await l.sub.close().catch(() => undefined);
    if (l.paced) await l.paced.close();
    l.sub = undefined;
    l.paced = undefined;
  }

  return {
    async start() {
      for (const stream of o.streams) {
        lanes.set(stream, {
          stream,
          target: 0,
          caught: false,
          sub: undefined,
          paced: undefined,
          pendingHint: 0,
          chain: Promise.resolve(),
        });
      }
      // every stream at once (a round trip each; streams fold independently of how they interleave)
      await Promise.all([...lanes.values()].map(measure));
      await Promise.all([...lanes.values()].map(open));
      log.info(
        { targets: Object.fromEntries([...lanes].map(([s, l]) => [s, l.target])) },
        "following streams",
      );
      settle();
    },
    async remeasure() {
      await Promise.all([...lanes.values()].map(measure));
      settle();
    },
    caughtUp: allCaught,
    waitCaughtUp(signal) {
      if (allCaught()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        waiters.push(resolve);
        signal?.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
      });
    },
    behind() {
      let n = 0;
      for (const l of lanes.values()) if (!l.caught) n += l.pendingHint;
      return n;
    },
    targets: () => new Map([...lanes].map(([s, l]) => [s, l.target])),
    async reopen(stream) {
      const l = lanes.get(stream);
      if (!l) return;
      const run = l.chain
        .catch(() => undefined)
        .then(async () => {
          await close(l);
          if (!stopped) await open(l);
        });
      l.chain = run;
      await run;
      log.warn({ stream, cursor: o.state.cursors.get(stream) ?? 0 }, "consumer reopened");
    },
    async stop() {
      stopped = true;
      for (const l of lanes.values()) {
        await l.chain.catch(() => undefined);
        await close(l);
      }
    },
  };
}
