/**
 * Quote conflation and delta revaluation: a state that folds quotes lazily (marks at once, the
 * holders' aggregates as qty × m × Δmid at settle) reads exactly what eager revaluation from scratch
 * gives, at every read and at the end, on random histories of quotes (two-sided, one-sided, late,
 * FX rates), fills (long, short, flat again), reservations, refdata changes (multiplier, currency,
 * sector) and burst boundaries; and its digest equals the eager one's and a rebuild's.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Subjects, type StreamName } from "../../src/contract/subjects.js";
import { type Dec, ZERO, canon } from "../../src/decimal/index.js";
import {
  type EngineState,
  type FundState,
  createState,
  project,
  revalue,
  revalueDeferred,
  settle,
  settleAll,
  stateDigest,
} from "../../src/state/index.js";
import { NOW, isoAt } from "./fixtures.js";

const te = new TextEncoder();
const FUNDS = ["a1", "a2"];
const SYMBOLS = ["X", "Y", "Z"];
const FX = "EUR-USD";

type Msg = { stream: StreamName; subject: string; body: Record<string, unknown> };
type Step = { kind: "msg"; msg: Msg } | { kind: "settle" } | { kind: "read"; fund: string };

const decimal = (maxDp: number, maxInt: number) =>
  fc
    .tuple(fc.integer({ min: 0, max: maxInt }), fc.integer({ min: 0, max: maxDp }), fc.nat(9999))
    .map(([i, dp, f]) => (dp === 0 ? String(i) : `${i}.${String(f).padStart(4, "0").slice(0, dp)}`));
const positive = (maxDp: number, maxInt: number) =>
  decimal(maxDp, maxInt).filter((s) => !/^0(\.0*)?$/.test(s));

const quoteArb = fc
  .record({
    symbol: fc.constantFrom(...SYMBOLS, FX),
    bid: decimal(3, 200),
    spread: decimal(2, 3),
    sides: fc.constantFrom("two", "two", "two", "bid0", "ask0"),
    late: fc.boolean(),
  })
  .map((q) => ({ ...q, kind: "quote" as const }));
const fillArb = fc.record({
  kind: fc.constant("fill" as const),
  fund: fc.constantFrom(...FUNDS),
  symbol: fc.constantFrom(...SYMBOLS),
  side: fc.constantFrom("BUY", "SELL"),
  // small round quantities often take a book back to flat (and open it again)
  qty: fc.oneof(positive(2, 30), fc.constantFrom("1", "2")),
  // now and then a transfer in at 0: a book valued at a cost of 0 until its first mark
  price: fc.oneof({ arbitrary: positive(2, 150), weight: 9 }, { arbitrary: fc.constant("0"), weight: 1 }),
});
const reserveArb = fc.record({
  kind: fc.constant("reserve" as const),
  fund: fc.constantFrom(...FUNDS),
  symbol: fc.constantFrom(...SYMBOLS),
  side: fc.constantFrom("BUY", "SELL"),
  qty: positive(1, 20),
  price: positive(2, 150),
});
const refArb = fc.record({
  kind: fc.constant("ref" as const),
  symbol: fc.constantFrom(...SYMBOLS),
  multiplier: fc.constantFrom(undefined, "1", "10", "0.5"),
  currency: fc.constantFrom(undefined, undefined, "EUR"),
  sector: fc.constantFrom(undefined, "tech", "energy"),
});
const eventArb = fc.oneof(
  { weight: 8, arbitrary: quoteArb },
  { weight: 3, arbitrary: fillArb },
  { weight: 1, arbitrary: reserveArb },
  { weight: 1, arbitrary: refArb },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("settle" as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("read" as const), fund: fc.constantFrom(...FUNDS) }),
  },
);

type Event = typeof eventArb extends fc.Arbitrary<infer T> ? T : never;

const plus = (a: string, b: string): string => canon(ZERO.plus(a).plus(b));

/** The history: envelopes and refdata first, then the events, as stream messages and reader steps. */
function toEvents(evs: Event[]): Step[] {
  const steps: Step[] = [];
  const msg = (stream: StreamName, subject: string, body: Record<string, unknown>) =>
    steps.push({ kind: "msg", msg: { stream, subject, body } });
  for (const f of FUNDS)
    msg("RISK_ENVELOPES", Subjects.envelopeUpdated(f), {
      fund_id: f,
      version: 1,
      capital: "1000000",
      allowed_brokers: ["paper"],
      allowed_order_types: ["MARKET", "LIMIT"],
    });
  for (const s of SYMBOLS)
    msg("REFDATA", Subjects.instrument(s), { symbol: s, asset_class: "equity", sector: "tech" });
  let t = NOW;
  let n = 0;
  for (const e of evs) {
    n++;
    switch (e.kind) {
      case "quote": {
        t += 1;
        // one-sided quotes keep the other side; a quote needs at least one side above 0
        const two = plus(e.bid, e.spread) === "0" ? "0.01" : plus(e.bid, e.spread);
        const bid =
          e.sides === "bid0" ? "0" : e.sides === "ask0" && plus(e.bid, "0") === "0" ? "0.01" : e.bid;
        const ask = e.sides === "ask0" ? "0" : two;
        msg("QUOTES", Subjects.quote(e.symbol), {
          symbol: e.symbol,
          bid,
          ask,
          timestamp: isoAt(e.late ? t - 5 : t),
        });
        break;
      }
      case "fill":
        msg("FILLS", Subjects.fill(e.fund, e.symbol), {
          fill_id: `x${n}`,
          order_id: `xo${n}`,
          fund_id: e.fund,
          broker: "paper",
          symbol: e.symbol,
          side: e.side,
          quantity: e.qty,
          price: e.price,
          fees: "0",
          timestamp: isoAt(NOW),
        });
        break;
      case "reserve":
        msg("RISK_DECISIONS", Subjects.decision(e.fund), {
          decision_id: `d${n}`,
          instance: "t",
          fund_id: e.fund,
          at_ms: NOW,
          idempotency_key: `k${n}`,
          fingerprint: `fp${n}`,
          recorded: true,
          counted: false,
          replayed: false,
          reservation: {
            order_id: `o${n}`,
            symbol: e.symbol,
            side: e.side,
            quantity: e.qty,
            price: e.price,
            expires_at_ms: NOW + 86_400_000,
          },
          decision: {
            order_id: `o${n}`,
            approved: true,
            rejecting_gate: "",
            rejection_code: "",
            reason: "approved",
            details: {},
            envelope_id: `${e.fund}@v1`,
            decided_at: isoAt(NOW),
          },
        });
        break;
      case "ref":
        msg("REFDATA", Subjects.instrument(e.symbol), {
          symbol: e.symbol,
          asset_class: "equity",
          ...(e.sector === undefined ? {} : { sector: e.sector }),
          ...(e.multiplier === undefined ? {} : { multiplier: e.multiplier }),
          ...(e.currency === undefined ? {} : { currency: e.currency }),
        });
        break;
      case "settle":
        steps.push({ kind: "settle" });
        break;
      case "read":
        steps.push({ kind: "read", fund: e.fund });
        break;
    }
  }
  return steps;
}

