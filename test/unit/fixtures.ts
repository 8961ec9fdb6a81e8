/**
 * Pure fixtures for the unit tests: a state fed through the real projector (JSON bytes and
 * per-stream sequences, as the follower does), orders parsed with the wire schema, and a helper
 * that runs one gate against the limits in force.
 */
import { expect } from "vitest";
import type { DecisionRecord } from "../../src/contract/records.js";
import { type Order, OrderSchema } from "../../src/contract/schemas.js";
import { Subjects, type StreamName } from "../../src/contract/subjects.js";
import { toWire } from "../../src/contract/wire.js";
import {
  DETERMINISTIC_GATES,
  type GateContext,
  type GateResult,
  type RiskGate,
  buildContext,
  createPipeline,
} from "../../src/gates/index.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { type Decider, createDecider } from "../../src/service/decide.js";
import { type Clock, manualClock } from "../../src/time/clock.js";
import {
  type EngineState,
  type FundState,
  createState,
  effectiveLimits,
  project,
} from "../../src/state/index.js";
import type { Effective } from "../../src/state/model.js";

export const NOW_ISO = "2026-11-21T14:30:00.000Z";
export const NOW = Date.parse(NOW_ISO);
export const FUND = "alpha";
export const ALL_TYPES = ["MARKET", "LIMIT", "STOP", "STOP_LIMIT"];

const te = new TextEncoder();

export const isoAt = (ms: number): string => new Date(ms).toISOString();

/** Publishes into a state through `project`, one sequence counter per stream. */
export class Feed {
  readonly seqs = new Map<StreamName, number>();
  constructor(readonly state: EngineState = createState()) {}

  publish(stream: StreamName, subject: string, body: unknown, storedMs?: number): number {
    const seq = (this.seqs.get(stream) ?? 0) + 1;
    this.seqs.set(stream, seq);
    const r = project(this.state, stream, subject, te.encode(JSON.stringify(body)), seq, storedMs);
    expect(r, `${stream} ${subject} ${JSON.stringify(body)}`).toMatchObject({ ok: true });
    return seq;
  }

  envelope(over: Record<string, unknown> = {}, fund = FUND): this {
    this.publish("RISK_ENVELOPES", Subjects.envelopeUpdated(fund), envelope(over, fund));
    return this;
  }

  instrument(i: Record<string, unknown>): this {
    this.publish("REFDATA", Subjects.instrument(String(i["symbol"])), i);
    return this;
  }

  /** A quote stamped `ts`; `storedMs`: when the stream stored it (bounds its rank, see applyQuote). */
  quote(symbol: string, bid: string, ask: string, ts: number = NOW, storedMs?: number): this {
    this.publish("QUOTES", Subjects.quote(symbol), { symbol, bid, ask, timestamp: isoAt(ts) }, storedMs);
    return this;
  }

  private fillN = 0;
  /** A fill; `quantity` is signed for brevity (negative = SELL). */
  fill(symbol: string, signedQty: string, price: string, over: Record<string, unknown> = {}): this {
    const sell = signedQty.startsWith("-");
    const id = `f-${++this.fillN}`;
    this.publish("FILLS", Subjects.fill(FUND, symbol), {
      fill_id: id,
      order_id: `ext-${id}`,
      fund_id: FUND,
      broker: "paper",
      symbol,
      side: sell ? "SELL" : "BUY",
      quantity: sell ? signedQty.slice(1) : signedQty,
      price,
      fees: "0",
      timestamp: NOW_ISO,
      ...over,
    });
    return this;
  }

  halt(severity = "MANUAL", fund = FUND): this {
    this.publish("RISK_CONTROL", Subjects.halt(fund), {
      fund_id: fund,
      severity,
      reason: "test halt",
      at: NOW_ISO,
      by: "operator",
    });
    return this;
  }

  resume(fund = FUND): this {
    this.publish("RISK_CONTROL", Subjects.resume(fund), {
      fund_id: fund,
      operator: "op",
      reason: "ok",
      at: NOW_ISO,
    });
    return this;
  }

  orderEvent(orderId: string, event: string, fund = FUND): this {
    this.publish("OMS_ORDERS", Subjects.orderEvent(event, fund), {
      order_id: orderId,
      fund_id: fund,
      event,
      at: NOW_ISO,
    });
    return this;
  }

  /** A decision record as the engine journals it (toWire of the record). */
  decision(rec: DecisionRecord): this {
    this.publish("RISK_DECISIONS", Subjects.decision(rec.fund_id), toWire(rec));
    return this;
  }

