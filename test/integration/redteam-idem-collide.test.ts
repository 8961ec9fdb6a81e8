/**
 * Red team (issue 11): two ids that share one slot of the key index (the same 28-bit fingerprint,
 * found by a birthday search over the index's own hash), used as idempotency key and order id at
 * once (as most OMSs send them). One expires and is swept while the other lives; both go cold;
 * restart. The index must never forget the survivor (a miss is "surely new": a replay would be
 * decided again, an order id reused).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { fingerprint28, hash32 } from "../../src/state/key-index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, settled, startTestEngine } from "../support/engine.js";

/** Two distinct ids of `fund` whose keys (fund \u0001 id) share a fingerprint in the key index. */
function collidingPair(fund: string): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const id = `col-${i}`;
    const f = fingerprint28(hash32(`${fund}\u0001${id}`));
    const other = seen.get(f);
    if (other !== undefined) return [other, id];
    seen.set(f, id);
  }
}

describe("red team: ids sharing a key-index slot", () => {
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

  it("one swept, the other still replays and owns its id; both still in use after a restart", async () => {
    const clock = manualClock(NOW);
    const fund = "coll";
    const [a, b] = collidingPair(fund);
    expect(a).not.toBe(b);
    const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-coll-"));
    const flags = {
      "state.flush_interval_ms": 20,
      "state.commit_interval_ms": 0,
      "idempotency.window_s": 5,
      "reservations.ttl_s": 600,
    };
    let engine = await startTestEngine(server.url, { clock, stateDir, flags });
    try {
      const s = await bus.envelope(envelope(fund, { max_order_qty: "1000" }));
      await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
      const A = order({ fund_id: fund, order_id: a, idempotency_key: a, quantity: "10" });
      const B = order({ fund_id: fund, order_id: b, idempotency_key: b, quantity: "10" });
      expect((await bus.check(A)).approved).toBe(true);
      await settled(engine);
      await engine.flush();
      clock.advance(3_000);
      const dB = await bus.check(B);
      expect(dB.approved).toBe(true);
      // both end (filled, done): cold order records too
      for (const [oid, f] of [
        [a, "fa"],
        [b, "fb"],
      ] as const) {
        await bus.orderEvent("accepted", fund, oid);
        await bus.fill({
          fund_id: fund,
          order_id: oid,
          quantity: "10",
          price: "100",
          fill_id: `${fund}-${f}`,
        });
        await bus.orderEvent("done", fund, oid);
      }
      await settled(engine);
      clock.advance(3_000); // A's record past its window, B's not
      engine.status();
      await engine.flush();
      await engine.flush();

      const expectB = async (tag: string) => {
        const r = await bus.check(B);
        expect({ tag, approved: r.approved, replayed: r.details["replayed"], at: r.decided_at }).toEqual({
          tag,
          approved: true,
          replayed: "true",
          at: dB.decided_at,
        });
        const c = await bus.check({ ...B, quantity: "11" });
        expect({ tag, code: c.rejection_code }).toEqual({ tag, code: "IDEMPOTENCY_CONFLICT" });
      };
      const expectInUse = async (tag: string) => {
        for (const oid of [a, b]) {
          const d = await bus.check(
            order({ fund_id: fund, order_id: oid, idempotency_key: `${tag}-${oid}` }),
          );
          expect({ tag, oid, code: d.rejection_code }).toEqual({ tag, oid, code: "DUPLICATE_ORDER_ID" });
        }
      };
      await expectB("live");
      await expectInUse("live");
      // A's own key, same order, after its window: never approved again (its id is in use)
      const againA = await bus.check(A);
      expect({ approved: againA.approved, code: againA.rejection_code }).toEqual({
        approved: false,
        code: "DUPLICATE_ORDER_ID",
      });

      await settled(engine);
      await engine.close();
      engine = await startTestEngine(server.url, { clock, stateDir, flags });
      await settled(engine);
      await expectB("restarted");
      await expectInUse("restarted");

      // B's window passes too: its id stays in use through its order record
      clock.advance(3_000);
      engine.status();
      await engine.flush();
      await expectInUse("both-swept");
    } finally {
      await engine.close().catch(() => undefined);
    }
  }, 60_000);
});
