/**
 * The compact key index the idempotency, order and fill-id stores share (issue 11): 28-bit
 * fingerprints of the keys' 32-bit hashes, tagged with the role each store gave them, open
 * addressing in one `Uint32Array` (linear probing), kept between 55 % and 80 % full: ≈ 5–7 bytes
 * a distinct key. A key held in several roles takes one slot (an order id owned by an idempotency
 * record and the order's own record: `fund \u0001 order id`; an idempotency key equal to the order
 * id, as most OMSs send it, too), each role its own bit: a role's lookup never hits another's.
 *
 * A hit only says "perhaps": the stores then read the row and compare the exact key, so a
 * collision (another key with the same fingerprint, in the same role) costs one point read,
 * never a wrong answer. A miss is exact: every key a store holds was added, and each store removes
 * only what it added.
 */

/** FNV-1a, 32 bits, over the UTF-16 code units (the snapshot's `h` columns); never 0 or 1. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h >>>= 0;
  return h < 2 ? h + 2 : h;
}

/** A hash's fingerprint in the index: 28 bits, well mixed (murmur3's finalizer), never 0. */
export function fingerprint28(h: number): number {
  let x = h ^ (h >>> 16);
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  x >>>= 4;
  return x === 0 ? 1 : x;
}

/** What a key is to the store that added it: one bit each (the low 4 bits of a slot). */
export const Role = {
  /** An idempotency record's key (fund + idempotency key). */
  idem: 1,
  /** An order id an idempotency record owns (fund + order id). */
  owned: 2,
  /** An order record's key (fund + order id). */
  order: 4,
  /** A fill id. */
  fill: 8,
} as const;
export type Role = (typeof Role)[keyof typeof Role];

const MIN_SLOTS = 1024;
/** Rebuilt (grown, or cleared of tombstones) when live + tombstone slots pass this share... */
const MAX_FILL = 0.8;
/** ...to this share of live slots. */
const REBUILT_FILL = 0.55;
const ROLES = 15;

/**
 * The stores' keys, one slot a distinct fingerprint: `fingerprint << 4 | roles`, a bit for each
 * role holding it (0 with a fingerprint: a tombstone). `add` and `remove` count occurrences of a
 * (hash, role): the first is the slot's bit, more (two keys of one store with the same
 * fingerprint: ≈ n² / 2²⁹ pairs, a few thousand at a million keys) are counted in a side map, so a
 * remove never clears a bit another key still needs.
 */
export class KeyIndex {
  private t = new Uint32Array(MIN_SLOTS);
  /** Slots holding a fingerprint: live + tombstones. */
  private used = 0;
  /** Slots with a role bit. */
  private live = 0;
  /** (fingerprint, role) → occurrences beyond the first. */
  private readonly extra = new Map<number, number>();

  /** `fingerprint`: injectable so tests can force collisions (e.g. `() => 1`). */
  constructor(private readonly fingerprint: (h: number) => number = fingerprint28) {}

  add(h: number, role: Role): void {
    const f = this.fingerprint(h);
    if (this.used + 1 > this.t.length * MAX_FILL) this.rebuild(this.live + 1);
    const t = this.t;
    const n = t.length;
    let free = -1;
    for (let i = f % n; ; i = i + 1 === n ? 0 : i + 1) {
      const w = t[i]!;
      if (w === 0) {
        if (free < 0) {
          free = i;
          this.used++;
        }
        break;
      }
      const roles = w & ROLES;
      if (w >>> 4 === f && roles !== 0) {
        if ((roles & role) === 0) t[i] = w | role;
        else {
          const x = f * 16 + role;
          this.extra.set(x, (this.extra.get(x) ?? 0) + 1);
        }
        return;
      }
      if (roles === 0 && free < 0) free = i;
    }
    t[free] = ((f << 4) | role) >>> 0;
    this.live++;
  }

  /**
   * Room for `more` distinct keys without growing: a load that knows how many keys it will add
   * sizes the table once instead of rebuilding it at every 45 % of growth.
   */
  reserve(more: number): void {
    if (this.used + more > this.t.length * MAX_FILL) this.rebuild(this.live + more);
  }

  /** Perhaps held (a hit is confirmed by the store against the exact key); false: surely not. */
  has(h: number, role: Role): boolean {
    const i = this.find(this.fingerprint(h));
    return i >= 0 && (this.t[i]! & role) !== 0;
  }

  /** Removes one occurrence; false if none was held. */
  remove(h: number, role: Role): boolean {
    const f = this.fingerprint(h);
    const i = this.find(f);
    if (i < 0 || (this.t[i]! & role) === 0) return false;
    const x = f * 16 + role;
    const more = this.extra.get(x);
    if (more !== undefined) {
      if (more === 1) this.extra.delete(x);
      else this.extra.set(x, more - 1);
      return true;
    }
    const w = (this.t[i]! & ~role) >>> 0;
    this.t[i] = w;
    if ((w & ROLES) === 0) this.live--;
    return true;
  }

  /** The table's bytes (what the index costs in memory). */
  get bytes(): number {
    return this.t.byteLength;
  }

  /** Distinct fingerprints held. */
  get slots(): number {
    return this.live;
  }

  private find(f: number): number {
    const t = this.t;
    const n = t.length;
    for (let i = f % n; ; i = i + 1 === n ? 0 : i + 1) {
      const w = t[i]!;
      if (w === 0) return -1;
      if (w >>> 4 === f && (w & ROLES) !== 0) return i;
    }
  }

  /** A table with `live` slots at REBUILT_FILL, without tombstones. */
  private rebuild(live: number): void {
    const old = this.t;
    const n = Math.max(MIN_SLOTS, Math.ceil(live / REBUILT_FILL));
    const t = new Uint32Array(n);
    let used = 0;
    for (const w of old) {
      if ((w & ROLES) === 0) continue;
      let i = (w >>> 4) % n;
      while (t[i] !== 0) i = i + 1 === n ? 0 : i + 1;
      t[i] = w;
      used++;
    }
    this.t = t;
    this.used = used;
    this.live = used;
  }
}
