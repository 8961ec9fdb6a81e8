/**
 * In-process benchmarks (no bus), each meant to run in a child process of its own:
 *  - "pipeline": the decider with every deterministic gate on, over the benchmark book (50 funds,
 *    1 000 symbols, `positions` open positions): decisions/s and latency percentiles on one core;
 *  - "fund": the same decider with all `positions` open positions in ONE fund (the scale test; the
 *    orders go to the same 10 symbols whatever the fund's size);
 *  - "rss": a state holding `positions` positions, folded with project(); reports its RSS with its
 *    snapshot attached and flushed as it grows (as the engine holds it), or alone (`snapshot: false`).
 * State is built through `project()`, exactly as the engine folds stream messages. The clock is
 * manual: it advances 1 ms every 5 decisions (5 000 decisions/s of simulated time), and a symbol's
 * quote is refreshed (untimed) when it is older than 2 s, as the live quote stream would do.
 *
 * `node dist/bench/pipeline.js [decisions] [positions]` (pipeline mode), or
 * `node dist/bench/pipeline.js --json '{"mode":"fund","decisions":20000,"positions":100000}'`.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Subjects } from "../contract/subjects.js";
import { createPipeline, DETERMINISTIC_GATES } from "../gates/index.js";
import { createDecider } from "../service/decide.js";
import { createState, openSnapshot, project, type EngineState } from "../state/index.js";
import { iso, manualClock } from "../time/clock.js";
import {
  BOOK_TIME,
  FUNDS,
  FX_SYMBOL,
  NEW_CHECKS,
  fxQuote,
  instrumentWithChecks,
  SYMBOLS,
  envelope,
  fill,
  fundOrder,
  instrument,
  openingFill,
  order,
  quote,
  symbolId,
} from "./book.js";
import { type Summary, histogram, summarize } from "./util.js";

export interface InProcessOptions {
  mode: "pipeline" | "fund" | "rss";
  /** Issue 13's checks on (max_open_orders, duplicates, ADV, fresh marks, FX on a quarter of the symbols). */
  newChecks?: boolean;
  /** rss mode: false to measure the state alone, never flushed (default: with its snapshot). */
  snapshot?: boolean;
  decisions?: number;
  positions: number;
}

export interface DecideResult {
  mode: "pipeline" | "fund";
  decisions: number;
  warmup: number;
  positions: number;
  funds: number;
  symbols: number;
  build_s: number;
  /** After building the state and a full GC, before deciding. */
  rss_after_build_mb: number;
  heap_after_build_mb: number;
  per_s: number;
  mean_us: number;
  /** The mean of each fifth of the run, and their median (robust to a noisy neighbour). */
  round_means_us: number[];
  median_round_mean_us: number;
  latency_us: Summary;
  approved_pct: number;
  rejection_codes: Record<string, number>;
}

export interface RssResult {
  mode: "rss";
  positions: number;
  funds: number;
  symbols: number;
  build_s: number;
  fills_per_s: number;
  /** With the snapshot attached and flushed, as the engine holds it (rssWithSnapshot), unless `snapshot` is false. */
  rss_mb: number;
  heap_used_mb: number;
  /**
   * The same 5 s later, after another full GC: what the process holds once V8 has returned the
   * pages the build freed (right after a GC it has not yet), the figure the target is judged on.
   */
  rss_settled_mb?: number;
  heap_total_settled_mb?: number;
  /** False: the state alone, built in memory and never flushed. */
  snapshot?: boolean;
  /** The first flush of the whole state, s. */
  flush_s?: number;
  /** Order records still in memory after it. */
  hot_orders?: number;
}

const te = new TextEncoder();

/** Opening fills between two flushes of the rss mode's snapshot (the engine flushes every second). */
const FLUSH_EVERY = 10_000;

export function builder(state: EngineState) {
  const seqs = new Map<string, number>();
  return (stream: Parameters<typeof project>[1], subject: string, body: unknown) => {
    const seq = (seqs.get(stream) ?? 0) + 1;
    seqs.set(stream, seq);
    const r = project(state, stream, subject, te.encode(JSON.stringify(body)), seq);
    if (!r.ok) throw new Error(`${stream} ${subject}: ${r.reason}`);
  };
}

