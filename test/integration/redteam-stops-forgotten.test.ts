/**
 * Red team (stops): a closing order the OMS ended reporting fills that never reach FILLS keeps
 * the stop waiting until the reservation is forgotten; then the stop must re-arm (stop 28). With
 * `idempotency.window_s` equal to `reservations.ttl_s` (the defaults: both 86400) the closing
 * order's idempotency record is swept before the order record (the order record lives a TTL after
 * its `done` event, the idempotency record a window after the decision): once both are gone the
 * stop must still re-arm, not stay triggered for ever over an unprotected position. The same when
 * an approved closing order the OMS never acknowledged has both records forgotten while the engine
 * was down (it re-arms "once its TTL lapsed", stop 28).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";

import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, Feeder, NOW, closingOrders, envelope, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

type Closing = { order_id: string; idempotency_key: string; side: string; quantity: string; broker: string };

describe("red team: fills due never come, default reservation TTL and idempotency window", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  let feed: Feeder;
  const clock = manualClock(NOW);
  const timers = steppableTimers();
  const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-forgot-"));
  /** The defaults: reservations.ttl_s = idempotency.window_s = 86400. */
  const TTL_S = 86_400;

  const closing = (fund: string) => closingOrders<Closing>(nc, fund);
  const stop = (fund: string, symbol: string) => engine.observe.stop(fund, symbol);
  const ended = (fund: string, orderId: string, filled: string) =>
    feed.orderEvent("done", fund, orderId, { filled_quantity: filled });

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, {
      clock,
      timers,
      stateDir,
    });
    feed = new Feeder(bus, () => engine, clock);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("the stop re-arms and fires again once the reported fills are forgotten", async () => {
    const fund = "rt-forgot";
    await feed.envelope(envelope(fund, { synthetic_stop_pct: "0.10" }));
    await feed.fill(fund, "AMD", "BUY", "100", "100");
    await waitFor(() => stop(fund, "AMD")?.state === "armed", { message: "armed" });
    await feed.quote("AMD", "85", "85.5");
    await waitFor(async () => (await closing(fund)).length === 1, { message: "closing order" });
    const [c] = await closing(fund);
    expect(await bus.check(c)).toMatchObject({ approved: true });
    clock.advance(5_000); // the OMS ends it a few seconds later, its fills never reach FILLS
    await ended(fund, c!.order_id, "100");
    expect(stop(fund, "AMD")?.state).toBe("triggered");
    // past the TTL after the done event: the reservation of the reported fills is forgotten
    clock.advance(TTL_S * 1000);
    await waitFor(
      async () => {
        clock.advance(2_000);
        await timers.fire("sweep");
        await feed.quote("AMD", "80", "80.5");
        await timers.tick("stops");
        return (await closing(fund)).some((x) => x.order_id !== c!.order_id);
      },
      { message: "a new closing order once the reported fills are forgotten" },
    );
    // a new arm's closing order (not the first one sent again)
    const again = (await closing(fund)).find((x) => x.order_id !== c!.order_id)!;
    expect(again).toMatchObject({ side: "SELL", quantity: "100" });
    expect(engine.observe.fund(fund)?.books["AMD"]?.qty).toBe("100");
  });
  it("a closing order never acknowledged, the engine down past both windows: re-armed and fired on becoming live", async () => {
    const fund = "rt-forgot-down";
    await feed.envelope(envelope(fund, { synthetic_stop_pct: "0.10" }));
    await feed.fill(fund, "INTC", "BUY", "10", "100");
    await waitFor(() => stop(fund, "INTC")?.state === "armed", { message: "armed" });
    await feed.quote("INTC", "85", "85.5");
    await waitFor(async () => (await closing(fund)).length === 1, { message: "closing order" });
    const [c] = await closing(fund);
    expect(await bus.check(c)).toMatchObject({ approved: true });
    // the OMS never acknowledges it; the engine is down for three days
    await engine.close();
    clock.advance(3 * TTL_S * 1000);
    await bus.quote("INTC", "80", "80.5", iso(clock.now()));
    engine = await startTestEngine(server.url, { clock, timers, stateDir });
    await waitFor(
      async () => {
        clock.advance(2_000);
        await timers.fire("sweep");
        await feed.quote("INTC", "80", "80.5");
        await timers.tick("stops");
        return (await closing(fund)).some((x) => x.order_id !== c!.order_id);
      },
      { message: "a new closing order once the first lapsed" },
    );
    // a new arm's closing order (not the first one sent again)
    const again = (await closing(fund)).find((x) => x.order_id !== c!.order_id)!;
    expect(again).toMatchObject({ side: "SELL", quantity: "10" });
  });
});
