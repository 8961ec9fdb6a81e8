/**
 * Red team s30f: the drawdown kill switch and gate, in process.
 *
 * `DdSim` runs the engine's real pieces on append-only stream logs (JetStream's Nats-Msg-Id
 * dedupe): the projector, the drawdown monitor (src/workers/drawdown.ts) as the engine wires it
 * (beforeApply before each message, onChange after, its 1 s tick when the test says so, a quote
 * burst ended by `evaluateDue`), and the decider with the drawdown gate that counts the monitor's
 * halts in flight (src/engine/engine.ts `drawdownNow`). Every publish is folded to quiescence.
 *
 * `DdModel` is an independent reference written from CONTRACT.md ("Drawdown", "NAV") and the
 * README's documented choices, with exact rationals on bigint (no engine code): positions at
 * average cost, marks = mid of the latest quote, NAV = capital + realized + unrealized − fees,
 * baselines per UTC day / ISO week / month, sticky halts, Resume, no re-halt of a resumed breach
 * within its period, risk-reducing orders pass.
 */
import { ConfigSchema } from "../../src/config/index.js";
import type { Alerter } from "../../src/engine/alerts.js";
import { toWire } from "../../src/contract/wire.js";
import { CONSUMED_STREAMS, Subjects, type StreamName } from "../../src/contract/subjects.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import {
  DETERMINISTIC_GATES,
  createDrawdownGate,
  createPipeline,
  drawdownGate,
} from "../../src/gates/index.js";
import { silentLogger } from "../../src/obs/log.js";
import { createDecider, type Decider } from "../../src/service/decide.js";
import { type EngineState, createState, project } from "../../src/state/index.js";
import { type ManualClock, manualClock } from "../../src/time/clock.js";
import { type DrawdownWorker, createDrawdownMonitor } from "../../src/workers/drawdown.js";
import type { WorkerContext } from "../../src/workers/types.js";
import { Q } from "./redteam-s30c-model.js";

export const FUND = "ddf";
const te = new TextEncoder();
const isoOf = (ms: number): string => new Date(ms).toISOString();

// exact rationals: the s30c model's (test/unit/redteam-s30c-model.ts)
export { Q };
const Z = Q.of(0n);

// ---------------------------------------------------------------------------------------------
// periods, written from the contract (UTC day, ISO week from Monday, month from the 1st)

export type Period = "day" | "week" | "month";
export const PERIODS: readonly Period[] = ["day", "week", "month"];
export type LossSev = "DAILY_LOSS" | "WEEKLY_LOSS" | "MONTHLY_LOSS";
export const SEV: Record<Period, LossSev> = { day: "DAILY_LOSS", week: "WEEKLY_LOSS", month: "MONTHLY_LOSS" };
/** Most severe first (README "Halts": MONTHLY, WEEKLY, DAILY). */
const SEV_ORDER: readonly LossSev[] = ["MONTHLY_LOSS", "WEEKLY_LOSS", "DAILY_LOSS"];

export function startOf(ms: number, p: Period): number {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const mo = d.getUTCMonth();
  if (p === "month") return Date.UTC(y, mo, 1);
  const day = Date.UTC(y, mo, d.getUTCDate());
  if (p === "day") return day;
  const dow = d.getUTCDay(); // 0 = Sunday
  const back = dow === 0 ? 6 : dow - 1;
  return day - back * 86_400_000;
}

// ---------------------------------------------------------------------------------------------
// the reference model

export interface Thresholds {
  day?: string | undefined;
  week?: string | undefined;
  month?: string | undefined;
}

interface MBook {
  qty: Q; // signed
  cost: Q; // signed cost of the open position (qty × average cost)
}

interface MBase {
  start: number;
  equity: Q;
  pnl: Q; // trading P&L at the start
}

export class DdModel {
  capital: Q;
  thresholds: Thresholds;
  readonly books = new Map<string, MBook>();
  readonly marks = new Map<string, Q>();
  realized = Z;
  fees = Z;
  readonly bases = new Map<Period, MBase>();
  /** Active loss halts: severity → the start of the period of the breach that halted. */
  readonly active = new Map<LossSev, number>();
  readonly published: Record<LossSev, number> = { DAILY_LOSS: 0, WEEKLY_LOSS: 0, MONTHLY_LOSS: 0 };
  /** Severity → starts of periods whose halt an operator resumed (no re-halt within them). */
  readonly resumed = new Map<LossSev, Set<number>>();
  now: number;
  /** Approved orders left open (accepted, never filled): symbol → side → quantity. */
  readonly pending = new Map<string, { BUY: Q; SELL: Q }>();

