/**
 * Red team s30f: a model-based property test of the drawdown kill switch (the monitor's Halts) and
 * the drawdown gate (FUND_HALTED), against an independent reference model (exact rationals), over
 * random envelopes (capital changes, thresholds), fills (gains, losses, fees), quotes moving marks
 * (some placed exactly at a halt threshold, or one unit either side), clock moves across UTC day,
 * ISO week and month boundaries (with and without the monitor's tick), Resumes, and orders.
 * Support: ./redteam-s30f-dd-support.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DdModel,
  DdSim,
  PERIODS,
  type Period,
  Q,
  SEV,
  type Thresholds,
  startOf,
} from "./redteam-s30f-dd-support.js";

const SYMBOLS = ["AAA", "BBB"] as const;
type Sym = (typeof SYMBOLS)[number];
const CAPITALS = ["100000", "50000", "200000", "100000.5", "1000000"];
const PCTS = [undefined, "0.005", "0.01", "0.02", "0.03", "0.05"];
const FEES = ["0", "0", "0.5", "1.25", "20"];
const OPEN_QTY = ["1", "2", "5", "10", "20", "25", "50", "100"];
const CLOSE_FRACTION = ["0.5", "0.25", "0.2", "1", "1.5", "2"];

type Action =
  | { k: "quote"; sym: Sym; cents: number; spread: number }
  | { k: "boundary"; sym: Sym; period: Period; delta: -1 | 0 | 1 }
  | { k: "fill"; sym: Sym; side: "BUY" | "SELL"; q: number; off: number; fees: number }
  | { k: "envelope"; capital: number; day: number; week: number; month: number }
  | { k: "tick"; ms: number }
  | { k: "advance"; ms: number }
  | { k: "jump"; to: Period; offsetMs: number; tick: boolean }
  | { k: "resume" }
  | { k: "restart" }
  | { k: "order"; sym: Sym; kind: "buy" | "sell" | "reduce" | "cover"; q: number; r: number; keep: boolean };

const sym = fc.constantFrom(...SYMBOLS);
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("quote" as const),
      sym,
      cents: fc.integer({ min: 6000, max: 14000 }),
      spread: fc.constantFrom(0, 1, 50),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("boundary" as const),
      sym,
      period: fc.constantFrom<Period>("day", "week", "month"),
      delta: fc.constantFrom<-1 | 0 | 1>(-1, 0, 1),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("fill" as const),
      sym,
      side: fc.constantFrom<"BUY" | "SELL">("BUY", "SELL"),
      q: fc.nat(7),
      off: fc.integer({ min: -10, max: 10 }),
      fees: fc.nat(4),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("envelope" as const),
      capital: fc.nat(4),
      day: fc.nat(5),
      week: fc.nat(5),
      month: fc.nat(5),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 3000 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 3_600_000 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("jump" as const),
      to: fc.constantFrom<Period>("day", "day", "week", "month"),
      offsetMs: fc.integer({ min: -1500, max: 5000 }),
      tick: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("resume" as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("restart" as const) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant("order" as const),
      sym,
      kind: fc.constantFrom<"buy" | "sell" | "reduce" | "cover">("buy", "sell", "reduce", "cover"),
      q: fc.nat(7),
      r: fc.nat(3),
      keep: fc.boolean(),
    }),
  },
);

const START = Date.parse("2026-11-27T12:00:00.000Z"); // a Friday; Nov 30 is a Monday, Dec 1 a Tuesday

function nextStart(now: number, p: Period): number {
  const d = new Date(startOf(now, p));
  if (p === "day") return startOf(now, p) + 86_400_000;
  if (p === "week") return startOf(now, p) + 7 * 86_400_000;
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

const cents = (c: bigint): string => Q.of(c, 100n).decimal(2)!;

interface Stats {
  runs: number;
  halts: number;
  haltedRejections: number;
  reducingWhileHalted: number;
  resumes: number;
  exactBoundaryHalts: number;
  boundaryMisses: number;
  rolls: number;
}

interface Ctx {
  sim: DdSim;
  model: DdModel;
  trace: string[];
  stats: Stats;
}

function thresholdsOf(a: { day: number; week: number; month: number }): Thresholds {
  return { day: PCTS[a.day], week: PCTS[a.week], month: PCTS[a.month] };
}

function markOf(m: DdModel, s: Sym): Q {
  return m.marks.get(s) ?? Q.dec("100");
}

/** Runs one action on the engine and the model; returns a mismatch description or undefined. */
function step(c: Ctx, a: Action): string | undefined {
  const { sim, model } = c;
  switch (a.k) {
    case "quote": {
      const spread = BigInt(a.spread);
      const mid = BigInt(a.cents);
      const bid = cents(mid - spread);
      const ask = cents(mid + spread);
      c.trace.push(`quote ${a.sym} ${bid}/${ask}`);
      sim.quote(a.sym, bid, ask);
      model.quote(a.sym, Q.of(mid, 100n));
      if (model.qty(a.sym).sign() !== 0) model.evaluate();
      break;
    }
    case "boundary": {
      const qty = model.qty(a.sym);
      const t = model.thresholds[a.period];
      const base = model.bases.get(a.period)!;
      if (qty.sign() === 0 || t === undefined || base.equity.sign() <= 0) return undefined;
      // the mark at which the period's P&L is exactly −pct × equity at its start (± 1e-6)
      const target = base.pnl.minus(Q.dec(t).times(base.equity)).plus(Q.of(BigInt(a.delta), 1_000_000n));
      const mark = markOf(model, a.sym).plus(target.minus(model.pnl()).div(qty));
      const s = mark.decimal(12);
      if (s === undefined || mark.sign() <= 0 || mark.cmp(Q.dec("100000")) > 0) return undefined;
      c.trace.push(`quote ${a.sym} ${s}/${s} (boundary ${a.period} ${a.delta})`);
      sim.quote(a.sym, s, s);
      model.quote(a.sym, mark);
      const halted = model.evaluate();
      if (a.delta === 0 && halted.includes(SEV[a.period])) c.stats.exactBoundaryHalts++;
      if (a.delta === 1) c.stats.boundaryMisses++;
      break;
    }
    case "fill": {
      const pos = model.qty(a.sym);
      const dir = a.side === "BUY" ? 1 : -1;
      let qty: string;
      if (pos.sign() === 0 || pos.sign() === dir) qty = OPEN_QTY[a.q]!;
      else {
        const r = CLOSE_FRACTION[a.q % CLOSE_FRACTION.length]!;
        const v = pos.abs().times(Q.dec(r)).decimal(12);
        if (v === undefined || v === "0") return undefined;
        qty = v;
      }
      const m = markOf(model, a.sym);
      const p = m.times(Q.of(BigInt(100 + a.off), 100n));
      const price = cents((p.n * 100n) / p.d); // truncated to cents
      const fees = FEES[a.fees]!;
      c.trace.push(`fill ${a.sym} ${a.side} ${qty} @ ${price} fees ${fees}`);
      sim.fill(a.sym, a.side, qty, price, fees);
      model.fill(a.sym, a.side, qty, price, fees);
      model.evaluate();
      break;
    }
    case "envelope": {
      const capital = CAPITALS[a.capital]!;
      const t = thresholdsOf(a);
      c.trace.push(`envelope capital ${capital} ${JSON.stringify(t)}`);
      sim.envelope(capital, t);
      model.capital = Q.dec(capital);
      model.thresholds = t;
      model.evaluate();
      break;
    }
    case "tick":
      c.trace.push(`+${a.ms}ms tick`);
      sim.clock.advance(a.ms);
      model.setClock(sim.clock.now());
      sim.tick();
      model.evaluate();
      break;
    case "advance":
      c.trace.push(`+${a.ms}ms`);
      sim.clock.advance(a.ms);
      model.setClock(sim.clock.now());
      break;
    case "jump": {
      let to = nextStart(sim.clock.now(), a.to) + a.offsetMs;
      if (to <= sim.clock.now()) to = nextStart(nextStart(sim.clock.now(), a.to), a.to) + a.offsetMs;
      c.trace.push(`clock → ${new Date(to).toISOString()}${a.tick ? " tick" : ""}`);
      c.stats.rolls++;
      sim.clock.set(to);
      model.setClock(to);
      if (a.tick) {
        sim.tick();
        model.evaluate();
      }
      break;
    }
    case "restart":
      c.trace.push("restart (rebuilt from the streams)");
      sim.restart();
      model.evaluate(); // onReady evaluates every fund
      break;
    case "resume":
      c.trace.push("resume");
      c.stats.resumes += model.active.size > 0 ? 1 : 0;
      sim.resume();
      model.resume();
      break;
    case "order": {
      const pos = model.qty(a.sym);
      let side: "BUY" | "SELL";
      let qty: string;
      if (a.kind === "buy" || a.kind === "sell") {
        side = a.kind === "buy" ? "BUY" : "SELL";
        qty = OPEN_QTY[a.q]!;
      } else {
        side = a.kind === "reduce" ? "SELL" : "BUY";
        const fr = ["1", "0.5", "0.25", "0.2"][a.r]!;
        const v = pos.abs().times(Q.dec(fr)).decimal(12);
        qty = v === undefined || v === "0" ? OPEN_QTY[a.q]! : v;
      }
      const price = markOf(model, a.sym).decimal(12) ?? "100";
      const want = model.expect(a.sym, side, qty);
      if (want.code === "FUND_HALTED") c.stats.haltedRejections++;
      else if (model.haltedBy() !== undefined) c.stats.reducingWhileHalted++;
      const d = sim.check(a.sym, side, qty, price, a.keep);
      if (d.approved && a.keep) model.open(a.sym, side, qty);
      c.trace.push(
        `order ${side} ${a.sym} ${qty} @ ${price} (pos ${pos.toString()})  → ${d.approved ? (a.keep ? "approved, left open" : "approved") : `${d.rejection_code} ${JSON.stringify(d.details)}`}`,
      );
      const got = d.approved ? "" : d.rejection_code;
      if (got !== want.code)
        return `decision ${got || "approved"}, model ${want.code || "approved"} (${d.reason})`;
      if (want.severity !== undefined && d.details["severity"] !== want.severity)
        return `FUND_HALTED severity ${d.details["severity"]}, model ${want.severity}`;
      break;
    }
  }
  return compare(c, a);
}

