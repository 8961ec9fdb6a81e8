/**
 * Red team (idempotency records and order records on disk, issue 11): retries after a record went
 * cold (flushed, left memory), retries of more keys than the LRU cache holds, order ids reused
 * under another key, and retries racing with a batched snapshot commit. Black box through the bus.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import Database from "better-sqlite3";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, settled, startTestEngine } from "../support/engine.js";

const K = (fund: string, key: string) => `${fund}\u0001${key}`;

describe("red team: idempotency records gone cold", () => {
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

  /** The snapshot's idem row of a key: conf (read back) or undefined when not on disk yet. */
  function idemRow(stateDir: string, fund: string, key: string): { conf: number; owner: number } | undefined {
    const db = new Database(join(stateDir, "snapshot.sqlite"), { readonly: true, fileMustExist: true });
    try {
      return db.prepare("SELECT conf, owner FROM idem WHERE k = ?").get(K(fund, key)) as
        { conf: number; owner: number } | undefined;
    } finally {
      db.close();
    }
  }

  /** Until the key's record is on disk, confirmed, and a later committed flush let it leave memory. */
  async function cold(e: Engine, stateDir: string, fund: string, keys: string[]) {
    await settled(e);
    await waitFor(
      async () => {
        await e.flush();
        return keys.every((k) => idemRow(stateDir, fund, k)?.conf === 1);
      },
      { message: `records of ${keys.join(",")} not confirmed on disk` },
    );
    await e.flush();
  }

  for (const commit of [0, 1000]) {
    it(`commit_interval_ms ${commit}: a cold record replays, conflicts, and owns its order id`, async () => {
      const fund = `cold${commit}`;
      const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-cold-"));
      const engine = await startTestEngine(server.url, {
        clock,
        stateDir,
        flags: { "state.flush_interval_ms": 20, "state.commit_interval_ms": commit },
      });
      try {
        const s = await bus.envelope(envelope(fund, { max_order_qty: "1000" }));
        await waitFor(() => applied(engine, "RISK_ENVELOPES", s));

        const a = order({ fund_id: fund, quantity: "10" });
        const r = order({ fund_id: fund, quantity: "5000" }); // MAX_ORDER_QTY_EXCEEDED
        const da = await bus.check(a);
        const dr = await bus.check(r);
        expect(da.approved).toBe(true);
        expect(dr.rejection_code).toBe("MAX_ORDER_QTY_EXCEEDED");

        await cold(engine, stateDir, fund, [String(a["idempotency_key"]), String(r["idempotency_key"])]);

        // same key, same order (re-stamped): the original decision, replayed
        const ra = await bus.check({ ...a, created_at: "2026-11-21T14:31:00Z" });
        expect({
          approved: ra.approved,
          replayed: ra.details["replayed"],
          decided_at: ra.decided_at,
          order_id: ra.order_id,
        }).toEqual({ approved: true, replayed: "true", decided_at: da.decided_at, order_id: a["order_id"] });
        const rr = await bus.check(r);
        expect({ code: rr.rejection_code, replayed: rr.details["replayed"] }).toEqual({
          code: "MAX_ORDER_QTY_EXCEEDED",
          replayed: "true",
        });

        // same key, a different order: conflict naming the field
        const ca = await bus.check({ ...a, quantity: "11" });
        expect({ gate: ca.rejecting_gate, code: ca.rejection_code, field: ca.details["field"] }).toEqual({
          gate: "idempotency",
          code: "IDEMPOTENCY_CONFLICT",
          field: "quantity",
        });
        // a rejected record conflicts too (it is kept like any decision on a schema-valid order)
        const cr = await bus.check({ ...r, quantity: "10" });
        expect(cr.rejection_code).toBe("IDEMPOTENCY_CONFLICT");

        // the order id under another key: DUPLICATE_ORDER_ID (approved one and rejected one)
        const dupA = await bus.check({ ...a, idempotency_key: `other-${String(a["order_id"])}` });
        expect({ approved: dupA.approved, code: dupA.rejection_code }).toEqual({
          approved: false,
          code: "DUPLICATE_ORDER_ID",
        });
        const dupR = await bus.check({
          ...r,
          quantity: "10",
          idempotency_key: `other-${String(r["order_id"])}`,
        });
        expect({ approved: dupR.approved, code: dupR.rejection_code }).toEqual({
          approved: false,
          code: "DUPLICATE_ORDER_ID",
        });

        // the duplicate's own record went cold too: its retry replays DUPLICATE_ORDER_ID, and a
        // third key is still a duplicate (the duplicate never took the id over)
        await cold(engine, stateDir, fund, [`other-${String(a["order_id"])}`]);
        const dupA2 = await bus.check({ ...a, idempotency_key: `other-${String(a["order_id"])}` });
        expect({ code: dupA2.rejection_code, replayed: dupA2.details["replayed"] }).toEqual({
          code: "DUPLICATE_ORDER_ID",
          replayed: "true",
        });
        const dupA3 = await bus.check({ ...a, idempotency_key: `third-${String(a["order_id"])}` });
        expect(dupA3.rejection_code).toBe("DUPLICATE_ORDER_ID");

        // and after a restart from that snapshot, the same answers
        await engine.close();
        const e2 = await startTestEngine(server.url, {
          clock,
          stateDir,
          flags: { "state.flush_interval_ms": 20, "state.commit_interval_ms": commit },
        });
        try {
          await settled(e2);
          const ra2 = await bus.check(a);
          expect({ approved: ra2.approved, replayed: ra2.details["replayed"] }).toEqual({
            approved: true,
            replayed: "true",
          });
          const ca2 = await bus.check({ ...a, limit_price: "101" });
          expect({ code: ca2.rejection_code, field: ca2.details["field"] }).toEqual({
            code: "IDEMPOTENCY_CONFLICT",
            field: "limit_price",
          });
          const dup2 = await bus.check({ ...a, idempotency_key: `fourth-${String(a["order_id"])}` });
          expect(dup2.rejection_code).toBe("DUPLICATE_ORDER_ID");
        } finally {
          await e2.close();
        }
      } finally {
        await engine.close().catch(() => undefined);
      }
    }, 60_000);
  }

  it("order ids known only from fills or OMS events, their records on disk: DUPLICATE_ORDER_ID, across a restart", async () => {
    const fund = "extids";
    const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-ext-"));
    const flags = { "state.flush_interval_ms": 20, "state.commit_interval_ms": 1000 };
    let engine = await startTestEngine(server.url, { clock, stateDir, flags });
    try {
      const s = await bus.envelope(envelope(fund));
      await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
      // ext-fill: a fill only (cold at once); ext-acc: accepted only (open); ext-done: cancelled only
      await bus.fill({ fund_id: fund, order_id: `${fund}-ext-fill`, fill_id: `${fund}-f1`, quantity: "1" });
      await bus.orderEvent("accepted", fund, `${fund}-ext-acc`);
      await bus.orderEvent("cancelled", fund, `${fund}-ext-done`);
      await settled(engine);
      await engine.flush();
      await engine.flush();
      const ids = ["ext-fill", "ext-acc", "ext-done"].map((x) => `${fund}-${x}`);
      const ask = async (tag: string) => {
        for (const oid of ids) {
          const d = await bus.check(
            order({ fund_id: fund, order_id: oid, idempotency_key: `${tag}-${oid}` }),
          );
          expect({ oid, tag, approved: d.approved, code: d.rejection_code }).toEqual({
            oid,
            tag,
            approved: false,
            code: "DUPLICATE_ORDER_ID",
          });
        }
      };
      await ask("live");
      await engine.close();
      engine = await startTestEngine(server.url, { clock, stateDir, flags });
      await settled(engine);
      await ask("restarted");
      await engine.abort();
      engine = await startTestEngine(server.url, { clock, stateDir, flags });
      await settled(engine);
      await ask("crashed");
    } finally {
      await engine.close().catch(() => undefined);
    }
  }, 60_000);

  it("more keys than the LRU cache holds (4 096): the oldest retried replay, conflict and stay owned", async () => {
    const fund = "lru";
    const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-lru-"));
    const engine = await startTestEngine(server.url, {
      clock,
      stateDir,
      flags: { "state.flush_interval_ms": 20, "state.commit_interval_ms": 0 },
    });
    try {
      const s = await bus.envelope(envelope(fund, { max_order_qty: "1000" }));
      await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
      const N = 4400;
      const orders = Array.from({ length: N }, (_, i) =>
        order({ fund_id: fund, quantity: i % 3 === 0 ? "5000" : "10" }),
      );
      const first: RiskDecision[] = [];
      for (let i = 0; i < N; i += 200) {
        first.push(
          ...(await Promise.all(orders.slice(i, i + 200).map((o) => bus.check(o, undefined, 20_000)))),
        );
      }
      expect(first.filter((d) => d.approved).length).toBe(N - Math.ceil(N / 3));
      await cold(engine, stateDir, fund, [
        String(orders[0]!["idempotency_key"]),
        String(orders[N - 1]!["idempotency_key"]),
      ]);
      // read the newest 4 096 back so the cache holds only them, then retry the oldest 300
      for (let i = N - 4096; i < N; i += 256) {
        await Promise.all(orders.slice(i, i + 256).map((o) => bus.check(o, undefined, 20_000)));
      }
      for (let i = 0; i < 300; i++) {
        const o = orders[i]!;
        const d = await bus.check(o);
        expect({ i, approved: d.approved, code: d.rejection_code, replayed: d.details["replayed"] }).toEqual({
          i,
          approved: first[i]!.approved,
          code: first[i]!.rejection_code,
          replayed: "true",
        });
      }
      for (let i = 300; i < 400; i++) {
        const o = orders[i]!;
        const d = await bus.check({ ...o, side: "SELL" });
        expect({ i, code: d.rejection_code, field: d.details["field"] }).toEqual({
          i,
          code: "IDEMPOTENCY_CONFLICT",
          field: "side",
        });
        const dup = await bus.check({ ...o, idempotency_key: `again-${i}` });
        expect({ i, code: dup.rejection_code }).toEqual({ i, code: "DUPLICATE_ORDER_ID" });
      }
    } finally {
      await engine.close();
    }
  }, 180_000);
});