  constructor(now: number, capital: string, t: Thresholds) {
    this.now = now;
    this.capital = Q.dec(capital);
    this.thresholds = { ...t };
    this.roll(true);
  }

  pnl(): Q {
    let u = Z;
    for (const [s, b] of this.books) {
      const m = this.marks.get(s);
      if (m !== undefined) u = u.plus(b.qty.times(m).minus(b.cost));
    }
    return this.realized.plus(u).minus(this.fees);
  }
  nav(): Q {
    return this.capital.plus(this.pnl());
  }
  qty(symbol: string): Q {
    return this.books.get(symbol)?.qty ?? Z;
  }

  /** New periods begin with the equity of the state as it stands (nothing changed since the boundary). */
  roll(all = false): void {
    for (const p of PERIODS) {
      const s = startOf(this.now, p);
      const b = this.bases.get(p);
      if (all || !b || b.start !== s) this.bases.set(p, { start: s, equity: this.nav(), pnl: this.pnl() });
    }
  }

  setClock(ms: number): void {
    this.now = ms;
    this.roll();
  }

  /** Loss since each period's start against its threshold. */
  breached(): Set<LossSev> {
    const out = new Set<LossSev>();
    const now = this.pnl();
    for (const p of PERIODS) {
      const t = this.thresholds[p];
      const b = this.bases.get(p)!;
      if (t === undefined || b.equity.sign() <= 0) continue;
      // a loss that reaches the threshold halts: pnl since start ≤ −pct × equity at start
      if (now.minus(b.pnl).cmp(Q.dec(t).times(b.equity).neg()) <= 0) out.add(SEV[p]);
    }
    return out;
  }

  /** One evaluation of the monitor (a fill, a mark change of a holding, an envelope, a tick). */
  evaluate(): LossSev[] {
    const out: LossSev[] = [];
    for (const sev of this.breached()) {
      if (this.active.has(sev)) continue;
      const p = PERIODS.find((x) => SEV[x] === sev)!;
      const start = this.bases.get(p)!.start;
      if (this.resumed.get(sev)?.has(start)) continue;
      this.active.set(sev, start);
      this.published[sev]++;
      out.push(sev);
    }
    return out;
  }

  fill(symbol: string, side: "BUY" | "SELL", qty: string, price: string, fees: string): void {
    const q = Q.dec(qty);
    const p = Q.dec(price);
    this.fees = this.fees.plus(Q.dec(fees));
    const b = this.books.get(symbol) ?? { qty: Z, cost: Z };
    const dir = side === "BUY" ? 1 : -1;
    const sq = dir > 0 ? q : q.neg();
    if (b.qty.sign() === 0 || b.qty.sign() === dir) {
      b.qty = b.qty.plus(sq);
      b.cost = b.cost.plus(sq.times(p));
    } else {
      const abs = b.qty.abs();
      const closed = q.cmp(abs) <= 0 ? q : abs;
      const fraction = closed.div(abs);
      const removed = b.cost.times(fraction); // signed
      const closedSigned = b.qty.sign() > 0 ? closed : closed.neg();
      this.realized = this.realized.plus(closedSigned.times(p).minus(removed));
      b.cost = b.cost.minus(removed);
      b.qty = b.qty.minus(closedSigned);
      const rest = q.minus(closed);
      if (rest.sign() > 0) {
        const rs = dir > 0 ? rest : rest.neg();
        b.qty = rs;
        b.cost = rs.times(p);
      }
    }
    this.books.set(symbol, b);
  }

  quote(symbol: string, mid: Q): void {
    this.marks.set(symbol, mid);
  }

  resume(): void {
    for (const [sev, start] of this.active) {
      const set = this.resumed.get(sev) ?? new Set<number>();
      set.add(start);
      this.resumed.set(sev, set);
    }
    this.active.clear();
  }

  /** The most severe active halt, if any. */
  haltedBy(): LossSev | undefined {
    return SEV_ORDER.find((s) => this.active.has(s));
  }

  pendingOf(symbol: string, side: "BUY" | "SELL"): Q {
    return this.pending.get(symbol)?.[side] ?? Z;
  }

  /** Risk-reducing: toward zero and not crossing it, counting pending orders on its side. */
  reducing(symbol: string, side: "BUY" | "SELL", qty: string): boolean {
    const pos = this.qty(symbol);
    if (pos.sign() === 0) return false;
    if (pos.sign() > 0 !== (side === "SELL")) return false;
    return Q.dec(qty).plus(this.pendingOf(symbol, side)).cmp(pos.abs()) <= 0;
  }