function compare(c: Ctx, a: Action): string | undefined {
  const { sim, model } = c;
  const active = sim.activeHalts();
  const want = [...model.active.keys()].sort();
  if (JSON.stringify(active) !== JSON.stringify(want))
    return `active halts ${JSON.stringify(active)}, model ${JSON.stringify(want)} (model P&L ${model.pnl().toString()}, NAV ${model.nav().toString()}, bases ${basesText(model)})`;
  const pub = sim.haltsPublished();
  for (const sev of Object.values(SEV))
    if ((pub[sev] ?? 0) !== model.published[sev])
      return `${sev} published ${pub[sev] ?? 0} times, model ${model.published[sev]}`;
  for (const p of PERIODS) {
    const got = sim.baseline(p);
    const m = model.bases.get(p)!;
    if (got === undefined) return `no ${p} baseline`;
    if (got.start > m.start) return `${p} baseline starts ${new Date(got.start).toISOString()} after model's`;
    if (got.start === m.start && Q.dec(got.equity).cmp(m.equity) !== 0)
      return `${p} baseline equity ${got.equity}, model ${m.equity.toString()}`;
    if (got.start < m.start && a.k === "tick") return `${p} baseline not rolled at a tick`;
  }
  return undefined;
}

function basesText(m: DdModel): string {
  return PERIODS.map((p) => {
    const b = m.bases.get(p)!;
    return `${p}@${new Date(b.start).toISOString().slice(0, 10)} eq ${b.equity.toString()} pnl ${b.pnl.toString()}`;
  }).join("; ");
}

