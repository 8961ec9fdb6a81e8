/**
 * Red team (issue 11): position headroom with reservations when the order records are on disk
 * (cold, or open rows a restart leaves unread), across a clean restart and a crash between the
 * decisions and their snapshot commit (state.commit_interval_ms batches the commits). Headroom must
 * never be used twice: exactly what fits is approved, and every retry replays what was answered.
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

describe("red team: reservations and idempotency across restarts with records on disk", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  const approvedCount = (ds: RiskDecision[]) => ds.filter((d) => d.approved).length;

  for (const commit of [0, 1000]) {
    it(`commit_interval_ms ${commit}: headroom exact after a clean restart and after a crash`, async () => {
      const fund = `rs${commit}`;
      const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-restart-"));
      const flags = { "state.flush_interval_ms": 20, "state.commit_interval_ms": commit };
      let engine = await startTestEngine(server.url, { clock, stateDir, flags });
      try {
        // limit: 0.01 × 1 000 000 = 10 000; each order 10 @ 100 = 1 000
        const s = await bus.envelope(envelope(fund, { max_position_pct: "0.01", max_order_qty: "1000" }));
        await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
        const mk = () => order({ fund_id: fund, quantity: "10", limit_price: "100" });

        const p1 = Array.from({ length: 6 }, mk);
        const d1 = await Promise.all(p1.map((o) => bus.check(o)));
        expect(approvedCount(d1)).toBe(6);
        const id = (o: Record<string, unknown>) => String(o["order_id"]);
        // o1 filled in full and done; o2 accepted and partly filled; o3 working; o4–o6 unacknowledged
        await bus.orderEvent("accepted", fund, id(p1[0]!));
        await bus.fill({
          fund_id: fund,
          order_id: id(p1[0]!),
          quantity: "10",
          price: "100",
          fill_id: `${fund}-f1`,
        });
        await bus.orderEvent("done", fund, id(p1[0]!));
        await bus.orderEvent("accepted", fund, id(p1[1]!));
        await bus.fill({
          fund_id: fund,
          order_id: id(p1[1]!),
          quantity: "4",
          price: "100",
          fill_id: `${fund}-f2`,
        });
        await bus.orderEvent("accepted", fund, id(p1[2]!));
        await settled(engine);
        await engine.flush();
        await engine.flush();
        // used: 1 000 (o1) + 1 000 (o2: 400 held + 600 reserved) + 4 × 1 000 = 6 000

        await engine.close();
        engine = await startTestEngine(server.url, { clock, stateDir, flags });
        await settled(engine);

        // after the restart: o3 filled in full and done (nothing released), o4 cancelled (1 000 freed),
        // o2's remainder cancelled (600 freed: not a whole order)
        await bus.fill({
          fund_id: fund,
          order_id: id(p1[2]!),
          quantity: "10",
          price: "100",
          fill_id: `${fund}-f3`,
        });
        await bus.orderEvent("done", fund, id(p1[2]!));
        await bus.orderEvent("cancelled", fund, id(p1[3]!));
        await bus.orderEvent("cancelled", fund, id(p1[1]!));
        await settled(engine);
        // used: 1 000 + 400 + 1 000 + 2 × 1 000 (o5, o6) = 4 400: 5 orders of 1 000 fit
        const p2 = Array.from({ length: 12 }, mk);
        const d2 = await Promise.all(p2.map((o) => bus.check(o)));
        expect(approvedCount(d2)).toBe(5);
        for (const d of d2.filter((x) => !x.approved)) expect(d.rejection_code).toBe("MAX_POSITION_EXCEEDED");

        // the phase-1 retries replay as approved (their records are on disk)
        for (const o of p1) {
          const r = await bus.check(o);
          expect({ approved: r.approved, replayed: r.details["replayed"] }).toEqual({
            approved: true,
            replayed: "true",
          });
        }

        // crash right after the decisions (no final flush; with 1 000 ms commits nothing of them may
        // be on disk), then the same retries and a new burst
        await engine.abort();
        engine = await startTestEngine(server.url, { clock, stateDir, flags });
        await settled(engine);
        for (let i = 0; i < p2.length; i++) {
          const r = await bus.check(p2[i]!);
          expect({
            i,
            approved: r.approved,
            code: r.rejection_code,
            replayed: r.details["replayed"],
          }).toEqual({
            i,
            approved: d2[i]!.approved,
            code: d2[i]!.rejection_code,
            replayed: "true",
          });
        }
        const p3 = Array.from({ length: 8 }, mk);
        const d3 = await Promise.all(p3.map((o) => bus.check(o)));
        expect(approvedCount(d3)).toBe(0);

        // free exactly two whole orders (two of p2's approvals cancelled) and the 600 left: 2 fit
        const freed = p2.filter((_, i) => d2[i]!.approved).slice(0, 2);
        for (const o of freed) await bus.orderEvent("cancelled", fund, id(o));
        await settled(engine);
        // and records go cold in between
        await engine.flush();
        await engine.flush();
        const p4 = Array.from({ length: 8 }, mk);
        const d4 = await Promise.all(p4.map((o) => bus.check(o)));
        expect(approvedCount(d4)).toBe(2);

        // the cancelled ids are still in use: a new key is DUPLICATE_ORDER_ID, reserves nothing
        for (const o of freed) {
          const dup = await bus.check({ ...o, idempotency_key: `re-${id(o)}` });
          expect(dup.rejection_code).toBe("DUPLICATE_ORDER_ID");
        }
        // one more clean restart: still no headroom
        await engine.close();
        engine = await startTestEngine(server.url, { clock, stateDir, flags });
        await settled(engine);
        const d5 = await Promise.all(Array.from({ length: 4 }, mk).map((o) => bus.check(o)));
        expect(approvedCount(d5)).toBe(0);
      } finally {
        await engine.close().catch(() => undefined);
      }
    }, 90_000);
  }
});
