/** Runs the workers: dispatches changes, drives their timers, isolates their faults. */
import type { Logger } from "../obs/log.js";
import { type Timers, systemTimers } from "../time/timers.js";
import type { Change, Worker } from "./types.js";

export interface WorkerHost {
  readonly workers: readonly Worker[];
  ready(): void;
  dispatch(c: Change): void;
  /** Before a stream message is applied (while live): the workers' `beforeApply` hooks. */
  beforeApply(): void;
  stop(): void;
}

/** The name of a worker's tick among the timers (`worker:<name>`): what a test fires. */
export const tickName = (worker: string): string => `worker:${worker}`;

/**
 * Each worker with `intervalMs` and `tick` ticks on the injected timers, under `tickName(w.name)`.
 * A tick's run returns its async work (guarded) and then `settled` (what the tick published,
 * acknowledged), so a test that fires it can wait for its effects to be on the streams.
 */
export function createWorkerHost(
  workers: Worker[],
  log: Logger,
  timers: Timers = systemTimers,
  settled?: () => Promise<void>,
): WorkerHost {
  const cancels: (() => void)[] = [];
  const before = workers.filter((w) => w.beforeApply !== undefined);
  let live = false;
  const guard = (w: Worker, what: string, f: () => unknown): Promise<void> | undefined => {
    try {
      const r = f();
      if (r instanceof Promise)
        return r.then(
          () => undefined,
          (err: unknown) => log.error({ err, worker: w.name }, `${what} failed`),
        );
    } catch (err) {
      log.error({ err, worker: w.name }, `${what} failed`);
    }
    return undefined;
  };
  return {
    workers,
    ready() {
      for (const w of workers) if (w.onReady) void guard(w, "onReady", () => w.onReady!());
      if (live) return;
      live = true;
      for (const w of workers) {
        if (w.intervalMs && w.tick) {
          const tick = w.tick.bind(w);
          const run = () => {
            const work = guard(w, "tick", tick);
            if (!settled) return work;
            return (work ?? Promise.resolve()).then(settled);
          };
          cancels.push(timers.every(w.intervalMs, run, { name: tickName(w.name), unref: true }));
        }
      }
    },
    dispatch(c) {
      if (!live) return;
      for (const w of workers) if (w.onChange) void guard(w, "onChange", () => w.onChange!(c));
    },
    beforeApply() {
      if (!live) return;
      for (const w of before) void guard(w, "beforeApply", () => w.beforeApply!());
    },
    stop() {
      live = false;
      for (const c of cancels.splice(0)) c();
      for (const w of workers) if (w.stop) void guard(w, "stop", () => w.stop!());
    },
  };
}
