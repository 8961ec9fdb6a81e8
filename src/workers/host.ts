/** Runs the workers: dispatches changes, drives their timers, isolates their faults. */
import type { Logger } from "../obs/log.js";
import type { Change, Worker } from "./types.js";

export interface WorkerHost {
  readonly workers: readonly Worker[];
  ready(): void;
  dispatch(c: Change): void;
  /** Before a stream message is applied (while live): the workers' `beforeApply` hooks. */
  beforeApply(): void;
  stop(): void;
}

export function createWorkerHost(workers: Worker[], log: Logger): WorkerHost {
  const timers: NodeJS.Timeout[] = [];
  const before = workers.filter((w) => w.beforeApply !== undefined);
  let live = false;
  const guard = (w: Worker, what: string, f: () => unknown) => {
    try {
      const r = f();
      if (r instanceof Promise)
        r.catch((err: unknown) => log.error({ err, worker: w.name }, `${what} failed`));
    } catch (err) {
      log.error({ err, worker: w.name }, `${what} failed`);
    }
  };
  return {
    workers,
    ready() {
      for (const w of workers) if (w.onReady) guard(w, "onReady", () => w.onReady!());
      if (live) return;
      live = true;
      for (const w of workers) {
        if (w.intervalMs && w.tick) {
          const t = setInterval(() => guard(w, "tick", () => w.tick!()), w.intervalMs);
          t.unref();
          timers.push(t);
        }
      }
    },
    dispatch(c) {
      if (!live) return;
      for (const w of workers) if (w.onChange) guard(w, "onChange", () => w.onChange!(c));
    },
    beforeApply() {
      if (!live) return;
      for (const w of before) guard(w, "beforeApply", () => w.beforeApply!());
    },
    stop() {
      live = false;
      for (const t of timers) clearInterval(t);
      timers.length = 0;
      for (const w of workers) if (w.stop) guard(w, "stop", () => w.stop!());
    },
  };
}
