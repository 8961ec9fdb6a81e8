/**
 * The local SQLite snapshot: every entity that changed since the last flush, written in one
 * transaction together with the stream cursors it reflects, so a restart resumes exactly after
 * the last applied message.
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { dirname } from "node:path";
import { EnvelopeSchema, HaltSeveritySchema, InstrumentSchema, type StreamName } from "../contract/index.js";
import { toWire } from "../contract/wire.js";
import { type Dec, ZERO, canon, dec } from "../decimal/index.js";
import { getBook, revalue } from "./book.js";
import {
  type Book,
  type EngineState,
  type EntityKind,
  type HaltRecord,
  type LiftedHalt,
  type Due,
  type OrderRecord,
  dueQueue,
  type StopRecord,
  type StateSettings,
  createState,
  getFund,
  key2,
  markDeleted,
  touch,
} from "./model.js";
import { buildEntry } from "./projections/envelopes.js";
import { toMark } from "./projections/market.js";
import { addVelocity, velocityBucket, velocityBucketEntries, velocityEntries } from "./velocity.js";
import { duplicateEntries, recordDuplicate } from "./duplicates.js";
import { syncReservation } from "./projections/reservations.js";
import {
  type IdemChange,
  type IdemDisk,
  type IdemKeyRow,
  type IdemRow,
  fromRow,
  hash32,
  ownableKey,
} from "./idem-store.js";
import { recordHash } from "./idem-digest.js";
import {
  type OrderDisk,
  type OrderRow,
  ROW_COLD,
  ROW_OPEN,
  ROW_UNCONFIRMED,
  orderFromJson,
  orderToJson,
} from "./order-store.js";
import type { FillChanges, FillDisk } from "./fill-store.js";
import { HASH_QUERIES, type HashList, type HashReader } from "./snapshot-hashes.js";
import { type OrderHorizon, deadlineOf, forgetAt, isCold } from "./projections/reservations.js";
import type { PnlPeriod } from "../contract/records.js";

const SCHEMA_VERSION = "1";

export interface Snapshot {
  readonly path: string;
  /** Writes what changed; an entity that cannot be serialized is reported and skipped. */
  flush(state: EngineState): FlushReport;
  /**
   * The same, off the event loop: what changed is serialized here at one instant (so the rows
   * match the cursors written with them), then a worker thread with its own connection writes it
   * in one transaction. A crash before its commit leaves the previous snapshot; a failed write
   * marks the rows dirty again. One at a time (a call while one runs gets that one's promise),
   * unless `commitEveryMs` batches them: then each call captures, and its promise settles when
   * the batch it joined commits.
   */
  flushInBackground(state: EngineState): Promise<FlushReport>;
  /** The background writer commits what it holds now (before a final flush; see commitEveryMs). */
  commitNow(): void;
  /**
   * A rebuild's write while it folds, in the background: the fill ids only (`"fill_ids"`: one row a
   * fill, never changed again; no other row, no cursor), or everything that changed (`"all"`, as
   * flushInBackground). Either marks the snapshot unfinished: load() refuses it until flush() or
   * flushInBackground() writes the rest and clears the mark in the same transaction. An
   * interrupted rebuild thus never loads as a snapshot.
   */
  flushAheadInBackground(state: EngineState, what: "fill_ids" | "all"): Promise<FlushReport>;
  /**
   * The state the snapshot holds. `hashes`: its hash lists already being read on a worker thread
   * (snapshot-hashes.ts), taken where they are needed; each is read here when not trusted.
   */
  load(settings?: Partial<StateSettings>, hashes?: HashReader): EngineState;
  close(): void;
}

export class SnapshotError extends Error {
  readonly code = "SNAPSHOT_ERROR";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SnapshotError";
  }
}

type Row = { kind: string; k: string; v: string };
type Failure = { kind: EntityKind; key: string; err: unknown };
export interface FlushReport {
  rows: number;
  failures: Failure[];
}

/**
 * What one flush writes, serialized at one instant: entity rows (v undefined: delete), idempotency
 * rows (row undefined: delete) and cursors.
 */
interface Capture {
  rows: { kind: EntityKind; k: string; v: string | undefined }[];
  idem: { k: string; row: IdemRow | undefined }[];
  /** Order rows (state/order-store.ts), and the fill ids added and forgotten (state/fill-store.ts). */
  orders: OrderRow[];
  fills: FillChanges;
  /** Undefined: a write of the fill ids only (a rebuild's, while it folds): rows of no cursor. */
  cursors: [string, number][] | undefined;
  /**
   * A rebuild's write while it folds: the snapshot is marked unfinished (load() refuses it); any
   * other write clears the mark (the rebuild's last, which writes the rest).
   */
  unfinished: boolean;
  watermark: number;
  /** The funds' open order counts (max_open_orders), JSON: the meta row `open_orders`. */
  openOrders: string;
  failures: Failure[];
}

/** The records of the order rows captured (undefined: a delete), to let the cold ones leave memory. */
type OrderRefs = (OrderRecord | undefined)[];

function capture(state: EngineState, idem: IdemChange[], refs: OrderRefs, unfinished = false): Capture {
  const rows: Capture["rows"] = [];
  const orders: OrderRow[] = [];
  const failures: Failure[] = [];
  for (const [kind, keys] of state.deleted) {
    for (const k of keys) {
      if (kind === "order") {
        orders.push({ k, h: 0, cold: 0, exp: 0, v: undefined });
        refs.push(undefined);
      } else rows.push({ kind, k, v: undefined });
    }
    keys.clear();
  }
  for (const [kind, keys] of state.dirty) {
    for (const k of keys) {
      try {
        if (kind === "order") {
          const r = state.orders.hot(k) ?? state.orders.get(k);
          orders.push({
            k,
            h: hash32(k),
            ...(r ? orderColumns(r, state.settings) : { cold: 0, exp: 0 }),
            v: r && orderToJson(r),
          });
          refs.push(r);
        } else rows.push({ kind, k, v: serialize(state, kind, k) });
      } catch (err) {
        failures.push({ kind, key: k, err }); // skipped, never blocks the rest of the flush
      }
    }
    keys.clear();
  }
  for (const b of state.dirtyBooks) {
    const k = b.key;
    try {
      rows.push({ kind: "book", k, v: bookRow(b) });
    } catch (err) {
      failures.push({ kind: "book", key: k, err }); // skipped, never blocks the rest of the flush
    }
  }
  state.dirtyBooks.clear();
  return {
    rows,
    idem: idem.map((c) => ({ k: c.k, row: c.row })),
    orders,
    fills: state.fillIds.capture(),
    cursors: [...state.cursors],
    watermark: state.fillWatermark,
    openOrders: openOrdersJson(state),
    failures,
    unfinished,
  };
}

