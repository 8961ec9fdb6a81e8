/**
 * The CRO veto is asked over the network: while an order waits on the advisor, the fund's envelope
 * may change. The decision is made against the envelope in force when it is made, not the one in
 * force when the order arrived (a limit tightened meanwhile must not be bypassed by a slow advisor).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";

describe("CRO veto: limits changed while the advisor thinks, and odd but clear answers", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  let advisor: Subscription | undefined;
  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, {
      flags: { "cro_veto.enabled": true, "cro_veto.timeout_s": 4, "cro_veto.confidence_threshold": 0.85 },
    });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    const seq = await bus.envelope(envelope("alpha", { max_order_qty: "1000" }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
  });
  afterAll(async () => {
    if (advisor && !advisor.isClosed()) await advisor.drain();
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("rejects an order whose symbol was restricted by a new envelope version while the advisor was asked", async () => {
    const held: Msg[] = [];
    advisor = nc.subscribe(Subjects.croVeto, {
      callback: (_e, m) => {
        held.push(m);
      },
    });
    await nc.flush();
    const pending = bus.check(order(), Subjects.check, 8000);
    await waitFor(() => held.length === 1);
    const seq = await bus.envelope(
      envelope("alpha", { version: 2, max_order_qty: "1000", restricted_symbols: ["AAPL"] }),
    );
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
    held[0]!.respond(JSON.stringify({ veto: false, confidence: "0.1" }));
    const d = await pending;
    expect(d).toMatchObject({
      approved: false,
      rejecting_gate: "static",
      rejection_code: "SYMBOL_RESTRICTED",
      envelope_id: "alpha@v2",
    });
    await advisor.drain();
  });

  it("values an approved MARKET order at the mark in force when it is decided, after the advisor's answer", async () => {
    const held: Msg[] = [];
    advisor = nc.subscribe(Subjects.croVeto, {
      callback: (_e, m) => {
        held.push(m);
      },
    });
    await nc.flush();
    const q1 = await bus.quote("MKT", "99", "100", new Date().toISOString());
    await waitFor(() => applied(engine, "QUOTES", q1));
    const o = order({ symbol: "MKT", order_type: "MARKET", limit_price: null, quantity: "10" });
    const pending = bus.check(o, Subjects.check, 8000);
    await waitFor(() => held.length === 1);
    const q2 = await bus.quote("MKT", "109", "110", new Date().toISOString());
    await waitFor(() => applied(engine, "QUOTES", q2));
    held[0]!.respond(JSON.stringify({ veto: false, confidence: "0.1" }));
    expect((await pending).approved).toBe(true);
    const rec = await waitFor(async () => {
      const all = await readStream<{ decision: { order_id: string }; notional?: string }>(
        nc,
        "RISK_DECISIONS",
        Subjects.decision("alpha"),
      );
      return all.find((r) => r.data.decision?.order_id === o["order_id"]);
    });
    expect(rec!.data.notional).toBe("1100"); // 10 × the ask in force at the decision
    await advisor.drain();
  });

  it("vetoes when the advisor is confident above the threshold and explains itself at length", async () => {
    const seq = await bus.envelope(envelope("alpha", { version: 3, max_order_qty: "1000" }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
    const long = "the issuer reports in five minutes; ".repeat(200); // 7 200 characters
    advisor = nc.subscribe(Subjects.croVeto, {
      callback: (_e, m) => {
        m.respond(JSON.stringify({ veto: true, confidence: "0.95", reason: long }));
      },
    });
    await nc.flush();
    const d = await bus.check(order());
    expect(d).toMatchObject({ approved: false, rejecting_gate: "cro_veto", rejection_code: "CRO_VETO" });
    expect(d.reason.length).toBeLessThanOrEqual(4096);
    expect(long.startsWith(d.reason.slice(0, 100))).toBe(true);
    await advisor.drain();
  });
});
