/**
 * The read-back of the engine's own decisions, per record, in-process (no bus): what the follower
 * spends on one of its own acknowledged records in each mode, and what a non-owner's parsing fold
 * costs (for scale). Decisions are made by the real decider on a one-fund state; CPU time by
 * process.cpuUsage over batches, the modes alternated.
 *
 *   node --expose-gc dist/facts/measure-readback-micro.js [--n 20000] [--rounds 6]
 */
import { parseArgs } from "node:util";
import { toWire } from "../contract/wire.js";
import { Subjects } from "../contract/subjects.js";
import { DETERMINISTIC_GATES, createPipeline } from "../gates/index.js";
import { createDecider } from "../service/decide.js";
import { createState, type EngineState, project } from "../state/index.js";
import { applyEnvelope } from "../state/projections/envelopes.js";
import { applyQuote } from "../state/projections/market.js";
import { EnvelopeSchema, QuoteSchema } from "../contract/index.js";
import { manualClock } from "../time/clock.js";
import { type ReadBack, createOwnDecisions } from "./decisions.js";
import type { DecisionRecord } from "../contract/records.js";

const { values } = parseArgs({
  options: { n: { type: "string", default: "20000" }, rounds: { type: "string", default: "6" } },
});
const N = Number(values.n);
const ROUNDS = Number(values.rounds);
const NOW = Date.parse("2026-11-21T14:30:00.000Z");
const te = new TextEncoder();

function decided(n: number): { state: EngineState; texts: string[]; records: DecisionRecord[] } {
  const state = createState();
  const env = EnvelopeSchema.parse({
    fund_id: "alpha",
    version: 1,
    capital: "1000000000",
    allowed_brokers: ["paper"],
    allowed_order_types: ["LIMIT"],
  });
  applyEnvelope(state, env, toWire(env));
  applyQuote(
    state,
    QuoteSchema.parse({
      symbol: "AAPL",
      bid: "99.99",
      ask: "100.01",
      timestamp: new Date(NOW).toISOString(),
    }),
  );
  const clock = manualClock(NOW);
  let id = 0;
  const decider = createDecider({
    state,
    pipeline: createPipeline(DETERMINISTIC_GATES),
    clock,
    instance: "m",
    ready: () => true,
    nextId: () => `d-${++id}`,
  });
  const texts: string[] = [];
  const records: DecisionRecord[] = [];
  for (let i = 0; i < n; i++) {
    clock.advance(1);
    const e = decider.decide({
      raw: {
        order_id: `o-${i}`,
        idempotency_key: `k-${i}`,
        fund_id: "alpha",
        broker: "paper",
        symbol: "AAPL",
        side: i % 2 ? "BUY" : "SELL",
        order_type: "LIMIT",
        quantity: "1",
        limit_price: "100",
      },
    });
    if (e instanceof Promise) throw new Error("sync gates expected");
    texts.push(JSON.stringify(toWire(e.record)));
    records.push(e.record);
  }
  return { state, texts, records };
}

type Mode = ReadBack | "parse";

function once(mode: Mode): number {
  const { state, texts, records } = decided(N);
  const own = createOwnDecisions({ state, readBack: mode === "parse" ? "apply" : mode });
  const subject = Subjects.decision("alpha");
  const data = texts.map((t) => te.encode(t));
  if (mode !== "parse") {
    texts.forEach((t, i) => own.pending(t, records[i]!));
    texts.forEach((t, i) => own.acked(t, i + 1));
  }
  // run with --expose-gc: the garbage of deciding is collected before the measured loop
  (globalThis as { gc?: () => void }).gc?.();
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const seq = i + 1;
    const r =
      mode === "parse"
        ? project(state, "RISK_DECISIONS", subject, data[i]!, seq)
        : (own.recognise("RISK_DECISIONS", subject, seq, data[i]!) ??
          project(state, "RISK_DECISIONS", subject, data[i]!, seq));
    if (!r.ok) throw new Error(r.reason);
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / N;
}

const out: Record<Mode, number[]> = { skip: [], apply: [], parse: [] };
once("apply"); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  const order: Mode[] = r % 2 ? ["skip", "apply", "parse"] : ["parse", "apply", "skip"];
  for (const m of order) out[m].push(once(m));
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
process.stdout.write(
  JSON.stringify(
    {
      method: "µs CPU per own record read back (process.cpuUsage), N records a batch, modes alternated",
      n: N,
      rounds: ROUNDS,
      median_us: { skip: med(out.skip), apply: med(out.apply), parse: med(out.parse) },
      samples: out,
    },
    null,
    2,
  ) + "\n",
);