/**
 * An order row's `cold` and `exp`: ended (forgotten at `exp`), open with approvals not yet read
 * back (a load reads it), or open (a load leaves it on disk; `exp` its deadline, when the sweep
 * must look at it, −1 for none).
 */
function orderColumns(r: OrderRecord, h: OrderHorizon): { cold: number; exp: number } {
  if (isCold(r)) return { cold: ROW_COLD, exp: forgetAt(r, h) };
  const at = deadlineOf(r, h);
  return { cold: r.unconfirmed.size > 0 ? ROW_UNCONFIRMED : ROW_OPEN, exp: at === Infinity ? -1 : at };
}

/** The funds' open order counts, in fund order (those with none are left out). */
function openOrdersJson(state: EngineState): string {
  const out: Record<string, number> = {};
  for (const id of [...state.funds.keys()].sort()) {
    const n = state.funds.get(id)!.openOrders;
    if (n !== 0) out[id] = n;
  }
  return JSON.stringify(out);
}

/** The fill ids added and forgotten, alone (a rebuild's write while it folds: see flushAheadInBackground). */
function captureFillIds(state: EngineState): Capture {
  return {
    rows: [],
    idem: [],
    orders: [],
    fills: state.fillIds.capture(),
    cursors: undefined,
    watermark: state.fillWatermark,
    openOrders: "",
    failures: [],
    unfinished: true,
  };
}

function serialize(state: EngineState, kind: EntityKind, k: string): string | undefined {
  switch (kind) {
    case "fund": {
      const f = state.funds.get(k);
      if (!f) return undefined;
      return JSON.stringify({
        envelopes: [...f.envelopeHistory.values()].map((e) => e.raw),
        current: f.envelope?.envelope.version,
        halts: [...f.halts.values()],
        lifted: f.lifted,
        lock: f.lock,
        baselines: toWire([...f.baselines.values()]),
      });
    }
    case "velocity": {
      // one row a second of decision time: `${fund}\u0001${second}`; a row left empty is deleted
      const cut = k.indexOf("\u0001");
      if (cut < 0) return undefined; // an older snapshot's whole-fund row: replaced by per-second rows
      const f = state.funds.get(k.slice(0, cut));
      if (!f) return undefined;
      const entries = velocityBucketEntries(f.velocity, Number(k.slice(cut + 1)));
      if (entries.length === 0) return undefined;
      return JSON.stringify(entries.map(([id, at, n]) => [id, at, n.toFixed()]));
    }
    case "dup": {
      const f = state.funds.get(k);
      if (!f || f.dups.last.size === 0) return undefined;
      return JSON.stringify(duplicateEntries(f.dups));
    }
    case "book": {
      const [fund, symbol] = k.split("\u0001") as [string, string];
      const b = state.funds.get(fund)?.books.get(symbol);
      return b ? bookRow(b) : undefined;
    }
    case "order": {
      const r = state.orders.get(k); // written through the orders table (see capture())
      return r && orderToJson(r);
    }
    case "idem":
      return undefined; // the idem table, written from the store's own changes (state/idem-store.ts)
    case "instrument": {
      const i = state.instruments.get(k);
      return i ? JSON.stringify(toWire(i)) : undefined;
    }
    case "mark": {
      const m = state.marks.get(k);
      if (!m) {
        // a refused quote of a symbol with no mark yet: the row has no price
        const r = state.refusedQuotes.get(k);
        return r ? JSON.stringify({ rank: r.rank, refused: r.reason }) : undefined;
      }
      return JSON.stringify({
        bid: m.bid.toFixed(),
        ask: m.ask.toFixed(),
        ts: m.ts,
        rank: m.rank,
        refused: m.refused,
      });
    }
    case "fill_id":
      return undefined; // the fill_ids table, written from the store's own changes (state/fill-store.ts)
    case "stop": {
      const s = state.stops.get(k);
      return s ? JSON.stringify(toWire(s)) : undefined;
    }
    case "meta":
      return undefined;
  }
}

/**
 * A book's row: `{ ...toWire(pos), hint }` written out field by field (the same JSON: keys in
 * toWire's order, canonical decimals), as a rebuild writes ~one row a fill.
 */
function bookRow(b: Book): string {
  const p = b.pos;
  const brokers: Record<string, string> = {};
  for (const k of [...p.brokers.keys()].sort()) brokers[k] = canon(p.brokers.get(k)!);
  const pending = b.pendBuyQty.eq(ZERO) && b.pendSellQty.eq(ZERO) ? {} : { rs: reservationsRow(b) };
  return JSON.stringify({
    brokers,
    cost: canon(p.cost),
    fees: canon(p.fees),
    qty: canon(p.qty),
    realized: canon(p.realized),
    hint: b.assetClassHint,
    ...pending,
  });
}

/** A book's reservations' sums (what a load restores without reading the open orders). */
type ReservationsRow = [string, string, [string, string][], string, string, [string, string][]];

function reservationsRow(b: Book): ReservationsRow {
  const by = (m: Map<string, Dec>) =>
    [...m.keys()].sort().map((k): [string, string] => [k, canon(m.get(k)!)]);
  return [
    canon(b.pendBuyQty),
    canon(b.pendBuyValue),
    by(b.pendBuyByBroker),
    canon(b.pendSellQty),
    canon(b.pendSellValue),
    by(b.pendSellByBroker),
  ];
}

interface BackgroundWriter {
  /** Resolves when the capture is committed: at once with `now`, else with the batch it joins. */
  write(c: Capture, now: boolean): Promise<void>;
  /** Commits what the writer holds now. */
  commit(): void;
  /** Writes are accepted again after a failure (every write taken before it has been answered). */
  reset(): void;
  /** The thread exited or failed: every write it held was refused, and it takes no more. */
  readonly dead: boolean;
  stop(): Promise<number>;
}

const PUT_IDEM =
  "INSERT OR REPLACE INTO idem (k, ok, owner, exp, conf, v, h, oh, dh) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
