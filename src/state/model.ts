/**
 * The engine's in-memory state: what the projections fold the streams into.
 * Aggregates (per-fund sums) are derived and kept incrementally; the digest covers
 * only the canonical part (positions, envelopes, halts, reservations, stops, baselines, idempotency).
 */
import type { AssetClass, HaltSeverity, Side } from "../contract/codes.js";
import type { Envelope, Instrument, Limits, RiskDecision } from "../contract/schemas.js";
import type { PnlPeriod } from "../contract/records.js";
import type { StreamName } from "../contract/subjects.js";
import TinyQueue from "tinyqueue";
import { type Dec, ZERO } from "../decimal/index.js";
import { type VelocityWindow, createVelocity } from "./velocity.js";
import { type DuplicateIndex, createDuplicateIndex } from "./duplicates.js";
import { type IdemStore, createIdemStore } from "./idem-store.js";
import { type OrderStore, createOrderStore } from "./order-store.js";
import { type FillIdStore, createFillIdStore } from "./fill-store.js";
import { KeyIndex } from "./key-index.js";
import type { BrokerQty } from "./broker-qty.js";
import type { FillOnlyOrders } from "./fill-only.js";

export interface Mark {
  bid: Dec;
  ask: Dec;
  mid: Dec;
  ts: number; // quote's own timestamp, epoch ms (freshness)
  rank: number; // what orders quotes for the mark: ts, bounded by the stream's time (boundedByStream)
  /**
   * Why a quote at least as recent as this mark was refused (crossed, no price, …): the market the
   * feed last reported cannot be established, so the mark is never fresh (refusedQuote()) while it
   * still values positions; the next valid quote replaces it.
   */
  refused?: string | undefined;
}

/** A fund's holding in one symbol. Cost and realized are in price units (× multiplier when valued). */
export interface Position {
  qty: Dec; // signed
  cost: Dec; // cost basis of the open quantity, >= 0
  realized: Dec;
  fees: Dec; // money
  readonly brokers: BrokerQty; // signed quantity per broker (a Map's API; one broker held inline)
}

/**
 * What one book adds to its fund's aggregates; recomputed whenever an input changes. The book
 * holds these fields itself (`b.contrib` is the book: see state/book-record.ts), updated in place.
 * The money fields are named `val*` (valued: × multiplier, in the fund's base currency) not to
 * clash with the position's own `cost`, `realized` and `fees`.
 */
export interface Contribution {
  readonly mv: Dec; // signed market value of the position (at mark, cost when no mark)
  valCost: Dec; // signed cost basis × multiplier
  valRealized: Dec; // realized × multiplier
  valFees: Dec;
  readonly longExt: Dec; // position + pending buys (signed notional)
  readonly shortExt: Dec; // position − pending sells (signed notional)
  readonly exposure: Dec; // max(|longExt|, |shortExt|)
  /**
   * Where the exposure is filed (sector, asset class, the currency of the instrument's prices, and
   * whether it is unpriced), shared with the books alike (see `category()`).
   */
  cat: Category;
  /** Quantity × multiplier × FX rate: `mv` at a mark is `qm × mid` (a quote revalues with one product). */
  qm: Dec;
}

/** A book's extremes and exposure, held only while it has reservations (else all follow its mv). */
export interface Extremes {
  longExt: Dec;
  shortExt: Dec;
  exposure: Dec;
}

/**
 * A book's contribution as it is held (state/book-record.ts): what it was valued from, not the
 * derived figures. Its market value is `qm × at.mid` (at a mark) or its valued cost (no mark), and
 * without reservations both extremes are that market value and the exposure its magnitude: a book
 * holds no figure a quote changes, only the mark it was last valued at (shared by every holder).
 */
export interface BookValue extends Contribution {
  /** The mark `mv` is at (undefined: valued at cost, or no position). */
  readonly at: Mark | undefined;
  /** The extremes and exposure while the book has reservations (written in place by a quote). */
  readonly ext: Extremes | undefined;
  /** Valued anew (revalue()): `next`'s figures, at `at`, with extremes of their own unless flat. */
  value(next: Contribution, at: Mark | undefined, flat: boolean): void;
  /** Valued at a new mark (a quote folded in: settle()). */
  markAt(mark: Mark): void;
}