function progress(message: string): void {
  process.stderr.write(`[in-process] ${message}\n`);
}

/** Builds the state: instruments and quotes for every symbol, envelopes, then the opening fills. */
export function buildState(
  o: InProcessOptions,
  clock: ReturnType<typeof manualClock>,
  /** Called every `FLUSH_EVERY` opening fills (the rss mode's periodic snapshot flush). */
  periodic?: (state: EngineState) => void,
) {
  const oneFund = o.mode === "fund";
  const funds = oneFund ? 1 : FUNDS;
  const symbols = oneFund ? Math.max(o.positions, 10) : Math.max(SYMBOLS, Math.ceil(o.positions / FUNDS));
  const state = createState();
  const feed = builder(state);
  const t0 = performance.now();
  const now = iso(clock.now());
  const inst = o.newChecks ? instrumentWithChecks : instrument;
  if (o.newChecks) feed("QUOTES", Subjects.quote(FX_SYMBOL), fxQuote(now));
  for (let s = 0; s < symbols; s++) {
    feed("REFDATA", Subjects.instrument(symbolId(s)), inst(s));
    feed("QUOTES", Subjects.quote(symbolId(s)), quote(s, now));
  }
  for (let f = 0; f < funds; f++) {
    const env = o.newChecks ? { ...envelope(f), ...NEW_CHECKS } : envelope(f);
    feed("RISK_ENVELOPES", Subjects.envelopeUpdated(`f${f}`), env);
  }
  const fillsT0 = performance.now();
  for (let i = 0; i < o.positions; i++) {
    const body = oneFund ? fill(i, 0, i, "BUY", "10", "100", BOOK_TIME) : openingFill(i, symbols);
    feed("FILLS", Subjects.fill(String(body.fund_id), String(body.symbol)), body);
    if (periodic && (i + 1) % FLUSH_EVERY === 0) periodic(state);
    if (i > 0 && i % 200_000 === 0) progress(`${o.mode}: ${i} of ${o.positions} positions`);
  }
  const t1 = performance.now();
  return {
    state,
    feed,
    funds,
    symbols,
    build_s: +((t1 - t0) / 1000).toFixed(2),
    fills_per_s: Math.round(o.positions / Math.max(1e-9, (t1 - fillsT0) / 1000)),
  };
}

/**
 * The RSS of the state as the engine holds it: with its snapshot attached and flushed as the
 * opening fills come (what `serve` does every flush interval), ended records and orders known
 * from fills alone leave memory for the snapshot's tables (state/order-store.ts). `snapshot: false`
 * measures the state alone, never flushed (another child: one heap does not hold both).
 */
/** RSS and heap 5 s after the measurement right after building, and another full GC. */
async function settled(): Promise<Pick<RssResult, "rss_settled_mb" | "heap_total_settled_mb">> {
  const gc = (globalThis as { gc?: () => void }).gc;
  await new Promise((done) => setTimeout(done, 5000));
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return {
    rss_settled_mb: Math.round(m.rss / 2 ** 20),
    heap_total_settled_mb: Math.round(m.heapTotal / 2 ** 20),
  };
}