const PUT_ORDER = "INSERT OR REPLACE INTO orders (k, h, cold, exp, v) VALUES (?, ?, ?, ?, ?)";
const DEL_ORDER = "DELETE FROM orders WHERE k = ?";
const PUT_FILL = "INSERT OR REPLACE INTO fill_ids (seq, k, t, h) VALUES (?, ?, ?, ?)";
const DEL_FILL = "DELETE FROM fill_ids WHERE k = ?";

/**
 * The snapshot's one write transaction, prepared on a connection: one or several captures, applied
 * in the order taken (a later row replaces an earlier one; the last cursors win). The main thread's
 * flush() runs it, and so does the background writer, which evaluates this function's source
 * text: it refers to nothing but its argument and the SQL constants above (WRITER_SOURCE defines
 * them too).
 */
function prepareWrite(db: Database.Database): (cs: Capture[]) => void {
  const upsert = db.prepare("INSERT OR REPLACE INTO entities (kind, k, v) VALUES (?, ?, ?)");
  const del = db.prepare("DELETE FROM entities WHERE kind = ? AND k = ?");
  const putCursor = db.prepare("INSERT OR REPLACE INTO cursors (stream, seq) VALUES (?, ?)");
  const putMeta = db.prepare("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)");
  const delMeta = db.prepare("DELETE FROM meta WHERE k = ?");
  const putIdem = db.prepare(PUT_IDEM);
  const delIdem = db.prepare("DELETE FROM idem WHERE k = ?");
  const putOrder = db.prepare(PUT_ORDER);
  const delOrder = db.prepare(DEL_ORDER);
  const putFill = db.prepare(PUT_FILL);
  const delFill = db.prepare(DEL_FILL);
  const one = (c: Capture): void => {
    for (const r of c.rows) {
      if (r.v === undefined) del.run(r.kind, r.k);
      else upsert.run(r.kind, r.k, r.v);
    }
    for (const i of c.idem) {
      if (i.row === undefined) delIdem.run(i.k);
      else {
        const w = i.row;
        putIdem.run(w.k, w.ok, w.owner, w.exp, w.conf, w.v, w.h, w.oh, w.dh);
      }
    }
    for (const o of c.orders) {
      if (o.v === undefined) delOrder.run(o.k);
      else putOrder.run(o.k, o.h, o.cold, o.exp, o.v);
    }
    for (const a of c.fills.adds) putFill.run(a[0], a[1], a[2], a[3]);
    for (const k of c.fills.dels) delFill.run(k);
    if (c.cursors !== undefined) {
      for (const [stream, seq] of c.cursors) putCursor.run(stream, seq);
      putMeta.run("fill_watermark", String(c.watermark));
      putMeta.run("open_orders", c.openOrders);
    }
    if (c.unfinished) putMeta.run("unfinished", "1");
    else delMeta.run("unfinished");
  };
  return db.transaction((cs: Capture[]): void => {
    for (const c of cs) one(c);
  });
}

/**
 * The background writer: a worker thread with its own SQLite connection. Its code is evaluated
 * from this string (CommonJS, so it can `require` better-sqlite3), which works the same from the
 * TypeScript sources under test and from the built package.
 */
