/**
 * Red team (stops): the OMS ends a closing order with `done` and no `filled_quantity` (it is
 * optional in OrderEvent) before the order's fills reach FILLS (FILLS and OMS_ORDERS are not
 * ordered: cca2a79). Before stop 28 the engine took `done` with no fills seen as "ended with nothing filled",
 * re-armed after the 1 s backoff and emitted a second closing order for the whole position while the
 * first one's fills are still on their way: once both fill, a long 100 is short 100.
 * `done` (unlike `cancelled`/`rejected`/`expired`) says the order is done: filled.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";

import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, Feeder, NOW, closingOrders, envelope, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

type Closing = { order_id: string; idempotency_key: string; side: string; quantity: string; broker: string };

describe("red team: a closing order ended `done` with no filled_quantity before its fills", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  let feed: Feeder;
  const clock = manualClock(NOW);
  const timers = steppableTimers();

  const closing = (fund: string) => closingOrders<Closing>(nc, fund);
  const stop = (fund: string, symbol: string) => engine.observe.stop(fund, symbol);

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, {
      clock,
      timers,
      flags: { "reservations.ttl_s": 600, "synthetic_stop.closing_order_alert_s": 30 },
    });
    feed = new Feeder(bus, () => engine, clock);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("emits no second closing order while the first may still fill", async () => {
    const f = "rt-done-noqty";
    await feed.envelope(envelope(f, { synthetic_stop_pct: "0.10" }));
    await feed.fill(f, "AAPL", "BUY", "100", "100");
    await waitFor(() => stop(f, "AAPL")?.state === "armed", { message: "armed" });
    await feed.quote("AAPL", "85", "85.5");
    await waitFor(async () => (await closing(f)).length === 1, { message: "closing order" });
    const [c] = await closing(f);
    expect(await bus.check(c)).toMatchObject({ approved: true });
    await feed.orderEvent("done", f, c!.order_id); // no filled_quantity
    for (let i = 0; i < 3; i++) {
      clock.advance(2_000);
      await feed.quote("AAPL", "80", "80.5");
      await timers.tick("stops");
      await timers.fire("sweep");
    }
    const all = await closing(f);
    if (all.length > 1) {
      // what follows: the OMS fills both, and the long 100 ends short
      expect(await bus.check(all[1])).toMatchObject({ approved: true });
      await feed.fill(f, "AAPL", "SELL", "100", "85", { order_id: c!.order_id });
      await feed.fill(f, "AAPL", "SELL", "100", "80", { order_id: all[1]!.order_id });
    }
    expect(engine.observe.fund(f)?.books["AAPL"]?.qty ?? "0").not.toMatch(/^-/);
    expect(all).toHaveLength(1);
  });
});
