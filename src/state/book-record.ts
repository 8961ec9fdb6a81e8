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
  type BookValue,
  type Category,
  type Contribution,
  type Extremes,
  type FundState,
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
 * allocated at each revaluation), and it holds none of the figures a quote changes: its market value,
extremes and exposure are derived from `qm` and the mark it was valued at (a pointer to the
symbol's mark, shared), with extremes of their own only while it has reservations (`ext`). A quote
then allocates nothing that outlives it in a book (before: a new `mv`, and an exposure for a
short, per holder and quote, promoted by the young generation's GC), and a position holds one
exact value fewer (≈ 64 bytes) and three fields fewer (≈ 16 bytes). Its key (`key2(fund, symbol)`, the snapshot's) is made when asked (a flush), not held: ≈ 40
 * bytes a book; the state notes a changed book itself (`EngineState.dirtyBooks`), not its key.
 */
export class BookRecord extends BrokerQty implements Book, Position, BookValue {
  qty: Dec = ZERO;
  cost: Dec = ZERO;
  realized: Dec = ZERO;
  fees: Dec = ZERO;
  assetClassHint: AssetClass | undefined = undefined;
  quote: Mark | undefined = undefined;
  // its contribution (`contrib` is the book itself): written by revalue() (value) and settle() (markAt)
  valCost: Dec = ZERO;
  valRealized: Dec = ZERO;
  valFees: Dec = ZERO;
  qm: Dec = ZERO;
  cat: Category = NO_CATEGORY;
  /** The mark its market value is at (shared with every holder of the symbol); see BookValue. */
  at: Mark | undefined = undefined;
  /** Its extremes and exposure while it has reservations (undefined: they follow `mv`). */
  ext: Extremes | undefined = undefined;
  private x: Extra | undefined = undefined;

  constructor(
    readonly owner: FundState,
    readonly symbol: string,
  ) {
    super();
  }

  get fund(): string {
    return this.owner.id;
  }

  /** key2(fund, symbol): its key in the snapshot. */
  get key(): string {
    return key2(this.fund, this.symbol);
  }

  get pos(): Position {
    return this;
  }

  get contrib(): BookValue {
    return this;
  }

  /**
   * Its market value: `qm × mid` at the mark it was valued at, its valued cost without one (what
   * revalue() computes, recomputed exactly when read: no figure a quote changes is held).
   */
  get mv(): Dec {
    const qm = this.qm;
    if (qm.units === 0n) return ZERO;
    return this.at === undefined ? this.valCost : qm.times(this.at.mid);
  }

  get longExt(): Dec {
    return this.ext === undefined ? this.mv : this.ext.longExt;
  }

  get shortExt(): Dec {
    return this.ext === undefined ? this.mv : this.ext.shortExt;
  }

  get exposure(): Dec {
    return this.ext === undefined ? this.mv.abs() : this.ext.exposure;
  }

  value(next: Contribution, at: Mark | undefined, flat: boolean): void {
    this.valCost = next.valCost;
    this.valRealized = next.valRealized;
    this.valFees = next.valFees;
    this.qm = next.qm;
    this.cat = next.cat;
    this.at = at;
    this.ext = flat ? undefined : { longExt: next.longExt, shortExt: next.shortExt, exposure: next.exposure };
  }

  markAt(mark: Mark): void {
    this.at = mark;
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
