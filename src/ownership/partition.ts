/**
 * Funds to partitions, partitions to engines. A fund's partition is FNV-1a of its id modulo the
 * partition count (the same on every engine); a partition's owner is chosen by rendezvous (HRW)
 * hashing over the live engines: each engine scores every partition and the highest score wins,
 * so an engine joining or leaving moves only the partitions it wins or held (≈ 1/n of them).
 */

/** 32-bit FNV-1a of a string's UTF-16 code units. */
export function fnv1a(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function partitionOf(fund: string, partitions: number): number {
  return fnv1a(fund) % partitions;
}

/** A well-mixed score of (engine, partition): murmur3's finalizer over FNV-1a. */
export function score(engine: string, partition: number): number {
  let h = fnv1a(`${engine}#${partition}`);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** The engine that should own `partition` among `engines` (undefined when there is none). */
export function rendezvous(engines: Iterable<string>, partition: number): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const e of engines) {
    const s = score(e, partition);
    if (s > bestScore || (s === bestScore && best !== undefined && e < best)) {
      best = e;
      bestScore = s;
    }
  }
  return best;
}
