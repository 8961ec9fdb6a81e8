/**
 * Red team (client library: its deadline): CONTRACT.md "Client library": `check(order)` returns
 * the RiskDecision; on a timeout it retries with the same `idempotency_key` and, when no engine
 * answers within its deadline, returns ENGINE_UNAVAILABLE (fail closed) instead of throwing.
 * src/client/index.ts refuses option values that would make a phantom outage (a timeout of 0:
 * "every check ENGINE_UNAVAILABLE after 0 attempts") with INVALID_OPTIONS.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { createRiskClient, type OrderRequest } from "../../src/client/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";

describe("red team: client deadlines", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url);
    const s = await bus.envelope(envelope("alpha"));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
  }, 30_000);
  afterAll(async () => {
    await engine?.close();
    await nc?.close();
    await server?.stop();
  });

  it("a per-attempt timeout longer than Node's longest timer: refused, or the engine's answer (no phantom outage)", async () => {
    // Expected: createRiskClient throws INVALID_OPTIONS for timeoutMs >= 2^31 (as it does for 0),
    // or check() waits and returns the engine's approval. Before the fix: Node
    // fires a timer longer than 2^31-1 ms at once, so every attempt "times out" immediately and a
    // live engine's order is answered ENGINE_UNAVAILABLE, while the engine approved it (and
    // reserves its headroom) behind the client's back.
    let risk: ReturnType<typeof createRiskClient>;
    try {
      risk = createRiskClient(nc, { timeoutMs: 2 ** 31, retries: 1 });
    } catch (err) {
      expect((err as { code?: string }).code).toBe("INVALID_OPTIONS");
      return;
    }
    const o = order() as OrderRequest;
    const d = await risk.check(o);
    // what the engine decided meanwhile (the same key again, straight on the bus)
    const behind = await bus.check(o);
    expect(
      { client: d.rejection_code, engine: behind.rejection_code, engineApproved: behind.approved },
      JSON.stringify(d),
    ).toEqual({ client: "", engine: "", engineApproved: true });
    expect(d.approved).toBe(true);
  });

  it("a NATS server that goes away: ENGINE_UNAVAILABLE within the deadline, never a throw", async () => {
    const own = await connectTest(server.url);
    try {
      const risk = createRiskClient(own, { timeoutMs: 250, retries: 2 });
      expect((await risk.check(order() as OrderRequest)).approved).toBe(true);
      server.pause();
      try {
        const t0 = performance.now();
        const d = await risk.check(order() as OrderRequest);
        expect(performance.now() - t0).toBeLessThan(750 + 750);
        expect(d).toMatchObject({
          approved: false,
          rejecting_gate: "client",
          rejection_code: "ENGINE_UNAVAILABLE",
        });
      } finally {
        server.resume();
      }
    } finally {
      await own.close();
    }
  });
});
