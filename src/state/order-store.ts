/**
 * The order records (reservations), kept off the heap once they have ended: a record that is done
 * (filled or ended by the OMS, nothing reserved, nothing unconfirmed) only matters while a late
 * fill or event may still merge into it and for DUPLICATE_ORDER_ID, a TTL after its end. Once the
 * snapshot holds it as ended ("cold"), it leaves memory and is a row of the snapshot's `orders`
 * table, found by key, with a bounded LRU cache of the records read back. What stays in memory for
 * each of them is its key's role bit in the key index the stores share (state/key-index.ts: a new
 * order id is known new without touching the disk; a hit reads the row, so a collision costs one
 * read, never a wrong answer). Its forgetting is a column of its row (`exp`, the time the reservations sweep
 * would forget it), asked by the sweep.
 *
 * Records that reserve, may still reserve, or may be open (working, lapsed, unacknowledged,
 * unconfirmed) stay in memory ("hot") while the engine runs. A load (restart) leaves the open ones
 * on disk ("warm": the books' rows hold their reservations' sums, the snapshot's meta row the
 * funds' open counts) and reads each on its first touch (a fill, an OMS event, an approval, or the
 * sweep when its deadline, a column of its row, comes); a record with approvals not yet read back
 * from the journal is read at load (they are dropped). `open()` iterates the hot and the warm
 * records: every record the digest, the fund report and the kill switch's check look at (a cold
 * record reserves nothing and is done).
 *
 * Without a disk (a state built in memory) every record stays hot: the in-memory map it was.
 */
import { dec, ZERO } from "../decimal/index.js";
import { KeyIndex, Role, hash32 } from "./key-index.js";
import { type OrderRecord, NO_APPROVALS, NO_KEYS, key2 } from "./model.js";

/** What the store reads from the snapshot (the main thread's connection). */
export interface OrderDisk {
  /** The record's row (JSON), if any. */
  get(k: string): string | undefined;
  /** Keys of the cold rows to forget at `now`. */
  due(now: number): string[];
  /** Keys of the open rows ("warm": not ended) whose deadline is at or before `now`. */
  warmDue(now: number): string[];
  /** Every open row (not ended), key and JSON; of one fund's orders when `fund` is given. */
  warm(fund?: string): Iterable<{ k: string; v: string }>;
}

/**
 * A row's `cold` column: the record ended (on disk only, until forgotten); open (not ended, and
 * nothing unconfirmed: a load leaves it on disk, read on first touch); open with approvals not yet
 * read back from the journal (a load reads it, to drop them).
 */
export const ROW_OPEN = 0;
export const ROW_COLD = 1;
export const ROW_UNCONFIRMED = 3;

/** A row of the snapshot's `orders` table (v undefined: a delete). */
export interface OrderRow {
  k: string;
  h: number;
  cold: number;
  exp: number;
  v: string | undefined;
}

