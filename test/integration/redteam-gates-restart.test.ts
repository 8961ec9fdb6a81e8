/**
 * Red-team pass on the newer pre-trade checks across a restart: the duplicate index
 * (duplicate_window_ms), the open-order count (max_open_orders) and the velocity window are
 * derived state; a restart from the snapshot must judge the next orders as the live engine would
 * have. (A restart on an empty state dir: redteam-gates-dup-catchup.test.ts.)
 * Regression test: passes on the current engine.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

describe("red-team gates: duplicate index and open orders across a restart", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  const engines: Engine[] = [];
  const clock = manualClock(NOW);
  const now = () => iso(clock.now());

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    for (const e of engines) await e.close().catch(() => undefined);
    await server?.stop();
  });

  const outcome = (d: { approved: boolean; rejecting_gate: string; rejection_code: string }) =>
    d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`;

  async function start(stateDir: string): Promise<Engine> {
    const e = await startTestEngine(server.url, { clock, stateDir });
    engines.push(e);
    await waitFor(() => e.ready(), { message: "engine not ready" });
    return e;
  }

  it("a duplicate, an open-order count and a velocity count survive a restart from the snapshot", async () => {
    const F = "rt-restart";
    const dir = mkdtempSync(join(tmpdir(), "mts-rt-gates-"));
    const e1 = await start(dir);
    const seq = await bus.envelope(
      envelope(F, {
        duplicate_window_ms: 60000,
        max_open_orders: 2,
        velocity: { window_s: 60, max_orders: 8 },
      }),
    );
    await waitFor(() => applied(e1, "RISK_ENVELOPES", seq));
    const a = order({ fund_id: F, symbol: "RSA", quantity: "10", limit_price: "5" });
    const b = order({ fund_id: F, symbol: "RSB", quantity: "1" });
    const c = order({ fund_id: F, symbol: "RSC", quantity: "1" });
    expect(outcome(await bus.check(a))).toBe("approved");
    expect(outcome(await bus.check(b))).toBe("approved");
    expect(outcome(await bus.check(c))).toBe("velocity/MAX_OPEN_ORDERS_EXCEEDED");
    // the OMS cancels b: one slot free again
    const ev = await bus.orderEvent("cancelled", F, String(b["order_id"]), now());
    await waitFor(() => applied(e1, "OMS_ORDERS", ev));
    clock.advance(1000);
    await e1.close(); // a graceful stop commits the snapshot

    // restart from the snapshot
    const e2 = await start(dir);
    const cancel = async (o: Record<string, unknown>) => {
      const n = await bus.orderEvent("cancelled", F, String(o["order_id"]), now());
      await waitFor(() => applied(e2, "OMS_ORDERS", n));
    };
    const dup = order({ fund_id: F, symbol: "RSA", quantity: "10.0", limit_price: "5" });
    expect(outcome(await bus.check(dup))).toBe("velocity/DUPLICATE_ORDER");
    // one open (a), limit 2: one more is approved, then full
    const d = order({ fund_id: F, symbol: "RSD", quantity: "1" });
    expect(outcome(await bus.check(d))).toBe("approved");
    // a, b, c, the duplicate and d decided: 5 of 8 in the window; two open (a, d) of 2
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "RSE", quantity: "1" })))).toBe(
      "velocity/MAX_OPEN_ORDERS_EXCEEDED",
    );
    // 6 decided; free slots one at a time: the 7th and 8th pass, the 9th is over the rate
    await cancel(d);
    const g = order({ fund_id: F, symbol: "RSG", quantity: "1" });
    expect(outcome(await bus.check(g))).toBe("approved");
    await cancel(g);
    const h = order({ fund_id: F, symbol: "RSH", quantity: "1" });
    expect(outcome(await bus.check(h))).toBe("approved");
    await cancel(h);
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "RSI", quantity: "1" })))).toBe(
      "velocity/VELOCITY_EXCEEDED",
    );
  });
});
