/**
 * An envelope applied while an asynchronous gate (the CRO veto) thinks about an order: the order
 * is decided by the limits in force when it is decided, not by those read before the wait (a
 * red-team pass: a lowered max_open_orders or velocity limit used to be ignored, the approval
 * naming the replaced version).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";

describe("an envelope applied while the CRO veto is asked", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const asked: Msg[] = [];
  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, {
      flags: { "cro_veto.enabled": true, "cro_veto.timeout_s": 10 },
    });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    // the advisor answers only when the test says so
    nc.subscribe(Subjects.croVeto, { callback: (_e, m) => void asked.push(m) });
    await nc.flush();
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const noVeto = () => {
    for (const m of asked.splice(0))
      m.respond(JSON.stringify({ veto: false, confidence: "0.1", reason: "" }));
  };
  async function publish(env: Record<string, unknown>) {
    const seq = await bus.envelope(env);
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
  }
  /** The order's decision when `tighter` is applied after the advisor was asked, before it answers. */
  async function decidedAcross(fund: string, tighter: Record<string, unknown>) {
    const pending = bus.check(order({ fund_id: fund }), Subjects.check, 15_000);
    await waitFor(() => asked.length === 1);
    await publish(envelope(fund, { version: 2, ...tighter }));
    noVeto();
    const d = await pending;
    return `${d.approved}:${d.rejecting_gate}:${d.rejection_code}:${d.envelope_id}`;
  }

  it("a max_open_orders lowered meanwhile refuses the order (it used to be approved under v1)", async () => {
    await publish(envelope("race-open", { max_open_orders: 5 }));
    expect(await decidedAcross("race-open", { max_open_orders: 0 })).toBe(
      "false:velocity:MAX_OPEN_ORDERS_EXCEEDED:race-open@v2",
    );
  });

  it("a velocity limit lowered meanwhile refuses the order", async () => {
    await publish(envelope("race-vel", { velocity: { window_s: 60, max_orders: 10 } }));
    expect(await decidedAcross("race-vel", { velocity: { window_s: 60, max_orders: 0 } })).toBe(
      "false:velocity:VELOCITY_EXCEEDED:race-vel@v2",
    );
  });

  it("a broker removed meanwhile refuses the order", async () => {
    await publish(envelope("race-broker", {}));
    expect(await decidedAcross("race-broker", { allowed_brokers: ["ibkr"] })).toBe(
      "false:static:BROKER_NOT_ALLOWED:race-broker@v2",
    );
  });

  it("a limit widened meanwhile approves under the new version", async () => {
    await publish(envelope("race-wide", { max_order_qty: "1000" }));
    expect(await decidedAcross("race-wide", { max_order_qty: "2000" })).toBe("true:::race-wide@v2");
  });
});
