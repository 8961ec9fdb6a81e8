/**
 * Red team (issue 11): crashes at arbitrary points between decisions, their journal group commit,
 * the read-back and the batched snapshot commit. Rounds of concurrent checks against one position
 * limit, each cut by an abort() after a varying delay, then a restart from the same snapshot; every
 * order ever sent is retried. Invariants: an answered order is answered the same again (replayed);
 * across every crash, exactly the headroom is approved, never more.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, settled, startTestEngine } from "../support/engine.js";

describe("red team: crash loop against one headroom", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  for (const commit of [0, 1000]) {
    it(`commit_interval_ms ${commit}: answers stable and headroom exact across crashes`, async () => {
      const clock = manualClock(NOW);
      const fund = `loop${commit}`;
      const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-loop-"));
      const flags = { "state.flush_interval_ms": 20, "state.commit_interval_ms": commit };
      let engine = await startTestEngine(server.url, { clock, stateDir, flags });
      try {
        // 0.01 × 1 000 000 = 10 000 = 100 orders of 1 @ 100
        const s = await bus.envelope(envelope(fund, { max_position_pct: "0.01" }));
        await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
        const sent: Record<string, unknown>[] = [];
        const answered = new Map<string, RiskDecision>();
        const delays = [0, 3, 8, 15, 25, 40, 60, 5, 1, 30];
        for (let round = 0; round < delays.length; round++) {
          const batch = Array.from({ length: 20 }, () =>
            order({ fund_id: fund, quantity: "1", limit_price: "100" }),
          );
          sent.push(...batch);
          const inflight = batch.map((o) =>
            bus
              .check(o, undefined, 1500)
              .then((d) => answered.set(String(o["idempotency_key"]), d))
              .catch(() => undefined),
          );
          await delay(delays[round]);
          await engine.abort();
          await Promise.all(inflight);
          engine = await startTestEngine(server.url, { clock, stateDir, flags });
          await settled(engine);
          // every answered order replays what it was answered
          for (const o of sent) {
            const k = String(o["idempotency_key"]);
            const was = answered.get(k);
            if (!was) continue;
            const now = await bus.check(o);
            expect({
              round,
              k,
              approved: now.approved,
              code: now.rejection_code,
              replayed: now.details["replayed"],
            }).toEqual({
              round,
              k,
              approved: was.approved,
              code: was.rejection_code,
              replayed: "true",
            });
          }
        }
        // every order sent, retried until answered: exactly 100 approvals
        let approved = 0;
        for (const o of sent) {
          const d = await bus.check(o);
          const k = String(o["idempotency_key"]);
          const was = answered.get(k);
          if (was) expect({ k, approved: d.approved }).toEqual({ k, approved: was.approved });
          else answered.set(k, d);
          if (d.approved) approved++;
          else expect(d.rejection_code).toBe("MAX_POSITION_EXCEEDED");
        }
        expect(sent.length).toBe(200);
        expect(approved).toBe(100);
        // and a last restart agrees
        await engine.close();
        engine = await startTestEngine(server.url, { clock, stateDir, flags });
        await settled(engine);
        let again = 0;
        for (const o of sent) if ((await bus.check(o)).approved) again++;
        expect(again).toBe(100);
        const extra = await bus.check(order({ fund_id: fund, quantity: "1", limit_price: "100" }));
        expect(extra.rejection_code).toBe("MAX_POSITION_EXCEEDED");
      } finally {
        await engine.close().catch(() => undefined);
      }
    }, 180_000);
  }
});