const WRITER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.sqlite);
const db = new Database(workerData.path);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.pragma("busy_timeout = 5000");
const PUT_IDEM = ${JSON.stringify(PUT_IDEM)};
const PUT_ORDER = ${JSON.stringify(PUT_ORDER)};
const DEL_ORDER = ${JSON.stringify(DEL_ORDER)};
const PUT_FILL = ${JSON.stringify(PUT_FILL)};
const DEL_FILL = ${JSON.stringify(DEL_FILL)};
const write = (${prepareWrite.toString()})(db);
const every = workerData.commitEveryMs;
let queue = [];
let timer;
let last = 0;
// after a failed commit, nothing taken before the failure was handled may commit (its cursors
// would skip the failed rows): every write is refused until the main thread says "reset"
let poisoned = false;
function commit() {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  const batch = queue;
  queue = [];
  if (batch.length === 0) return;
  try {
    write(batch.map((m) => m.capture));
    last = Date.now();
    for (const m of batch) parentPort.postMessage({ id: m.id, ok: true });
  } catch (e) {
    poisoned = true;
    const error = String((e && e.message) || e);
    for (const m of batch) parentPort.postMessage({ id: m.id, ok: false, error });
  }
}
parentPort.on("message", (m) => {
  if (m.reset) {
    poisoned = false;
    return;
  }
  if (m.commit) return commit();
  if (poisoned) {
    parentPort.postMessage({ id: m.id, ok: false, error: "an earlier write failed" });
    return;
  }
  queue.push(m);
  if (m.now || every <= 0) return commit();
  if (timer === undefined) timer = setTimeout(commit, Math.max(0, last + every - Date.now()));
});
`;

function startWriter(path: string, commitEveryMs: number): BackgroundWriter {
  const worker = new Worker(WRITER_SOURCE, {
    eval: true,
    workerData: { path, commitEveryMs, sqlite: createRequire(import.meta.url).resolve("better-sqlite3") },
  });
  worker.unref(); // never keeps the process alive; close() stops it
  const pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  let next = 0;
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  worker.on("message", (m: { id: number; ok: boolean; error?: string }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.ok) p?.resolve();
    else p?.reject(new SnapshotError(`snapshot write failed: ${m.error ?? "?"}`));
  });
  let dead = false;
  worker.on("error", (err) => {
    dead = true;
    failAll(new SnapshotError("snapshot writer failed", { cause: err }));
  });
  worker.on("exit", () => {
    dead = true;
    failAll(new SnapshotError("snapshot writer stopped"));
  });
  return {
    get dead() {
      return dead;
    },
    write(capture, now) {
      if (dead) return Promise.reject(new SnapshotError("snapshot writer stopped"));
      const id = ++next;
      return new Promise<void>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, capture, now });
      });
    },
    commit: () => worker.postMessage({ commit: true }),
    reset: () => worker.postMessage({ reset: true }),
    stop: () => worker.terminate(),
  };
}

/**
 * How many background writes may wait for their commit at once when they are batched: beyond it
 * the periodic flush skips a turn (the writer is behind) and gets the last write's promise.
 */
const MAX_IN_FLIGHT = 64;

export interface SnapshotOptions {
  /**
   * The background writer commits at most once per this many ms: captures taken meanwhile (each
   * at its own instant, so each stall of the event loop stays short) wait and go in one
   * transaction, in order. 0 (the default): each capture is committed as it comes, one at a time.
   */
  commitEveryMs?: number;
}

export function openSnapshot(path: string, opts: SnapshotOptions = {}): Snapshot {
  const commitEveryMs = opts.commitEveryMs ?? 0;
  const maxInFlight = commitEveryMs > 0 ? MAX_IN_FLIGHT : 1;
  mkdirSync(dirname(path), { recursive: true });
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (cause) {
    throw new SnapshotError(`cannot open snapshot ${path}`, { cause });
  }
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS entities (kind TEXT NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL,
      PRIMARY KEY (kind, k)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS cursors (stream TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS idem (k TEXT PRIMARY KEY, ok TEXT, owner INTEGER NOT NULL,
      exp INTEGER NOT NULL, conf INTEGER NOT NULL, v TEXT NOT NULL, h INTEGER, oh INTEGER, dh INTEGER)
      WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS idem_exp ON idem (exp);
    CREATE INDEX IF NOT EXISTS idem_owner ON idem (ok) WHERE owner = 1;
    CREATE INDEX IF NOT EXISTS idem_unconfirmed ON idem (k) WHERE conf = 0;
    CREATE TABLE IF NOT EXISTS orders (k TEXT PRIMARY KEY, h INTEGER NOT NULL, cold INTEGER NOT NULL,
      exp INTEGER NOT NULL, v TEXT NOT NULL) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS orders_due ON orders (exp) WHERE cold = 1;
    CREATE INDEX IF NOT EXISTS orders_hot ON orders (k) WHERE cold = 0;
    CREATE INDEX IF NOT EXISTS orders_h ON orders (h);
    CREATE INDEX IF NOT EXISTS orders_warm ON orders (exp) WHERE cold = 0;
    CREATE INDEX IF NOT EXISTS orders_unconfirmed ON orders (k) WHERE cold = 3;
    CREATE TABLE IF NOT EXISTS fill_ids (seq INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE,
      t INTEGER NOT NULL, h INTEGER NOT NULL);
  `);
  // the hash columns (a snapshot written before them gets them, filled at its next load)
  const idemCols = db.prepare("SELECT name FROM pragma_table_info('idem')").pluck().all() as string[];
  if (!idemCols.includes("h"))
    db.exec("ALTER TABLE idem ADD COLUMN h INTEGER; ALTER TABLE idem ADD COLUMN oh INTEGER;");
  // filled at the next load (marked, so a load of a snapshot that has it scans nothing for it)
  if (!idemCols.includes("dh"))
    db.exec(
      "ALTER TABLE idem ADD COLUMN dh INTEGER; INSERT OR REPLACE INTO meta (k, v) VALUES ('idem_dh_fill', '1')",
    );
  // what a load reads of every record: the index's hashes and the digest's, from the index alone
  db.exec("DROP INDEX IF EXISTS idem_h; CREATE INDEX IF NOT EXISTS idem_hd ON idem (h, oh, owner, dh)");
  const ver = db.prepare("SELECT v FROM meta WHERE k = 'schema'").get() as { v: string } | undefined;
  if (ver && ver.v !== SCHEMA_VERSION) {
    throw new SnapshotError(`snapshot ${path} has schema ${ver.v}, expected ${SCHEMA_VERSION}; rebuild it`);
  }
  db.prepare("INSERT OR REPLACE INTO meta (k, v) VALUES ('schema', ?)").run(SCHEMA_VERSION);
  // A snapshot whose open orders a load may leave on disk: their rows carry what they reserve and
  // their deadline, the books' rows their sums, the meta row `open_orders` the funds' counts. A
  // new file is one; an older one becomes one at its first load (loadOrdersLegacy()).
  const lazyOrders = () => db.prepare("SELECT 1 FROM meta WHERE k = 'orders_lazy'").get() !== undefined;
  if (
    !lazyOrders() &&
    db.prepare("SELECT 1 FROM orders LIMIT 1").get() === undefined &&
    db.prepare("SELECT 1 FROM entities WHERE kind = 'order' LIMIT 1").get() === undefined
  )
    db.prepare("INSERT OR REPLACE INTO meta (k, v) VALUES ('orders_lazy', '1')").run();

  const upsert = db.prepare("INSERT OR REPLACE INTO entities (kind, k, v) VALUES (?, ?, ?)");
  const putMeta = db.prepare("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)");
  const putOrder = db.prepare(PUT_ORDER);
  const flushTx = prepareWrite(db);
  const velocityRows = db
    .prepare("SELECT v FROM entities WHERE kind = 'velocity' AND k > ? AND k < ? ORDER BY k")
    .pluck();
  let closed = false;
  let writer: BackgroundWriter | undefined;
  /** Background writes not yet answered, and the last one sent. */
  let inFlight = 0;
  let lastWrite: Promise<FlushReport> | undefined;
  /** A background write failed: the writer refuses the rest until every one sent is answered. */
  let failed = false;
  /** The cursors and watermark last sent (or written): an idle engine's flush then writes nothing. */
  let sentTail = "";
  const tailOf = (c: Capture) => `${JSON.stringify(c.cursors)}|${c.watermark}`;

  const getIdem = db.prepare("SELECT v, owner FROM idem WHERE k = ?");
  const ownerIdem = db.prepare("SELECT k FROM idem WHERE ok = ? AND owner = 1 LIMIT 1").pluck();
  const dueIdem = db.prepare("SELECT k, ok, owner, dh FROM idem WHERE exp <= ?");
  const allIdem = db.prepare("SELECT k, v FROM idem");
  const disk: IdemDisk = {
    get: (k) => getIdem.get(k) as { v: string; owner: number } | undefined,
    ownerOf: (ok) => ownerIdem.get(ok) as string | undefined,
    due: (now) => dueIdem.all(now) as { k: string; ok: string | null; owner: number; dh: number | null }[],
    values: () => allIdem.iterate() as IterableIterator<{ k: string; v: string }>,
  };
  /** The index's rows, with their keys (records may be in memory: a state flushed the first time). */
  const keyRows = () =>
    db.prepare("SELECT k, ok, h, oh, owner, dh FROM idem").iterate() as IterableIterator<IdemKeyRow>;
  const getOrder = db.prepare("SELECT v FROM orders WHERE k = ?").pluck();
  const dueOrders = db
    .prepare("SELECT k FROM orders INDEXED BY orders_due WHERE cold = 1 AND exp <= ?")
    .pluck();
  const warmDue = db
    .prepare("SELECT k FROM orders INDEXED BY orders_warm WHERE cold = 0 AND exp >= 0 AND exp <= ?")
    .pluck();
  const warmRows = db.prepare("SELECT k, v FROM orders WHERE cold = 0");
  // a fund's keys: `fund \u0001 order id`, between `fund \u0001` and `fund \u0002`
  const warmRowsOf = db.prepare("SELECT k, v FROM orders WHERE k >= ? AND k < ? AND cold = 0");
  const orderDisk: OrderDisk = {
    get: (k) => getOrder.get(k) as string | undefined,
    due: (now) => dueOrders.all(now) as string[],
    warmDue: (now) => warmDue.all(now) as string[],
    warm: (fund) =>
      (fund === undefined
        ? warmRows.iterate()
        : warmRowsOf.iterate(`${fund}\u0001`, `${fund}\u0002`)) as IterableIterator<{ k: string; v: string }>,
  };
  const hasFill = db.prepare("SELECT 1 FROM fill_ids WHERE k = ?").pluck();
  const fillsAfter = db.prepare("SELECT seq, k, t FROM fill_ids WHERE seq > ? ORDER BY seq LIMIT ?");
  const fillDisk: FillDisk = {
    has: (k) => hasFill.get(k) !== undefined,
    after: (seq, limit) => fillsAfter.all(seq, limit) as { seq: number; k: string; t: number }[],
  };
  const hashes = (sql: string) => db.prepare(sql).pluck().iterate() as IterableIterator<number>;
  /** The same at once (an array of numbers: far cheaper than a row at a time across the binding). */
  const hashList = (sql: string) => db.prepare(sql).pluck().all() as number[];
  const maxFillSeq = () => (db.prepare("SELECT max(seq) FROM fill_ids").pluck().get() as number | null) ?? 0;
  /** The stores read the records this snapshot holds (a state built in memory, at its first flush). */
  const attach = (state: EngineState, fillIdsOnly = false) => {
    if (!state.fillIds.attached) state.fillIds.attach(fillDisk, hashes(HASH_QUERIES.fills), maxFillSeq());
    // a write of the fill ids alone: the other stores keep everything in memory until a full write
    if (fillIdsOnly) return;
    if (!state.idem.attached) state.idem.attach(disk, keyRows());
    if (!state.orders.attached) {
      const rows = db.prepare("SELECT k, h FROM orders").iterate() as IterableIterator<{
        k: string;
        h: number;
      }>;
      state.orders.attach(
        orderDisk,
        (function* () {
          for (const r of rows) if (state.orders.hot(r.k) === undefined) yield r.h;
        })(),
      );
    }
  };
  const rowCount = (c: Capture) =>
    c.rows.length + c.idem.length + c.orders.length + c.fills.adds.length + c.fills.dels.length;
  /** A failed write: what it held is written next time. */
  const again = (state: EngineState, c: Capture, changes: IdemChange[]) => {
    for (const r of c.rows) touch(state, r.kind, r.k); // written next time (deleted if absent)
    for (const o of c.orders) {
      if (o.v === undefined) markDeleted(state, "order", o.k);
      else touch(state, "order", o.k);
    }
    state.idem.retry(changes);
  };
  /**
   * The idempotency and order keys in captures sent and not yet answered, with how many hold each.
   * A record leaves memory when the write that captured it commits, unless a later capture holds
   * it too (the record changed again): then it stays until that one is answered, so that a
   * failure of the later write still finds it (retry) and no read meanwhile goes to a stale row.
   */
  const heldIdem = new Map<string, number>();
  const heldOrders = new Map<string, number>();
  const hold = (held: Map<string, number>, k: string) => held.set(k, (held.get(k) ?? 0) + 1);
  const release = (held: Map<string, number>, k: string) => {
    const n = held.get(k) ?? 0;
    if (n <= 1) held.delete(k);
    else held.set(k, n - 1);
  };
  const holdAll = (c: Capture) => {
    for (const i of c.idem) hold(heldIdem, i.k);
    for (const o of c.orders) hold(heldOrders, o.k);
  };
  const releaseAll = (c: Capture) => {
    for (const i of c.idem) release(heldIdem, i.k);
    for (const o of c.orders) release(heldOrders, o.k);
  };
  /** A committed write: what the disk now has leaves memory (see heldIdem). */
  const done = (state: EngineState, c: Capture, changes: IdemChange[], refs: OrderRefs) => {
    state.idem.committed(heldIdem.size === 0 ? changes : changes.filter((ch) => !heldIdem.has(ch.k)));
    state.fillIds.committed(c.fills);
    const rows = c.orders.map((row, i) => ({ row, ref: refs[i] }));
    const left = state.orders.committed(
      heldOrders.size === 0 ? rows : rows.filter((r) => !heldOrders.has(r.row.k)),
      state.dirty.get("order"),
    );
    // the expiry heap lets go of the records that left (lazily: when it holds twice what is hot)
    const q = state.orderExpiry;
    if (left > 0 && q.length > 2 * state.orders.hotCount + 1024) {
      state.orderExpiry = dueQueue(q.data.filter((d) => state.orders.hot(d.item.key) === d.item));
    }
  };

  /**
   * An older snapshot's first load read every open order: its rows are written again with what
   * they reserve and their deadline, the books' rows with their sums, the funds' open counts, and
   * the mark that a load may leave open orders on disk, in one transaction (the state just loaded,
   * at the same cursors).
   */
  function upgradeOrders(state: EngineState, orders: OrderRecord[]): void {
    db.transaction(() => {
      for (const o of orders) {
        const c = orderColumns(o, state.settings);
        putOrder.run(o.key, hash32(o.key), c.cold, c.exp, orderToJson(o));
      }
      for (const f of state.funds.values())
        for (const b of f.books.values())
          if (!b.pendBuyQty.eq(ZERO) || !b.pendSellQty.eq(ZERO)) upsert.run("book", b.key, bookRow(b));
      putMeta.run("open_orders", openOrdersJson(state));
      putMeta.run("orders_lazy", "1");
    })();
  }

  /**
   * Hands a capture to the writer; settles when it is committed (or failed: its rows are dirty
   * again). After a failure the writer refuses every write already sent, each of which is marked
   * dirty again too, and is reset once all are answered: nothing taken before a failure commits
   * after it, so committed cursors never run ahead of a failed row.
   */
  async function writeInBackground(
    state: EngineState,
    c: Capture,
    changes: IdemChange[],
    refs: OrderRefs,
    now: boolean,
  ): Promise<FlushReport> {
    const tail = tailOf(c);
    // a rebuild's write along the way always goes out: it sets the unfinished mark
    if (!c.unfinished && rowCount(c) === 0 && tail === sentTail) return { rows: 0, failures: c.failures };
    // a writer that died (its thread exited) is replaced: every write it held was refused
    if (!writer || writer.dead) writer = startWriter(path, commitEveryMs);
    const w = writer;
    if (!c.unfinished) sentTail = tail;
    inFlight++;
    holdAll(c);
    try {
      await w.write(c, now);
    } catch (err) {
      releaseAll(c);
      again(state, c, changes);
      failed = true;
      sentTail = "";
      throw err;
    } finally {
      inFlight--;
      if (failed && inFlight === 0) {
        failed = false;
        w.reset();
      }
    }
    releaseAll(c);
    done(state, c, changes, refs);
    return { rows: rowCount(c), failures: c.failures };
  }

  return {
    path,
    flush(state) {
      if (inFlight > 0) throw new SnapshotError("a background flush is in progress");
      attach(state);
      const changes = state.idem.capture();
      const refs: OrderRefs = [];
      const c = capture(state, changes, refs);
      try {
        flushTx([c]);
      } catch (err) {
        again(state, c, changes);
        throw err;
      }
      sentTail = tailOf(c);
      done(state, c, changes, refs);
      return { rows: rowCount(c), failures: c.failures };
    },
    flushInBackground(state) {
      if (closed) return Promise.reject(new SnapshotError("snapshot closed"));
      if (inFlight >= maxInFlight && lastWrite) return lastWrite;
      attach(state);
      const changes = state.idem.capture();
      const refs: OrderRefs = [];
      const c = capture(state, changes, refs);
      return (lastWrite = writeInBackground(state, c, changes, refs, commitEveryMs <= 0));
    },
    commitNow() {
      if (inFlight > 0) writer?.commit();
    },
    flushAheadInBackground(state, what) {
      if (closed) return Promise.reject(new SnapshotError("snapshot closed"));
      if (inFlight > 0 && lastWrite) return lastWrite;
      const all = what === "all";
      attach(state, !all);
      const changes = all ? state.idem.capture() : [];
      const refs: OrderRefs = [];
      const c = all ? capture(state, changes, refs, true) : captureFillIds(state);
      return (lastWrite = writeInBackground(state, c, changes, refs, true));
    },
    load(settings, hashes) {
      if (db.prepare("SELECT 1 FROM meta WHERE k = 'unfinished'").get() !== undefined)
        throw new SnapshotError(`snapshot ${path} is unfinished (an interrupted rebuild); rebuild it`);
      const state = createState(settings);
      // a migration writes the tables the worker may have read first: then every list is read here
      const migrated = migrateLegacy(db);
      /** A hash list: the worker's when it read what this load reads, else read here. */
      const listOf = (list: HashList, unchanged = !migrated): Iterable<number> =>
        (unchanged ? hashes?.take(list) : undefined) ?? hashList(HASH_QUERIES[list]);
      // one kind at a time (in key order, as before): no array of every row of the snapshot
      const ofKind = db.prepare("SELECT kind, k, v FROM entities WHERE kind = ? ORDER BY k");
      const byKind = { get: (kind: EntityKind) => ofKind.all(kind) as Row[] };
      for (const r of byKind.get("instrument") ?? []) {
        state.instruments.set(r.k, InstrumentSchema.parse(JSON.parse(r.v)));
      }
      for (const r of byKind.get("mark") ?? []) {
        const m = JSON.parse(r.v) as {
          bid?: string;
          ask?: string;
          ts?: number;
          rank?: number;
          refused?: string;
        };
        if (m.bid === undefined || m.ask === undefined || m.ts === undefined) {
          if (m.rank !== undefined && m.refused !== undefined)
            state.refusedQuotes.set(r.k, { rank: m.rank, reason: m.refused });
          continue;
        }
        const mark = toMark(dec(m.bid), dec(m.ask), m.ts, m.rank ?? m.ts);
        if (m.refused !== undefined) mark.refused = m.refused;
        state.marks.set(r.k, mark);
      }
      for (const r of byKind.get("fund") ?? []) loadFund(state, r.k, r.v);
      // A fund's velocity entries (one row a second, `${fund}\u0001${second}`) stay on disk until
      // the window is first used (readVelocity): a check of the fund, its next decision, a flush of
      // one of its rows, or the engine's warm-up once ready (after close(), a read fails). Reading every decision of the
      // last hour here made a restart O(decisions): 0.9 s of the load after 400 000 of them.
      for (const id of db.prepare(VELOCITY_FUNDS).pluck().all() as string[]) {
        const w = getFund(state, id).velocity;
        w.lazy = (into) => {
          if (closed)
            throw new SnapshotError(`snapshot ${path} closed: fund ${id}'s velocity entries unread`);
          for (const v of velocityRows.all(`${id}\u0001`, `${id}\u0002`) as string[])
            for (const [vid, at, n] of JSON.parse(v) as [string, number, string][])
              addVelocity(into, vid, at, dec(n));
        };
      }
      const legacyVelocity: string[] = [];
      for (const r of db.prepare(LEGACY_VELOCITY).all() as Row[]) {
        legacyVelocity.push(r.k); // an older snapshot's whole-fund row (read now, rewritten per second)
        const f = getFund(state, r.k);
        for (const [vid, at, n] of JSON.parse(r.v) as [string, number, string][])
          addVelocity(f.velocity, vid, at, dec(n));
      }
      for (const r of byKind.get("dup") ?? []) {
        const f = getFund(state, r.k);
        const entries = JSON.parse(r.v) as [string, number, string][];
        entries.sort((a, b) => a[1] - b[1]);
        for (const [dk, at, key] of entries) recordDuplicate(f.dups, dk, key, at);
      }
      for (const r of byKind.get("book") ?? []) loadBook(state, r.k, r.v);
      const droppedOrders: string[] = [];
      const lazy = lazyOrders();
      // the ended records stay on disk (read by key when needed): their keys' hashes only; so do
      // the open ones of a snapshot that holds their reservations' sums (read on first touch)
      state.orders.attach(orderDisk, listOf("orders"));
      const eagerRows = db
        .prepare(
          lazy
            ? "SELECT k, v FROM orders INDEXED BY orders_unconfirmed WHERE cold = 3 ORDER BY k"
            : "SELECT k, v FROM orders INDEXED BY orders_hot WHERE cold = 0 ORDER BY k",
        )
        .all() as { k: string; v: string }[];
      const orders = eagerRows.map((r) => loadOrder(state, r.k, r.v, droppedOrders));
      if (lazy) {
        const open = db.prepare("SELECT v FROM meta WHERE k = 'open_orders'").pluck().get() as
          string | undefined;
        for (const [id, n] of Object.entries(JSON.parse(open ?? "{}") as Record<string, number>))
          getFund(state, id).openOrders = n;
      }
      const queued: Due<OrderRecord>[] = [];
      for (const o of orders) {
        // the books' rows count what it reserved (an older snapshot's: nothing yet); one that
        // reserves nothing and can reserve nothing (no approval seen, ended, filled) is left as it
        // is (syncReservation would only mark its row dirty); every book is revalued once below
        if (o.side !== undefined && (o.reserved.gt(ZERO) || (!o.terminal && o.filled.lt(o.approved))))
          syncReservation(state, o, false);
        // queued at its deadline (what the sweep's first look at it would do), in one heapify
        const at = deadlineOf(o, state.settings);
        if (at === Infinity) o.queued = false;
        else queued.push({ at, item: o });
      }
      state.orderExpiry = dueQueue(queued);
      const idemChanged = loadIdem(db, byKind.get("idem") ?? []);
      // the index and the digest from the hash columns alone (covering index idem_hd; loadIdem
      // filled any missing), attached below; the worker's lists only when loadIdem changed nothing
      const unchanged = !migrated && !idemChanged;
      for (const r of byKind.get("stop") ?? []) {
        const s = JSON.parse(r.v) as Omit<StopRecord, "qty" | "stopPrice" | "legs"> & {
          qty: string;
          stopPrice: string;
          legs?: { orderId: string; key: string; broker: string; qty: string }[];
        };
        state.stops.set(r.k, {
          ...s,
          qty: dec(s.qty),
          stopPrice: dec(s.stopPrice),
          legs: (s.legs ?? []).map((l) => ({ ...l, qty: dec(l.qty) })),
          attempt: s.attempt ?? 0,
          notBefore: s.notBefore ?? 0,
        });
      }
      for (const f of state.funds.values()) for (const b of f.books.values()) revalue(state, f, b);
      const cur = db.prepare("SELECT stream, seq FROM cursors").all() as {
        stream: StreamName;
        seq: number;
      }[];
      for (const c of cur) state.cursors.set(c.stream, c.seq);
      const wm = db.prepare("SELECT v FROM meta WHERE k = 'fill_watermark'").get() as
        { v: string } | undefined;
      state.fillWatermark = wm ? Number(wm.v) : 0;
      // last: the worker reads these lists while everything above loads (nothing above reads them)
      state.idem.attachHashes(
        disk,
        listOf("idem", unchanged),
        listOf("owned", unchanged),
        listOf("digests", unchanged),
      );
      state.fillIds.attach(fillDisk, listOf("fills"), maxFillSeq());
      state.dirty.clear();
      state.dirtyBooks.clear();
      state.deleted.clear();
      for (const k of droppedOrders) {
        touch(state, "order", k);
        const o = state.orders.hot(k);
        if (o) touch(state, "book", key2(o.fund, o.symbol)); // its reservations' sums changed
      }
      if (!lazy) upgradeOrders(state, orders);
      for (const fundId of legacyVelocity) {
        markDeleted(state, "velocity", fundId);
        const f = state.funds.get(fundId);
        for (const [, at] of f ? velocityEntries(f.velocity) : [])
          touch(state, "velocity", key2(fundId, String(velocityBucket(at))));
      }
      return state;
    },
    close() {
      closed = true;
      void writer?.stop();
      db.close();
    },
  };
}

