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

/** The change a stream message represents, from its subject (mts.v1.<...>). */
export function changeOf(
  stream: string,
  subject: string,
  seq: number,
  raw?: () => unknown,
): Change | undefined {
  const t = subject.split(".");
  switch (stream) {
    case "FILLS":
      return t[3] && t[4] ? { kind: "fill", fund: t[3], symbol: t[4], seq } : undefined;
    case "QUOTES":
      return t[3] ? { kind: "quote", symbol: t[3] } : undefined;
    case "OMS_ORDERS": {
      const body = raw?.() as { order_id?: unknown } | undefined;
      return t[4] && t[5] && typeof body?.order_id === "string"
        ? { kind: "order", fund: t[5], orderId: body.order_id, event: t[4] }
        : undefined;
    }
    case "RISK_CONTROL":
      return t[3] ? { kind: "control", what: t[3], fund: t[t.length - 1]!, seq } : undefined;
    case "RISK_ENVELOPES":
      return t[5] ? { kind: "envelope", fund: t[5] } : undefined;
    default:
      return undefined;
  }
}
