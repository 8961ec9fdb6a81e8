/**
 * Red-team pass (stop 30a) on what velocity counts (src/service/decide.ts finish(): `counted` is
 * false for the engine gate's transient answers and for replays) and on replays of an order that
 * differs only by `created_at`. CONTRACT.md "Gates": `velocity` … `VELOCITY_EXCEEDED` "(counts every
 * schema-valid order of the fund in the window, approved or not; replays excluded)"; "Velocity
 * windows count every order decided in them, including orders decided before the limit was set or
 * widened"; "Every decision is journaled"; "The same order" for idempotency is every field but
 * `created_at`. One nats-server, one engine on a manual clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats } from "../support/nats.js";
import { Bus, Feeder, NOW, envelope, order, startTestEngine } from "../support/engine.js";

type D = {
  approved: boolean;
  rejecting_gate: string;
  rejection_code: string;
  details: Record<string, string>;
};
const outcome = (d: D) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);

describe("red-team s30a: velocity counting and created_at replays", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  let feed: Feeder;
  const clock = manualClock(NOW);

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    feed = new Feeder(bus, () => engine, clock);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const velocity = { window_s: 60, max_orders: 2 };

  // ---------------------------------------------------------------- regression guards (pass)

  it("replays (re-stamped created_at, valid or refused) are not counted; new orders and rejections are", async () => {
    const F = "s30v-replay";
    await feed.envelope(envelope(F, { velocity, max_order_qty: "100" }));
    const a = order({ fund_id: F, symbol: "VRA", quantity: "10", created_at: "2026-11-21T14:30:00Z" });
    expect(outcome(await bus.check(a))).toBe("approved");
    for (const created_at of ["2026-11-21T14:30:01.5Z", "21/11/2026 14:30", 12345, null]) {
      const d = await bus.check({ ...a, created_at });
      expect(`${String(created_at)} ${outcome(d)} ${d.details["replayed"]}`).toBe(
        `${String(created_at)} approved true`,
      );
    }
    // a rejected schema-valid order counts (2nd in the window)
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "VRA", quantity: "1000" })))).toBe(
      "static/MAX_ORDER_QTY_EXCEEDED",
    );
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "VRA", quantity: "1" })))).toBe(
      "velocity/VELOCITY_EXCEEDED",
    );
  });

  it("a new order whose created_at the schema refuses is SCHEMA_INVALID at created_at and not counted", async () => {
    const F = "s30v-badts";
    await feed.envelope(envelope(F, { velocity }));
    for (let i = 0; i < 3; i++) {
      const d = await bus.check(order({ fund_id: F, symbol: "VRB", quantity: "1", created_at: "yesterday" }));
      expect(`${outcome(d)} ${d.details["path"]}`).toBe("schema/SCHEMA_INVALID created_at");
    }
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "VRB", quantity: "1" })))).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "VRB", quantity: "1" })))).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "VRB", quantity: "1" })))).toBe(
      "velocity/VELOCITY_EXCEEDED",
    );
  });

  it("a retry of a NO_ENVELOPE answer, re-stamped, is evaluated afresh once the envelope exists", async () => {
    const F = "s30v-retry";
    const a = order({ fund_id: F, symbol: "VRC", quantity: "1", created_at: "2026-11-21T14:30:00Z" });
    expect(outcome(await bus.check(a))).toBe("engine/NO_ENVELOPE");
    await feed.envelope(envelope(F, { velocity }));
    const d = await bus.check({ ...a, created_at: "2026-11-21T14:30:02Z" });
    expect(`${outcome(d)} ${d.details["replayed"] ?? ""}`).toBe("approved ");
  });

  // ---------------------------------------------------------------- contract wording (fails now)
});
