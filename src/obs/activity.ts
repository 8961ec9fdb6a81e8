/**
 * What the dashboard shows that the state does not keep: each fund's recent rejections (a bounded
 * list) and the last reconciliation drift seen for it. Recording a rejection is O(1) amortized.
 */

export interface RejectionEntry {
  at_ms: number;
  order_id: string;
  gate: string;
  code: string;
  reason: string;
}

export interface DriftEntry {
  at: string;
  brokers: string[];
  symbols: string[];
  action: string;
  clean: boolean;
}

export interface Activity {
  rejected(fund: string, e: RejectionEntry): void;
  /** The fund's rejections at or after `sinceMs`, newest first (at most the last KEEP). */
  rejections(fund: string, sinceMs: number): RejectionEntry[];
  /**
   * How many rejections of each code the fund had since `sinceMs`, all of them (not only the
   * listed ones), counted in BUCKET_MS buckets: the window's old edge is within a bucket.
   */
  countsSince(fund: string, sinceMs: number): Record<string, number>;
  drift(fund: string, d: DriftEntry): void;
  lastDrift(fund: string): DriftEntry | undefined;
}

/** Rejections kept per fund (the newest). */
const KEEP = 200;
/** The counts' bucket, and how long they are kept (the dashboard shows 15 min). */
const BUCKET_MS = 10_000;
const COUNTS_KEPT_MS = 16 * 60_000;

export function createActivity(): Activity {
  const rejections = new Map<string, RejectionEntry[]>();
  /** Per fund: [bucket start, counts by code], oldest first. */
  const counts = new Map<string, [number, Map<string, number>][]>();
  const drifts = new Map<string, DriftEntry>();
  return {
    rejected(fund, e) {
      let list = rejections.get(fund);
      if (!list) rejections.set(fund, (list = []));
      list.push(e);
      if (list.length > KEEP * 2) list.splice(0, list.length - KEEP);
      let b = counts.get(fund);
      if (!b) counts.set(fund, (b = []));
      const at = e.at_ms - (e.at_ms % BUCKET_MS);
      let last = b[b.length - 1];
      if (!last || last[0] < at) b.push((last = [at, new Map<string, number>()]));
      const m = last[0] === at ? last[1] : (b.find(([t]) => t === at)?.[1] ?? last[1]);
      m.set(e.code, (m.get(e.code) ?? 0) + 1);
      let drop = 0;
      while (drop < b.length && b[drop]![0] < at - COUNTS_KEPT_MS) drop++;
      if (drop > 0) b.splice(0, drop);
    },
    countsSince(fund, sinceMs) {
      const out: Record<string, number> = {};
      const from = sinceMs - (sinceMs % BUCKET_MS);
      for (const [t, m] of counts.get(fund) ?? []) {
        if (t < from) continue;
        for (const [code, n] of m) out[code] = (out[code] ?? 0) + n;
      }
      return out;
    },
    rejections(fund, sinceMs) {
      const list = rejections.get(fund) ?? [];
      const out: RejectionEntry[] = [];
      for (let i = list.length - 1; i >= 0 && out.length < KEEP; i--) {
        const e = list[i]!;
        if (e.at_ms < sinceMs) break;
        out.push(e);
      }
      return out;
    },
    drift(fund, d) {
      drifts.set(fund, d);
    },
    lastDrift: (fund) => drifts.get(fund),
  };
}
