/**
 * The idempotency window's memory (issue 11, "memory that does not grow with the window"): the
 * engine's decider, in process, over a state loaded from a fresh SQLite snapshot (as `serve` loads
 * it), deciding the benchmark's order mix with every deterministic gate on. Each decision is read
 * back as the journal would return it (confirmed), the snapshot is flushed every `flushEvery`
 * decisions (the engine's periodic flush), and each approved order is filled in full right after
 * (the OMS's end of it; `fill: false` leaves them open, reserving, as the bus benchmark's top-up
 * does) so open reservations stay bounded; every decision stays within the
 * idempotency window (the clock advances `stepMs` a decision: 1 000 000 decisions over 20 h).
 * RSS (after a full GC) is taken after `small` decisions and after `decisions`; the difference per
 * decision in between is the memory a retained decision costs.
 *
 * `node --expose-gc dist/bench/soak.js [--json '{"decisions":1000000,"small":10000}']` prints one
 * JSON object.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Subjects } from "../contract/subjects.js";
import { toWire } from "../contract/wire.js";
import { createPipeline, DETERMINISTIC_GATES } from "../gates/index.js";
import { createDecider } from "../service/decide.js";
import { openSnapshot, project } from "../state/index.js";
import { iso, manualClock } from "../time/clock.js";
import { BOOK_TIME, FUNDS, SYMBOLS, envelope, instrument, order, quote, symbolId } from "./book.js";

export interface SoakOptions {
  decisions?: number;
  small?: number;
  /** Simulated ms between two decisions (default 72: 1 000 000 decisions in 20 h). */
  stepMs?: number;
  flushEvery?: number;
  /** Fill each approved order in full (default true). */
  fill?: boolean;
  /**
   * Every order priced outside the collar (PRICE_COLLAR, recorded and counted like any decision):
   * what a retained decision costs without its order record (default false).
   */
  rejectAll?: boolean;
  /** Keep the snapshot at this path (default: a temporary one, removed). */
  out?: string;
  /**
   * Idempotency keys other than the order ids (default false: the book's orders use the order id
   * as the key, as most OMSs do, so a decision's key and order id share one slot of the key index).
   */
  distinctKeys?: boolean;
}

export interface SoakPoint {
  decisions: number;
  rss_mb: number;
  heap_used_mb: number;
  heap_total_mb: number;
  /** /proc/self/status (Linux): anonymous, file-backed and shared resident memory. */
  rss_anon_mb?: number | undefined;
  rss_file_mb?: number | undefined;
  rss_shmem_mb?: number | undefined;
  idem_records: number;
  idem_resident: number;
  order_records: number;
  /** Order records in memory (hot + cache) and fill ids in memory (not yet on disk). */
  order_resident: number;
  fill_ids: number;
  fill_resident: number;
  external_mb: number;
}

export interface SoakResult {
  decisions: number;
  seconds: number;
  per_s: number;
  approved: number;
  small: SoakPoint;
  large: SoakPoint;
  /** The same as small/large's, flat (the bench's report reads these). */
  first: number;
  rss_first_mb: number;
  rss_last_mb: number;
  /** (RSS at `decisions` − RSS at `small`) ÷ the decisions in between. */
  rss_bytes_per_decision: number;
  heap_bytes_per_decision: number;
  snapshot_mb: number;
  /** Loading the snapshot into a fresh state (a restart before its tail). */
  load_s: number;
  /** Its CPU time (the machine is shared: the wall time above includes waiting for a core). */
  load_cpu_s: number;
}

const te = new TextEncoder();

function procRss(): Pick<SoakPoint, "rss_anon_mb" | "rss_file_mb" | "rss_shmem_mb"> {
  let text = "";
  try {
    text = readFileSync("/proc/self/status", "utf8");
  } catch {
    return {};
  }
  const kb = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? +(Number(m[1]) / 1024).toFixed(1) : undefined;
  };
  return { rss_anon_mb: kb("RssAnon"), rss_file_mb: kb("RssFile"), rss_shmem_mb: kb("RssShmem") };
}