/**
 * Where a book's exposure is filed in its fund's aggregates. Books alike share one (see
 * `category()`): a million contributions hold a pointer each instead of four fields.
 */
export interface Category {
  readonly sector: string | undefined;
  readonly assetClass: string | undefined;
  readonly currency: string;
  readonly unpriced: boolean;
}

const CATEGORIES = new Map<string, Category>();
export const NO_CATEGORY: Category = {
  sector: undefined,
  assetClass: undefined,
  currency: "",
  unpriced: false,
};

/** The shared category with these fields (the previous one when it has them: the usual case). */
export function category(
  prev: Category,
  sector: string | undefined,
  assetClass: string | undefined,
  currency: string,
  unpriced: boolean,
): Category {
  if (
    prev.sector === sector &&
    prev.assetClass === assetClass &&
    prev.currency === currency &&
    prev.unpriced === unpriced
  )
    return prev;
  // JSON: unambiguous whatever characters a sector holds (free text), absent apart from any text
  const k = JSON.stringify([sector ?? null, assetClass ?? null, currency, unpriced]);
  let c = CATEGORIES.get(k);
  if (!c) CATEGORIES.set(k, (c = { sector, assetClass, currency, unpriced }));
  return c;
}

/** Position and open reservations of one fund in one symbol. */
export interface Book {
  /** Its fund's id (`owner.id`). */
  readonly fund: string;
  /** Its fund (a holder of the symbol is its book: `state.holders`). */
  readonly owner: FundState;
  symbol: string;
  /** key2(fund, symbol): its key in the snapshot (made when asked: a flush). */
  readonly key: string;
  /** The position (its fields are written in place: see state/book-record.ts). */
  readonly pos: Position;
  pendBuyQty: Dec;
  pendBuyValue: Dec; // Σ remaining quantity × order price (× multiplier when valued)
  pendSellQty: Dec;
  pendSellValue: Dec;
  /**
   * Pending quantities per broker (the same reservations as pendBuyQty / pendSellQty, split by the
   * order's broker; "" for a journaled approval that did not record one). Kept incrementally: the
   * short-side gate and the risk-reducing test judge a SELL against the long held at its broker.
   */
  pendBuyByBroker: Map<string, Dec>;
  pendSellByBroker: Map<string, Dec>;
  assetClassHint: AssetClass | undefined; // from orders when refdata has none
  /** What it adds to its fund's aggregates (the book itself: its fields are updated in place). */
  readonly contrib: BookValue;
  /** The FX symbol (`<CCY>-<BASE>`) the book is valued through, when not in the fund's base currency. */
  fx: string | undefined;
  /** A mark not yet folded into `contrib` (quotes are conflated; see settle() in book.ts). */
  quote?: Mark | undefined;
}

/** An approved order's reservation, merged from decisions, fills and OMS events (order-independent). */
export interface OrderRecord {
  fund: string;
  orderId: string;
  /** key2(fund, orderId): its key in `orders` and in the snapshot (made once). */
  key: string;
  symbol: string;
  side: Side | undefined;
  broker: string | undefined; // the order's broker (undefined: an approval journaled without it)
  price: Dec; // order price (mark at decision for MARKET), per unit
  approvals: Map<string, Dec>; // idempotency key -> approved quantity
  approved: Dec; // Σ approvals
  unconfirmed: Set<string>; // approvals applied live, not yet read back from the journal
  filled: Dec;
  terminal: boolean;
  /**
   * The largest `filled_quantity` an OMS end event reported (ZERO: none): once ended, the part of
   * it whose fills have not arrived yet still reserves (FILLS and OMS_ORDERS are not ordered).
   */
  endFilled: Dec;
  accepted: boolean; // the OMS reported it accepted (working at a broker)
  expiresAt: number; // epoch ms; 0 until an approval is seen
  /**
   * `reservations.ttl_s` passed while the OMS had not acknowledged it (no `accepted`, no fill): it
   * reserves nothing from then on, unless an acknowledgement still arrives (it is then working).
   */
  lapsed: boolean;
  reserved: Dec; // quantity currently counted in the book
  touchedAt: number;
  /** In the expiry heap (not persisted): a held order leaves it until it ends. */
  queued: boolean;
}

