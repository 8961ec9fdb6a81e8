import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";

describe("check path smoke", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url);
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("approves a LIMIT order under a permissive envelope", async () => {
    const seq = await bus.envelope(envelope());
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
    const d = await bus.check(order());
    expect(d).toMatchObject({
      approved: true,
      rejecting_gate: "",
      rejection_code: "",
      envelope_id: "alpha@v1",
    });
  });
});
