/**
 * Scheduling: what the engine does on timers. The snapshot flush (periodic, in the background, and
 * on demand), the sweeps of expired reservations and idempotency records (at the injected clock's
 * time), and the staleness sample. Timers are injected (`Timers`), so the logic runs in tests
 * without waiting; the engine uses `systemTimers`.
 */
import type { StaleReport, StalenessMonitor } from "../ingest/staleness.js";
import type { Logger } from "../obs/log.js";
import type { EngineState, FlushReport, Snapshot } from "../state/index.js";
import type { Clock } from "../time/clock.js";
import type { Timers } from "../time/timers.js";

export { type Timers, systemTimers } from "../time/timers.js";

export interface Flusher {
  /**
   * The periodic flush: captures what changed and hands it to the snapshot's writer (unless the
   * writer is full, or a flush() is under way).
   */
  background: () => void;
  /** Everything applied so far, written before it resolves (after any background flush under way). */
  flush: () => Promise<void>;
}

/**
 * The periodic flush is written by a worker thread, so SQLite never stalls the check path. With a
 * snapshot that batches its commits (`commitEveryMs`), several captures wait for theirs at once.
 */
export function createFlusher(o: {
  snapshot: Pick<Snapshot, "flush" | "flushInBackground" | "commitNow">;
  state: EngineState;
  log: Logger;
}): Flusher {
  const { snapshot, state, log } = o;
  const report = (r: FlushReport) => {
    for (const f of r.failures)
      log.error({ err: f.err, kind: f.kind, key: f.key }, "snapshot: entity not written");
  };
  /** The snapshot's last background write, and when all sent so far are answered. */
  let sent: Promise<FlushReport> | undefined;
  let settled: Promise<void> | undefined;
  /** A flush() is under way: the periodic capture waits for it (it writes everything). */
  let flushing = false;
  return {
    background() {
      if (flushing) return;
      const p = snapshot.flushInBackground(state);
      if (p === sent) return; // the writer is behind: that write's promise again (already handled)
      sent = p;
      const handled = p.then(report, (err: unknown) => log.error({ err }, "snapshot flush failed"));
      const before = settled;
      settled = before ? Promise.all([before, handled]).then(() => undefined) : handled;
    },
    async flush() {
      // wait until every capture sent is answered (none starts meanwhile), then write the rest
      // here, in the same turn
      flushing = true;
      try {
        snapshot.commitNow();
        await settled;
        report(snapshot.flush(state));
      } catch (err) {
        log.error({ err }, "snapshot flush failed");
      } finally {
        flushing = false;
      }
    },
  };
}

export interface StalenessSampler {
  /** Takes one sample unless one is under way or the engine is not caught up (then undefined). */
  tick(): Promise<void> | undefined;
}

/**
 * One staleness sample a tick, never two at once, only once caught up. The first stale sample of an
 * episode calls `onStale` (the engine alerts and reopens the lagging consumers); the first fresh one
 * after it calls `onFresh`.
 */
export function createStalenessSampler(o: {
  staleness: Pick<StalenessMonitor, "stale" | "sample">;
  caught: () => boolean;
  onStale: (r: StaleReport) => Promise<void>;
  onFresh: () => void;
  log: Logger;
}): StalenessSampler {
  let sampling = false;
  return {
    tick() {
      if (sampling || !o.caught()) return undefined;
      sampling = true;
      const was = o.staleness.stale();
      return o.staleness
        .sample()
        .then(async (r) => {
          if (r.stale && !was) await o.onStale(r);
          else if (!r.stale && was) o.onFresh();
        })
        .catch((err: unknown) => o.log.error({ err }, "staleness sample failed"))
        .finally(() => (sampling = false));
    },
  };
}

export interface Schedule {
  /** Cancels every timer (idempotent). */
  stop(): void;
}

/** The engine's timers: flush every `flushIntervalMs`; sweep and staleness sample every second. */
export function createSchedule(o: {
  timers: Timers;
  clock: Clock;
  flushIntervalMs: number;
  flush: () => void;
  sweep: (now: number) => void;
  /** One staleness sample (its async work returned). */
  sample: () => unknown;
}): Schedule {
  const cancels = [
    o.timers.every(o.flushIntervalMs, o.flush, { name: "flush" }),
    o.timers.every(1000, () => o.sweep(o.clock.now()), { name: "sweep" }),
    o.timers.every(1000, o.sample, { name: "staleness" }),
  ];
  return {
    stop() {
      for (const c of cancels.splice(0)) c();
    },
  };
}
