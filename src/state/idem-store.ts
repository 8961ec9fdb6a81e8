/**
 * The idempotency records of the window (24 h by default), kept off the heap: a record lives in
 * memory only until the snapshot has it (`pending`, a flush interval's worth), then on disk (the
 * snapshot's `idem` table, found by key), with a bounded LRU cache of the records read back. What
 * stays in memory for every retained decision is its key and the order id it owns in the key
 * index the stores share (state/key-index.ts: a fingerprint's role bits, ≈ 6 bytes a distinct
 * key): a new key or order id is known to be new without touching the disk, and a hit is
 * confirmed against the exact key on disk (a collision costs one read, never a wrong answer).
 *
 * Without a disk (a state built in memory: unit tests, a rebuild before its first flush) every
 * record stays pending, which is today's in-memory map. The snapshot attaches the disk when it
 * loads or first flushes the state.
 *
 * The order ids in use are part of the same store: the decision that first used an order id (not
 * a DUPLICATE_ORDER_ID rejection) owns it while its record lives (`owner`, a column on disk).
 */
import { KeyIndex, Role, hash32 } from "./key-index.js";
import type { IdemRecord } from "./model.js";
import { IdemDigest, recordHash } from "./idem-digest.js";

/** A row of the snapshot's `idem` table. `ok`: key2(fund, order id) when the record may own it. */
export interface IdemRow {
  k: string;
  ok: string | null;
  /** hash32 of `k` and of `ok` (what a load builds the index from, without reading the keys). */
  h: number;
  oh: number | null;
  owner: number;
  exp: number;
  conf: number;
  v: string;
  /** The record's hash in the digest (state/idem-digest.ts). */
  dh: number;
}

/** What the store reads from the snapshot (the main thread's connection). */
export interface IdemDisk {
  get(k: string): { v: string; owner: number } | undefined;
  /** The key of the record owning this order id, if any. */
  ownerOf(ok: string): string | undefined;
  /** Records expiring at or before `now`. */
  due(now: number): { k: string; ok: string | null; owner: number; dh: number | null }[];
  /** Every record's value (for the digest and tests). */
  values(): Iterable<{ k: string; v: string }>;
}

/** A change captured for the snapshot: the record as written, or null for a delete. */
export interface IdemChange {
  k: string;
  row: IdemRow | undefined;
  ref: IdemRecord | null;
}

export interface IdemStore {
  readonly size: number;
  get(k: string): IdemRecord | undefined;
  has(k: string): boolean;
  /** A new record (the key must be absent); it claims its order id when nobody owns it. */
  put(k: string, r: IdemRecord): void;
  /** Marks a record confirmed (read back from the journal); written again. */
  confirm(k: string): void;
  /** Forgets a record (revoked, or swept). */
  delete(k: string): boolean;
  /** The record owning the fund's order id (key2(fund, orderId)), if any. */
  owner(ok: string): IdemRecord | undefined;
  /** Forgets every record expired at `now`; returns how many. */
  sweep(now: number): number;
  /** Every live record (pending and on disk): O(window), for tests and measurements. */
  values(): IterableIterator<IdemRecord>;
  /** The records' line in state_digest, kept as they change: O(1) (state/idem-digest.ts). */
  digestLine(): string;
  /** The changes since the last capture, for one snapshot transaction. */
  capture(): IdemChange[];
  /** The captured changes are committed: what the disk now has leaves memory. */
  committed(changes: IdemChange[]): void;
  /** The captured changes were not written: captured again next time. */
  retry(changes: IdemChange[]): void;
  /**
   * Reads the records from this disk from now on; `rows`: the hashes of the keys it holds and of
   * the order ids they own (`oh` counts when `owner` is 1), for the index; with `k`, a row of a
   * record already in memory is skipped.
   */
  attach(disk: IdemDisk, rows: Iterable<IdemKeyRow>): void;
  /**
   * The same from the hashes alone (a load, nothing in memory yet): `keys` every row's `h`, `owned`
   * the `oh` of the rows that own their order id.
   */
  attachHashes(
    disk: IdemDisk,
    keys: Iterable<number>,
    owned: Iterable<number>,
    /** Every row's digest hash (`dh`). */
    digests: Iterable<number>,
  ): void;
  readonly attached: boolean;
  /** Records held in memory (pending + cache), for measurements. */
  readonly resident: number;
}

export const IDEM_CACHE_DEFAULT = 4096;

