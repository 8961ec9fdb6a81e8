/**
 * The in-memory shape of a book (see `Book` in model.ts), kept small: a million positions is a
 * million of these. The reservation fields (four quantities and values, two per-broker maps) are
 * zero in most books, so they live in a record allocated with the first reservation and dropped
 * when the last one is released; the accessors read zeros (and the shared empty map) without it.
 * The same record holds the book's FX symbol (rare too). Readers and
 * writers use the `Book` fields as before.
 */
import type { AssetClass } from "../contract/codes.js";
import { type Dec, ZERO } from "../decimal/index.js";
import { BrokerQty } from "./broker-qty.js";
import {
  type Book,
  type Category,
  type Contribution,
  type Mark,
  type Position,
  NO_CATEGORY,
  NO_PENDING,
  key2,
} from "./model.js";

/**
 * What most books do not have: open reservations (four quantities and values, two per-broker
 * maps), an FX symbol (a book priced in a foreign currency). Allocated with the first of them,
 * dropped when none is left (the accessors read zeros, the shared empty map and undefined).
 */
interface Extra {
  buyQty: Dec;
  buyValue: Dec;
  sellQty: Dec;
  sellValue: Dec;
  buyByBroker: Map<string, Dec>;
  sellByBroker: Map<string, Dec>;
  fx: string | undefined;
}

const newExtra = (): Extra => ({
  buyQty: ZERO,
  buyValue: ZERO,
  sellQty: ZERO,
  sellValue: ZERO,
  buyByBroker: NO_PENDING,
  sellByBroker: NO_PENDING,
  fx: undefined,
});

/**
 * A book is its own position (`pos` is the book itself, `pos.brokers` too: the quantity per broker
 * is held by the BrokerQty fields the class extends): three objects a position fewer, ≈ 64 bytes.
 * It is its own contribution too (`contrib` is the book: one object fewer, ≈ 32 bytes, and none
 * allocated at each revaluation). Its key (`key2(fund, symbol)`, the snapshot's) is made when asked (a flush), not held: ≈ 40
 * bytes a book; the state notes a changed book itself (`EngineState.dirtyBooks`), not its key.
 */
export class BookRecord extends BrokerQty implements Book, Position, Contribution {
  qty: Dec = ZERO;
  cost: Dec = ZERO;
  realized: Dec = ZERO;
  fees: Dec = ZERO;
  assetClassHint: AssetClass | undefined = undefined;
  quote: Mark | undefined = undefined;
  // its contribution (`contrib` is the book itself): updated in place by revalue() and settle()
  mv: Dec = ZERO;
  valCost: Dec = ZERO;
  valRealized: Dec = ZERO;
  valFees: Dec = ZERO;
  longExt: Dec = ZERO;
  shortExt: Dec = ZERO;
  exposure: Dec = ZERO;
  qm: Dec = ZERO;
  cat: Category = NO_CATEGORY;
  private x: Extra | undefined = undefined;

  constructor(
    readonly fund: string,
    readonly symbol: string,
  ) {
    super();
  }

  /** key2(fund, symbol): its key in the snapshot. */
  get key(): string {
    return key2(this.fund, this.symbol);
  }

  get pos(): Position {
    return this;
  }

  get contrib(): Contribution {
    return this;
  }

  get brokers(): BrokerQty {
    return this;
  }

  get fx(): string | undefined {
    return this.x?.fx;
  }
  set fx(v: string | undefined) {
    const x = this.extra(v === undefined);
    if (x) x.fx = v;
    this.release();
  }

  get pendBuyQty(): Dec {
    return this.x === undefined ? ZERO : this.x.buyQty;
  }
  set pendBuyQty(v: Dec) {
    const x = this.extra(v.units === 0n);
    if (x) x.buyQty = v;
    this.release();
  }

  get pendBuyValue(): Dec {
    return this.x === undefined ? ZERO : this.x.buyValue;
  }
  set pendBuyValue(v: Dec) {
    const x = this.extra(v.units === 0n);
    if (x) x.buyValue = v;
    this.release();
  }

  get pendSellQty(): Dec {
    return this.x === undefined ? ZERO : this.x.sellQty;
  }
  set pendSellQty(v: Dec) {
    const x = this.extra(v.units === 0n);
    if (x) x.sellQty = v;
    this.release();
  }

  get pendSellValue(): Dec {
    return this.x === undefined ? ZERO : this.x.sellValue;
  }
  set pendSellValue(v: Dec) {
    const x = this.extra(v.units === 0n);
    if (x) x.sellValue = v;
    this.release();
  }

  get pendBuyByBroker(): Map<string, Dec> {
    return this.x === undefined ? NO_PENDING : this.x.buyByBroker;
  }
  set pendBuyByBroker(m: Map<string, Dec>) {
    const x = this.extra(m.size === 0);
    if (x) x.buyByBroker = m;
    this.release();
  }

  get pendSellByBroker(): Map<string, Dec> {
    return this.x === undefined ? NO_PENDING : this.x.sellByBroker;
  }
  set pendSellByBroker(m: Map<string, Dec>) {
    const x = this.extra(m.size === 0);
    if (x) x.sellByBroker = m;
    this.release();
  }

  /** The extra record, allocated unless what is written is empty (undefined: nothing to do). */
  private extra(empty: boolean): Extra | undefined {
    if (this.x === undefined && !empty) this.x = newExtra();
    return this.x;
  }

  /** Drops the extra record once it holds nothing (the accessors read zeros and undefined). */
  private release(): void {
    const x = this.x;
    if (
      x !== undefined &&
      x.buyQty.units === 0n &&
      x.buyValue.units === 0n &&
      x.sellQty.units === 0n &&
      x.sellValue.units === 0n &&
      x.buyByBroker.size === 0 &&
      x.sellByBroker.size === 0 &&
      x.fx === undefined
    )
      this.x = undefined;
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