/** The funds with per-second velocity rows (`${fund}\u0001${second}`). */
const VELOCITY_FUNDS =
  "SELECT DISTINCT substr(k, 1, instr(k, char(1)) - 1) FROM entities WHERE kind = 'velocity' AND instr(k, char(1)) > 0";
/** An older snapshot's whole-fund velocity rows (keyed by the fund id alone). */
const LEGACY_VELOCITY = "SELECT k, v FROM entities WHERE kind = 'velocity' AND instr(k, char(1)) = 0";

function loadFund(state: EngineState, id: string, v: string): void {
  const o = JSON.parse(v) as {
    envelopes: unknown[];
    current?: number;
    halts: HaltRecord[];
    lifted: LiftedHalt[];
    lock?: { since: string; reason: string; brokers: string[] };
    baselines: {
      period: PnlPeriod;
      startsAt: string;
      startsAtMs: number;
      equity: string;
      capital?: string;
    }[];
    velocity?: [string, number, string][]; // older snapshots kept it in the fund row
  };
  const f = getFund(state, id);
  for (const raw of o.envelopes) {
    const e = EnvelopeSchema.parse(raw);
    const entry = buildEntry(e, raw);
    f.envelopeHistory.set(e.version, entry);
    if (entry.duplicateWindowMs > f.dupWindowSeenMs) f.dupWindowSeenMs = entry.duplicateWindowMs;
    if (e.version === o.current) f.envelope = entry;
  }
  for (const h of o.halts) f.halts.set(HaltSeveritySchema.parse(h.severity), h);
  f.lifted = o.lifted;
  f.lock = o.lock;
  for (const b of o.baselines)
    f.baselines.set(b.period, {
      ...b,
      equity: dec(b.equity),
      capital: b.capital === undefined ? undefined : dec(b.capital),
    });
  for (const [vid, at, n] of o.velocity ?? []) addVelocity(f.velocity, vid, at, dec(n));
}