/** What the index is built from: a row's hashes (and its key, when records may be in memory). */
export interface IdemKeyRow {
  k?: string;
  ok?: string | null;
  /** Null in a row written before the hash columns (then computed from `k` and `ok`). */
  h: number | null;
  oh: number | null;
  owner: number;
  /** The record's digest hash (null in a row written before the column: read from the record). */
  dh: number | null;
}

export { KeyIndex, hash32 } from "./key-index.js";

/** The order id key a record may own (a DUPLICATE_ORDER_ID rejection or an empty id owns none). */
export function ownableKey(r: IdemRecord): string | null {
  const d = r.decision;
  if (d.order_id === "" || d.rejection_code === "DUPLICATE_ORDER_ID") return null;
  return `${r.fund}\u0001${d.order_id}`;
}

export function toRow(k: string, r: IdemRecord): IdemRow {
  const ok = ownableKey(r);
  return {
    k,
    ok,
    h: hash32(k),
    oh: ok === null ? null : hash32(ok),
    owner: r.owner === true ? 1 : 0,
    exp: r.expiresAt,
    conf: r.confirmed ? 1 : 0,
    dh: recordHash(r),
    v: JSON.stringify({
      fund: r.fund,
      key: r.key,
      fingerprint: r.fingerprint,
      decision: r.decision,
      expiresAt: r.expiresAt,
      confirmed: r.confirmed,
      fields: r.fields,
    }),
  };
}

export function fromRow(v: string, owner: number): IdemRecord {
  const r = JSON.parse(v) as IdemRecord;
  r.owner = owner === 1;
  return r;
}

/**
 * `index`: the key index shared with the other stores (state/key-index.ts); the store adds the
 * hashes of its keys and of the order ids it owns, and removes only what it added.
 */