export interface HaltRecord {
  severity: HaltSeverity;
  since: string;
  reason: string;
  by: string;
  seq: number; // RISK_CONTROL sequence
  /** Sequence of the latest Halt of this severity applied while it was in force (a repeated press). */
  lastSeq?: number;
  /**
   * Its `at` bounded by when the stream stored it (+ STREAM_LEAD_MS), epoch ms, when that is
   * earlier: a Halt stamped ahead by a fast clock belongs to the period it was published in.
   */
  boundedMs?: number;
}

export interface LiftedHalt {
  severity: HaltSeverity;
  since: string;
  resumedAt: string;
  operator: string;
}

export interface ReconLock {
  since: string;
  reason: string;
  brokers: string[];
}

export interface Baseline {
  period: PnlPeriod;
  startsAt: string;
  startsAtMs: number;
  equity: Dec;
  /** Capital in force at the start (undefined: an old record; the current capital is assumed). */
  capital: Dec | undefined;
}

/** One closing order of a triggered stop: the position's quantity at one broker. */
export interface ClosingLeg {
  orderId: string;
  key: string; // idempotency key (also the order's Nats-Msg-Id)
  broker: string;
  qty: Dec;
}

export interface StopRecord {
  fund: string;
  symbol: string;
  side: "LONG" | "SHORT";
  qty: Dec;
  stopPrice: Dec;
  armSeq: number;
  state: "armed" | "triggered" | "cleared";
  closingOrderId: string | undefined;
  /** The closing orders of the trigger (empty until triggered). */
  legs: ClosingLeg[];
  /** Consecutive closing attempts that ended with nothing filled (0: none). */
  attempt: number;
  /** Epoch ms before which the stop does not fire (retry backoff; 0: none). */
  notBefore: number;
  at: string;
}

export type { VelocityWindow };

export interface EnvelopeEntry {
  envelope: Envelope;
  raw: unknown; // the message as published, for envelope.get
  id: string; // <fund>@v<version>
  byStrategy: Map<string, Effective>;
  base: Effective;
  /** The longest velocity window of the envelope or any strategy override (0: none). */
  velocityWindowS: number;
  /** The longest duplicate_window_ms of the envelope or any strategy override (0: none). */
  duplicateWindowMs: number;
  /** The fund's base currency (envelope base_currency, default USD). */
  baseCurrency: string;
}

/** The limits in force for an order: the envelope merged with its strategy's overrides. */
export type Effective = Omit<Envelope, "strategies"> & { envelope_id: string };

export interface FundState {
  id: string;
  books: Map<string, Book>;
  envelope: EnvelopeEntry | undefined;
  envelopeHistory: Map<number, EnvelopeEntry>;
  halts: Map<HaltSeverity, HaltRecord>;
  lifted: LiftedHalt[];
  lock: ReconLock | undefined;
  baselines: Map<PnlPeriod, Baseline>;
  velocity: VelocityWindow;
  /** Recent orders by duplicate key (duplicate_window_ms), derived from the journal. */
  dups: DuplicateIndex;
  /**
   * The widest duplicate window seen for the fund: its envelope versions' and those its decision
   * records were made under (memory only; how long the duplicate index keeps keys).
   */
  dupWindowSeenMs: number;
  /** Approved orders of the fund still reserving (max_open_orders), kept by syncReservation. */
  openOrders: number;
  /** Books with a mark not yet folded into the aggregates (see settle() in book.ts). */
  stale: Book[];
  // aggregates (derived)
  agg: {
    mv: Dec;
    cost: Dec;
    realized: Dec;
    fees: Dec;
    gross: Dec;
    netLong: Dec;
    netShort: Dec;
    sector: Map<string, Dec>;
    assetClass: Map<string, Dec>;
    /** Exposure (base currency) by the currency the instruments are priced in. */
    currency: Map<string, Dec>;
    /** Books valued through a missing FX rate, by currency (count). */
    unpriced: Map<string, number>;
  };
}

export interface IdemRecord {
  fund: string;
  key: string;
  fingerprint: string;
  decision: RiskDecision;
  expiresAt: number;
  /** False while only applied live (not yet read back from RISK_DECISIONS). */
  confirmed: boolean;
  /** Short per-field hashes of the order (see gates/idempotency.ts), to name a conflict's field. */
  fields?: string | undefined;
  /** This record's decision owns its order id (see state/idem-store.ts); set by the store. */
  owner?: boolean | undefined;
}

