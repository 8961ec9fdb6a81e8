/**
 * The hash lists a snapshot load builds its key indexes from (orders, idempotency keys, owned order
 * ids, record digests, fill ids: ≈ 400 000 numbers each after 400 000 decisions), read on a
 * worker thread while the engine connects, provisions its streams and loads everything else, and
 * handed over as Float64Arrays (transferred, not copied; no number the main thread allocates).
 * The load takes each list when it needs it (`take`, a synchronous wait on the worker's message
 * port) and reads it itself whenever the worker's copy cannot be trusted: the worker failed, timed
 * out, read a NULL (rows written before the hash columns), or the load changed the table first
 * (a legacy migration, unconfirmed records dropped). Same lists either way: the queries are shared.
 */
import { createRequire } from "node:module";
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from "node:worker_threads";

/** The lists, in the order a load needs them (the worker reads them in this order). */
export const HASH_QUERIES = {
  orders: "SELECT h FROM orders INDEXED BY orders_h",
  idem: "SELECT h FROM idem INDEXED BY idem_hd",
  owned: "SELECT oh FROM idem INDEXED BY idem_hd WHERE owner = 1 AND oh IS NOT NULL",
  digests: "SELECT dh FROM idem INDEXED BY idem_hd",
  fills: "SELECT h FROM fill_ids",
} as const;

export type HashList = keyof typeof HASH_QUERIES;

export interface HashReader {
  /** The list read by the worker; undefined: read it yourself (failed, timed out, not trusted). */
  take(list: HashList): Float64Array | undefined;
  /** Stops the worker (idempotent). */
  close(): void;
}

/** How long a load waits for one list before reading it itself. */
const TAKE_TIMEOUT_MS = 30_000;

const SOURCE = `
const { workerData } = require("node:worker_threads");
const { port, flag, path, queries } = workerData;
const signal = () => { Atomics.add(flag, 0, 1); Atomics.notify(flag, 0); };
// A list as one string of SQLite's (group_concat), parsed here: ≈ 40 % less time than a JavaScript
// number a row. group_concat skips NULLs: fewer numbers than rows is a NULL hash (undefined).
function parse(text, n) {
  const out = new Float64Array(n);
  let k = 0, v = 0, digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 44) { if (digits === 0 || k === n) return undefined; out[k++] = v; v = 0; digits = 0; }
    else if (c >= 48 && c <= 57 && digits < 16) { v = v * 10 + (c - 48); digits++; }
    else return undefined; // not a hash as the columns hold them: read row by row
  }
  if (digits > 0) { if (k === n) return undefined; out[k++] = v; }
  return k === n ? out : undefined;
}
function read(sql) {
  try {
    const [n, text] = db.prepare("SELECT count(*), group_concat(" + sql.split(" ")[1] + ") FROM (" + sql + ")").raw().get();
    const out = parse(text ?? "", n);
    if (out) return out;
  } catch {
    // a list longer than SQLite's longest string: row by row
  }
  const values = db.prepare(sql).pluck().all();
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== "number") return undefined;
    out[i] = v;
  }
  return out;
}
let db;
try {
  // every failure is posted: the load may be waiting on the port, where an error event never reaches
  const Database = require(workerData.sqlite);
  db = new Database(path, { readonly: true, fileMustExist: true });
  for (const [name, sql] of queries) {
    const out = read(sql);
    if (out) port.postMessage({ name, data: out }, [out.buffer]);
    else port.postMessage({ name, error: "a NULL hash (a row written before the hash columns)" });
    signal();
  }
} catch (e) {
  port.postMessage({ error: String((e && e.message) || e) });
  signal();
} finally {
  if (db) db.close();
}
`;

interface Message {
  name?: HashList;
  data?: Float64Array;
  error?: string;
}

/** Starts reading the snapshot's hash lists on a worker thread (call before opening it to write). */
export function startHashReader(path: string): HashReader {
  const { port1, port2 } = new MessageChannel();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(SOURCE, {
    eval: true,
    workerData: {
      port: port2,
      flag,
      path,
      queries: Object.entries(HASH_QUERIES),
      sqlite: createRequire(import.meta.url).resolve("better-sqlite3"),
    },
    transferList: [port2],
  });
  worker.unref();
  worker.on("error", () => undefined); // reported by the port (or by a timeout): the load reads itself
  const got = new Map<HashList, Float64Array | undefined>();
  let failed = false;
  let closed = false;
  const receive = (port: MessagePort): boolean => {
    const m = receiveMessageOnPort(port)?.message as Message | undefined;
    if (!m) return false;
    if (m.name === undefined) failed = true;
    else got.set(m.name, m.error === undefined ? m.data : undefined);
    return true;
  };
  return {
    take(list) {
      if (closed) return undefined;
      const deadline = performance.now() + TAKE_TIMEOUT_MS;
      while (!got.has(list) && !failed) {
        const seen = Atomics.load(flag, 0);
        if (receive(port1)) continue;
        const left = deadline - performance.now();
        if (left <= 0 || Atomics.wait(flag, 0, seen, left) === "timed-out") {
          if (!receive(port1)) failed = true;
        }
      }
      const data = got.get(list);
      got.delete(list);
      return data;
    },
    close() {
      if (closed) return;
      closed = true;
      port1.close();
      void worker.terminate();
    },
  };
}