  open(symbol: string, side: "BUY" | "SELL", qty: string): void {
    const p = this.pending.get(symbol) ?? { BUY: Z, SELL: Z };
    p[side] = p[side].plus(Q.dec(qty));
    this.pending.set(symbol, p);
  }

  /** The contract's decision for a LIMIT order (no position limits, shorting disabled). */
  expect(symbol: string, side: "BUY" | "SELL", qty: string): { code: string; severity?: string } {
    const red = this.reducing(symbol, side, qty);
    const halted = this.haltedBy();
    if (halted !== undefined && !red) return { code: "FUND_HALTED", severity: halted };
    if (side === "SELL" && !red) {
      const pos = this.qty(symbol).minus(this.pendingOf(symbol, "SELL"));
      // a SELL beyond the long position (less pending sells) is a short sale; shorting is disabled
      if (pos.cmp(Q.dec(qty)) < 0) return { code: "SHORTING_DISABLED" };
    }
    return { code: "" };
  }
}

// ---------------------------------------------------------------------------------------------
// the engine in process

interface Msg {
  subject: string;
  data: Uint8Array;
  msgID?: string | undefined;
  storedMs: number;
}

export class DdSim {
  readonly clock: ManualClock;
  readonly logs = new Map<StreamName, Msg[]>();
  private readonly ids = new Map<StreamName, Set<string>>();
  state!: EngineState;
  worker!: DrawdownWorker;
  private decider!: Decider;
  private ctx!: WorkerContext;
  private seq = 0;
  private fillN = 0;
  private orderN = 0;
  private version = 0;

  constructor(start: number) {
    this.clock = manualClock(start);
    for (const s of [...CONSUMED_STREAMS, "OMS_INTENTS" as const]) {
      this.logs.set(s, []);
      this.ids.set(s, new Set());
    }
    this.boot();
  }

  /** A restart: the state rebuilt from the streams, a new monitor (nothing in flight), live again. */
  restart(): void {
    this.boot();
  }

  private boot(): void {
    this.state = createState();
    for (const s of CONSUMED_STREAMS)
      this.logs.get(s)!.forEach((m, i) => {
        const r = project(this.state, s, m.subject, m.data, i + 1, m.storedMs);
        if (!r.ok) throw new Error(`sim replay: ${s} seq ${i + 1}: ${r.reason}`);
      });
    const alerter: Alerter = {
      alert: () => undefined,
      deadLetter: () => undefined,
      count: () => ({ alerts: 0, deadLetters: 0 }),
    };
    this.ctx = {
      state: this.state,
      clock: this.clock,
      log: silentLogger,
      alerter,
      config: ConfigSchema.parse({}),
      nc: undefined as never,
      js: undefined as never,
      publish: (subject, body, msgID) => {
        const r = this.append(subject, body, msgID);
        return Promise.resolve({ stream: r.stream, seq: r.seq, duplicate: r.duplicate, domain: "" } as never);
      },
      precheck: (order, ahead) => this.decider.preview(order, ahead),
    };
    this.worker = createDrawdownMonitor(this.ctx);
    const gate = createDrawdownGate({
      inFlight: (fund) => {
        this.worker.evaluateDue(fund);
        return this.worker.inFlight(fund);
      },
    });
    this.decider = createDecider({
      state: this.state,
      pipeline: createPipeline(DETERMINISTIC_GATES.map((g) => (g === drawdownGate ? gate : g))),
      clock: this.clock,
      instance: "s30f",
      ready: () => true,
      nextId: () => `s30f-${++this.seq}`,
    });
    this.worker.onReady!();
    this.settle();
  }

  private streamOf(subject: string): StreamName {
    const t = subject.split(".");
    if (t[2] === "quote") return "QUOTES";
    if (t[2] === "fill") return "FILLS";
    if (t[2] === "oms") return t[4] === "submit" || t[3] === "cancel_all" ? "OMS_INTENTS" : "OMS_ORDERS";
    if (t[2] === "risk" && t[3] === "decision") return "RISK_DECISIONS";
    if (t[2] === "risk" && t[3] === "envelope") return "RISK_ENVELOPES";
    return "RISK_CONTROL";
  }

  private append(subject: string, body: unknown, msgID?: string) {
    const stream = this.streamOf(subject);
    const log = this.logs.get(stream)!;
    const ids = this.ids.get(stream)!;
    if (msgID !== undefined && ids.has(msgID)) return { stream, seq: log.length, duplicate: true };
    if (msgID !== undefined) ids.add(msgID);
    const data = te.encode(typeof body === "string" ? body : JSON.stringify(body));
    log.push({ subject, data, msgID, storedMs: this.clock.now() });
    return { stream, seq: log.length, duplicate: false };
  }