export type EntityKind =
  | "fund"
  | "velocity"
  | "dup"
  | "book"
  | "order"
  | "idem"
  | "instrument"
  | "mark"
  | "fill_id"
  | "stop"
  | "meta";

export interface EngineState {
  funds: Map<string, FundState>;
  instruments: Map<string, Instrument>;
  marks: Map<string, Mark>;
  /**
   * A refused quote (refuseQuote) of a symbol that had no mark yet, by symbol: a valid quote older
   * than it becomes a mark that is not fresh. Kept in the snapshot as that symbol's mark row.
   */
  refusedQuotes: Map<string, { rank: number; reason: string }>;
  /**
   * symbol -> the books in it (for mark and refdata updates; `book.owner` is the fund), in the order
   * they were made. An array, not a Set (a book is added once, when made, and books are never
   * deleted): a Set of 50 costs ≈ 1.3 kB, an array ≈ 0.6 kB (a million positions over 20 000
   * symbols). The books, not their funds: a quote's three passes over the holders (the mark, the
   * drawdown monitor, the stops) then read each book without a lookup in its fund's map.
   */
  holders: Map<string, Book[]>;
  /** FX symbol (`<CCY>-<BASE>`) -> books valued through it (an FX mark revalues them). */
  fxHolders: Map<string, Set<Book>>;
  /**
   * Order records by `${fund}\u0001${orderId}`: in memory while they reserve or may be open, on
   * disk once ended and snapshotted (state/order-store.ts).
   */
  orders: OrderStore;
  orderExpiry: TinyQueue<Due<OrderRecord>>; // min-heap by deadline (lazy: entries re-checked when due)
  /**
   * Idempotency records by `${fund}\u0001${key}`, and the order ids they own (the decision that
   * first used an order id: DUPLICATE_ORDER_ID for any other key), on disk once snapshotted.
   */
  idem: IdemStore;
  /** The fill ids seen (dedupe), on disk once snapshotted (state/fill-store.ts). */
  fillIds: FillIdStore;
  fillWatermark: number;
  stops: Map<string, StopRecord>; // `${fund}\u0001${symbol}`
  cursors: Map<StreamName, number>;
  dirty: Map<EntityKind, Set<string>>;
  /**
   * Books changed since the last flush (their "book" rows): the books themselves, not their keys
   * (a book makes its key only when asked: see state/book-record.ts). A key in `dirty`'s "book"
   * set (a failed write's rows) is written too.
   */
  dirtyBooks: Set<Book>;
  deleted: Map<EntityKind, Set<string>>;
  /**
   * The last RISK_DECISIONS sequence seen on each fund's decision subject (any message, fences and
   * unreadable ones included): what `Nats-Expected-Last-Subject-Sequence` compares with. Derived
   * from the journal as it is followed; not snapshotted (a write learns it from a failed condition).
   */
  decisionSeq: Map<string, number>;
  /** Funds with books whose latest mark is not yet folded into their aggregates (see settleAll()). */
  staleFunds: Set<FundState>;
  /**
   * Books whose position or reservations changed but which are not yet revalued (undefined: each
   * change revalues at once, as live). A rebuild sets it: nothing reads a book's contribution or
   * its fund's aggregates until the end, where revalueDeferred() values each such book once.
   */
  deferred: Set<Book> | undefined;
  /**
   * A rebuild's orders seen in fills alone, not yet records (state/fill-only.ts); undefined: every
   * fill makes its order's record at once, as live. Settled by the sweep (sweepReservations).
   */
  fillOnly?: FillOnlyOrders | undefined;
  settings: StateSettings;
}

export interface StateSettings {
  idempotencyWindowMs: number;
  reservationTtlMs: number;
  envelopeVersionsKept: number;
  fillDedupeWindowMs: number;
  /** Idempotency records read back from the snapshot kept in memory (the rest stay on disk). */
  idempotencyCacheSize?: number | undefined;
  /** The key index's fingerprint of a key's hash (tests force collisions with it; state/key-index.ts). */
  keyFingerprint?: ((h: number) => number) | undefined;
}

