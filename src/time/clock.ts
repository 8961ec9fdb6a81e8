/** The injected time source: nothing in gates, projections or workers calls Date.now() directly. */
export interface Clock {
  now(): number; // epoch milliseconds
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to (tests, replays). */
export interface ManualClock extends Clock {
  set(ms: number): void;
  advance(ms: number): void;
}

export function manualClock(start: number | string): ManualClock {
  let t = typeof start === "string" ? Date.parse(start) : start;
  return {
    now: () => t,
    set: (ms) => {
      t = ms;
    },
    advance: (ms) => {
      t += ms;
    },
  };
}

export const iso = (ms: number): string => new Date(ms).toISOString();
