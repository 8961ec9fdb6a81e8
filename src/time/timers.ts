/**
 * The injected timers: what the engine and its workers run periodically goes through `Timers`, so
 * tests can run a registration at a moment they choose (test/support/timers.ts).
 */

export interface EveryOptions {
  /** What runs (e.g. `worker:reconciler`): tests fire a registration by its name. */
  name?: string;
  /** The timer alone does not keep the process alive. */
  unref?: boolean;
}

/**
 * Runs `fn` every `ms`; the returned function cancels it. `fn` may return a promise (its async work),
 * which the caller has already guarded: the timer never awaits it.
 */
export interface Timers {
  every(ms: number, fn: () => unknown, o?: EveryOptions): () => void;
}

export const systemTimers: Timers = {
  every(ms, fn, o) {
    const t = setInterval(fn, ms);
    if (o?.unref) t.unref();
    return () => clearInterval(t);
  },
};
