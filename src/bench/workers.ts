/**
 * What each worker costs per quote and per fill at a given number of open positions, in process
 * (no bus: publishes are counted, not sent). `node dist/bench/workers.js [positions] [events]`.
 */
import type { PubAck } from "@nats-io/jetstream";
import { DEFAULTS } from "../config/index.js";
import { Subjects } from "../contract/subjects.js";
import { silentLogger } from "../obs/log.js";
import { createState, project, type EngineState } from "../state/index.js";
import { iso, manualClock } from "../time/clock.js";
import {
  createDrawdownMonitor,
  createKillSwitch,
  createStopsWorker,
  type WorkerContext,
} from "../workers/index.js";
import type { Alerter } from "../engine/alerts.js";

const positions = Number(process.argv[2] ?? 10_000);
const events = Number(process.argv[3] ?? 20_000);
const SYMBOLS = Number(process.argv[4] ?? 1000);
const FUNDS = 50;
const perFund = Math.ceil(positions / FUNDS);
/** Fund f's s-th holding: funds hold overlapping slices of the symbol universe. */
const sym = (f: number, s: number) => (f * 37 + s) % SYMBOLS;
const te = new TextEncoder();
const clock = manualClock("2026-11-20T14:00:00.000Z");
const seqs = new Map<string, number>();
function feed(state: EngineState, stream: Parameters<typeof project>[1], subject: string, body: unknown) {
  const seq = (seqs.get(stream) ?? 0) + 1;
  seqs.set(stream, seq);
  const r = project(state, stream, subject, te.encode(JSON.stringify(body)), seq);
  if (!r.ok) throw new Error(r.reason);
}

const state = createState();
for (let f = 0; f < FUNDS; f++) {
  feed(state, "RISK_ENVELOPES", Subjects.envelopeUpdated(`f${f}`), {
    fund_id: `f${f}`,
    version: 1,
    capital: "100000000",
    allowed_brokers: ["paper"],
    allowed_order_types: ["MARKET", "LIMIT"],
    daily_loss_halt_pct: "0.03",
    weekly_loss_halt_pct: "0.06",
    monthly_loss_halt_pct: "0.1",
    synthetic_stop_pct: "0.1",
  });
}
let fillN = 0;
const fill = (f: number, s: number, side: string, qty: string, price: string) =>
  feed(state, "FILLS", Subjects.fill(`f${f}`, `S${s}`), {
    fill_id: `x${++fillN}`,
    order_id: `o${fillN}`,
    fund_id: `f${f}`,
    broker: "paper",
    symbol: `S${s}`,
    side,
    quantity: qty,
    price,
    fees: "0.1",
    timestamp: iso(clock.now()),
  });
for (let f = 0; f < FUNDS; f++) for (let s = 0; s < perFund; s++) fill(f, s, "BUY", "10", "100");
for (let s = 0; s < perFund; s++)
  feed(state, "QUOTES", Subjects.quote(`S${s}`), {
    symbol: `S${s}`,
    bid: "100",
    ask: "100.02",
    timestamp: iso(clock.now()),
  });

let published = 0;
const ack = Promise.resolve({ stream: "x", seq: 1, duplicate: false, domain: "" } as unknown as PubAck);
const alerter: Alerter = {
  alert: () => void published++,
  deadLetter: () => undefined,
  count: () => ({ alerts: 0, deadLetters: 0 }),
};
const ctx: WorkerContext = {
  state,
  clock,
  log: silentLogger,
  alerter,
  config: DEFAULTS,
  nc: undefined as never,
  js: undefined as never,
  publish: (subject, body) => {
    published++;
    // stop events come back from RISK_CONTROL as they would through the follower
    if (subject.startsWith("mts.v1.risk.stop.")) feed(state, "RISK_CONTROL", subject, body);
    return ack;
  },
  precheck: () => undefined, // quotes here never cross a stop
};
const drawdown = createDrawdownMonitor(ctx);
const stops = createStopsWorker(ctx);
const kill = createKillSwitch(ctx);
stops.sweep(); // arm everything once
drawdown.evaluateAll();

function time(label: string, n: number, f: (i: number) => void): number {
  for (let i = 0; i < Math.min(n, 2000); i++) f(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f(i);
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  console.error(`${label}: ${us.toFixed(2)} µs`);
  return +us.toFixed(2);
}
const px = (i: number) => (100 + ((i % 7) - 3) * 0.01).toFixed(2);
const quote = (i: number) => {
  const s = i % SYMBOLS;
  feed(state, "QUOTES", Subjects.quote(`S${s}`), {
    symbol: `S${s}`,
    bid: px(i),
    ask: (Number(px(i)) + 0.02).toFixed(2),
    timestamp: iso(clock.now()),
  });
  return s;
};
const out = {
  open_positions: FUNDS * perFund,
  funds: FUNDS,
  symbols: SYMBOLS,
  holders_per_symbol: +((FUNDS * perFund) / SYMBOLS).toFixed(1),
  per_quote_us: {
    projection: time("quote: projection", events, (i) => quote(i)),
    drawdown: time("quote: projection + drawdown", events, (i) =>
      drawdown.onChange!({ kind: "quote", symbol: `S${quote(i)}` }),
    ),
    stops: time("quote: projection + stops", events, (i) =>
      stops.onChange!({ kind: "quote", symbol: `S${quote(i)}` }),
    ),
    kill_switch: time("quote: kill switch", events, () => kill.onChange!({ kind: "quote", symbol: "S0" })),
  },
  per_fill_us: {} as Record<string, number>,
};
let k = 0;
const nextFill = () => {
  const f = k % FUNDS;
  const s = sym(f, (k >> 3) % perFund);
  fill(f, s, k++ % 2 ? "BUY" : "SELL", "1", px(k));
  return { f: `f${f}`, s: `S${s}` };
};
out.per_fill_us = {
  projection: time("fill: projection", events, () => void nextFill()),
  drawdown: time("fill: projection + drawdown", events, () =>
    drawdown.onChange!({ kind: "fill", fund: nextFill().f, symbol: "" }),
  ),
  stops: time("fill: projection + stops", events, () => {
    const x = nextFill();
    stops.onChange!({ kind: "fill", fund: x.f, symbol: x.s });
  }),
  sweeper_full_pass: time("sweeper: one pass over every position", 5, () => void stops.sweep()),
  // the stops worker's 1 s tick (triggered stops settled, held-back stops re-evaluated), and the
  // full review on becoming live (every armed stop against its fresh mark)
  stops_tick: time("stops tick (watch, review, poll)", 20, () => void stops.tick!()),
  stops_review_full_pass: time(
    "stops review: every stop (on becoming live)",
    5,
    () => void stops.review(true),
  ),
};
console.log(JSON.stringify({ ...out, publishes: published }));
