/**
 * Red team (operations): the OMS client's retries while the engine is still deciding (a slow CRO
 * advisor, timeoutMs shorter than the advisor): every retry carries the same key, so an order is
 * decided once, the client is told that one decision, and racing orders never approve more than
 * the headroom, in the answers or in the journal.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { type OrderRequest, type RiskDecision, createRiskClient } from "../../src/client/index.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";

const clock = { now: () => Date.parse(NOW) + 100 };
interface Rec {
  decision: RiskDecision;
  replayed: boolean;
}

describe("red team: client retries during a slow CRO advisor", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  let advisor: Subscription;
  let asked = 0;
  const stateDir = mkdtempSync(join(tmpdir(), "mts-redteam-ops-cro-"));

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, {
      clock,
      stateDir,
      flags: { "cro_veto.enabled": true, "cro_veto.timeout_s": 3, "cro_veto.confidence_threshold": 0.85 },
    });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    advisor = nc.subscribe(Subjects.croVeto, {
      callback: (_e, m) => {
        asked++;
        void delay(450).then(() =>
          m.respond(JSON.stringify({ veto: false, confidence: "0.1", reason: "ok" })),
        );
      },
    });
    await nc.flush();
    const s = await bus.envelope(envelope("head", { max_gross_exposure_pct: "0.03" })); // 3 orders of 10 000
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s) && engine.readiness().ready);
  });
  afterAll(async () => {
    advisor?.unsubscribe();
    await nc?.close();
    await engine?.close().catch(() => undefined);
    await server?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("short per-attempt timeouts: one decision per order, at most the headroom approved", async () => {
    const c = createRiskClient(nc, { timeoutMs: 200, retries: 14 }); // deadline 3 s
    const orders = Array.from({ length: 8 }, () => order({ fund_id: "head" }) as OrderRequest);
    const ds = await Promise.all(orders.map((o) => c.check(o)));
    const codes = ds.map((d) => (d.approved ? "APPROVED" : d.rejection_code));
    expect(asked).toBeGreaterThan(0);
    expect(codes.filter((x) => x === "ENGINE_UNAVAILABLE")).toEqual([]);
    expect(codes.filter((x) => x === "APPROVED")).toHaveLength(3);
    const recs = await waitFor(async () => {
      const all = (await readStream<Rec | Rec[]>(nc, "RISK_DECISIONS")).flatMap((m) =>
        Array.isArray(m.data) ? m.data : [m.data],
      );
      const made = all.filter((r) => !r.replayed);
      return made.length >= orders.length ? all : undefined;
    });
    for (const [i, o] of orders.entries()) {
      const made = recs!.filter((r) => r.decision.order_id === o.order_id && !r.replayed);
      expect(made, o.order_id).toHaveLength(1);
      expect(made[0]!.decision.approved).toBe(ds[i]!.approved);
    }
  }, 60_000);
});