  /** Decision ids issued so far (a second Feed over a loaded state starts after the first's). */
  decN = 0;
  /** An approved order already decided: its reservation is open until filled or terminal. */
  reserve(
    orderId: string,
    symbol: string,
    side: "BUY" | "SELL",
    quantity: string,
    price: string,
    broker?: string,
    /** Counted for velocity with this notional (by default not counted). */
    notional?: string,
  ): this {
    const id = `d-${++this.decN}`;
    this.publish("RISK_DECISIONS", Subjects.decision(FUND), {
      decision_id: id,
      instance: "t",
      fund_id: FUND,
      at_ms: NOW,
      idempotency_key: `k-${orderId}`,
      fingerprint: `fp-${orderId}`,
      recorded: true,
      counted: notional !== undefined,
      replayed: false,
      ...(notional === undefined ? {} : { notional }),
      reservation: {
        order_id: orderId,
        symbol,
        side,
        quantity,
        price,
        expires_at_ms: NOW + 86_400_000,
        ...(broker === undefined ? {} : { broker }),
      },
      decision: approvedDecision(orderId),
    });
    return this;
  }

  /** A counted (velocity) decision at `atMs` with its notional. */
  counted(notional: string, atMs: number = NOW, approved = false): this {
    const id = `v-${++this.decN}`;
    this.publish("RISK_DECISIONS", Subjects.decision(FUND), {
      decision_id: id,
      instance: "t",
      fund_id: FUND,
      at_ms: atMs,
      idempotency_key: `k-${id}`,
      fingerprint: `fp-${id}`,
      recorded: true,
      counted: true,
      replayed: false,
      notional,
      decision: approved ? approvedDecision(id) : { ...approvedDecision(id), approved: false },
    });
    return this;
  }

  get fund(): FundState {
    const f = this.state.funds.get(FUND);
    if (!f) throw new Error("no fund yet");
    return f;
  }
}

function approvedDecision(orderId: string) {
  return {
    order_id: orderId,
    approved: true,
    rejecting_gate: "",
    rejection_code: "",
    reason: "approved",
    details: {},
    envelope_id: `${FUND}@v1`,
    decided_at: NOW_ISO,
  };
}

export function envelope(over: Record<string, unknown> = {}, fund = FUND): Record<string, unknown> {
  return {
    fund_id: fund,
    version: 1,
    capital: "1000000",
    allowed_brokers: ["paper", "ibkr"],
    allowed_order_types: ALL_TYPES,
    ...over,
  };
}

let orderN = 0;
export function rawOrder(over: Record<string, unknown> = {}): Record<string, unknown> {
  const id = `ord-${++orderN}`;
  return {
    order_id: id,
    idempotency_key: `key-${id}`,
    fund_id: FUND,
    broker: "paper",
    symbol: "AAPL",
    side: "BUY",
    order_type: "LIMIT",
    quantity: "100",
    limit_price: "100",
    ...over,
  };
}

export function order(over: Record<string, unknown> = {}): Order {
  return OrderSchema.parse(rawOrder(over));
}

export interface Checked {
  result: GateResult;
  ctx: GateContext;
  limits: Effective;
}

/** Run one gate for an order against the fund's limits in force at `now`. */
export function runGate(
  state: EngineState,
  gate: RiskGate,
  over: Record<string, unknown> = {},
  now: number = NOW,
): Checked {
  const o = order(over);
  const fund = state.funds.get(o.fund_id);
  if (!fund?.envelope) throw new Error(`no envelope for ${o.fund_id}`);
  const limits = effectiveLimits(fund.envelope, o.strategy_id);
  const ctx = buildContext(state, fund, o, limits, now);
  const result = gate.check(o, limits, ctx) as GateResult;
  return { result, ctx, limits };
}

/** The code a gate answered with, or "" when it passed. */
export function codeOf(c: Checked): string {
  return c.result?.code ?? "";
}

/** The decider with every deterministic gate on the feed's state (instance "t", ids dec-1, dec-2, …). */
export function testDecider(feed: Feed, clock: Clock = manualClock(NOW)): Decider {
  let n = 0;
  return createDecider({
    state: feed.state,
    pipeline: createPipeline(DETERMINISTIC_GATES),
    clock,
    instance: "t",
    ready: () => true,
    nextId: () => `dec-${++n}`,
  });
}

/** A decider with every deterministic gate on the feed's state: `decide(raw)` gives the decision. */
export function deciderOn(feed: Feed, clock: Clock = manualClock(NOW)): (raw: unknown) => RiskDecision {
  const decider = testDecider(feed, clock);
  return (raw) => {
    const out = decider.decide({ raw });
    if (out instanceof Promise) throw new Error("the deterministic pipeline decides synchronously");
    return out.decision;
  };
}
