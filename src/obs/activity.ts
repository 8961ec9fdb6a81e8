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
  /** The fund's rejections at or after `sinceMs`, newest first. */
  rejections(fund: string, sinceMs: number): RejectionEntry[];
  drift(fund: string, d: DriftEntry): void;
  lastDrift(fund: string): DriftEntry | undefined;
}

/** Rejections kept per fund (the newest). */
const KEEP = 200;

export function createActivity(): Activity {
  const rejections = new Map<string, RejectionEntry[]>();
  const drifts = new Map<string, DriftEntry>();
  return {
    rejected(fund, e) {
      let list = rejections.get(fund);
      if (!list) rejections.set(fund, (list = []));
      list.push(e);
      if (list.length > KEEP * 2) list.splice(0, list.length - KEEP);
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
