/**
 * Red team (client library against a frozen engine process): CONTRACT.md "Client library":
 * `createRiskClient(nc, opts).check(order)` returns the RiskDecision; on a timeout it retries with
 * the same `idempotency_key` (so it never gets two decisions for one order) and, when no engine
 * answers within its deadline, returns a rejection with `rejecting_gate: "client"`,
 * `rejection_code: "ENGINE_UNAVAILABLE"` (fail closed) instead of throwing. "Several engines": a
 * paused owner is taken over within `ownership.takeover_s`; a lone engine that wakes up after
 * longer than that is still the service and must answer again.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { DecisionRecord } from "../../src/contract/records.js";
import { Subjects } from "../../src/contract/subjects.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, envelope, order, readStream } from "../support/engine.js";
import { EngineProcess, requestStatus } from "../faults/support.js";

interface ClientModule {
  createRiskClient: (
    nc: NatsConnection,
    o?: { timeoutMs?: number; retries?: number },
  ) => {
    check(o: Record<string, unknown>): Promise<Record<string, unknown> & { details: Record<string, string> }>;
  };
}

describe("red team: client against a SIGSTOPped engine", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let proc: EngineProcess;
  let client: ClientModule;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    const dir = mkdtempSync(join(tmpdir(), "mts-rt-cstop-"));
    proc = new EngineProcess({
      natsUrl: server.url,
      stateDir: join(dir, "state"),
      logFile: join(dir, "engine.log"),
      env: { RISK_HTTP__ENABLED: "false" },
    });
    proc.start();
    await waitFor(async () => (await requestStatus(nc, 1000)).ready, {
      timeoutMs: 60_000,
      message: "engine ready",
    });
    await bus.envelope(envelope("alpha", { max_order_qty: "1000" }));
    await waitFor(
      async () => {
        const st = await requestStatus(nc, 1000);
        if (!st.ready) return false;
        const d = await bus.check(order({ quantity: "1" }), Subjects.check, 1000);
        return d.approved;
      },
      { timeoutMs: 60_000, message: "engine ready and alpha's envelope applied" },
    );
    client = (await import("../../src/client/index.js")) as unknown as ClientModule;
  }, 90_000);
  afterAll(async () => {
    proc?.thaw();
    await proc?.stop();
    await nc?.close();
    await server?.stop();
  });

  const recordsOf = async (orderId: string): Promise<DecisionRecord[]> =>
    (await readStream<DecisionRecord | DecisionRecord[]>(nc, "RISK_DECISIONS"))
      .flatMap((m) => (Array.isArray(m.data) ? m.data : [m.data]))
      .filter((r) => r.decision.order_id === orderId);

  it("frozen: ENGINE_UNAVAILABLE within the deadline; woken: one decision, the retry replays it", async () => {
    const risk = client.createRiskClient(nc, { timeoutMs: 300, retries: 2 });
    const o = order({ quantity: "10" });
    proc.freeze();
    const t0 = performance.now();
    const d = await risk.check(o);
    const took = performance.now() - t0;
    expect(d).toMatchObject({
      order_id: o.order_id,
      approved: false,
      rejecting_gate: "client",
      rejection_code: "ENGINE_UNAVAILABLE",
    });
    expect(took).toBeLessThan(900 + 500);
    proc.thaw();
    // the three attempts queued while frozen are answered now: one decision, the rest replays
    const again = await waitFor(
      async () => {
        const r = await risk.check(o);
        return r.rejection_code === "ENGINE_UNAVAILABLE" ? undefined : r;
      },
      { timeoutMs: 20_000, message: "the woken engine answers" },
    );
    expect(again!.approved).toBe(true);
    expect(again!.details["replayed"]).toBe("true");
    const recs = await waitFor(async () => {
      const r = await recordsOf(String(o.order_id));
      return r.length >= 4 ? r : undefined;
    });
    expect(recs!.filter((r) => !r.replayed).length).toBe(1);
  }, 60_000);

  it("frozen longer than ownership.takeover_s, alone: it answers checks again after SIGCONT", async () => {
    // Expected: with no other engine to take its funds, the woken engine re-owns them and decides
    // (approves) a new order within a few seconds. A client deadline of 6.6 s (> takeover_s = 5 s)
    // is the pause: no fixed sleep.
    const slow = client.createRiskClient(nc, { timeoutMs: 2200, retries: 2 });
    proc.freeze();
    const lost = order({ quantity: "10" });
    const d = await slow.check(lost);
    expect(d.rejection_code).toBe("ENGINE_UNAVAILABLE");
    proc.thaw();
    const risk = client.createRiskClient(nc, { timeoutMs: 500, retries: 1 });
    const fresh = order({ quantity: "10" });
    const answered = await waitFor(
      async () => {
        const r = await risk.check(fresh);
        return r.rejection_code === "ENGINE_UNAVAILABLE" || r.rejection_code === "STATE_NOT_READY"
          ? undefined
          : r;
      },
      { timeoutMs: 20_000, message: "the woken lone engine decides again" },
    );
    expect(answered!.rejection_code).toBe("");
    // the order the client gave up on was decided at most once, and a retry replays that decision
    const r = await risk.check(lost);
    expect(r.rejection_code === "" || r.rejection_code === "STATE_NOT_READY" ? "ok" : r.rejection_code).toBe(
      "ok",
    );
    const recs = await recordsOf(String(lost.order_id));
    expect(recs.filter((x) => !x.replayed && x.recorded).length).toBeLessThanOrEqual(1);
  }, 60_000);
});
