/**
 * A position's signed quantity per broker: the subset of `Map<string, Dec>` the engine uses, with
 * one broker held inline. Nearly every position is held at one broker, and a `Map` costs ≈ 240
 * bytes even with a single entry (its hash table is allocated up front): a million positions, a
 * quarter of a gigabyte. The map is only allocated for a second broker, and dropped again when a
 * single one is left. Iteration order is a Map's (insertion order): the inline entry is the first
 * one of the map it grows into, and the one left when the map shrinks back.
 */
import { type Dec, ZERO } from "../decimal/index.js";

export class BrokerQty {
  /** The only broker (undefined: none, or `more` holds them all). */
  private k: string | undefined = undefined;
  private q: Dec = ZERO;
  /** Two brokers or more. */
  private more: Map<string, Dec> | undefined = undefined;

  constructor(entries?: Iterable<readonly [string, Dec]>) {
    if (entries) for (const [k, q] of entries) this.set(k, q);
  }

  get size(): number {
    if (this.more) return this.more.size;
    return this.k === undefined ? 0 : 1;
  }

  get(broker: string): Dec | undefined {
    if (this.more) return this.more.get(broker);
    return this.k !== undefined && broker === this.k ? this.q : undefined;
  }

  has(broker: string): boolean {
    return this.get(broker) !== undefined;
  }

  set(broker: string, qty: Dec): this {
    const more = this.more;
    if (more) more.set(broker, qty);
    else if (this.k === undefined || this.k === broker) {
      this.k = broker;
      this.q = qty;
    } else {
      this.more = new Map([
        [this.k, this.q],
        [broker, qty],
      ]);
      this.k = undefined;
      this.q = ZERO;
    }
    return this;
  }

  delete(broker: string): boolean {
    const more = this.more;
    if (more) {
      const had = more.delete(broker);
      if (more.size === 1) {
        for (const [k, q] of more) {
          this.k = k;
          this.q = q;
        }
        this.more = undefined;
      }
      return had;
    }
    if (this.k === undefined || this.k !== broker) return false;
    this.k = undefined;
    this.q = ZERO;
    return true;
  }

  *entries(): IterableIterator<[string, Dec]> {
    if (this.more) yield* this.more.entries();
    else if (this.k !== undefined) yield [this.k, this.q];
  }

  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<Dec> {
    for (const [, q] of this.entries()) yield q;
  }

  [Symbol.iterator](): IterableIterator<[string, Dec]> {
    return this.entries();
  }
}

/** What reads a quantity per broker (a position's `BrokerQty`, or a pending map). */
export interface QtyByBroker extends Iterable<[string, Dec]> {
  get(broker: string): Dec | undefined;
}