export const DEFAULT_SETTINGS: StateSettings = {
  idempotencyWindowMs: 86_400_000,
  reservationTtlMs: 86_400_000,
  envelopeVersionsKept: 100,
  fillDedupeWindowMs: 86_400_000,
  idempotencyCacheSize: 4096,
};

export function createState(settings: Partial<StateSettings> = {}): EngineState {
  /** The key index the idempotency, order and fill-id stores share (state/key-index.ts). */
  const index = new KeyIndex(settings.keyFingerprint);
  return {
    funds: new Map(),
    instruments: new Map(),
    marks: new Map(),
    refusedQuotes: new Map(),
    holders: new Map(),
    fxHolders: new Map(),
    orders: createOrderStore({ cacheSize: settings.idempotencyCacheSize, index }),
    orderExpiry: dueQueue(),
    idem: createIdemStore({ cacheSize: settings.idempotencyCacheSize, index }),
    fillIds: createFillIdStore({ index }),
    fillWatermark: 0,
    stops: new Map(),
    cursors: new Map(),
    dirty: new Map(),
    dirtyBooks: new Set(),
    deleted: new Map(),
    decisionSeq: new Map(),
    staleFunds: new Set(),
    deferred: undefined,
    settings: { ...DEFAULT_SETTINGS, ...settings },
  };
}

/** A heap entry: something that falls due at `at` (epoch ms). */
export interface Due<T> {
  at: number;
  item: T;
}

export function dueQueue<T>(entries: Due<T>[] = []): TinyQueue<Due<T>> {
  return new TinyQueue<Due<T>>(entries, (a, b) => a.at - b.at);
}

export const key2 = (a: string, b: string): string => `${a}\u0001${b}`;

export function touch(state: EngineState, kind: EntityKind, key: string): void {
  let set = state.dirty.get(kind);
  if (!set) state.dirty.set(kind, (set = new Set()));
  set.add(key);
  state.deleted.get(kind)?.delete(key);
}

export function markDeleted(state: EngineState, kind: EntityKind, key: string): void {
  let set = state.deleted.get(kind);
  if (!set) state.deleted.set(kind, (set = new Set()));
  set.add(key);
  state.dirty.get(kind)?.delete(key);
}

/**
 * A map or set shared by every record that has nothing in it (most books have no reservations,
 * most order records no unconfirmed approval): an empty Map costs ≈ 190 bytes, a million books
 * two of them. Never written: the holder replaces it with its own before adding (`own()`).
 */
class SharedEmptyMap<K, V> extends Map<K, V> {
  override set(): this {
    throw new Error("the shared empty map is never written: replace it first");
  }
}
class SharedEmptySet<T> extends Set<T> {
  override add(): this {
    throw new Error("the shared empty set is never written: replace it first");
  }
}
export const NO_PENDING: Map<string, Dec> = new SharedEmptyMap();
export const NO_APPROVALS: Map<string, Dec> = new SharedEmptyMap();
export const NO_KEYS: Set<string> = new SharedEmptySet();
/** The map itself, or a new one when it is a shared empty one (the caller stores it). */
export const own = <K, V>(m: Map<K, V>): Map<K, V> => (m instanceof SharedEmptyMap ? new Map<K, V>() : m);
export const ownSet = <T>(s: Set<T>): Set<T> => (s instanceof SharedEmptySet ? new Set<T>() : s);

export function getFund(state: EngineState, fundId: string): FundState {
  let f = state.funds.get(fundId);
  if (!f) {
    f = {
      id: fundId,
      books: new Map(),
      envelope: undefined,
      envelopeHistory: new Map(),
      halts: new Map(),
      lifted: [],
      lock: undefined,
      baselines: new Map(),
      velocity: createVelocity(),
      dups: createDuplicateIndex(),
      dupWindowSeenMs: 0,
      openOrders: 0,
      stale: [],
      agg: {
        mv: ZERO,
        cost: ZERO,
        realized: ZERO,
        fees: ZERO,
        gross: ZERO,
        netLong: ZERO,
        netShort: ZERO,
        sector: new Map(),
        assetClass: new Map(),
        currency: new Map(),
        unpriced: new Map(),
      },
    };
    state.funds.set(fundId, f);
  }
  return f;
}

export type { Limits };
