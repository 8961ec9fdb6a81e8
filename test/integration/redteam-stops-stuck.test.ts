/**
 * Red team (stops): a closing order (MARKET, IOC) the OMS acknowledged (`accepted`) and then never
 * ended, filled or mentioned again. The stop stays triggered ("no re-arm while a closing order
 * works") and the position stays open; the engine's own rule for a closing order it cannot see
 * progress on is an alert after `synthetic_stop.closing_order_alert_s` so that an operator can act
 * (the `unacknowledged` and `fills_due` alerts). An accepted IOC order silent for that long must
 * be alerted too: otherwise the position is unprotected for ever, with nothing said.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, Feeder, NOW, closingOrders, envelope, readStream, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

type Closing = { order_id: string; idempotency_key: string; side: string; quantity: string; broker: string };

describe("red team: a closing order accepted by the OMS and never heard of again", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  let feed: Feeder;
  const clock = manualClock(NOW);
  const timers = steppableTimers();
  const ALERT_S = 30;

  const closing = (fund: string) => closingOrders<Closing>(nc, fund);
  const alerts = async (fund: string) =>
    (
      await readStream<{ message: string; details?: Record<string, string> }>(
        nc,
        "RISK_CONTROL",
        Subjects.alert("stop", fund),
      )
    ).map((m) => m.data);
  const stop = (fund: string, symbol: string) => engine.observe.stop(fund, symbol);

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, {
      clock,
      timers,
      flags: { "reservations.ttl_s": 600, "synthetic_stop.closing_order_alert_s": ALERT_S },
    });
    feed = new Feeder(bus, () => engine, clock);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("is alerted once its trigger is closing_order_alert_s old (the stop cannot re-arm meanwhile)", async () => {
    const f = "rt-stuck";
    await feed.envelope(envelope(f, { synthetic_stop_pct: "0.10" }));
    await feed.fill(f, "AAPL", "BUY", "100", "100");
    await waitFor(() => stop(f, "AAPL")?.state === "armed", { message: "armed" });
    await feed.quote("AAPL", "85", "85.5");
    await waitFor(async () => (await closing(f)).length === 1, { message: "closing order" });
    const [c] = await closing(f);
    expect(await bus.check(c)).toMatchObject({ approved: true });
    await feed.orderEvent("accepted", f, c!.order_id);
    // far past the alert time (and past the reservation TTL: an accepted order reserves on)
    for (let i = 0; i < 3; i++) {
      clock.advance(ALERT_S * 1000);
      await feed.quote("AAPL", "80", "80.5");
      await timers.tick("stops");
      await timers.fire("sweep");
    }
    clock.advance(600_000);
    await timers.fire("sweep");
    await timers.tick("stops");
    expect(stop(f, "AAPL")?.state).toBe("triggered");
    expect(await closing(f)).toHaveLength(1);
    expect(engine.observe.fund(f)?.books["AAPL"]?.qty).toBe("100");
    await waitFor(
      async () =>
        (await alerts(f)).some(
          (a) =>
            a.message.includes(c!.order_id) ||
            Object.values(a.details ?? {}).some((v) => v.includes(c!.order_id)),
        ),
      {
        message: "a stop alert naming the silent closing order",
        timeoutMs: 3_000,
      },
    );
  });
});
