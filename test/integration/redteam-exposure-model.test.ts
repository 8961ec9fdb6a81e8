/**
 * Red-team pass on exposure: a random walk of quotes, FX moves, fills (external, partial, late),
 * approvals and OMS events on one fund, every check compared with an independent model of the
 * contract's arithmetic (big.js): positions at average cost, NAV = capital + realized +
 * unrealized − fees (at marks, at cost without one; foreign books at the FX mid), reservations at
 * order price × multiplier × FX, each book valued at the worse of its two extremes (README "Worst
 * case of both sides"), risk-reducing orders exempt. Position, gross and net limits; probes sit
 * exactly on the limit and one cent above it. Several seeds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Big from "big.js";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

const B = Big();
B.DP = 18;
B.RM = 2; // half-even, as the engine's div

interface Inst {
  sym: string;
  mult: string;
  ccy: "USD" | "EUR";
}
const INSTS: Inst[] = [
  { sym: "MS1", mult: "1", ccy: "USD" },
  { sym: "MS2", mult: "1", ccy: "USD" },
  { sym: "MF1", mult: "50", ccy: "USD" },
  { sym: "ME1", mult: "1", ccy: "EUR" },
  { sym: "MO1", mult: "100", ccy: "EUR" },
];

interface BookM {
  qty: Big;
  cost: Big; // |cost|, positive
  realized: Big;
  fees: Big;
}
interface OrdM {
  id: string;
  sym: string;
  side: "BUY" | "SELL";
  price: Big;
  approved: Big;
  filled: Big;
  terminal: boolean;
  endFilled: Big;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("red-team exposure: a random walk against a model", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const now = () => iso(clock.now());
  const timers = steppableTimers();

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock, timers, flags: { "synthetic_stop.enabled": false } });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    for (const i of INSTS) {
      await waitFor(async () =>
        applied(
          engine,
          "REFDATA",
          await bus.instrument({
            symbol: i.sym,
            asset_class: "equity",
            multiplier: i.mult,
            currency: i.ccy,
            shortable: true,
            borrow_fee_bps: "1",
          }),
        ),
      );
    }
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  // marks are the bus's, shared by every fund (and seed)
  const marks = new Map<string, Big>();
  let fx: Big | undefined;

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`seed ${seed}: every decision agrees with the model`, async () => {
      const F = `rx-model-${seed}`;
      const r = rng(seed);
      const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
      const money = (lo: number, hi: number, dp = 2) => (lo + r() * (hi - lo)).toFixed(dp);
      const CAP = new B("1000000");
      const POS = new B("0.3");
      const GROSS = new B("1.5");
      const NET = new B("0.8");
      await until(
        "RISK_ENVELOPES",
        await bus.envelope(
          envelope(F, {
            capital: "1000000",
            max_position_pct: "0.3",
            max_gross_exposure_pct: "1.5",
            max_net_exposure_pct: "0.8",
            enable_shorting: true,
          }),
        ),
      );
      const books = new Map<string, BookM>();
      const orders: OrdM[] = [];
      const log: string[] = [];
      const book = (s: string) => {
        let b = books.get(s);
        if (!b) books.set(s, (b = { qty: B(0), cost: B(0), realized: B(0), fees: B(0) }));
        return b;
      };
      const inst = (s: string) => INSTS.find((i) => i.sym === s)!;
      const factor = (s: string) => {
        const i = inst(s);
        return i.ccy === "EUR" ? B(i.mult).times(fx!) : B(i.mult);
      };
      const want = (o: OrdM) => {
        const cap = o.terminal ? (o.endFilled.lt(o.approved) ? o.endFilled : o.approved) : o.approved;
        const w = cap.minus(o.filled);
        return w.gt(0) ? w : B(0);
      };
      const pend = (s: string, side: string) => {
        let q = B(0);
        let v = B(0);
        for (const o of orders) {
          if (o.sym !== s || o.side !== side) continue;
          const w = want(o);
          q = q.plus(w);
          v = v.plus(w.times(o.price));
        }
        return { q, v };
      };
      const value = (s: string) => {
        const b = book(s);
        const m = factor(s);
        const signedCost = b.qty.lt(0) ? b.cost.neg() : b.cost;
        const mark = marks.get(s);
        const mv = b.qty.eq(0) ? B(0) : mark ? b.qty.times(m).times(mark) : signedCost.times(m);
        const pb = pend(s, "BUY");
        const ps = pend(s, "SELL");
        const longExt = mv.plus(pb.v.times(m));
        const shortExt = mv.minus(ps.v.times(m));
        const exp = longExt.abs().gt(shortExt.abs()) ? longExt.abs() : shortExt.abs();
        return {
          mv,
          cost: signedCost.times(m),
          realized: b.realized.times(m),
          fees: b.fees.times(inst(s).ccy === "EUR" ? fx! : 1),
          longExt,
          shortExt,
          exp,
          pb,
          ps,
        };
      };
      const fund = () => {
        let nav = CAP;
        let gross = B(0);
        let nl = B(0);
        let ns = B(0);
        for (const i of INSTS) {
          const v = value(i.sym);
          nav = nav.plus(v.realized).plus(v.mv).minus(v.cost).minus(v.fees);
          gross = gross.plus(v.exp);
          nl = nl.plus(v.longExt);
          ns = ns.plus(v.shortExt);
        }
        return { nav, gross, nl, ns };
      };
      const applyFillM = (s: string, side: "BUY" | "SELL", q: Big, p: Big, fee: Big) => {
        const b = book(s);
        const buy = side === "BUY";
        if (b.qty.eq(0) || b.qty.gt(0) === buy) {
          b.qty = buy ? b.qty.plus(q) : b.qty.minus(q);
          b.cost = b.cost.plus(q.times(p));
        } else {
          const absQ = b.qty.abs();
          const closed = q.lt(absQ) ? q : absQ;
          const removed = closed.eq(absQ) ? b.cost : b.cost.times(closed).div(absQ);
          const proceeds = closed.times(p);
          b.realized = b.realized.plus(b.qty.gt(0) ? proceeds.minus(removed) : removed.minus(proceeds));
          b.cost = b.cost.minus(removed);
          b.qty = buy ? b.qty.plus(closed) : b.qty.minus(closed);
          const rest = q.minus(closed);
          if (rest.gt(0)) {
            b.qty = buy ? rest : rest.neg();
            b.cost = rest.times(p);
          } else if (b.qty.eq(0)) b.cost = B(0);
        }
        b.fees = b.fees.plus(fee);
      };
      const predict = (s: string, side: "BUY" | "SELL", q: Big, p: Big): string => {
        const b = book(s);
        const v = value(s);
        if (side === "SELL" && b.qty.gt(0) && v.ps.q.plus(q).lte(b.qty)) return "approved";
        if (side === "BUY" && b.qty.lt(0) && v.pb.q.plus(q).lte(b.qty.abs())) return "approved";
        const f = fund();
        const o = q.times(p).times(factor(s));
        const la = side === "BUY" ? v.longExt.plus(o) : v.longExt;
        const sa = side === "BUY" ? v.shortExt : v.shortExt.minus(o);
        const after = la.abs().gt(sa.abs()) ? la.abs() : sa.abs();
        if (after.gt(POS.times(f.nav))) return "position/MAX_POSITION_EXCEEDED";
        if (f.gross.minus(v.exp).plus(after).gt(GROSS.times(f.nav)))
          return "position/GROSS_EXPOSURE_EXCEEDED";
        const nl = side === "BUY" ? f.nl.plus(o) : f.nl;
        const ns = side === "BUY" ? f.ns : f.ns.minus(o);
        const net = nl.abs().gt(ns.abs()) ? nl.abs() : ns.abs();
        if (net.gt(NET.times(f.nav))) return "position/NET_EXPOSURE_EXCEEDED";
        return "approved";
      };
      const doCheck = async (s: string, side: "BUY" | "SELL", q: string, p: string) => {
        const expected = predict(s, side, B(q), B(p));
        const o = order({ fund_id: F, symbol: s, side, quantity: q, limit_price: p });
        const d = await bus.check(o);
        const got = d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`;
        log.push(
          `check ${s} ${side} ${q}@${p}: model ${expected}, engine ${got} ${JSON.stringify(d.details)}`,
        );
        if (got !== expected) {
          const f = fund();
          console.log(
            "ENGINE",
            JSON.stringify(engine.observe.fund(F)?.books),
            "\nMODEL",
            JSON.stringify([...books.entries()]),
            "marks",
            JSON.stringify([...marks.entries()]),
            "fx",
            String(fx),
            "\nLOG\n" + log.join("\n"),
          );
          throw new Error(
            `seed ${seed}: ${s} ${side} ${q}@${p}: engine ${got}, model ${expected} (model nav ${f.nav.toString()} gross ${f.gross.toString()} nl ${f.nl.toString()} ns ${f.ns.toString()})\n` +
              log.slice(-25).join("\n"),
          );
        }
        if (d.approved) {
          orders.push({
            id: String(o["order_id"]),
            sym: s,
            side,
            price: B(p),
            approved: B(q),
            filled: B(0),
            terminal: false,
            endFilled: B(0),
          });
          await until("OMS_ORDERS", await bus.orderEvent("accepted", F, String(o["order_id"]), now()));
        }
      };
      // the limit on the book's dominant side, solved for a one-unit BUY order's price: exactly the limit
      const boundaryBuy = (s: string): string | undefined => {
        if (factor(s).toString() !== "1") return undefined;
        const b = book(s);
        const v = value(s);
        if (b.qty.lt(0)) return undefined; // might be reducing
        const f = fund();
        const room = [
          POS.times(f.nav).minus(v.longExt),
          GROSS.times(f.nav).minus(f.gross.minus(v.exp)).minus(v.longExt),
          NET.times(f.nav).minus(f.nl),
        ].reduce((a, c) => (c.lt(a) ? c : a));
        if (room.lte(1) || v.longExt.plus(room).lt(v.shortExt.abs()) || room.round(2, 0).lt(1))
          return undefined;
        return room.round(2, 0).toFixed(2);
      };

      await until("QUOTES", await bus.quote("EUR-USD", "1.1", "1.1", now()));
      fx = B("1.1");
      let boundaryApprovals = 0;
      for (let step = 0; step < 200; step++) {
        const k = r();
        const s = pick(INSTS).sym;
        if (k < 0.15) {
          const mid = money(10, 200);
          log.push(`quote ${s} ${mid}`);
          await until("QUOTES", await bus.quote(s, mid, mid, now()));
          marks.set(s, B(mid));
        } else if (k < 0.2) {
          const rate = money(0.8, 1.4, 4);
          log.push(`fx ${rate}`);
          await until("QUOTES", await bus.quote("EUR-USD", rate, rate, now()));
          fx = B(rate);
        } else if (k < 0.3) {
          const side = r() < 0.5 ? "BUY" : "SELL";
          const q = String(1 + Math.floor((r() * 300) / Number(inst(s).mult)));
          const p = money(10, 200);
          const fee = money(0, 5);
          log.push(`ext fill ${s} ${side} ${q}@${p} fee ${fee}`);
          await until(
            "FILLS",
            await bus.fill({
              fund_id: F,
              symbol: s,
              side,
              quantity: q,
              price: p,
              fees: fee,
              timestamp: now(),
            }),
          );
          applyFillM(s, side, B(q), B(p), B(fee));
        } else if (k < 0.45) {
          const open = orders.filter((o) => !o.terminal && o.filled.lt(o.approved));
          const inflight = orders.filter((o) => o.terminal && o.endFilled.gt(o.filled));
          const o = pick([...open, ...inflight]);
          if (!o) continue;
          const cap = (o.terminal ? o.endFilled : o.approved).minus(o.filled);
          const q = B(Math.max(1, Math.floor(Number(cap) * r()))).gt(cap)
            ? cap
            : B(Math.max(1, Math.floor(Number(cap) * r())));
          const p = money(10, 200);
          log.push(`order fill ${o.id} ${o.sym} ${o.side} ${q.toString()}@${p}`);
          await until(
            "FILLS",
            await bus.fill({
              fund_id: F,
              symbol: o.sym,
              side: o.side,
              quantity: q.toString(),
              price: p,
              order_id: o.id,
              timestamp: now(),
            }),
          );
          applyFillM(o.sym, o.side, q, B(p), B(0));
          o.filled = o.filled.plus(q);
        } else if (k < 0.55) {
          const open = orders.filter((o) => !o.terminal);
          const o = pick(open);
          if (!o) continue;
          const extra = r() < 0.5 ? B(0) : B(Math.floor(Number(o.approved.minus(o.filled)) * r()));
          const fq = o.filled.plus(extra);
          const e = pick(["cancelled", "expired", "done", "rejected"]);
          log.push(`${e} ${o.id} filled_quantity ${fq.toString()}`);
          await until(
            "OMS_ORDERS",
            await bus.orderEvent(e, F, o.id, now(), { filled_quantity: fq.toString() }),
          );
          o.terminal = true;
          o.endFilled = fq;
        } else if (k < 0.7) {
          const p = boundaryBuy(s);
          if (p === undefined) continue;
          await doCheck(s, "BUY", "1", B(p).plus("0.01").toFixed(2));
          await doCheck(s, "BUY", "1", p);
          boundaryApprovals++;
        } else {
          const side = r() < 0.55 ? "BUY" : "SELL";
          await doCheck(s, side, String(1 + Math.floor((r() * 2000) / Number(inst(s).mult))), money(10, 200));
        }
      }
      const checks = log.filter((l) => l.startsWith("check"));
      console.log(
        `seed ${seed}: ${checks.length} checks, ${checks.filter((l) => l.endsWith("engine approved {}")).length} approved, ${boundaryApprovals} exactly on a limit`,
      );
      expect(checks.length).toBeGreaterThan(20);
      expect(boundaryApprovals).toBeGreaterThan(0);
    });
  }
});
