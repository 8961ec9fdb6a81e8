/**
 * Quote folding, in process: the CPU a quote stream costs the engine. Builds the benchmark book
 * (50 funds, 1 000 symbols, 10 000 open positions) through `project()`, makes the engine's workers
 * live (drawdown, limit warnings, stops, kill switch) on a manual clock, then folds `rate` quotes per
 * second of simulated time through the path the follower takes for each message: the workers'
 * `beforeApply`, `project()` (JSON, the quote fast path, the market projection, the change it returns) and the
 * host's dispatch; between I/O batches (`batch` quotes, as one socket read delivers them) the event
 * loop turns, so what the engine defers to `setImmediate` runs and is counted (the follower's
 * settleAll() of conflated quotes, the drawdown monitor's evaluation). CPU is this process's
 * (process.cpuUsage) over the folding only.
 *
 * `node dist/bench/quotefold.js [--json] [--seconds 10] [--rate 2000] [--batch 10] [--burst 1] [--stops] [--fx] [--no-read-back]`:
 * `--stops` arms a (far) synthetic stop on every position, `--fx` prices a quarter of the symbols in
 * EUR and quotes EUR-USD as one symbol of the stream; `--burst k` sends k consecutive quotes per symbol
 * (each a new price) before the next symbol. Prints {quotes, seconds_simulated, cpu_ms,
 * core_pct_at_2000_per_s, us_per_quote} (and the settings) as JSON with `--json`, readable otherwise.
 */
import type { PubAck } from "@nats-io/jetstream";
import { fileURLToPath } from "node:url";
import { ConfigSchema } from "../config/index.js";
import type { Alerter } from "../engine/alerts.js";
import { Subjects, parseSubject, type StreamName } from "../contract/subjects.js";
import { silentLogger } from "../obs/log.js";
import { createState, project, settleAll, type EngineState } from "../state/index.js";
import { PROJECTIONS } from "../state/projections/table.js";
import { iso, manualClock } from "../time/clock.js";
import { createDrawdownMonitor } from "../workers/drawdown.js";
import { createWorkerHost } from "../workers/host.js";
import { createKillSwitch } from "../workers/kill-switch.js";
import { createLimitWarnings } from "../workers/limit-warnings.js";
import { createStopsWorker } from "../workers/stops.js";
import type { WorkerContext } from "../workers/types.js";
import {
  BOOK_TIME,
  FUNDS,
  FX_SYMBOL,
  SYMBOLS,
  envelope,
  fxQuote,
  instrument,
  instrumentWithChecks,
  openingFill,
  quote,
  symbolId,
} from "./book.js";

export interface QuoteFoldOptions {
  seconds: number;
  rate: number;
  /** Quotes delivered in one I/O batch (the event loop turns between batches). */
  batch: number;
  positions: number;
  stops: boolean;
  fx: boolean;
  /** Consecutive quotes per symbol (a feed's burst): 1 cycles over the symbols one quote each. */
  burst: number;
  /**
   * Fold what the workers publish on becoming live back into the state and report it read, as the
   * engine's follower does (default). False (`--no-read-back`): the facts stay in flight throughout.
   */
  readBack: boolean;
}

export interface QuoteFoldResult {
  quotes: number;
  seconds_simulated: number;
  cpu_ms: number;
  core_pct_at_2000_per_s: number;
  us_per_quote: number;
  rate: number;
  batch: number;
  positions: number;
  funds: number;
  symbols: number;
  stops: boolean;
  fx: boolean;
  burst: number;
  /** Published by the workers while folding (halts, stop triggers, baselines): none expected. */
  published: number;
  /** The workers still had facts in flight while quotes were folded (only with `--no-read-back`). */
  facts_in_flight: boolean;
}

const te = new TextEncoder();

