/**
 * The in-memory shape of a book (see `Book` in model.ts), kept small: a million positions is a
 * million of these. The reservation fields (four quantities and values, two per-broker maps) are
 * zero in most books, so they live in a record allocated with the first reservation and dropped
 * when the last one is released; the accessors read zeros (and the shared empty map) without it.
 * Readers and writers use the `Book` fields as before.
 */
import type { AssetClass } from "../contract/codes.js";
import { type Dec, ZERO } from "../decimal/index.js";
import { BrokerQty } from "./broker-qty.js";
import {
  type Book,
  type Contribution,
  type Mark,
  type Position,
  NO_PENDING,
  emptyContribution,
  key2,
} from "./model.js";

/** A book's open reservations (absent while it has none). */
interface Pending {
  buyQty: Dec;
  buyValue: Dec;
  sellQty: Dec;
  sellValue: Dec;
  buyByBroker: Map<string, Dec>;
  sellByBroker: Map<string, Dec>;
}

const newPending = (): Pending => ({
  buyQty: ZERO,
  buyValue: ZERO,
  sellQty: ZERO,
  sellValue: ZERO,
  buyByBroker: NO_PENDING,
  sellByBroker: NO_PENDING,
});

/**
 * A book is its own position (`pos` is the book itself, `pos.brokers` too: the quantity per broker
 * is held by the BrokerQty fields the class extends): three objects a position fewer, ≈ 64 bytes.
 */
export class BookRecord extends BrokerQty implements Book, Position {
  qty: Dec = ZERO;
  cost: Dec = ZERO;
  realized: Dec = ZERO;
  fees: Dec = ZERO;
  assetClassHint: AssetClass | undefined = undefined;
  contrib: Contribution = emptyContribution();
  fx: string | undefined = undefined;
  quote: Mark | undefined = undefined;
  private pend: Pending | undefined = undefined;
  /** key2(fund, symbol): its key in the snapshot (made once, not at every touch). */
  readonly key: string;

  constructor(
    readonly fund: string,
    readonly symbol: string,
  ) {
    super();
    this.key = key2(fund, symbol);
  }

  get pos(): Position {
    return this;
  }

  get brokers(): BrokerQty {
    return this;
  }

  get pendBuyQty(): Dec {
    return this.pend === undefined ? ZERO : this.pend.buyQty;
  }
  set pendBuyQty(v: Dec) {
    const p = this.pending(v.units === 0n);
    if (p) p.buyQty = v;
    this.release();
  }

  get pendBuyValue(): Dec {
    return this.pend === undefined ? ZERO : this.pend.buyValue;
  }
  set pendBuyValue(v: Dec) {
    const p = this.pending(v.units === 0n);
    if (p) p.buyValue = v;
    this.release();
  }

  get pendSellQty(): Dec {
    return this.pend === undefined ? ZERO : this.pend.sellQty;
  }
  set pendSellQty(v: Dec) {
    const p = this.pending(v.units === 0n);
    if (p) p.sellQty = v;
    this.release();
  }

  get pendSellValue(): Dec {
    return this.pend === undefined ? ZERO : this.pend.sellValue;
  }
  set pendSellValue(v: Dec) {
    const p = this.pending(v.units === 0n);
    if (p) p.sellValue = v;
    this.release();
  }

  get pendBuyByBroker(): Map<string, Dec> {
    return this.pend === undefined ? NO_PENDING : this.pend.buyByBroker;
  }
  set pendBuyByBroker(m: Map<string, Dec>) {
    const p = this.pending(m.size === 0);
    if (p) p.buyByBroker = m;
    this.release();
  }

  get pendSellByBroker(): Map<string, Dec> {
    return this.pend === undefined ? NO_PENDING : this.pend.sellByBroker;
  }
  set pendSellByBroker(m: Map<string, Dec>) {
    const p = this.pending(m.size === 0);
    if (p) p.sellByBroker = m;
    this.release();
  }

  /** The reservation record, allocated unless what is written is empty (undefined: nothing to do). */
  private pending(empty: boolean): Pending | undefined {
    if (this.pend === undefined && !empty) this.pend = newPending();
    return this.pend;
  }

  /** Drops the reservation record once nothing is reserved (the accessors read zeros). */
  private release(): void {
    const p = this.pend;
    if (
      p !== undefined &&
      p.buyQty.units === 0n &&
      p.buyValue.units === 0n &&
      p.sellQty.units === 0n &&
      p.sellValue.units === 0n &&
      p.buyByBroker.size === 0 &&
      p.sellByBroker.size === 0
    )
      this.pend = undefined;
  }
}

/** A position as the snapshot's book row holds it (the quantities per broker as a Map: toWire's form). */
export function positionRow(p: Position): Record<string, unknown> {
  return {
    qty: p.qty,
    cost: p.cost,
    realized: p.realized,
    fees: p.fees,
    brokers: new Map(p.brokers.entries()),
  };
}