function loadBook(state: EngineState, k: string, v: string): void {
  const [fund, symbol] = k.split("\u0001") as [string, string];
  const o = JSON.parse(v) as {
    qty: string;
    cost: string;
    realized: string;
    fees: string;
    brokers: Record<string, string>;
    hint?: string;
    rs?: ReservationsRow;
  };
  const b = getBook(state, getFund(state, fund), symbol);
  const p = b.pos;
  p.qty = dec(o.qty);
  p.cost = dec(o.cost);
  p.realized = dec(o.realized);
  p.fees = dec(o.fees);
  for (const k of [...p.brokers.keys()]) p.brokers.delete(k);
  for (const [br, q] of Object.entries(o.brokers)) p.brokers.set(br, dec(q));
  b.assetClassHint = o.hint as typeof b.assetClassHint;
  if (o.rs) {
    // the open orders' reservations, summed when written (the orders stay on disk)
    const [bq, bv, bb, sq, sv, sb] = o.rs;
    b.pendBuyQty = dec(bq);
    b.pendBuyValue = dec(bv);
    if (bb.length > 0) b.pendBuyByBroker = new Map(bb.map(([k, q]) => [k, dec(q)]));
    b.pendSellQty = dec(sq);
    b.pendSellValue = dec(sv);
    if (sb.length > 0) b.pendSellByBroker = new Map(sb.map(([k, q]) => [k, dec(q)]));
  }
}