/** The stream the engine reads a worker's publication back from (undefined: one it does not fold). */
const streamOf = (subject: string): StreamName | undefined => {
  const kind = parseSubject(subject)?.kind;
  return PROJECTIONS.find((p) => p.kind === kind)?.stream; // the projection table's own row
};
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Bench {
  state: EngineState;
  feed(stream: StreamName, subject: string, body: unknown, storedMs?: number): void;
  seq(stream: StreamName): number;
}

function bench(): Bench {
  const state = createState();
  const seqs = new Map<StreamName, number>();
  const seq = (stream: StreamName) => {
    const n = (seqs.get(stream) ?? 0) + 1;
    seqs.set(stream, n);
    return n;
  };
  return {
    state,
    seq,
    feed(stream, subject, body, storedMs) {
      const r = project(state, stream, subject, te.encode(JSON.stringify(body)), seq(stream), storedMs);
      if (!r.ok) throw new Error(`${stream} ${subject}: ${r.reason}`);
    },
  };
}

export async function runQuoteFold(o: QuoteFoldOptions): Promise<QuoteFoldResult> {
  const clock = manualClock(BOOK_TIME);
  const b = bench();
  const { state } = b;
  const now0 = iso(clock.now());
  if (o.fx) b.feed("QUOTES", Subjects.quote(FX_SYMBOL), fxQuote(now0));
  for (let s = 0; s < SYMBOLS; s++) {
    b.feed("REFDATA", Subjects.instrument(symbolId(s)), o.fx ? instrumentWithChecks(s) : instrument(s));
    b.feed("QUOTES", Subjects.quote(symbolId(s)), quote(s, now0));
  }
  for (let f = 0; f < FUNDS; f++) {
    const env = o.stops ? { ...envelope(f), synthetic_stop_pct: "0.5" } : envelope(f);
    b.feed("RISK_ENVELOPES", Subjects.envelopeUpdated(`f${f}`), env);
  }
  for (let i = 0; i < o.positions; i++) {
    const body = openingFill(i, SYMBOLS);
    b.feed("FILLS", Subjects.fill(String(body.fund_id), String(body.symbol)), body);
  }

  let published = 0;
  const alerter: Alerter = {
    alert: () => void published++,
    deadLetter: () => undefined,
    count: () => ({ alerts: published, deadLetters: 0 }),
  };
  const ack = { stream: "bench", seq: 0, duplicate: false } as unknown as PubAck;
  /** What the workers publish while they become live (the P&L baselines): read back below. */
  const sent: { subject: string; body: unknown; msgId: string | undefined }[] = [];
  const ctx: WorkerContext = {
    state,
    nc: undefined as never,
    js: undefined as never,
    clock,
    log: silentLogger,
    alerter,
    config: ConfigSchema.parse({}),
    publish: (subject, body, msgId) => {
      sent.push({ subject, body, msgId });
      return Promise.resolve(ack);
    },
    precheck: () => undefined,
  };
  const host = createWorkerHost(
    [createDrawdownMonitor(ctx), createLimitWarnings(ctx), createStopsWorker(ctx), createKillSwitch(ctx)],
    silentLogger,
  );
  host.ready(); // live: baselines, stop arms (stubbed publishes) are taken here, not while folding
  await turn();
  // The engine's follower folds what the workers published moments later and reports each message
  // id read back (engine.ts, onResult): so does the bench. Left in flight, every quote's drawdown
  // evaluation and stop lookup would search facts the live engine no longer holds.
  for (const m of o.readBack ? sent.splice(0) : []) {
    const stream = streamOf(m.subject);
    if (stream !== undefined) b.feed(stream, m.subject, m.body);
    ctx.facts?.readBack(m.msgId);
  }
  await turn();
  const inFlight = ctx.facts?.tracking() ?? false;

  // The stream as the engine receives it: bytes, a subject and a stored time per message.
  const quotes = Math.round(o.seconds * o.rate);
  const warm = Math.min(quotes, o.rate); // one simulated second warms the JIT, unmeasured
  const total = warm + quotes;
  const msgs: { subject: string; data: Uint8Array; at: number }[] = [];
  const stepMs = 1000 / o.rate;
  const t0 = clock.now();
  for (let k = 0; k < total; k++) {
    const at = Math.floor(t0 + 1 + k * stepMs);
    const slot = Math.floor(k / o.burst);
    const fx = o.fx && slot % SYMBOLS === SYMBOLS - 1; // the FX rate is one symbol of the stream
    const s = slot % SYMBOLS;
    const body = fx
      ? { ...fxQuote(iso(at)), bid: k % 2 ? "1.0001" : "1", ask: k % 2 ? "1.0003" : "1.0002" }
      : quote(s, iso(at), k); // a new price each quote, within a burst too
    msgs.push({ subject: Subjects.quote(String(body.symbol)), data: te.encode(JSON.stringify(body)), at });
  }
  let pubs = 0;
  ctx.publish = () => {
    pubs++;
    return Promise.resolve(ack);
  };
  const fold = async (from: number, to: number): Promise<void> => {
    for (let k = from; k < to;) {
      const end = Math.min(to, k + o.batch);
      clock.set(msgs[end - 1]!.at);
      setImmediate(() => settleAll(state)); // as the follower queues it on a burst's first quote
      for (; k < end; k++) {
        const m = msgs[k]!;
        host.beforeApply();
        const seq = b.seq("QUOTES");
        const r = project(state, "QUOTES", m.subject, m.data, seq, m.at);
        if (!r.ok) throw new Error(`quote ${m.subject}: ${r.reason}`);
        if (r.change) host.dispatch(r.change);
      }
      await turn(); // the event loop turns between I/O batches: deferred work runs here
    }
  };
  await fold(0, warm);
  published = 0;
  pubs = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const cpu0 = process.cpuUsage();
  await fold(warm, total);
  const cpu = process.cpuUsage(cpu0);
  host.stop();
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const simulated = quotes / o.rate;
  return {
    quotes,
    seconds_simulated: +simulated.toFixed(3),
    cpu_ms: +cpuMs.toFixed(1),
    core_pct_at_2000_per_s: +(((cpuMs / quotes) * 2000) / 10).toFixed(2),
    us_per_quote: +((cpuMs * 1000) / quotes).toFixed(2),
    rate: o.rate,
    batch: o.batch,
    positions: o.positions,
    funds: FUNDS,
    symbols: SYMBOLS,
    stops: o.stops,
    fx: o.fx,
    burst: o.burst,
    published: published + pubs,
    facts_in_flight: inFlight,
  };
}

export function parseArgs(argv: string[]): QuoteFoldOptions & { json: boolean } {
  const num = (name: string, dflt: number): number => {
    const i = argv.indexOf(name);
    const v = i >= 0 ? Number(argv[i + 1]) : dflt;
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
    return v;
  };
  return {
    json: argv.includes("--json"),
    seconds: num("--seconds", 10),
    rate: num("--rate", 2000),
    batch: Math.floor(num("--batch", 10)),
    positions: Math.floor(num("--positions", 10_000)),
    stops: argv.includes("--stops"),
    fx: argv.includes("--fx"),
    burst: Math.floor(num("--burst", 1)),
    readBack: !argv.includes("--no-read-back"),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { json, ...opts } = parseArgs(process.argv.slice(2));
  const r = await runQuoteFold(opts);
  if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else
    process.stdout.write(
      `quote folding: ${r.quotes} quotes (${r.seconds_simulated} s at ${r.rate}/s, batches of ${r.batch}) ` +
        `over ${r.funds} funds, ${r.symbols} symbols, ${r.positions} positions: ${r.cpu_ms} ms CPU, ` +
        `${r.us_per_quote} µs/quote, ${r.core_pct_at_2000_per_s} % of a core at 2 000 quotes/s\n`,
    );
}
