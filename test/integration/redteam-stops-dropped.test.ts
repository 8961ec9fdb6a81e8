/**
 * Red team (stops): a closing order the OMS never checked (dropped on the way: no check, no event,
 * no fill). The OMS checks every order before routing it, so after a reservation TTL nothing of it
 * can still fill; the stop must then re-arm and fire again, not stay triggered for ever ("no re-arm
 * while a closing order works") over a position it no longer protects. Only an `unacknowledged`
 * alert is raised today, once.
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

describe("red team: a closing order the OMS never checked", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  let feed: Feeder;
  const clock = manualClock(NOW);
  const timers = steppableTimers();
  /** The defaults: reservations.ttl_s = idempotency.window_s = 86400. */
  const TTL_S = 86_400;

  const closing = (fund: string) => closingOrders<Closing>(nc, fund);
  const stop = (fund: string, symbol: string) => engine.observe.stop(fund, symbol);

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, { clock, timers });
    feed = new Feeder(bus, () => engine, clock);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("a closing order the OMS never checked (dropped): re-armed and fired again once a TTL has passed", async () => {
    const fund = "rt-forgot-dropped";
    await feed.envelope(envelope(fund, { synthetic_stop_pct: "0.10" }));
    await feed.fill(fund, "AVGO", "BUY", "10", "100");
    await waitFor(() => stop(fund, "AVGO")?.state === "armed", { message: "armed" });
    await feed.quote("AVGO", "85", "85.5");
    await waitFor(async () => (await closing(fund)).length === 1, { message: "closing order" });
    const [c] = await closing(fund);
    // the OMS drops it: no check, no event, no fill
    clock.advance(2 * TTL_S * 1000);
    await waitFor(
      async () => {
        clock.advance(2_000);
        await timers.fire("sweep");
        await feed.quote("AVGO", "80", "80.5");
        await timers.tick("stops");
        return (await closing(fund)).some((x) => x.order_id !== c!.order_id);
      },
      { message: "a new closing order two TTLs after the first was sent" },
    );
    // a new arm's closing order (not the first one sent again)
    const again = (await closing(fund)).find((x) => x.order_id !== c!.order_id)!;
    expect(again).toMatchObject({ side: "SELL", quantity: "10" });
    expect(await bus.check(again)).toMatchObject({ approved: true });
  });
});
