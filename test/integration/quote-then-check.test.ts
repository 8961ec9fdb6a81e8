/**
 * A check sent after a quote's acknowledgement is judged at that quote (stop 27: the paced quote
 * lane, then the default, held a busy feed's quotes back for up to 50 ms, and every such check saw
 * the previous mark). Two publishers' messages have no order on the bus: the stream delivers a
 * stored quote to the engine while the check travels from the OMS, a race of microseconds that the
 * engine can lose now and then (measured: about 1 check in 150 with the ordered consumer), so the test
 * bounds the misses instead of forbidding them; a held-back feed misses every other check.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";

describe("a quote, then a check (default configuration)", () => {
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

  it("judges checks at the quote acknowledged just before them, on a busy feed", async () => {
    const seq = await bus.envelope(envelope("qc", { price_collar_pct: "0.01" }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
    const rounds = 60;
    const stale: string[] = [];
    for (let i = 0; i < rounds; i++) {
      // 100, 150, 100, …: an order at one price is outside the 1 % collar of the other
      const px = 100 + (i % 2) * 50;
      const at = new Date().toISOString();
      // a busy feed: other symbols quoted together right before
      await Promise.all([bus.quote("QC1", "1", "1.1", at), bus.quote("QC2", "1", "1.1", at)]);
      await bus.quote("QC", String(px - 0.01), String(px + 0.01), at);
      const d = await bus.check(
        order({ fund_id: "qc", symbol: "QC", limit_price: String(px), quantity: "1" }),
      );
      if (!d.approved) stale.push(`${i}: ${d.rejection_code} ${d.reason}`);
    }
    // held back for a pace, half of them (every change of price) would be judged at the old mark
    expect(stale.length, stale.join("\n")).toBeLessThanOrEqual(rounds / 10);
  });
});