export interface OrderStore {
  /** Every record: in memory and on disk. */
  readonly size: number;
  /** Records held in memory (hot + cache), for measurements. */
  readonly resident: number;
  /** Records in memory to be changed (hot). */
  readonly hotCount: number;
  /** The record, read back from disk if need be; for reading only (see take()). */
  get(k: string): OrderRecord | undefined;
  has(k: string): boolean;
  /** The record when it is in memory (hot), never read from disk. */
  hot(k: string): OrderRecord | undefined;
  /** A record on disk made hot again (to be changed); undefined if none (or already hot). */
  promote(k: string): OrderRecord | undefined;
  /** A new record (the key must be absent). */
  set(k: string, r: OrderRecord): void;
  /** Forgets a record (hot or on disk). */
  delete(k: string): boolean;
  /**
   * The records in memory to be changed (hot): after a load, the open records left on disk are not
   * among them until touched (see open()).
   */
  values(): IterableIterator<OrderRecord>;
  /**
   * Every record that reserves or may be open: the hot ones and the open rows a load left on disk
   * (read from it: O(open orders), for the digest, the fund report and the kill switch's check);
   * those of one fund when `fund` is given (the rows of the others are not read).
   */
  open(fund?: string): IterableIterator<OrderRecord>;
  /** Open rows on disk, not in memory, whose deadline is at or before `now` (the sweep promotes them). */
  warmDue(now: number): string[];
  /**
   * These rows are committed: a cold row whose record is unchanged since (not in `dirty`) leaves
   * memory. Returns how many left.
   */
  committed(rows: { row: OrderRow; ref: OrderRecord | undefined }[], dirty: Set<string> | undefined): number;
  /** Forgets the cold records on disk due at `now`; returns their keys (to delete in the next flush). */
  sweep(now: number): string[];
  /** A record loaded from a row whose hash attach() counted (a load). */
  adopt(k: string, r: OrderRecord): void;
  /**
   * Reads the cold records from this disk from now on; `hashes`: the keys' hashes of its rows,
   * but those of records already in memory.
   */
  attach(disk: OrderDisk, hashes: Iterable<number>): void;
  readonly attached: boolean;
}

/** `index`: the key index shared with the other stores (state/key-index.ts). */
export function createOrderStore(o: { cacheSize?: number | undefined; index?: KeyIndex } = {}): OrderStore {
  const cacheSize = Math.max(0, o.cacheSize ?? 4096);
  const hotMap = new Map<string, OrderRecord>();
  const cache = new Map<string, OrderRecord>();
  /** Deleted, not yet committed: the disk may still hold a row. */
  const gone = new Set<string>();
  const index = o.index ?? new KeyIndex();
  /** Records held (hot and on disk). */
  let count = 0;
  let disk: OrderDisk | undefined;

  const remember = (k: string, r: OrderRecord) => {
    if (cacheSize === 0) return;
    cache.delete(k);
    cache.set(k, r);
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value as string);
  };

  function cold(k: string): OrderRecord | undefined {
    if (!disk || gone.has(k) || !index.has(hash32(k), Role.order)) return undefined;
    const c = cache.get(k);
    if (c) {
      remember(k, c);
      return c;
    }
    const v = disk.get(k);
    if (v === undefined) return undefined;
    const r = orderFromJson(v).record;
    remember(k, r);
    return r;
  }

  const get = (k: string) => hotMap.get(k) ?? cold(k);

  return {
    get size() {
      return count;
    },
    get resident() {
      return hotMap.size + cache.size;
    },
    get hotCount() {
      return hotMap.size;
    },
    get attached() {
      return disk !== undefined;
    },
    get,
    has: (k) => get(k) !== undefined,
    hot: (k) => hotMap.get(k),
    promote(k) {
      if (hotMap.has(k)) return undefined;
      const r = cold(k);
      if (!r) return undefined;
      cache.delete(k);
      hotMap.set(k, r);
      r.queued = true; // the caller queues it for the sweep
      return r;
    },
    set(k, r) {
      hotMap.set(k, r);
      gone.delete(k);
      index.add(hash32(k), Role.order);
      count++;
    },
    delete(k) {
      if (get(k) === undefined) return false;
      hotMap.delete(k);
      cache.delete(k);
      if (index.remove(hash32(k), Role.order)) count--;
      if (disk) gone.add(k);
      return true;
    },
    values: () => hotMap.values(),
    *open(fund) {
      for (const r of hotMap.values()) if (fund === undefined || r.fund === fund) yield r;
      if (!disk) return;
      for (const { k, v } of disk.warm(fund)) {
        if (hotMap.has(k) || gone.has(k)) continue;
        yield cache.get(k) ?? orderFromJson(v).record;
      }
    },
    warmDue(now) {
      if (!disk) return [];
      return disk.warmDue(now).filter((k) => !hotMap.has(k) && !gone.has(k));
    },
    committed(rows, dirty) {
      if (!disk) return 0;
      let n = 0;
      for (const { row, ref } of rows) {
        if (row.v === undefined) {
          gone.delete(row.k); // the disk has no row of it now
          continue;
        }
        if (row.cold !== 1 || !ref || hotMap.get(row.k) !== ref || dirty?.has(row.k) === true) continue;
        hotMap.delete(row.k);
        remember(row.k, ref);
        n++;
      }
      return n;
    },
    sweep(now) {
      if (!disk) return [];
      const out: string[] = [];
      for (const k of disk.due(now)) {
        if (hotMap.has(k) || gone.has(k)) continue; // hot again (the heap decides), or deleted already
        if (index.remove(hash32(k), Role.order)) count--;
        cache.delete(k);
        gone.add(k);
        out.push(k);
      }
      return out;
    },
    adopt(k, r) {
      hotMap.set(k, r);
    },
    attach(d, hashes) {
      disk = d;
      for (const h of hashes) {
        index.add(h, Role.order);
        count++;
      }
    },
  };
}

