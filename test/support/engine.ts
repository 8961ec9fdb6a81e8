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
import type { Clock } from "../../src/time/clock.js";

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
  async orderEvent(event: string, fund: string, orderId: string, at = NOW): Promise<number> {
    const body = { order_id: orderId, fund_id: fund, event, at };
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
