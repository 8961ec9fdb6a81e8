/**
 * Red team (stops): ids are valid up to 64 characters (CONTRACT.md: fund_id, symbol, broker match
 * ^[A-Za-z0-9_-]{1,64}$) and an order_id up to 128. A stop's closing order id is built from them
 * (`stop-<fund>-<symbol>-<seq>`, plus `-<broker>` when several brokers hold the position): with
 * long, valid ids it exceeds 128 characters and the check refuses it as SCHEMA_INVALID, so the
 * position can never be closed by its stop. A fund with valid ids must get a closing order the
 * check approves.
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

describe("red team: a stop of a fund and symbol with long (valid) ids", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  let feed: Feeder;
  const clock = manualClock(NOW);
  const timers = steppableTimers();

  const closing = (fund: string) => closingOrders<Closing>(nc, fund);
  const alerts = async (fund: string) =>
    (await readStream<{ message: string }>(nc, "RISK_CONTROL", Subjects.alert("stop", fund))).map(
      (m) => m.data,
    );

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

  it("fires a closing order the check approves", async () => {
    const f = "F".repeat(64);
    const sym = "S".repeat(64);
    await feed.envelope(envelope(f, { synthetic_stop_pct: "0.10" }));
    await feed.fill(f, sym, "BUY", "100", "100");
    await waitFor(() => engine.observe.stop(f, sym)?.state === "armed", { message: "armed" });
    await feed.quote(sym, "85", "85.5");
    await timers.tick("stops");
    await waitFor(async () => (await closing(f)).length > 0 || (await alerts(f)).length > 0, {
      message: "a closing order or a stop alert",
    });
    expect((await alerts(f)).map((a) => a.message)).toEqual([]);
    const [c] = await closing(f);
    expect(await bus.check(c)).toMatchObject({ approved: true });
  });
});