function loadOrder(state: EngineState, k: string, v: string, droppedOrders: string[]): OrderRecord {
  // approvals applied live but never read back from the journal are dropped (see applyDecision)
  const { record, dropped } = orderFromJson(v);
  state.orders.adopt(k, record);
  if (dropped) droppedOrders.push(k);
  return record;
}

/**
 * Moves the order and fill id rows of a snapshot written before their tables (entities of kind
 * `order` and `fill_id`) into them: every order hot (read in full by this load, as before), the
 * fill ids in timestamp order (the order that load gave them). True when it moved anything.
 */
function migrateLegacy(db: Database.Database): boolean {
  const legacy = db
    .prepare("SELECT kind, k, v FROM entities WHERE kind IN ('order', 'fill_id')")
    .all() as Row[];
  if (legacy.length === 0) return false;
  const putOrder = db.prepare(PUT_ORDER);
  const putFill = db.prepare(PUT_FILL);
  db.transaction(() => {
    const fills: [string, number][] = [];
    for (const r of legacy) {
      if (r.kind === "order") putOrder.run(r.k, hash32(r.k), 0, 0, r.v);
      else fills.push([r.k, Number(r.v)]);
    }
    fills.sort((a, b) => a[1] - b[1]);
    let seq = (db.prepare("SELECT max(seq) FROM fill_ids").pluck().get() as number | null) ?? 0;
    for (const [k, t] of fills) putFill.run(++seq, k, t, hash32(k));
    db.prepare("DELETE FROM entities WHERE kind IN ('order', 'fill_id')").run();
  })();
  return true;
}