class Folder {
  readonly state: EngineState = createState();
  private readonly seqs = new Map<StreamName, number>();
  apply(m: Msg): void {
    const seq = (this.seqs.get(m.stream) ?? 0) + 1;
    this.seqs.set(m.stream, seq);
    const r = project(this.state, m.stream, m.subject, te.encode(JSON.stringify(m.body)), seq);
    expect(r, `${m.subject} ${JSON.stringify(m.body)}`).toMatchObject({ ok: true });
  }
}

/** Eager from scratch: after every message, every book is revalued (the computation before conflation). */
function revalueAll(state: EngineState): void {
  for (const f of state.funds.values()) for (const b of f.books.values()) revalue(state, f, b);
}

const fmt = (m: Map<string, Dec>) =>
  [...m]
    .filter(([, v]) => !v.eq(ZERO))
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${canon(v)}`)
    .join(",");

/** What a reader of the fund sees: its aggregates and every book's contribution. */
function view(f: FundState): string {
  const a = f.agg;
  const books = [...f.books.values()]
    .sort((x, y) => (x.symbol < y.symbol ? -1 : 1))
    .map((b) => {
      const c = b.contrib;
      return `${b.symbol}:${[c.mv, c.valCost, c.valRealized, c.valFees, c.longExt, c.shortExt, c.exposure].map(canon).join("/")}`;
    });
  return [a.mv, a.cost, a.realized, a.fees, a.gross, a.netLong, a.netShort]
    .map(canon)
    .concat(
      fmt(a.sector),
      fmt(a.assetClass),
      fmt(a.currency),
      [...a.unpriced].sort().join(","),
      books.join(" "),
    )
    .join("|");
}

/** The aggregates as exact sums of the books' contributions (what the incremental sums must equal). */
function fromScratch(f: FundState): string {
  let mv = ZERO;
  let gross = ZERO;
  let netLong = ZERO;
  let netShort = ZERO;
  const sector = new Map<string, Dec>();
  const add = (m: Map<string, Dec>, k: string | undefined, d: Dec) =>
    m.set(k ?? "", (m.get(k ?? "") ?? ZERO).plus(d));
  for (const b of f.books.values()) {
    const c = b.contrib;
    mv = mv.plus(c.mv);
    gross = gross.plus(c.exposure);
    netLong = netLong.plus(c.longExt);
    netShort = netShort.plus(c.shortExt);
    add(sector, c.cat.sector, c.exposure);
  }
  return [mv, gross, netLong, netShort].map(canon).concat(fmt(sector)).join("|");
}
const incremental = (f: FundState): string =>
  [f.agg.mv, f.agg.gross, f.agg.netLong, f.agg.netShort].map(canon).concat(fmt(f.agg.sector)).join("|");

describe("quote conflation", () => {
  it("given random quote bursts among fills, reservations and refdata, when folded lazily with deltas, then every read, the end state and the digest equal eager revaluation's", () => {
    fc.assert(
      fc.property(fc.array(eventArb, { minLength: 1, maxLength: 80 }), (evs) => {
        const steps = toEvents(evs);
        const lazy = new Folder();
        const eager = new Folder();
        let reads = 0;
        for (const s of steps) {
          if (s.kind === "msg") {
            lazy.apply(s.msg);
            eager.apply(s.msg);
            revalueAll(eager.state);
          } else if (s.kind === "settle") settleAll(lazy.state);
          else {
            const lf = lazy.state.funds.get(s.fund);
            const ef = eager.state.funds.get(s.fund);
            if (!lf || !ef) continue;
            settle(lf);
            expect(view(lf)).toBe(view(ef));
            reads++;
          }
        }
        settleAll(lazy.state);
        for (const f of FUNDS) {
          const lf = lazy.state.funds.get(f)!;
          expect(view(lf)).toBe(view(eager.state.funds.get(f)!));
          expect(incremental(lf)).toBe(fromScratch(lf));
        }
        // a rebuild folds the same messages with no settle on the way
        const rebuilt = new Folder();
        for (const s of steps) if (s.kind === "msg") rebuilt.apply(s.msg);
        expect(stateDigest(lazy.state)).toBe(stateDigest(eager.state));
        expect(stateDigest(rebuilt.state)).toBe(stateDigest(lazy.state));
        settleAll(rebuilt.state);
        for (const f of FUNDS)
          expect(view(rebuilt.state.funds.get(f)!)).toBe(view(eager.state.funds.get(f)!));
        // a rebuild defers revaluation: each book it touched valued once, at the end
        const deferred = new Folder();
        deferred.state.deferred = new Set();
        for (const s of steps) if (s.kind === "msg") deferred.apply(s.msg);
        revalueDeferred(deferred.state);
        expect(stateDigest(deferred.state)).toBe(stateDigest(eager.state));
        for (const f of FUNDS) {
          const df = deferred.state.funds.get(f)!;
          expect(view(df)).toBe(view(eager.state.funds.get(f)!));
          expect(incremental(df)).toBe(fromScratch(df));
        }
        return reads >= 0;
      }),
      { numRuns: 300 },
    );
  });

  it("given a burst of quotes for one symbol, when it is settled, then each holder is revalued once, at the last mark", () => {
    const f = new Folder();
    for (const s of toEvents([
      { kind: "fill", fund: "a1", symbol: "X", side: "BUY", qty: "10", price: "100" },
      { kind: "fill", fund: "a2", symbol: "X", side: "SELL", qty: "4", price: "100" },
    ]))
      if (s.kind === "msg") f.apply(s.msg);
    settleAll(f.state);
    const a1 = f.state.funds.get("a1")!;
    const a2 = f.state.funds.get("a2")!;
    const c1 = a1.books.get("X")!.contrib;
    const before = [c1.mv, c1.longExt, c1.shortExt, c1.exposure]; // the contribution's values
    for (let i = 1; i <= 50; i++)
      f.apply({
        stream: "QUOTES",
        subject: Subjects.quote("X"),
        body: { symbol: "X", bid: String(100 + i), ask: String(102 + i), timestamp: isoAt(NOW + i) },
      });
    // the marks moved with every quote; the aggregates wait for a reader
    expect(canon(f.state.marks.get("X")!.mid)).toBe("151");
    expect([c1.mv, c1.longExt, c1.shortExt, c1.exposure]).toEqual(before); // none folded yet
    expect(c1.mv).toBe(before[0]);
    expect(a1.stale).toHaveLength(1); // one pending entry per book, whatever the burst's length
    expect(a2.stale).toHaveLength(1);
    settle(a1);
    expect(canon(a1.agg.mv)).toBe("1510");
    expect(canon(a1.agg.gross)).toBe("1510");
    expect(a2.stale).toHaveLength(1); // another fund's read does not settle a2
    settleAll(f.state);
    expect(canon(a2.agg.mv)).toBe("-604");
    expect(canon(a2.agg.gross)).toBe("604");
    expect(f.state.staleFunds.size).toBe(0);
  });

  it("given a book closed and reopened while a quote is pending, when settled, then it is valued at the mark in force, not the pending one", () => {
    const f = new Folder();
    const fill = (side: "BUY" | "SELL", qty: string): Event => ({
      kind: "fill",
      fund: "a1",
      symbol: "X",
      side,
      qty,
      price: "100",
    });
    const quote = (bid: string): Event => ({
      kind: "quote",
      symbol: "X",
      bid,
      spread: "0",
      sides: "two",
      late: false,
    });
    const steps = toEvents([
      fill("BUY", "10"),
      quote("110"), // pending for the open book
      fill("SELL", "10"),
      quote("120"), // the book is flat: nothing to fold
      fill("BUY", "5"),
    ]);
    for (const s of steps) if (s.kind === "msg") f.apply(s.msg);
    const a1 = f.state.funds.get("a1")!;
    settle(a1);
    expect(canon(a1.agg.mv)).toBe("600"); // 5 × 120
    expect(canon(a1.books.get("X")!.contrib.mv)).toBe("600");
  });
});
