/**
 * Per-fund index of recent orders by duplicate key (duplicate_window_ms, SEC 15c3-5 "duplicative
 * orders"): a hash map from the order's canonical key (symbol, side, type, quantity, limit and
 * stop price) to when it was last decided and under which idempotency key. A keyed lookup on the
 * hot path; memory is bounded by the orders decided within the longest window (a FIFO of
 * insertions drives the pruning). Derived from the decision records (`dup_key`), so a rebuild
 * from the journal gives the same index.
 */
import type { Order } from "../contract/schemas.js";
import type { Dec } from "../decimal/index.js";

export interface DuplicateEntry {
  at: number; // epoch ms of the latest decision with this key
  key: string; // its idempotency key
}

export interface DuplicateIndex {
  last: Map<string, DuplicateEntry>;
  /** Insertions in arrival order: [dupKey, at]; entries before `head` are pruned. */
  queue: [string, number][];
  head: number;
}

export function createDuplicateIndex(): DuplicateIndex {
  return { last: new Map(), queue: [], head: 0 };
}

/**
 * A decimal's value as text, equal for equal values ("100" and "100.0" give "100e0"): the units
 * without the trailing zeros the scale allows dropping. String work only (canon() divides BigInts
 * to normalize, several times slower on the hot path).
 */
export function decKey(d: Dec): string {
  if (d.units === 0n) return "0";
  const digits = d.units.toString();
  let z = 0;
  const max = Math.min(d.scale, digits.length - 1);
  while (z < max && digits.charCodeAt(digits.length - 1 - z) === 48) z++;
  return z === 0 ? `${digits}e${d.scale}` : `${digits.slice(0, digits.length - z)}e${d.scale - z}`;
}

/** The canonical duplicate key of an order (decimals by value, so "100" and "100.0" match). */
export function duplicateKey(o: Order): string {
  const lp = o.limit_price === undefined ? "" : decKey(o.limit_price);
  const sp = o.stop_price === undefined ? "" : decKey(o.stop_price);
  return `${o.symbol}|${o.side}|${o.order_type}|${decKey(o.quantity)}|${lp}|${sp}`;
}

/** Records a decision (idempotent: the same decision applied twice changes nothing). */
export function recordDuplicate(ix: DuplicateIndex, dupKey: string, idemKey: string, at: number): boolean {
  const cur = ix.last.get(dupKey);
  if (cur && (cur.at > at || (cur.at === at && cur.key === idemKey))) return false;
  ix.last.set(dupKey, { at, key: idemKey });
  ix.queue.push([dupKey, at]);
  return true;
}

/** Forgets keys last decided at or before `cutoff`. */
export function pruneDuplicates(ix: DuplicateIndex, cutoff: number): void {
  const q = ix.queue;
  let h = ix.head;
  while (h < q.length && q[h]![1] <= cutoff) {
    const [k, at] = q[h]!;
    const cur = ix.last.get(k);
    if (cur && cur.at <= at) ix.last.delete(k);
    h++;
  }
  ix.head = h;
  if (h > 1024 && h * 2 > q.length) {
    q.splice(0, h);
    ix.head = 0;
  }
}

/** The earlier order this one duplicates, if any: same key, another idempotency key, within the window. */
export function findDuplicate(
  ix: DuplicateIndex,
  dupKey: string,
  idemKey: string,
  now: number,
  windowMs: number,
): DuplicateEntry | undefined {
  const cur = ix.last.get(dupKey);
  if (!cur || cur.key === idemKey) return undefined;
  return now - cur.at < windowMs ? cur : undefined;
}

export function duplicateEntries(ix: DuplicateIndex): [string, number, string][] {
  return [...ix.last].map(([k, e]) => [k, e.at, e.key]);
}
