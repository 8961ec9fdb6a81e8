/**
 * Timers a test can step: every registration runs on Node's timers as usual, and a test can also
 * fire one now by its name (`worker:reconciler`, `worker:drawdown`, `worker:stops`, `sweep`, ...)
 * and wait for the async work of that run. So a test drives "the reconciler's tick" at a moment it
 * chooses, then asserts on what the engine published or shows, not on a worker's return value.
 */
import { type Timers, systemTimers } from "../../src/time/timers.js";
import { tickName } from "../../src/workers/host.js";

export interface SteppableTimers extends Timers {
  /**
   * Runs every live registration named `name` now and resolves once their work (a returned
   * promise) finished. Throws when nothing of that name is registered (a worker not running, a
   * misspelt name): firing nothing must not pass as "nothing happened".
   */
  fire(name: string): Promise<void>;
  /** A worker's tick (`fire(tickName(worker))`). */
  tick(worker: string): Promise<void>;
  /** The names registered now. */
  names(): string[];
}

export class NothingToFireError extends Error {
  readonly code = "NOTHING_TO_FIRE";
  constructor(name: string, live: string[]) {
    super(`no timer named ${name} (registered: ${live.join(", ") || "none"})`);
    this.name = "NothingToFireError";
  }
}

/** `base` runs the registrations periodically (Node's timers unless told). */
export function steppableTimers(base: Timers = systemTimers): SteppableTimers {
  let id = 0;
  const live = new Map<number, { name: string | undefined; fn: () => unknown }>();
  const names = () => [...new Set([...live.values()].flatMap((r) => (r.name ? [r.name] : [])))].sort();
  const fire = async (name: string) => {
    const due = [...live.values()].filter((r) => r.name === name);
    if (due.length === 0) throw new NothingToFireError(name, names());
    await Promise.all(due.map((r) => r.fn()));
  };
  return {
    every(ms, fn, o) {
      const k = ++id;
      live.set(k, { name: o?.name, fn });
      const cancel = base.every(ms, fn, o);
      return () => {
        live.delete(k);
        cancel();
      };
    },
    fire,
    tick: (worker) => fire(tickName(worker)),
    names,
  };
}