interface Run {
  capital: number;
  t: { day: number; week: number; month: number };
  startOffsetMs: number;
  actions: Action[];
}

function run(r: Run, stats: Stats): { failure?: string; trace: string[]; model: DdModel } {
  const start = START + r.startOffsetMs;
  const sim = new DdSim(start);
  const t = thresholdsOf(r.t);
  const capital = CAPITALS[r.capital]!;
  sim.envelope(capital, t);
  const model = new DdModel(start, capital, t);
  const c: Ctx = {
    sim,
    model,
    stats,
    trace: [`start ${new Date(start).toISOString()} capital ${capital} ${JSON.stringify(t)}`],
  };
  const first = compare(c, { k: "resume" });
  if (first) return { failure: first, trace: c.trace, model };
  for (const a of r.actions) {
    const f = step(c, a);
    if (f) return { failure: f, trace: c.trace, model };
  }
  return { trace: c.trace, model };
}

const runArb: fc.Arbitrary<Run> = fc.record({
  capital: fc.nat(4),
  t: fc.record({ day: fc.integer({ min: 1, max: 5 }), week: fc.nat(5), month: fc.nat(5) }),
  startOffsetMs: fc.integer({ min: 0, max: 4 * 86_400_000 }),
  actions: fc.array(action, { minLength: 5, maxLength: 45 }),
});

describe("red team s30f: drawdown kill switch and gate against a reference model", () => {
  it("given random envelopes, fills, quotes, clock moves across UTC periods, resumes and orders, then halts, decisions and baselines match the contract's model", () => {
    const stats: Stats = {
      runs: 0,
      halts: 0,
      haltedRejections: 0,
      reducingWhileHalted: 0,
      resumes: 0,
      exactBoundaryHalts: 0,
      boundaryMisses: 0,
      rolls: 0,
    };
    fc.assert(
      fc.property(runArb, (r) => {
        const out = run(r, stats);
        stats.runs++;
        stats.halts += Object.values(out.model.published).reduce((x, y) => x + y, 0);
        if (out.failure !== undefined) throw new Error(`${out.failure}\n  ${out.trace.join("\n  ")}`);
      }),
      {
        seed: Number(process.env["S30F_SEED"] ?? 0x5330f),
        numRuns: Number(process.env["S30F_RUNS"] ?? 1500),
        endOnFailure: false,
      },
    );
    console.log(`s30f drawdown model: ${JSON.stringify(stats)}`);
    expect(stats.runs).toBeGreaterThan(0);
    expect(stats.halts).toBeGreaterThan(50); // the runs do reach the thresholds
  });
});