export function createIdemStore(o: { cacheSize?: number | undefined; index?: KeyIndex } = {}): IdemStore {
  const cacheSize = Math.max(0, o.cacheSize ?? IDEM_CACHE_DEFAULT);
  /** Changed since the disk last had them (null: deleted); all records when no disk is attached. */
  const pending = new Map<string, IdemRecord | null>();
  /** Pending owners by order id key (records not yet on disk). */
  const pendingOwner = new Map<string, string>();
  /** Keys changed since the last capture. */
  const dirty = new Set<string>();
  /** Records read back from disk, least recently used first. */
  const cache = new Map<string, IdemRecord>();
  const index = o.index ?? new KeyIndex();
  /** Records held (pending and on disk). */
  let count = 0;
  const digest = new IdemDigest();
  let disk: IdemDisk | undefined;
  let minPendingExp = Infinity;

  const remember = (k: string, r: IdemRecord) => {
    if (cacheSize === 0) return;
    cache.delete(k);
    cache.set(k, r);
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value as string);
  };

  function get(k: string): IdemRecord | undefined {
    const p = pending.get(k);
    if (p !== undefined) return p ?? undefined;
    if (!disk || !index.has(hash32(k), Role.idem)) return undefined;
    const c = cache.get(k);
    if (c) {
      remember(k, c);
      return c;
    }
    const row = disk.get(k);
    if (!row) return undefined;
    const r = fromRow(row.v, row.owner);
    remember(k, r);
    return r;
  }

  function owner(ok: string): IdemRecord | undefined {
    const pk = pendingOwner.get(ok);
    if (pk !== undefined) return owning(pending.get(pk) ?? undefined, ok);
    if (!disk || !index.has(hash32(ok), Role.owned)) return undefined;
    const k = disk.ownerOf(ok);
    // the row may be stale (its record swept, the delete not flushed yet) and its key taken by a
    // newer record since: the answer is the record under that key only if it owns this order id
    // (red team, stop 30: a key-index collision then refused a free order id, DUPLICATE_ORDER_ID)
    return k === undefined ? undefined : owning(get(k), ok);
  }

  function owning(r: IdemRecord | undefined, ok: string): IdemRecord | undefined {
    return r !== undefined && r.owner === true && ownableKey(r) === ok ? r : undefined;
  }

  /** The digest hash of a record on disk, from the record itself (a row without the column). */
  function hashOnDisk(k: string): number | undefined {
    const row = disk?.get(k);
    return row === undefined ? undefined : recordHash(fromRow(row.v, row.owner));
  }

  function change(k: string, r: IdemRecord | null): void {
    pending.set(k, r);
    dirty.add(k);
    if (r) {
      cache.delete(k);
      if (r.expiresAt < minPendingExp) minPendingExp = r.expiresAt;
    }
  }

  function forget(k: string, r: IdemRecord): void {
    if (index.remove(hash32(k), Role.idem)) count--;
    digest.remove(recordHash(r));
    if (r.owner === true) {
      const ok = ownableKey(r);
      if (ok !== null) {
        index.remove(hash32(ok), Role.owned);
        if (pendingOwner.get(ok) === k) pendingOwner.delete(ok);
      }
    }
    cache.delete(k);
    change(k, null);
  }

  function* values(): IterableIterator<IdemRecord> {
    for (const r of pending.values()) if (r) yield r;
    if (!disk) return;
    for (const { k, v } of disk.values()) {
      if (pending.has(k)) continue;
      yield fromRow(v, 0);
    }
  }

  return {
    get size() {
      return count;
    },
    get attached() {
      return disk !== undefined;
    },
    get resident() {
      return pending.size + cache.size;
    },
    get,
    has: (k) => get(k) !== undefined,
    owner,
    put(k, r) {
      const ok = ownableKey(r);
      r.owner = ok !== null && owner(ok) === undefined;
      index.add(hash32(k), Role.idem);
      count++;
      digest.add(recordHash(r));
      if (r.owner && ok !== null) {
        index.add(hash32(ok), Role.owned);
        pendingOwner.set(ok, k);
      }
      change(k, r);
    },
    confirm(k) {
      const r = get(k);
      if (!r || r.confirmed) return;
      r.confirmed = true;
      change(k, r);
      const ok = r.owner === true ? ownableKey(r) : null;
      if (ok !== null) pendingOwner.set(ok, k);
    },
    delete(k) {
      const r = get(k);
      if (!r) return false;
      forget(k, r);
      return true;
    },
    sweep(now) {
      let n = 0;
      if (minPendingExp <= now) {
        let min = Infinity;
        for (const [k, r] of pending) {
          if (!r) continue;
          if (r.expiresAt <= now) {
            forget(k, r);
            n++;
          } else if (r.expiresAt < min) min = r.expiresAt;
        }
        minPendingExp = min;
      }
      if (disk) {
        for (const d of disk.due(now)) {
          if (pending.has(d.k)) continue; // deleted already, or pending (handled above)
          const dh = d.dh ?? hashOnDisk(d.k);
          if (index.remove(hash32(d.k), Role.idem)) count--;
          if (dh !== undefined) digest.remove(dh);
          if (d.owner === 1 && d.ok !== null) index.remove(hash32(d.ok), Role.owned);
          cache.delete(d.k);
          change(d.k, null);
          n++;
        }
      }
      return n;
    },
    values,
    digestLine: () => digest.line(),
    capture() {
      const out: IdemChange[] = [];
      for (const k of dirty) {
        const r = pending.get(k);
        if (r === undefined) continue;
        out.push({ k, row: r ? toRow(k, r) : undefined, ref: r });
      }
      dirty.clear();
      return out;
    },
    committed(changes) {
      if (!disk) return;
      for (const c of changes) {
        if (dirty.has(c.k) || pending.get(c.k) !== c.ref) continue;
        pending.delete(c.k);
        if (c.ref) {
          const ok = c.ref.owner === true ? ownableKey(c.ref) : null;
          if (ok !== null && pendingOwner.get(ok) === c.k) pendingOwner.delete(ok);
          remember(c.k, c.ref);
        }
      }
    },
    retry(changes) {
      for (const c of changes) if (pending.has(c.k)) dirty.add(c.k);
    },
    attachHashes(d, keyHashes, ownedHashes, digests) {
      disk = d;
      // the owned order ids mostly share their key's slot (an OMS's key is usually its order id)
      const known = (keyHashes as { length?: unknown }).length;
      if (typeof known === "number") index.reserve(known);
      for (const h of keyHashes) {
        index.add(h, Role.idem);
        count++;
      }
      for (const h of ownedHashes) index.add(h, Role.owned);
      for (const h of digests) digest.add(h);
    },
    attach(d, rows) {
      disk = d;
      for (const r of rows) {
        if (r.k !== undefined && pending.has(r.k)) continue;
        index.add(r.h ?? hash32(r.k ?? ""), Role.idem);
        count++;
        const dh = r.dh ?? (r.k === undefined ? undefined : hashOnDisk(r.k));
        if (dh !== undefined) digest.add(dh);
        const oh = r.oh ?? (r.ok === undefined || r.ok === null ? null : hash32(r.ok));
        if (r.owner === 1 && oh !== null) index.add(oh, Role.owned);
      }
    },
  };
}
