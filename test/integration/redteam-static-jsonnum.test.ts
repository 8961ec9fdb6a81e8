/**
 * Red-team pass on JSON numbers in an Order (CONTRACT.md "Encoding": "Numbers given as JSON numbers
 * are accepted only where they are exactly representable integers; anything else is
 * SCHEMA_INVALID. Arithmetic inside the engine is exact decimal: a value exactly at a limit passes,
 * one smallest unit above it fails."), sent as raw JSON text through the bus, and one parser
 * differential (a key given twice). One nats-server, one engine on a manual clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, startTestEngine } from "../support/engine.js";

type D = {
  approved: boolean;
  rejecting_gate: string;
  rejection_code: string;
  details: Record<string, string>;
};
const outcome = (d: D) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);

describe("red-team JSON numbers in an order", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  let n = 0;

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  /** A raw JSON order text: `tail` is appended verbatim (numbers exactly as written). */
  const raw = (fund: string, symbol: string, tail: string) => {
    const id = `jn-${process.pid}-${++n}`;
    return `{"order_id":"${id}","idempotency_key":"${id}","fund_id":"${fund}","broker":"paper","symbol":"${symbol}","side":"BUY","order_type":"LIMIT",${tail}}`;
  };

  it("exact JSON integers are accepted (control)", async () => {
    const F = "rtjn-ok";
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { max_order_qty: "100" })));
    expect(outcome(await bus.check(raw(F, "JNA", `"quantity":100,"limit_price":5`)))).toBe("approved");
    expect(outcome(await bus.check(raw(F, "JNA", `"quantity":1e2,"limit_price":5`)))).toBe("approved");
    expect(outcome(await bus.check(raw(F, "JNA", `"quantity":101,"limit_price":5`)))).toBe(
      "static/MAX_ORDER_QTY_EXCEEDED",
    );
    const d = await bus.check(raw(F, "JNA", `"quantity":100.5,"limit_price":5`));
    expect(`${outcome(d)} ${d.details["path"]}`).toBe("schema/SCHEMA_INVALID quantity");
  });

  /**
   * Contract: a JSON number that is not an exactly representable integer is SCHEMA_INVALID; and
   * one smallest unit above a limit fails. `"quantity": 100.0000000000000001` is not an integer; the
   * engine's JSON.parse rounds it to the double 100, which passes Number.isSafeInteger
   * (src/contract/schemas.ts `decimal()`), so it is judged as 100 and approved at max_order_qty 100.
   * Expected: SCHEMA_INVALID (details.path "quantity"). Before the fix: approved.
   */
  it("a non-integer JSON number that rounds to an integer is SCHEMA_INVALID (quantity above max_order_qty)", async () => {
    const F = "rtjn-qty";
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { max_order_qty: "100" })));
    const d = await bus.check(raw(F, "JNB", `"quantity":100.0000000000000001,"limit_price":5`));
    expect(`${outcome(d)} ${d.details["path"] ?? ""}`).toBe("schema/SCHEMA_INVALID quantity");
  });

  /**
   * Same sentence, on a price: limit 105.000000000000001 is outside a 5 % collar around mid 100
   * (edge 105), and not an integer either; read as 105 it passes the collar.
   * Expected: SCHEMA_INVALID (details.path "limit_price"). Before the fix: approved.
   */
  it("a non-integer JSON limit_price that rounds to the collar's edge is SCHEMA_INVALID", async () => {
    const F = "rtjn-collar";
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { price_collar_pct: "0.05" })));
    await until("QUOTES", await bus.quote("JNC", "99", "101", iso(clock.now())));
    // control: the decimal string one unit beyond the edge is refused by the collar
    expect(
      outcome(await bus.check(raw(F, "JNC", `"quantity":"1","limit_price":"105.000000000000001"`))),
    ).toBe("static/PRICE_COLLAR_BREACHED");
    const d = await bus.check(raw(F, "JNC", `"quantity":"1","limit_price":105.000000000000001`));
    expect(`${outcome(d)} ${d.details["path"] ?? ""}`).toBe("schema/SCHEMA_INVALID limit_price");
  });

  /**
   * Spec silent (RFC 8259: names SHOULD be unique, behaviour with duplicates is unpredictable).
   * Risk expectation: an order whose quantity is given twice is ambiguous, and a parser
   * differential between the OMS/broker side (first value wins in several parsers) and the engine
   * (JSON.parse: last value wins) lets the engine approve 1 while 1 000 000 is routed. Expected:
   * SCHEMA_INVALID at "quantity". Before the fix: judged on the last value (approved).
   */
  it("a key given twice (quantity) is SCHEMA_INVALID, not silently the last value", async () => {
    const F = "rtjn-dup";
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { max_order_qty: "100" })));
    const d = await bus.check(raw(F, "JND", `"quantity":"1000000","limit_price":"5","quantity":"1"`));
    expect(outcome(d)).toBe("schema/SCHEMA_INVALID");
  });
});