async function rssWithSnapshot(
  o: InProcessOptions,
  clock: ReturnType<typeof manualClock>,
): Promise<RssResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const mb = (n: number) => Math.round(n / 2 ** 20);
  const dir = mkdtempSync(join(tmpdir(), "mts-bench-rss-"));
  const snapshot = openSnapshot(join(dir, "state.db"));
  try {
    let flushMs = 0;
    const flush = (state: EngineState) => {
      const t0 = performance.now();
      snapshot.flush(state);
      flushMs += performance.now() - t0;
    };
    const built = buildState(o, clock, flush);
    flush(built.state);
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    if (process.env.BENCH_RSS_DEBUG) {
      progress(`rss: ${JSON.stringify(m)}`);
      progress(readFileSync("/proc/self/smaps_rollup", "utf8"));
    }
    return {
      mode: "rss",
      positions: o.positions,
      funds: built.funds,
      symbols: built.symbols,
      build_s: built.build_s,
      fills_per_s: built.fills_per_s,
      snapshot: true,
      rss_mb: mb(m.rss),
      heap_used_mb: mb(m.heapUsed),
      flush_s: +(flushMs / 1000).toFixed(2),
      hot_orders: built.state.orders.hotCount,
      ...(await settled()),
    };
  } finally {
    snapshot.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runInProcess(o: InProcessOptions): Promise<DecideResult | RssResult> {
  const clock = manualClock(BOOK_TIME);
  if (o.mode === "rss" && o.snapshot !== false) return rssWithSnapshot(o, clock);
  const built = buildState(o, clock);
  const { state, feed, funds, symbols } = built;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  if (o.mode === "rss") {
    return {
      mode: "rss",
      positions: o.positions,
      snapshot: false,
      funds,
      symbols,
      build_s: built.build_s,
      fills_per_s: built.fills_per_s,
      rss_mb: Math.round(m.rss / 2 ** 20),
      heap_used_mb: Math.round(m.heapUsed / 2 ** 20),
      ...(await settled()),
    };
  }

  const decisions = o.decisions ?? 200_000;
  const warmup = Math.min(20_000, Math.floor(decisions / 5));
  const ROUNDS = 5;
  const perRound = Math.ceil(decisions / ROUNDS);
  const roundNs: number[] = Array.from({ length: ROUNDS }, () => 0);
  let id = 0;
  const decider = createDecider({
    state,
    pipeline: createPipeline(DETERMINISTIC_GATES),
    clock,
    instance: "bench",
    ready: () => true,
    nextId: () => `d${++id}`,
  });
  const quotedAt = new Float64Array(symbols).fill(clock.now());
  let fxQuotedAt = clock.now();
  const make =
    o.mode === "fund" ? (i: number) => fundOrder("b", i) : (i: number) => order("b", i, FUNDS, symbols);
  const h = histogram();
  let totalNs = 0;
  let approved = 0;
  const codes: Record<string, number> = {};
  for (let i = 0; i < warmup + decisions; i++) {
    if (i % 5 === 0) clock.advance(1);
    const raw = make(i);
    const s = Number(String(raw.symbol).slice(1));
    const now = clock.now();
    if (now - quotedAt[s]! > 2000) {
      feed("QUOTES", Subjects.quote(symbolId(s)), quote(s, iso(now), i));
      quotedAt[s] = now;
    }
    if (o.newChecks && now - fxQuotedAt > 2000) {
      feed("QUOTES", Subjects.quote(FX_SYMBOL), fxQuote(iso(now)));
      fxQuotedAt = now;
    }
    const t0 = process.hrtime.bigint();
    const e = decider.decide({ raw });
    const ns = Number(process.hrtime.bigint() - t0);
    if (i < warmup) continue;
    if (e instanceof Promise) throw new Error("an asynchronous gate is on; the benchmark needs sync gates");
    h.recordValue(ns);
    totalNs += ns;
    roundNs[Math.floor((i - warmup) / perRound)]! += ns;
    if (e.decision.approved) approved++;
    else codes[e.decision.rejection_code] = (codes[e.decision.rejection_code] ?? 0) + 1;
  }
  const roundMeans = roundNs.map((ns, r) => {
    const n = Math.min(perRound, decisions - r * perRound);
    return +(ns / Math.max(1, n) / 1000).toFixed(3);
  });
  return {
    mode: o.mode,
    decisions,
    warmup,
    positions: o.positions,
    funds,
    symbols,
    build_s: built.build_s,
    rss_after_build_mb: Math.round(m.rss / 2 ** 20),
    heap_after_build_mb: Math.round(m.heapUsed / 2 ** 20),
    per_s: Math.round(decisions / (totalNs / 1e9)),
    mean_us: +(totalNs / decisions / 1000).toFixed(3),
    round_means_us: roundMeans,
    median_round_mean_us: [...roundMeans].sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]!,
    latency_us: summarize(h, 1000),
    approved_pct: +((approved / decisions) * 100).toFixed(1),
    rejection_codes: codes,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const opts: InProcessOptions =
    process.argv[2] === "--json"
      ? (JSON.parse(process.argv[3] ?? "{}") as InProcessOptions)
      : {
          mode: "pipeline",
          decisions: Number(process.argv[2] ?? 200_000),
          positions: Number(process.argv[3] ?? 10_000),
        };
  process.stdout.write(`${JSON.stringify(await runInProcess(opts))}\n`);
}
