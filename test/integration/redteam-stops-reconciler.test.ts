/**
 * Red team (stops × broker-exit reconciler, on_drift adopt): a closing order the OMS ended
 * (`done`, filled_quantity 100) before its fills reached FILLS. The broker already reports the
 * position flat; the engine still holds 100 and reserves the reported 100 (the stop waits for the
 * fills: cca2a79). The reconciler must not adopt that drift: it is exactly the fills the OMS
 * reported and FILLS has not brought yet ("a fill in flight must not rewrite a position"). If it
 * does, its ADJUSTMENT flattens the engine's position and the late fills then flip it: long 100
 * becomes short 100 in the engine's books.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, Feeder, NOW, closingOrders, envelope, settled, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

type Closing = { order_id: string; idempotency_key: string; side: string; quantity: string; broker: string };

describe("red team: the reconciler adopts the broker's flat position while a closing order's fills are due", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  let feed: Feeder;
  let sub: Subscription;
  const clock = manualClock(NOW);
  const timers = steppableTimers();
  const held: Record<string, string> = {};

  const closing = (fund: string) => closingOrders<Closing>(nc, fund);
  const qty = (fund: string, symbol: string) => engine.observe.fund(fund)?.books[symbol]?.qty;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    sub = nc.subscribe(Subjects.brokerPositions("paper"), {
      callback: (_err, m) => {
        const positions = Object.entries(held).map(([symbol, quantity]) => ({ symbol, quantity }));
        m.respond(JSON.stringify({ positions }));
      },
    });
    await nc.flush();
    engine = await startTestEngine(server.url, {
      clock,
      timers,
      flags: {
        "reservations.ttl_s": 600,
        "broker_exit_reconciler.interval_s": 3600,
        "broker_exit_reconciler.on_drift": "adopt",
      },
    });
    feed = new Feeder(bus, () => engine, clock);
  });
  afterAll(async () => {
    sub?.unsubscribe();
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("the late fills never leave the position short", async () => {
    const f = "rt-recon";
    await feed.envelope(envelope(f, { synthetic_stop_pct: "0.10", allowed_brokers: ["paper"] }));
    await feed.fill(f, "AAPL", "BUY", "100", "100", { broker: "paper" });
    held["AAPL"] = "100";
    await waitFor(() => engine.observe.stop(f, "AAPL")?.state === "armed", { message: "armed" });
    await feed.quote("AAPL", "85", "85.5");
    await waitFor(async () => (await closing(f)).length === 1, { message: "closing order" });
    const [c] = await closing(f);
    expect(await bus.check(c)).toMatchObject({ approved: true });
    await feed.orderEvent("done", f, c!.order_id, { filled_quantity: "100" });
    held["AAPL"] = "0"; // the broker sold: flat there; FILLS has not brought the fills yet
    for (let i = 0; i < 3; i++) {
      clock.advance(120_000);
      await timers.tick("reconciler");
      await settled(engine);
    }
    await feed.fill(f, "AAPL", "SELL", "100", "85", { order_id: c!.order_id, broker: "paper" });
    await settled(engine);
    expect(qty(f, "AAPL")).toBe("0");
  });
});
