/**
 * Per-fund velocity window: the decisions counted for VELOCITY_EXCEEDED, in time order, with
 * cumulative notionals so that any window up to the longest one is answered by a binary search.
 */
import { type Dec, ZERO } from "../decimal/index.js";

/**
 * How long every fund's decisions are kept for velocity, whatever its envelope says (a window set
 * or widened later counts the orders decided before it): the contract's longest window.
 */
export const VELOCITY_HISTORY_S = 3600;

/** The snapshot keeps a fund's velocity entries in one row per second of decision time. */
export const velocityBucket = (at: number): number => Math.floor(at / 1000);

export interface VelocityWindow {
  ids: string[];
  at: number[];
  cum: Dec[]; // cumulative notional up to and including each entry (offset by `base`)
  base: Dec; // cumulative notional before index 0
  head: number; // entries before head are pruned
  /**
   * Reads the window's entries from where a snapshot left them, on first use (undefined: in
   * memory). A restart then does not read every decision of the last hour before it answers.
   */
  lazy: ((w: VelocityWindow) => void) | undefined;
}

export function createVelocity(): VelocityWindow {
  return { ids: [], at: [], cum: [], base: ZERO, head: 0, lazy: undefined };
}

/** Entries still to be read (a snapshot's load left them on disk). */
export const velocityOnDisk = (w: VelocityWindow): boolean => w.lazy !== undefined;

/**
 * Brings the window's entries into memory, if a snapshot left them on disk. A read that fails
 * leaves the window as it was (on disk, empty in memory): it is never used half-read, so a window
 * cannot undercount.
 */
export function readVelocity(w: VelocityWindow): void {
  const read = w.lazy;
  if (read === undefined) return;
  w.lazy = undefined;
  try {
    read(w);
  } catch (err) {
    w.ids.length = 0;
    w.at.length = 0;
    w.cum.length = 0;
    w.base = ZERO;
    w.head = 0;
    w.lazy = read;
    throw err;
  }
}

/** First index >= head whose time is > t. */
function upper(w: VelocityWindow, t: number): number {
  let lo = w.head;
  let hi = w.at.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (w.at[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const cumBefore = (w: VelocityWindow, i: number): Dec => (i > 0 ? w.cum[i - 1]! : w.base);

/**
 * Adds a decision once (idempotent on its id: a decision's id always comes with the same time, so
 * only the entries of that millisecond are compared); keeps time order.
 */
export function addVelocity(w: VelocityWindow, id: string, at: number, notional: Dec): boolean {
  if (w.lazy) readVelocity(w);
  const i = upper(w, at);
  for (let k = i - 1; k >= w.head && w.at[k] === at; k--) if (w.ids[k] === id) return false;
  const n = w.at.length;
  if (i === n) {
    w.ids.push(id);
    w.at.push(at);
    w.cum.push(cumBefore(w, n).plus(notional));
    return true;
  }
  // Out of time order (another engine's clock, a takeover): insert, shifting only what follows.
  w.ids.splice(i, 0, id);
  w.at.splice(i, 0, at);
  w.cum.splice(i, 0, cumBefore(w, i).plus(notional));
  for (let k = i + 1; k <= n; k++) w.cum[k] = w.cum[k]!.plus(notional);
  return true;
}

/** Drops entries at or before the cutoff; returns the buckets (seconds) they were in. */
export function pruneVelocity(w: VelocityWindow, cutoff: number): number[] {
  if (w.lazy) readVelocity(w);
  const i = upper(w, cutoff);
  const buckets: number[] = [];
  for (let k = w.head; k < i; k++) {
    const b = velocityBucket(w.at[k]!);
    if (buckets[buckets.length - 1] !== b) buckets.push(b);
  }
  w.head = i;
  if (w.head > 1024 && w.head * 2 > w.at.length) {
    w.base = cumBefore(w, w.head);
    w.ids.splice(0, w.head);
    w.at.splice(0, w.head);
    w.cum.splice(0, w.head);
    w.head = 0;
  }
  return buckets;
}

/** Orders and notional counted in (now − windowS, now]. */
export function velocityUsage(
  w: VelocityWindow,
  now: number,
  windowS: number,
): { count: number; notional: Dec } {
  if (w.lazy) readVelocity(w);
  const from = upper(w, now - windowS * 1000);
  const to = upper(w, now);
  if (to <= from) return { count: 0, notional: ZERO };
  return { count: to - from, notional: w.cum[to - 1]!.minus(cumBefore(w, from)) };
}

export function velocityEntries(w: VelocityWindow): [string, number, Dec][] {
  if (w.lazy) readVelocity(w);
  return entriesFrom(w, w.head, w.at.length);
}

/** The entries of one bucket (a second of decision time). */
export function velocityBucketEntries(w: VelocityWindow, bucket: number): [string, number, Dec][] {
  if (w.lazy) readVelocity(w);
  return entriesFrom(w, upper(w, bucket * 1000 - 1), upper(w, bucket * 1000 + 999));
}

function entriesFrom(w: VelocityWindow, from: number, to: number): [string, number, Dec][] {
  const out: [string, number, Dec][] = [];
  for (let k = from; k < to; k++) out.push([w.ids[k]!, w.at[k]!, w.cum[k]!.minus(cumBefore(w, k))]);
  return out;
}
