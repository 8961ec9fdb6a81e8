/**
 * Red team (issue 11): retries racing with the snapshot writer (captures every 20 ms, batched
 * commits), while other keys churn the records' LRU cache (4 096), and concurrent first attempts:
 * one key sent many times at once, one order id under many keys at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, settled, startTestEngine } from "../support/engine.js";

describe("red team: retries racing with flushes and cache churn", () => {
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
    it(`commit_interval_ms ${commit}: concurrent first attempts, then retries through flushes and churn`, async () => {
      const clock = manualClock(NOW);
      const fund = `race${commit}`;
      const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-race-"));
      const flags = { "state.flush_interval_ms": 20, "state.commit_interval_ms": commit };
      const engine = await startTestEngine(server.url, { clock, stateDir, flags });
      try {
        // 0.5 × 1 000 000 = 500 000 = 5 000 orders of 1 @ 100
        const s = await bus.envelope(envelope(fund, { max_position_pct: "0.5" }));
        await waitFor(() => applied(engine, "RISK_ENVELOPES", s));

        // one key sent 40 times at once: one decision
        const one = order({ fund_id: fund, quantity: "1", limit_price: "100" });
        const same = await Promise.all(Array.from({ length: 40 }, () => bus.check(one)));
        expect(same.filter((d) => d.details["replayed"] !== "true").length).toBe(1);
        expect(new Set(same.map((d) => `${d.approved}|${d.decided_at}|${d.rejection_code}`)).size).toBe(1);

        // one order id under 40 keys at once: one approval, the rest DUPLICATE_ORDER_ID
        const base = order({ fund_id: fund, quantity: "1", limit_price: "100" });
        const many = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            bus.check({ ...base, idempotency_key: `${String(base["order_id"])}-k${i}` }),
          ),
        );
        expect(many.filter((d) => d.approved).length).toBe(1);
        expect(many.filter((d) => d.rejection_code === "DUPLICATE_ORDER_ID").length).toBe(39);

        // 30 tracked keys (approved and rejected), then retries of them interleaved with 4 600 new keys
        const tracked = Array.from({ length: 30 }, (_, i) =>
          order({ fund_id: fund, quantity: i % 2 === 0 ? "1" : "100000", limit_price: "100" }),
        );
        const orig = new Map<string, RiskDecision>();
        for (const o of tracked) orig.set(String(o["idempotency_key"]), await bus.check(o));
        const mismatches: string[] = [];
        const retryAll = async (tag: string) => {
          const ds = await Promise.all(tracked.map((o) => bus.check(o, undefined, 20_000)));
          ds.forEach((d, i) => {
            const o = orig.get(String(tracked[i]!["idempotency_key"]))!;
            if (
              d.approved !== o.approved ||
              d.rejection_code !== o.rejection_code ||
              d.decided_at !== o.decided_at ||
              d.details["replayed"] !== "true"
            )
              mismatches.push(`${tag} #${i}: ${JSON.stringify(d)} vs ${JSON.stringify(o)}`);
          });
        };
        for (let wave = 0; wave < 23; wave++) {
          const fresh = Array.from({ length: 200 }, () =>
            order({ fund_id: fund, quantity: "1", limit_price: "1" }),
          );
          await Promise.all([...fresh.map((o) => bus.check(o, undefined, 20_000)), retryAll(`wave ${wave}`)]);
          // conflicts and duplicates of the tracked ones, mid-churn
          const t = tracked[wave % tracked.length]!;
          const c = await bus.check({ ...t, limit_price: "99" });
          if (c.rejection_code !== "IDEMPOTENCY_CONFLICT" || c.details["field"] !== "limit_price")
            mismatches.push(`wave ${wave} conflict: ${JSON.stringify(c)}`);
          const d = await bus.check({ ...t, idempotency_key: `dup-${wave}-${String(t["idempotency_key"])}` });
          if (d.rejection_code !== "DUPLICATE_ORDER_ID")
            mismatches.push(`wave ${wave} duplicate: ${JSON.stringify(d)}`);
        }
        await settled(engine);
        await engine.flush();
        await retryAll("after flush");
        expect(mismatches).toEqual([]);
      } finally {
        await engine.close();
      }
    }, 180_000);
  }
});
