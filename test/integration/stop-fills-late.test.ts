/**
 * A stop's closing order that the OMS ends (`done`, with `filled_quantity`) before its fills reach
 * FILLS (two streams, no order between them). The engine still holds the position and reserves the
 * reported part until the fills land; the stop must wait for them, not take the leg as "ended with
 * nothing filled" and fire a second closing order that flips the position once the fills arrive
 * (a red-team find: long 100 became short 100). Fills that never come are alerted; the stop waits
 * until the reservation's TTL forgets them, then re-arms as after any unfilled closing.
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

describe("a closing order ended by the OMS before its fills", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  let feed: Feeder;
  const clock = manualClock(NOW);
  const timers = steppableTimers();
  const TTL_S = 600;

  const closing = (fund: string) => closingOrders<Closing>(nc, fund);
  const alerts = async (fund: string) =>
    (
      await readStream<{ message: string; details?: Record<string, string> }>(
        nc,
        "RISK_CONTROL",
        Subjects.alert("stop", fund),
      )
    ).map((m) => m.data);
  const qty = (fund: string, symbol: string) => engine.observe.fund(fund)?.books[symbol]?.qty;
  const stop = (fund: string, symbol: string) => engine.observe.stop(fund, symbol);
  const ended = (fund: string, orderId: string, filled: string) =>
    feed.orderEvent("done", fund, orderId, { filled_quantity: filled });
  /** Crossing quotes, ticks and backoffs: everything that would fire a re-armed stop again. */
  async function pressOn(symbol: string, bid: string, ask: string) {
    for (let i = 0; i < 3; i++) {
      clock.advance(2_000);
      await feed.quote(symbol, bid, ask);
      await timers.tick("stops");
      await timers.fire("sweep");
    }
  }
  /** A fund long (or short) `q` of `symbol` at 100 whose stop fired one approved closing order. */
  async function triggered(fund: string, symbol: string, side: "BUY" | "SELL", q: string): Promise<Closing> {
    await feed.envelope(envelope(fund, { synthetic_stop_pct: "0.10" }));
    await feed.fill(fund, symbol, side, q, "100");
    await waitFor(() => stop(fund, symbol)?.state === "armed", { message: `${fund} armed` });
    if (side === "BUY") await feed.quote(symbol, "85", "85.5");
    else await feed.quote(symbol, "115", "115.5");
    await waitFor(async () => (await closing(fund)).length === 1, { message: `${fund} closing order` });
    const [c] = await closing(fund);
    expect(await bus.check(c)).toMatchObject({ approved: true });
    return c!;
  }

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, {
      clock,
      timers,
      flags: { "reservations.ttl_s": TTL_S, "synthetic_stop.closing_order_alert_s": 30 },
    });
    feed = new Feeder(bus, () => engine, clock);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("a long: no second closing order while the fills are due; flat once they land", async () => {
    const c = await triggered("late-long", "AAPL", "BUY", "100");
    await ended("late-long", c.order_id, "100");
    expect(stop("late-long", "AAPL")?.state).toBe("triggered");
    await pressOn("AAPL", "80", "80.5");
    expect(await closing("late-long")).toHaveLength(1);
    expect(stop("late-long", "AAPL")?.state).toBe("triggered");
    // the fills land in two parts: still waiting after the first
    await feed.fill("late-long", "AAPL", "SELL", "60", "85", { order_id: c.order_id });
    await pressOn("AAPL", "80", "80.5");
    expect(await closing("late-long")).toHaveLength(1);
    await feed.fill("late-long", "AAPL", "SELL", "40", "85", { order_id: c.order_id });
    await waitFor(() => stop("late-long", "AAPL")?.state === "cleared", { message: "cleared once flat" });
    await pressOn("AAPL", "80", "80.5");
    expect(await closing("late-long")).toHaveLength(1);
    expect(qty("late-long", "AAPL")).toBe("0");
  });

  it("a short closed by a BUY: the same, never flipped long", async () => {
    const c = await triggered("late-short", "MSFT", "SELL", "50");
    expect(c.side).toBe("BUY");
    await ended("late-short", c.order_id, "50");
    await pressOn("MSFT", "120", "120.5");
    expect(await closing("late-short")).toHaveLength(1);
    await feed.fill("late-short", "MSFT", "BUY", "50", "116", { order_id: c.order_id });
    await waitFor(() => stop("late-short", "MSFT")?.state === "cleared", { message: "cleared once flat" });
    expect(qty("late-short", "MSFT")).toBe("0");
    expect(await closing("late-short")).toHaveLength(1);
  });

  it("a partial end (60 of 100 reported): waits for the 60, then closes the 40 left", async () => {
    const c = await triggered("late-part", "NVDA", "BUY", "100");
    await ended("late-part", c.order_id, "60");
    await pressOn("NVDA", "80", "80.5");
    expect(await closing("late-part")).toHaveLength(1);
    await feed.fill("late-part", "NVDA", "SELL", "60", "85", { order_id: c.order_id });
    // the rest (40) is protected again: re-armed, and the crossing mark fires it (after the
    // partial closing's backoff, none here: something filled)
    await waitFor(
      async () => {
        clock.advance(1_000);
        await feed.quote("NVDA", "80", "80.5");
        await timers.tick("stops");
        return (await closing("late-part")).length === 2;
      },
      { message: "a closing order for the 40 left" },
    );
    expect((await closing("late-part"))[1]).toMatchObject({ side: "SELL", quantity: "40" });
  });

  it("fills that never come: alerted once, no second closing order while reserved, re-armed after the TTL", async () => {
    const c = await triggered("late-lost", "AMD", "BUY", "100");
    await ended("late-lost", c.order_id, "100");
    clock.advance(31_000);
    await timers.tick("stops");
    await waitFor(
      async () => (await alerts("late-lost")).some((a) => a.details?.["reported_filled"] === "100"),
      {
        message: "fills-due alert",
      },
    );
    const due = (await alerts("late-lost")).filter((a) => a.details?.["reported_filled"] !== undefined);
    expect(due).toHaveLength(1);
    expect(due[0]!.message).toMatch(new RegExp(c.order_id));
    await pressOn("AMD", "80", "80.5");
    expect(await closing("late-lost")).toHaveLength(1);
    expect(stop("late-lost", "AMD")?.state).toBe("triggered");
    expect(
      (await alerts("late-lost")).filter((a) => a.details?.["reported_filled"] !== undefined),
    ).toHaveLength(1);
    // the reservation's TTL forgets the reported fills: the engine's position (100) is
    // unprotected again, so the stop re-arms and fires as after any unfilled closing
    clock.advance(TTL_S * 1000);
    await waitFor(
      async () => {
        clock.advance(2_000);
        await timers.fire("sweep");
        await feed.quote("AMD", "80", "80.5");
        await timers.tick("stops");
        return (await closing("late-lost")).length === 2;
      },
      { message: "a new closing order once the reservation is forgotten" },
    );
    expect((await closing("late-lost"))[1]).toMatchObject({ side: "SELL", quantity: "100" });
    expect(qty("late-lost", "AMD")).toBe("100");
  });

  it("a closing order approved and never acknowledged by the OMS: re-armed and fired again once its TTL lapses", async () => {
    const c = await triggered("late-silent", "INTC", "BUY", "10");
    await pressOn("INTC", "80", "80.5");
    expect(await closing("late-silent")).toHaveLength(1);
    clock.advance(TTL_S * 1000);
    await waitFor(
      async () => {
        clock.advance(2_000);
        await timers.fire("sweep");
        await feed.quote("INTC", "80", "80.5");
        await timers.tick("stops");
        return (await closing("late-silent")).length === 2;
      },
      { message: "a new closing order once the first lapsed" },
    );
    const again = (await closing("late-silent"))[1]!;
    expect(again.order_id).not.toBe(c.order_id);
    expect(again).toMatchObject({ side: "SELL", quantity: "10" });
    expect(await bus.check(again)).toMatchObject({ approved: true });
  });
});