/** The record as a row's JSON (what the snapshot has always written for an order). */
export function orderToJson(r: OrderRecord): string {
  return JSON.stringify({
    fund: r.fund,
    orderId: r.orderId,
    symbol: r.symbol,
    side: r.side,
    broker: r.broker,
    price: r.price.toFixed(),
    approvals: [...r.approvals].map(([a, q]) => [a, q.toFixed()]),
    unconfirmed: [...r.unconfirmed],
    filled: r.filled.toFixed(),
    terminal: r.terminal,
    ...(r.endFilled.eq(ZERO) ? {} : { endFilled: r.endFilled.toFixed() }),
    accepted: r.accepted,
    expiresAt: r.expiresAt,
    lapsed: r.lapsed,
    touchedAt: r.touchedAt,
    // what it reserves in its book (the book's row holds the sums): a load that leaves it on disk
    // reads it back with it
    ...(r.reserved.eq(ZERO) ? {} : { reserved: r.reserved.toFixed() }),
  });
}

/**
 * A row's record, reserving what it reserved when written (counted in its book's row). Approvals
 * applied live but never read back from the journal are dropped (`dropped`: there were some; the
 * tail replay restores them if journaled, and the loader syncs the reservation).
 */
export function orderFromJson(v: string): { record: OrderRecord; dropped: boolean } {
  const o = JSON.parse(v) as {
    fund: string;
    orderId: string;
    symbol: string;
    side?: "BUY" | "SELL";
    broker?: string;
    price: string;
    approvals: [string, string][];
    unconfirmed?: string[];
    filled: string;
    terminal: boolean;
    endFilled?: string;
    accepted?: boolean;
    expiresAt: number;
    lapsed?: boolean;
    touchedAt: number;
    reserved?: string;
  };
  const dropped = new Set(o.unconfirmed ?? []);
  const kept = dropped.size === 0 ? o.approvals : o.approvals.filter(([a]) => !dropped.has(a));
  const record: OrderRecord = {
    fund: o.fund,
    orderId: o.orderId,
    key: key2(o.fund, o.orderId),
    symbol: o.symbol,
    side: o.side,
    broker: o.broker,
    price: dec(o.price),
    approvals: kept.length === 0 ? NO_APPROVALS : new Map(kept.map(([a, q]) => [a, dec(q)])),
    approved: kept.reduce((sum, [, q]) => sum.plus(dec(q)), ZERO),
    unconfirmed: NO_KEYS,
    filled: dec(o.filled),
    terminal: o.terminal,
    endFilled: o.endFilled === undefined ? ZERO : dec(o.endFilled),
    accepted: o.accepted === true,
    expiresAt: o.expiresAt,
    lapsed: o.lapsed === true,
    touchedAt: o.touchedAt,
    reserved: o.reserved === undefined ? ZERO : dec(o.reserved),
    queued: true,
  };
  return { record, dropped: dropped.size > 0 };
}
