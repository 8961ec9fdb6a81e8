/** Test helpers: an engine on a real nats-server, and publishers for the streams it follows. */
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, loadConfig } from "../../src/config/index.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { Subjects } from "../../src/contract/subjects.js";
import { type Engine, type EngineOptions, startEngine } from "../../src/engine/index.js";
import { type Clock, iso } from "../../src/time/clock.js";
import { waitFor } from "./nats.js";

export function testConfig(url: string, flags: Record<string, unknown> = {}, stateDir?: string): Config {
  return loadConfig({
    env: {},
    flags: {
      "nats.url": url,
      "state.dir": stateDir ?? mkdtempSync(join(tmpdir(), "mts-state-")),
      "state.flush_interval_ms": 50,
      ...flags,
    },
  }).config;
}

export async function startTestEngine(
  url: string,
  o: { clock?: Clock; flags?: Record<string, unknown>; stateDir?: string } & Partial<EngineOptions> = {},
): Promise<Engine> {
  const { flags, stateDir, ...rest } = o;
  return startEngine({ config: testConfig(url, flags, stateDir), ...rest });
}

export const NOW = "2026-11-21T14:30:00.000Z";

export function envelope(fund = "alpha", over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    fund_id: fund,
    version: 1,
    capital: "1000000",
    allowed_brokers: ["paper", "ibkr"],
    allowed_order_types: ["MARKET", "LIMIT", "STOP", "STOP_LIMIT"],
    ...over,
  };
}

let seq = 0;
export function order(over: Record<string, unknown> = {}): Record<string, unknown> {
  const id = `ord-${process.pid}-${++seq}`;
  return {
    order_id: id,
    idempotency_key: `key-${id}`,
    fund_id: "alpha",
    broker: "paper",
    symbol: "AAPL",
    side: "BUY",
    order_type: "LIMIT",
    quantity: "100",
    limit_price: "100",
    ...over,
  };
}

export class Bus {
  readonly js: JetStreamClient;
  constructor(readonly nc: NatsConnection) {
    this.js = jetstream(nc);
  }
  async envelope(e: Record<string, unknown>): Promise<number> {
    const a = await this.js.publish(Subjects.envelopeUpdated(String(e["fund_id"])), JSON.stringify(e));
    return a.seq;
  }
  async instrument(i: Record<string, unknown>): Promise<number> {
    return (await this.js.publish(Subjects.instrument(String(i["symbol"])), JSON.stringify(i))).seq;
  }
  async quote(symbol: string, bid: string, ask: string, timestamp = NOW): Promise<number> {
    return (await this.js.publish(Subjects.quote(symbol), JSON.stringify({ symbol, bid, ask, timestamp })))
      .seq;
  }
  async fill(f: Record<string, unknown>): Promise<number> {
    const body = {
      fill_id: `fill-${++seq}`,
      order_id: `ext-${seq}`,
      fund_id: "alpha",
      broker: "paper",
      symbol: "AAPL",
      side: "BUY",
      quantity: "100",
      price: "100",
      fees: "0",
      timestamp: NOW,
      ...f,
    };
    const a = await this.js.publish(
      Subjects.fill(String(body.fund_id), String(body.symbol)),
      JSON.stringify(body),
      {
        msgID: String(body.fill_id),
      },
    );
    return a.seq;
  }
  async orderEvent(
    event: string,
    fund: string,
    orderId: string,
    at = NOW,
    extra: Record<string, unknown> = {},
  ): Promise<number> {
    const body = { order_id: orderId, fund_id: fund, event, at, ...extra };
    return (await this.js.publish(Subjects.orderEvent(event, fund), JSON.stringify(body))).seq;
  }
  async control(subject: string, body: Record<string, unknown>): Promise<number> {
    return (await this.js.publish(subject, JSON.stringify(body))).seq;
  }
  async check(o: unknown, subject: string = Subjects.check, timeout = 5000): Promise<RiskDecision> {
    const body = typeof o === "string" || o instanceof Uint8Array ? o : JSON.stringify(o);
    const m = await this.nc.request(subject, body, { timeout });
    return m.json<RiskDecision>();
  }
}

/** Resolves once the engine has applied everything up to `seq` on `stream`. */
export function applied(engine: Engine, stream: string, seq: number): boolean {
  return engine.observe.cursor(stream) >= seq;
}

/** Every message of a stream (optionally only subjects starting with a prefix), parsed; small streams only. */
/** The closing orders (any order the engine sent the OMS) of a fund, from OMS_INTENTS, in order. */
export async function closingOrders<T = Record<string, unknown>>(
  nc: NatsConnection,
  fund: string,
): Promise<T[]> {
  return (await readStream<T>(nc, "OMS_INTENTS", Subjects.orderSubmit(fund))).map((m) => m.data);
}

