/**
 * The idempotency-window soak (issue 11: "RSS after 1 000 000 decisions within the window against
 * after 10 000"), in process with the engine's own decider and state, as pipeline.ts builds them:
 * the benchmark book (50 funds, 1 000 symbols, 10 000 positions), then `decisions` checks on a
 * manual clock (1 ms per 5 decisions, so all of them stay within the 24 h window), each approved
 * order then cancelled by an OMS event, so its reservation is released and what stays is what the
 * engine retains per decision (idempotency and order records, indexes). RSS and heap after a full
 * GC at `first` decisions and at `decisions`; the growth per decision in bytes.
 *
 * `node --expose-gc dist/bench/soakrun.js '{"decisions":1000000,"first":10000}'`; prints JSON.
 * (A `soak.js` beside it, when another change supplies one, is used by the bench instead.)
 */
import { fileURLToPath } from "node:url";
import { Subjects } from "../contract/subjects.js";
import { createPipeline, DETERMINISTIC_GATES } from "../gates/index.js";
import { createDecider } from "../service/decide.js";
import { iso, manualClock } from "../time/clock.js";
import { BOOK_TIME, SYMBOLS, order, quote, symbolId } from "./book.js";
import { buildState } from "./pipeline.js";
import { emit } from "./util.js";

export interface SoakOptions {
  decisions: number;
  first: number;
}

export interface SoakResult {
  decisions: number;
  first: number;
  approved: number;
  rss_first_mb: number;
  rss_last_mb: number;
  heap_first_mb: number;
  heap_last_mb: number;
  /** (RSS at `decisions` − RSS at `first`) / (decisions − first). */
  rss_bytes_per_decision: number;
  heap_bytes_per_decision: number;
  seconds: number;
  order_records_held: number;
}

const MB = 2 ** 20;

export function runSoak(o: SoakOptions): SoakResult {
  const clock = manualClock(BOOK_TIME);
  const { state, feed } = buildState({ mode: "pipeline", positions: 10_000 }, clock);
  let id = 0;
  const decider = createDecider({
    state,
    pipeline: createPipeline(DETERMINISTIC_GATES),
    clock,
    instance: "soak",
    ready: () => true,
    nextId: () => `d${++id}`,
  });
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --expose-gc");
  const sample = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return { rss: m.rss, heap: m.heapUsed };
  };
  const quotedAt = new Float64Array(SYMBOLS).fill(clock.now());
  const t0 = performance.now();
  let approved = 0;
  let first = { rss: 0, heap: 0 };
  for (let i = 0; i < o.decisions; i++) {
    if (i % 5 === 0) clock.advance(1);
    const raw = order("soak", i);
    const s = Number(String(raw.symbol).slice(1));
    const now = clock.now();
    if (now - quotedAt[s]! > 2000) {
      feed("QUOTES", Subjects.quote(symbolId(s)), quote(s, iso(now), i));
      quotedAt[s] = now;
    }
    const e = decider.decide({ raw });
    if (e instanceof Promise) throw new Error("an asynchronous gate is on; the soak needs sync gates");
    if (e.decision.approved) {
      approved++;
      const fund = String(raw.fund_id);
      feed("OMS_ORDERS", Subjects.orderEvent("cancelled", fund), {
        order_id: raw.order_id,
        fund_id: fund,
        event: "cancelled",
        at: iso(now),
      });
    }
    if (i + 1 === o.first) first = sample();
    if (i > 0 && i % 200_000 === 0) process.stderr.write(`[soak] ${i} of ${o.decisions}\n`);
  }
  const last = sample();
  // Kept reachable until after the last sample (else the GC would collect the very state measured).
  const held = state.orders.size + (decider ? 0 : 1);
  const n = Math.max(1, o.decisions - o.first);
  return {
    decisions: o.decisions,
    first: o.first,
    approved,
    rss_first_mb: Math.round(first.rss / MB),
    rss_last_mb: Math.round(last.rss / MB),
    heap_first_mb: Math.round(first.heap / MB),
    heap_last_mb: Math.round(last.heap / MB),
    rss_bytes_per_decision: Math.round((last.rss - first.rss) / n),
    heap_bytes_per_decision: Math.round((last.heap - first.heap) / n),
    seconds: +((performance.now() - t0) / 1000).toFixed(1),
    order_records_held: held,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const o = JSON.parse(process.argv[2] ?? "{}") as Partial<SoakOptions>;
  emit(runSoak({ decisions: o.decisions ?? 1_000_000, first: o.first ?? 10_000 }));
}
