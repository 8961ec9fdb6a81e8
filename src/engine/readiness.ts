/**
 * Readiness: the engine's state machine (catching up / ready / not ready) and what changes it.
 * Pure: the caller reports the events (caught up, disconnected, reconnected, closing); staleness,
 * the follower's backlog and the lag are read through functions.
 *
 *   start ──caughtUp──▶ ready ──disconnected──▶ nats_disconnected ──reconnected──▶ catching_up
 *     ▲                   │  ▲                                                       │
 *     └ catching_up       │  └────────────────────────caughtUp────────────────────────┘
 *                         └─ stale() while caught: "stale" (back to ready when fresh)
 *   close() from any state: shutting_down, for good (a later caughtUp is ignored).
 */
import type { StreamName } from "../contract/subjects.js";

export interface Readiness {
  ready: boolean;
  /** Why not ready: shutting_down, nats_disconnected, catching_up, stale. */
  reason?: string;
  detail?: Record<string, unknown>;
}

export interface ReadinessMachine {
  /** Caught up, connected, not closing and not stale: checks may be decided. */
  isReady: () => boolean;
  /** Ready, or why not (/readyz), in that order of precedence. */
  readiness: () => Readiness;
  /** Caught up with the streams measured at start / the last reconnect. */
  caught: () => boolean;
  connected: () => boolean;
  closing: () => boolean;
  /** The follower reached the measured ends; ignored (returns false) once closing. */
  caughtUp: () => boolean;
  /** The connection dropped: not connected and no longer caught up. */
  disconnected: () => void;
  /** Connected again; still catching up until `caughtUp()`. */
  reconnected: () => void;
  /** Shutting down: never ready again. */
  close: () => void;
}

export function createReadiness(o: {
  stale(): boolean;
  /** The follower's backlog (detail of catching_up). */
  behind(): unknown;
  /** Messages each stream holds beyond the cursor (detail of stale). */
  lag(): Map<string, number>;
}): ReadinessMachine {
  let caught = false;
  let connected = true;
  let closing = false;
  return {
    isReady: () => caught && connected && !closing && !o.stale(),
    readiness() {
      if (closing) return { ready: false, reason: "shutting_down" };
      if (!connected) return { ready: false, reason: "nats_disconnected" };
      if (!caught) return { ready: false, reason: "catching_up", detail: { behind: o.behind() } };
      if (o.stale()) return { ready: false, reason: "stale", detail: { lag: Object.fromEntries(o.lag()) } };
      return { ready: true };
    },
    caught: () => caught,
    connected: () => connected,
    closing: () => closing,
    caughtUp() {
      if (closing) return false;
      caught = true;
      return true;
    },
    disconnected() {
      connected = false;
      caught = false;
    },
    reconnected() {
      connected = true;
    },
    close() {
      closing = true;
    },
  };
}

/** Messages each stream holds beyond its cursor, from the last sequences measured (0 when ahead). */
export function lagOf(
  last: ReadonlyMap<string, number>,
  cursors: ReadonlyMap<string, number>,
  streams: readonly StreamName[],
): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of streams) out.set(s, Math.max(0, (last.get(s) ?? 0) - (cursors.get(s) ?? 0)));
  return out;
}
