/**
 * Check latency over the last minute, for the dashboard's p50/p99: per second, counts in
 * log-spaced buckets (ratio 2^(1/8), about 9 % wide, from 1 µs to ~1 min). Recording is O(1)
 * with no allocation; a percentile sums the last 60 one-second slots.
 */

const MIN_S = 1e-6;
const PER_OCTAVE = 8;
const BUCKETS = 26 * PER_OCTAVE; // 1 µs × 2^26 ≈ 67 s
const SLOTS = 60;

export interface RollingLatency {
  /** Records one latency (seconds) at monotonic time `nowMs`. */
  record(seconds: number, nowMs: number): void;
  /** The quantiles over the last `SLOTS` seconds (seconds; null when nothing was recorded). */
  quantiles(qs: readonly number[], nowMs: number): { count: number; values: (number | null)[] };
}

export function createRollingLatency(): RollingLatency {
  const counts = new Uint32Array(SLOTS * BUCKETS);
  const slotSecond = new Float64Array(SLOTS).fill(-1);
  const lnBase = Math.log(2) / PER_OCTAVE;

  function slotFor(second: number): number {
    const s = second % SLOTS;
    if (slotSecond[s] !== second) {
      counts.fill(0, s * BUCKETS, (s + 1) * BUCKETS);
      slotSecond[s] = second;
    }
    return s;
  }

  return {
    record(seconds, nowMs) {
      const s = slotFor(Math.floor(nowMs / 1000));
      let b = seconds <= MIN_S ? 0 : Math.floor(Math.log(seconds / MIN_S) / lnBase);
      if (b >= BUCKETS) b = BUCKETS - 1;
      counts[s * BUCKETS + b]!++;
    },
    quantiles(qs, nowMs) {
      const now = Math.floor(nowMs / 1000);
      const merged = new Float64Array(BUCKETS);
      let total = 0;
      for (let s = 0; s < SLOTS; s++) {
        const sec = slotSecond[s]!;
        if (sec < 0 || sec <= now - SLOTS || sec > now) continue;
        for (let b = 0; b < BUCKETS; b++) {
          const c = counts[s * BUCKETS + b]!;
          merged[b] = merged[b]! + c;
          total += c;
        }
      }
      const values = qs.map((q) => {
        if (total === 0) return null;
        const rank = Math.max(1, Math.ceil(q * total));
        let acc = 0;
        for (let b = 0; b < BUCKETS; b++) {
          acc += merged[b]!;
          // the bucket's upper edge: a conservative (never optimistic) estimate
          if (acc >= rank) return MIN_S * Math.exp((b + 1) * lnBase);
        }
        return null;
      });
      return { count: total, values };
    },
  };
}