/**
 * Prepares the idem table for a load: moves the rows of a snapshot written before it (entities of
 * kind `idem`) into it, owners derived as they were (earliest expiry, then key, first), and drops
 * the records applied live but never read back from the journal (the tail replay restores them if
 * they were journaled), passing the order ids they owned to the next record in that order. True
 * when it changed a row.
 */
function loadIdem(db: Database.Database, legacy: Row[]): boolean {
  const put = db.prepare(PUT_IDEM);
  const setOwner = db.prepare("UPDATE idem SET owner = 1 WHERE k = ?");
  return db.transaction(() => {
    const orphans = new Set<string>();
    for (const r of legacy) {
      const rec = fromRow(r.v, 0);
      const ok = ownableKey(rec);
      put.run(
        r.k,
        ok,
        0,
        rec.expiresAt,
        rec.confirmed === false ? 0 : 1,
        r.v,
        hash32(r.k),
        ok === null ? null : hash32(ok),
        recordHash(rec),
      );
      if (ok !== null) orphans.add(ok);
    }
    db.prepare("DELETE FROM entities WHERE kind = 'idem'").run();
    const stale = db
      .prepare("SELECT k, ok, owner FROM idem INDEXED BY idem_unconfirmed WHERE conf = 0")
      .all() as {
      k: string;
      ok: string | null;
      owner: number;
    }[];
    db.prepare("DELETE FROM idem WHERE conf = 0").run();
    let changed = legacy.length > 0 || stale.length > 0;
    for (const r of stale) if (r.owner === 1 && r.ok !== null) orphans.add(r.ok);
    const owned = db.prepare("SELECT 1 FROM idem WHERE ok = ? AND owner = 1").pluck();
    const unowned = [...orphans].filter((ok) => owned.get(ok) === undefined);
    if (unowned.length > 0) {
      // one pass over the table for them all (`ok` has no index but the owners'): a query per
      // order id scanned the whole table each time (12 000 dropped approvals: minutes)
      db.exec("CREATE TEMP TABLE IF NOT EXISTS idem_unowned (ok TEXT PRIMARY KEY) WITHOUT ROWID");
      db.exec("DELETE FROM temp.idem_unowned");
      const add = db.prepare("INSERT OR IGNORE INTO temp.idem_unowned (ok) VALUES (?)");
      for (const ok of unowned) add.run(ok);
      const next = db
        .prepare("SELECT ok, k FROM idem WHERE ok IN (SELECT ok FROM temp.idem_unowned) ORDER BY ok, exp, k")
        .all() as { ok: string; k: string }[];
      let last: string | undefined;
      for (const r of next) {
        if (r.ok === last) continue; // the first of each order id: earliest expiry, then key
        last = r.ok;
        setOwner.run(r.k);
      }
      db.exec("DELETE FROM temp.idem_unowned");
    }
    // rows written before the hash columns (once)
    const unhashed = db.prepare("SELECT k, ok FROM idem WHERE h IS NULL").all() as {
      k: string;
      ok: string | null;
    }[];
    const setHash = db.prepare("UPDATE idem SET h = ?, oh = ? WHERE k = ?");
    for (const r of unhashed) setHash.run(hash32(r.k), r.ok === null ? null : hash32(r.ok), r.k);
    if (unhashed.length > 0) changed = true;
    // rows written before the digest column (once)
    if (db.prepare("SELECT 1 FROM meta WHERE k = 'idem_dh_fill'").get() !== undefined) {
      const rows = db.prepare("SELECT k, v FROM idem WHERE dh IS NULL").all() as { k: string; v: string }[];
      const setDigest = db.prepare("UPDATE idem SET dh = ? WHERE k = ?");
      for (const r of rows) setDigest.run(recordHash(fromRow(r.v, 0)), r.k);
      db.prepare("DELETE FROM meta WHERE k = 'idem_dh_fill'").run();
      changed = true;
    }
    return changed;
  })();
}