export async function readStream<T = Record<string, unknown>>(
  nc: NatsConnection,
  stream: string,
  subjectPrefix = "",
): Promise<{ subject: string; seq: number; data: T }[]> {
  const jsm = await jetstream(nc).jetstreamManager();
  const info = await jsm.streams.info(stream);
  const out: { subject: string; seq: number; data: T }[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (!m || !m.subject.startsWith(subjectPrefix)) continue;
    out.push({ subject: m.subject, seq, data: m.json<T>() });
  }
  return out;
}

/**
 * The cursor of `stream` the engine decided `orderId` at, from its journal record on
 * RISK_DECISIONS (a group-committed batch included); undefined when no record names it.
 */
export async function decidedAt(
  nc: NatsConnection,
  fund: string,
  orderId: unknown,
  stream: string,
): Promise<number | undefined> {
  type JournalRecord = { decision?: { order_id?: string }; cursors?: Record<string, number> };
  const recs = await readStream<JournalRecord | JournalRecord[]>(
    nc,
    "RISK_DECISIONS",
    Subjects.decision(fund),
  );
  return recs
    .flatMap((r) => (Array.isArray(r.data) ? r.data : [r.data]))
    .find((r) => r.decision?.order_id === orderId)?.cursors?.[stream];
}

/** RISK_CONTROL's halts of a fund, as published: `SEVERITY` each (with `: reason` when `withReason`). */
export async function publishedHalts(
  nc: NatsConnection,
  fund: string,
  withReason = false,
): Promise<string[]> {
  const halts = await readStream<{ severity: string; reason: string }>(
    nc,
    "RISK_CONTROL",
    Subjects.halt(fund),
  );
  return halts.map((m) => (withReason ? `${m.data.severity}: ${m.data.reason}` : m.data.severity));
}

/** RISK_CONTROL's P&L baselines of a fund, as published: `period@starts_at=equity` each. */
export async function publishedBaselines(nc: NatsConnection, fund: string): Promise<string[]> {
  const b = await readStream<{ period: string; starts_at: string; equity: string }>(
    nc,
    "RISK_CONTROL",
    Subjects.pnlBaseline(fund),
  );
  return b.map((m) => `${m.data.period}@${m.data.starts_at}=${m.data.equity}`);
}

/** Until the engine has applied each of `streams` up to its last sequence now. */
export async function settled(
  engine: Engine,
  streams: readonly string[] = ["RISK_CONTROL", "FILLS", "RISK_ENVELOPES", "RISK_DECISIONS", "OMS_ORDERS"],
): Promise<void> {
  const jsm = await engine.js.jetstreamManager();
  for (const s of streams) {
    const last = (await jsm.streams.info(s)).state.last_seq;
    await waitFor(() => applied(engine, s, last), { message: `${s} not applied up to ${last}` });
  }
}

/**
 * Publishes stream messages and waits until the engine applied each one; timestamps from `clock`.
 * `engine` is a getter: tests that restart their engine keep one of these.
 */
export class Feeder {
  constructor(
    readonly bus: Bus,
    private readonly engine: () => Engine,
    private readonly clock: Clock,
  ) {}
  until(stream: string, seq: number): Promise<boolean> {
    return waitFor(() => applied(this.engine(), stream, seq), { message: `${stream} applied up to ${seq}` });
  }
  async envelope(e: Record<string, unknown>): Promise<void> {
    await this.until("RISK_ENVELOPES", await this.bus.envelope(e));
  }
  /** A quote stamped `ageMs` before the clock's now. */
  async quote(symbol: string, bid: string, ask: string, ageMs = 0): Promise<void> {
    await this.until("QUOTES", await this.bus.quote(symbol, bid, ask, iso(this.clock.now() - ageMs)));
  }
  /** A quote 0.01 either side of `mid`. */
  async mark(symbol: string, mid: number): Promise<void> {
    await this.quote(symbol, String(mid - 0.01), String(mid + 0.01));
  }
  async fill(
    fund: string,
    symbol: string,
    side: string,
    quantity: string,
    price: string,
    o: Record<string, unknown> = {},
  ): Promise<void> {
    const body = { fund_id: fund, symbol, side, quantity, price, timestamp: iso(this.clock.now()), ...o };
    await this.until("FILLS", await this.bus.fill(body));
  }
  /** An OMS event stamped now; `extra`: more fields (`filled_quantity`). */
  async orderEvent(
    event: string,
    fund: string,
    orderId: string,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const seq = await this.bus.orderEvent(event, fund, orderId, iso(this.clock.now()), extra);
    await this.until("OMS_ORDERS", seq);
  }
}