  /** Folds every stream to quiescence, as the live engine does (hooks included). */
  settle(): void {
    for (let moved = true; moved;) {
      moved = false;
      for (const s of CONSUMED_STREAMS) {
        const log = this.logs.get(s)!;
        for (;;) {
          const seq = (this.state.cursors.get(s) ?? 0) + 1;
          const m = log[seq - 1];
          if (!m) break;
          moved = true;
          this.worker.beforeApply();
          const r = project(this.state, s, m.subject, m.data, seq, m.storedMs);
          if (!r.ok) throw new Error(`sim: ${s} seq ${seq} not applied: ${r.reason}`);
          if (this.ctx.facts?.tracking()) this.ctx.facts.readBack(m.msgID);
          if (r.change) this.worker.onChange!(r.change);
        }
      }
    }
  }

  private publish(subject: string, body: unknown, msgID?: string): void {
    this.append(subject, body, msgID);
    this.settle();
  }

  envelope(capital: string, t: Thresholds): void {
    this.publish(Subjects.envelopeUpdated(FUND), {
      fund_id: FUND,
      version: ++this.version,
      capital,
      allowed_brokers: ["paper"],
      allowed_order_types: ["LIMIT", "MARKET"],
      ...(t.day === undefined ? {} : { daily_loss_halt_pct: t.day }),
      ...(t.week === undefined ? {} : { weekly_loss_halt_pct: t.week }),
      ...(t.month === undefined ? {} : { monthly_loss_halt_pct: t.month }),
    });
  }

  fill(symbol: string, side: "BUY" | "SELL", quantity: string, price: string, fees: string): void {
    const id = `s30f-fill-${++this.fillN}`;
    this.publish(
      Subjects.fill(FUND, symbol),
      {
        fill_id: id,
        order_id: `ext-${id}`,
        fund_id: FUND,
        broker: "paper",
        symbol,
        side,
        quantity,
        price,
        fees,
        timestamp: isoOf(this.clock.now()),
      },
      id,
    );
  }

  /** A quote at the clock; the burst ends (the monitor's setImmediate) before anything else. */
  quote(symbol: string, bid: string, ask: string): void {
    this.publish(Subjects.quote(symbol), { symbol, bid, ask, timestamp: isoOf(this.clock.now()) });
    this.worker.evaluateDue(FUND);
    this.settle();
  }

  resume(): void {
    this.publish(Subjects.resume(FUND), {
      fund_id: FUND,
      operator: "op",
      reason: "s30f",
      at: isoOf(this.clock.now()),
    });
  }

  /** The monitor's timer. */
  tick(): void {
    this.worker.tick!();
    this.settle();
  }

  /**
   * An OMS check; an approved order is cancelled at once (no reservation stays), or with `keep`
   * acknowledged (`accepted`: it reserves until a terminal event, whatever the clock does).
   */
  check(
    symbol: string,
    side: "BUY" | "SELL",
    quantity: string,
    limitPrice: string,
    keep = false,
  ): RiskDecision {
    const id = `s30f-ord-${++this.orderN}`;
    const e = this.decider.decide({
      raw: {
        order_id: id,
        idempotency_key: `k-${id}`,
        fund_id: FUND,
        broker: "paper",
        symbol,
        asset_class: "equity",
        side,
        order_type: "LIMIT",
        quantity,
        limit_price: limitPrice,
        time_in_force: "DAY",
      },
    });
    if (e instanceof Promise) throw new Error("sim: no async gates");
    this.publish(Subjects.decision(FUND), JSON.stringify(toWire(e.record)));
    if (e.decision.approved) {
      const event = keep ? "accepted" : "cancelled";
      this.publish(Subjects.orderEvent(event, FUND), {
        order_id: id,
        fund_id: FUND,
        event,
        at: isoOf(this.clock.now()),
      });
    }
    return e.decision;
  }

  /** Halts published on RISK_CONTROL per severity (after the stream's dedupe). */
  haltsPublished(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const m of this.logs.get("RISK_CONTROL")!) {
      if (m.subject !== Subjects.halt(FUND)) continue;
      const sev = (JSON.parse(new TextDecoder().decode(m.data)) as { severity: string }).severity;
      out[sev] = (out[sev] ?? 0) + 1;
    }
    return out;
  }

  activeHalts(): string[] {
    return [...(this.state.funds.get(FUND)?.halts.keys() ?? [])].sort();
  }

  /** The folded baseline of a period: its start and equity. */
  baseline(p: Period): { start: number; equity: string } | undefined {
    const b = this.state.funds.get(FUND)?.baselines.get(p);
    return b ? { start: b.startsAtMs, equity: b.equity.toString() } : undefined;
  }
}
