/**
 * The fill ids seen in the dedupe window (`fillDedupeWindowMs`, 24 h by default), kept off the
 * heap: an id lives in memory only until the snapshot has it (a flush interval's worth), then it
 * is a row of the snapshot's `fill_ids` table, found by id. What stays in memory for each is its
 * role bit in the key index the stores share (state/key-index.ts): a new fill id (every fill but a replay) is known new without
 * touching the disk; a hash hit reads the row, so a collision costs one read, never a wrong
 * answer: a fill replayed after a restart is still a duplicate.
 *
 * Ids are forgotten in the order they were seen (`seq`), while the oldest one's timestamp is
 * before the cutoff (watermark − window), as the in-memory map did.
 *
 * Without a disk (a state built in memory) every id stays in memory.
 */
import { KeyIndex, Role, hash32 } from "./key-index.js";

export interface FillDisk {
  has(k: string): boolean;
  /** The rows after `seq`, in order, at most `limit`. */
  after(seq: number, limit: number): { seq: number; k: string; t: number }[];
}

/** What one flush writes: ids added (seq, id, timestamp, hash) and ids forgotten. */
export interface FillChanges {
  adds: [number, string, number, number][];
  dels: string[];
}

export interface FillIdStore {
  readonly size: number;
  /** Ids held in memory (not yet on disk), for measurements. */
  readonly resident: number;
  has(id: string): boolean;
  /** A new id (absent). */
  add(id: string, t: number): void;
  /** Forgets the oldest ids while their timestamp is before `cutoff`. */
  prune(cutoff: number): void;
  capture(): FillChanges;
  committed(c: FillChanges): void;
  /** Reads from this disk from now on: `hashes` of its rows, `maxSeq` its last. */
  attach(disk: FillDisk, hashes: Iterable<number>, maxSeq: number): void;
  readonly attached: boolean;
}

const BATCH = 512;

/** `index`: the key index shared with the other stores (state/key-index.ts). */
export function createFillIdStore(o: { index?: KeyIndex } = {}): FillIdStore {
  /** Not yet committed to disk, in the order seen. */
  const pending = new Map<string, { seq: number; t: number }>();
  /** Forgotten, not yet deleted on disk. */
  const dels = new Set<string>();
  const index = o.index ?? new KeyIndex();
  /** Ids held (pending and on disk). */
  let count = 0;
  let disk: FillDisk | undefined;
  let seq = 0;
  /** The oldest rows on disk, in order (read ahead in batches), and the last seq read. */
  let head: { seq: number; k: string; t: number }[] = [];
  let headAt = 0;
  let readTo = 0;
  /** The disk has nothing after `readTo` but what is pending (until the next commit). */
  let dry = false;

  function has(id: string): boolean {
    if (pending.has(id)) return true;
    if (!disk || dels.has(id) || !index.has(hash32(id), Role.fill)) return false;
    return disk.has(id);
  }

  /** The oldest id on disk not yet forgotten, if any. */
  function oldestOnDisk(): { seq: number; k: string; t: number } | undefined {
    for (;;) {
      while (headAt < head.length) {
        const e = head[headAt]!;
        if (!dels.has(e.k)) return e;
        headAt++;
      }
      if (!disk || dry) return undefined;
      head = [];
      headAt = 0;
      for (const e of disk.after(readTo, BATCH)) {
        if (pending.has(e.k)) break; // committing now: still taken from `pending`
        head.push(e);
        readTo = e.seq;
      }
      if (head.length === 0) {
        dry = true;
        return undefined;
      }
    }
  }

  return {
    get size() {
      return count;
    },
    get resident() {
      return pending.size;
    },
    get attached() {
      return disk !== undefined;
    },
    has,
    add(id, t) {
      pending.set(id, { seq: ++seq, t });
      dels.delete(id);
      index.add(hash32(id), Role.fill);
      count++;
    },
    prune(cutoff) {
      for (;;) {
        const d = oldestOnDisk();
        if (d) {
          if (d.t >= cutoff) return;
          headAt++;
          dels.add(d.k);
          if (index.remove(hash32(d.k), Role.fill)) count--;
          continue;
        }
        const first = pending.entries().next();
        if (first.done === true || first.value[1].t >= cutoff) return;
        pending.delete(first.value[0]);
        if (index.remove(hash32(first.value[0]), Role.fill)) count--;
        if (disk) dels.add(first.value[0]); // perhaps written already (a commit under way)
      }
    },
    capture() {
      const adds: FillChanges["adds"] = [];
      for (const [k, e] of pending) adds.push([e.seq, k, e.t, hash32(k)]);
      return { adds, dels: [...dels] };
    },
    committed(c) {
      if (!disk) return;
      for (const [s, k] of c.adds) if (pending.get(k)?.seq === s) pending.delete(k);
      for (const k of c.dels) dels.delete(k);
      if (c.adds.length > 0) dry = false;
    },
    attach(d, hashes, maxSeq) {
      disk = d;
      for (const h of hashes) {
        index.add(h, Role.fill);
        count++;
      }
      if (maxSeq >= seq) {
        // ids seen before the disk was attached come after its rows
        const before = [...pending];
        pending.clear();
        seq = maxSeq;
        for (const [k, e] of before) pending.set(k, { seq: ++seq, t: e.t });
      }
    },
  };
}