export function runSoak(o: SoakOptions = {}): SoakResult {
  const decisions = o.decisions ?? 1_000_000;
  const small = Math.min(o.small ?? 10_000, decisions);
  const stepMs = o.stepMs ?? 72;
  const flushEvery = o.flushEvery ?? 1000;
  const fill = o.fill ?? true;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with node --expose-gc");
  const dir = mkdtempSync(join(tmpdir(), "mts-soak-"));
  const snapshot = openSnapshot(o.out ?? join(dir, "state.db"));
  try {
    const clock = manualClock(BOOK_TIME);
    const state = snapshot.load();
    const seqs = new Map<string, number>();
    const feed = (stream: Parameters<typeof project>[1], subject: string, body: unknown) => {
      const seq = (seqs.get(stream) ?? 0) + 1;
      seqs.set(stream, seq);
      const r = project(state, stream, subject, te.encode(JSON.stringify(body)), seq);
      if (!r.ok) throw new Error(`${stream} ${subject}: ${r.reason}`);
    };
    const now0 = iso(clock.now());
    for (let s = 0; s < SYMBOLS; s++) {
      feed("REFDATA", Subjects.instrument(symbolId(s)), instrument(s));
      feed("QUOTES", Subjects.quote(symbolId(s)), quote(s, now0));
    }
    for (let f = 0; f < FUNDS; f++) feed("RISK_ENVELOPES", Subjects.envelopeUpdated(`f${f}`), envelope(f));
    let id = 0;
    const decider = createDecider({
      state,
      pipeline: createPipeline(DETERMINISTIC_GATES),
      clock,
      instance: "soak",
      ready: () => true,
      nextId: () => `d${++id}`,
    });
    const quotedAt = new Float64Array(SYMBOLS).fill(clock.now());
    let approved = 0;
    const point = (n: number): SoakPoint => {
      snapshot.flush(state);
      gc();
      gc();
      const m = process.memoryUsage();
      return {
        decisions: n,
        rss_mb: +(m.rss / 2 ** 20).toFixed(1),
        heap_used_mb: +(m.heapUsed / 2 ** 20).toFixed(1),
        heap_total_mb: +(m.heapTotal / 2 ** 20).toFixed(1),
        ...procRss(),
        idem_records: state.idem.size,
        idem_resident: state.idem.resident,
        order_records: state.orders.size,
        order_resident: state.orders.resident,
        fill_ids: state.fillIds.size,
        fill_resident: state.fillIds.resident,
        external_mb: +(m.external / 2 ** 20).toFixed(1),
      };
    };
    let smallPoint: SoakPoint | undefined;
    const t0 = performance.now();
    for (let i = 0; i < decisions; i++) {
      clock.advance(stepMs);
      const now = clock.now();
      const raw = order("s", i);
      if (o.rejectAll) raw.limit_price = "200";
      if (o.distinctKeys) raw.idempotency_key = `${String(raw.idempotency_key)}-key`;
      const sym = Number(String(raw.symbol).slice(1));
      if (now - quotedAt[sym]! > 2000) {
        feed("QUOTES", Subjects.quote(symbolId(sym)), quote(sym, iso(now), i));
        quotedAt[sym] = now;
      }
      const e = decider.decide({ raw });
      if (e instanceof Promise) throw new Error("an asynchronous gate is on");
      feed("RISK_DECISIONS", Subjects.decision(e.record.fund_id), toWire(e.record)); // read back
      if (e.decision.approved) {
        approved++;
        if (fill) {
          const body = {
            fill_id: `sf${i}`,
            order_id: raw.order_id,
            fund_id: raw.fund_id,
            broker: raw.broker,
            symbol: raw.symbol,
            side: raw.side,
            quantity: raw.quantity,
            price: raw.limit_price,
            fees: "0",
            timestamp: iso(now),
          };
          feed("FILLS", Subjects.fill(String(raw.fund_id), String(raw.symbol)), body);
        }
      }
      if ((i + 1) % flushEvery === 0) snapshot.flush(state);
      if (i + 1 === small) smallPoint = point(small);
      if ((i + 1) % 100_000 === 0) process.stderr.write(`[soak] ${i + 1} of ${decisions}\n`);
    }
    const seconds = (performance.now() - t0) / 1000;
    const large = point(decisions);
    // a restart's load of this snapshot (what `serve` does before replaying the tail)
    const l0 = performance.now();
    const c0 = process.cpuUsage();
    const reloaded = snapshot.load();
    const loadS = (performance.now() - l0) / 1000;
    const loadCpu = process.cpuUsage(c0);
    if (reloaded.idem.size !== state.idem.size) throw new Error("the reloaded snapshot differs");
    const s = smallPoint ?? large;
    const between = Math.max(1, large.decisions - s.decisions);
    let bytes = 0;
    for (const suffix of ["", "-wal"])
      bytes += statSync(snapshot.path + suffix, { throwIfNoEntry: false })?.size ?? 0;
    return {
      decisions,
      seconds: +seconds.toFixed(1),
      per_s: Math.round(decisions / seconds),
      approved,
      small: s,
      large,
      first: s.decisions,
      rss_first_mb: s.rss_mb,
      rss_last_mb: large.rss_mb,
      rss_bytes_per_decision: Math.round(((large.rss_mb - s.rss_mb) * 2 ** 20) / between),
      heap_bytes_per_decision: Math.round(((large.heap_used_mb - s.heap_used_mb) * 2 ** 20) / between),
      snapshot_mb: +(bytes / 2 ** 20).toFixed(1),
      load_s: +loadS.toFixed(3),
      load_cpu_s: +((loadCpu.user + loadCpu.system) / 1e6).toFixed(3),
    };
  } finally {
    snapshot.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const opts = process.argv[2] === "--json" ? (JSON.parse(process.argv[3] ?? "{}") as SoakOptions) : {};
  process.stdout.write(`${JSON.stringify(runSoak(opts))}\n`);
}
