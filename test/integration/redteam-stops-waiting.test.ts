/**
 * Red team (stops): a triggered stop whose closing order the OMS ended before its fills reached
 * FILLS (cca2a79) must neither emit a second closing order while the first's fills are still due
 * (the position would end flipped), nor stay triggered once they landed. Across a restart (same
 * state dir, and a full rebuild), with shorting allowed (the check would approve a flip), with a
 * `cancelled` partial end, duplicate fills, and a position held at two brokers.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, Feeder, NOW, closingOrders, envelope, settled, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

type Closing = { order_id: string; idempotency_key: string; side: string; quantity: string; broker: string };

describe("red team: a stop waiting for the fills of an ended closing order", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  let feed: Feeder;
  const clock = manualClock(NOW);
  const timers = steppableTimers();
  const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-stops-"));
  const flags = { "reservations.ttl_s": 600, "synthetic_stop.closing_order_alert_s": 30 };

  const closing = (fund: string) => closingOrders<Closing>(nc, fund);
  const qty = (fund: string, symbol: string) => engine.observe.fund(fund)?.books[symbol]?.qty;
  const stop = (fund: string, symbol: string) => engine.observe.stop(fund, symbol);
  const ended = (fund: string, orderId: string, filled: string, event = "done") =>
    feed.orderEvent(event, fund, orderId, { filled_quantity: filled });
  async function pressOn(symbol: string, bid: string, ask: string) {
    for (let i = 0; i < 3; i++) {
      clock.advance(2_000);
      await feed.quote(symbol, bid, ask);
      await timers.tick("stops");
      await timers.fire("sweep");
    }
  }
  /** `short`: shorting enabled and `symbol` shortable, so the check itself would approve a flip. */
  async function setup(fund: string, symbol: string, short = false) {
    if (short) {
      const i = { symbol, asset_class: "equity", shortable: true, borrow_fee_bps: "10" };
      await feed.until("REFDATA", await bus.instrument(i));
    }
    await feed.envelope(envelope(fund, { synthetic_stop_pct: "0.10", enable_shorting: short }));
  }
  async function trigger(fund: string, symbol: string, legs = 1): Promise<Closing[]> {
    await waitFor(() => stop(fund, symbol)?.state === "armed", { message: `${fund} armed` });
    await feed.quote(symbol, "85", "85.5");
    await waitFor(async () => (await closing(fund)).length === legs, { message: `${fund} closing order` });
    const cs = await closing(fund);
    for (const c of cs) expect(await bus.check(c)).toMatchObject({ approved: true });
    return cs;
  }
  async function restart(dir?: string) {
    await engine.close();
    engine = await startTestEngine(server.url, { clock, timers, flags, ...(dir ? { stateDir: dir } : {}) });
    await settled(engine);
  }

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, { clock, timers, flags, stateDir });
    feed = new Feeder(bus, () => engine, clock);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("a restart (same state dir) between the done event and the fills: still waits, flat after", async () => {
    const f = "rt-restart";
    await setup(f, "AAPL");
    await feed.fill(f, "AAPL", "BUY", "100", "100");
    const [c] = await trigger(f, "AAPL");
    await ended(f, c!.order_id, "100");
    await restart(stateDir);
    await pressOn("AAPL", "80", "80.5");
    expect(await closing(f)).toHaveLength(1);
    expect(stop(f, "AAPL")?.state).toBe("triggered");
    await feed.fill(f, "AAPL", "SELL", "100", "85", { order_id: c!.order_id });
    await waitFor(() => stop(f, "AAPL")?.state === "cleared", { message: "cleared once flat" });
    await pressOn("AAPL", "80", "80.5");
    expect(await closing(f)).toHaveLength(1);
    expect(qty(f, "AAPL")).toBe("0");
  });

  it("a rebuild (new state dir) with part of the fills seen before the end: still waits, flat after", async () => {
    const f = "rt-rebuild";
    await setup(f, "MSFT");
    await feed.fill(f, "MSFT", "BUY", "100", "100");
    const [c] = await trigger(f, "MSFT");
    await feed.fill(f, "MSFT", "SELL", "40", "85", { order_id: c!.order_id });
    await ended(f, c!.order_id, "100");
    await restart(mkdtempSync(join(tmpdir(), "mts-rt-stops-fresh-")));
    await pressOn("MSFT", "80", "80.5");
    expect(await closing(f)).toHaveLength(1);
    expect(stop(f, "MSFT")?.state).toBe("triggered");
    await feed.fill(f, "MSFT", "SELL", "60", "85", { order_id: c!.order_id });
    await waitFor(() => stop(f, "MSFT")?.state === "cleared", { message: "cleared once flat" });
    await pressOn("MSFT", "80", "80.5");
    expect(await closing(f)).toHaveLength(1);
    expect(qty(f, "MSFT")).toBe("0");
  });

  it("shorting allowed: no second closing order while the reported fills are due", async () => {
    const f = "rt-short-ok";
    await setup(f, "NVDA", true);
    await feed.fill(f, "NVDA", "BUY", "100", "100");
    const [c] = await trigger(f, "NVDA");
    await ended(f, c!.order_id, "100");
    await pressOn("NVDA", "80", "80.5");
    expect(await closing(f)).toHaveLength(1);
    await feed.fill(f, "NVDA", "SELL", "100", "85", { order_id: c!.order_id });
    await waitFor(() => stop(f, "NVDA")?.state === "cleared", { message: "cleared once flat" });
    expect(qty(f, "NVDA")).toBe("0");
  });

  it("cancelled with a partial filled_quantity, shorting allowed: closes only the rest, never flipped", async () => {
    const f = "rt-cancel-part";
    await setup(f, "AMD", true);
    await feed.fill(f, "AMD", "BUY", "100", "100");
    const [c] = await trigger(f, "AMD");
    await ended(f, c!.order_id, "60", "cancelled");
    await pressOn("AMD", "80", "80.5");
    expect(await closing(f)).toHaveLength(1);
    await feed.fill(f, "AMD", "SELL", "30", "85", { order_id: c!.order_id });
    await pressOn("AMD", "80", "80.5");
    expect(await closing(f)).toHaveLength(1);
    await feed.fill(f, "AMD", "SELL", "30", "85", { order_id: c!.order_id });
    await waitFor(
      async () => {
        clock.advance(1_000);
        await feed.quote("AMD", "80", "80.5");
        await timers.tick("stops");
        return (await closing(f)).length === 2;
      },
      { message: "a closing order for the 40 left" },
    );
    expect((await closing(f))[1]).toMatchObject({ side: "SELL", quantity: "40" });
  });

  it("a fill delivered twice (same fill_id, another message id) moves the position once", async () => {
    const f = "rt-dup";
    await setup(f, "ORCL", true);
    await feed.fill(f, "ORCL", "BUY", "100", "100");
    const [c] = await trigger(f, "ORCL");
    await ended(f, c!.order_id, "100");
    const body = {
      fill_id: "rt-dup-fill-1",
      order_id: c!.order_id,
      fund_id: f,
      broker: c!.broker,
      symbol: "ORCL",
      side: "SELL",
      quantity: "100",
      price: "85",
      fees: "0",
      timestamp: iso(clock.now()),
    };
    await feed.until(
      "FILLS",
      (await bus.js.publish(Subjects.fill(f, "ORCL"), JSON.stringify(body), { msgID: "a" })).seq,
    );
    clock.advance(1_000);
    await feed.until(
      "FILLS",
      (await bus.js.publish(Subjects.fill(f, "ORCL"), JSON.stringify(body), { msgID: "b" })).seq,
    );
    expect(qty(f, "ORCL")).toBe("0");
    await waitFor(() => stop(f, "ORCL")?.state === "cleared", { message: "cleared once flat" });
    await pressOn("ORCL", "80", "80.5");
    expect(await closing(f)).toHaveLength(1);
  });

  it("two brokers: one leg ended with fills due, the other rejected: waits, then closes the rest", async () => {
    const f = "rt-two";
    await setup(f, "IBM");
    await feed.fill(f, "IBM", "BUY", "60", "100", { broker: "paper" });
    await feed.fill(f, "IBM", "BUY", "40", "100", { broker: "ibkr" });
    const cs = await trigger(f, "IBM", 2);
    const paper = cs.find((c) => c.broker === "paper")!;
    const ibkr = cs.find((c) => c.broker === "ibkr")!;
    expect(paper.quantity).toBe("60");
    await ended(f, paper.order_id, "60");
    await ended(f, ibkr.order_id, "0", "rejected");
    await pressOn("IBM", "80", "80.5");
    expect(await closing(f)).toHaveLength(2);
    await feed.fill(f, "IBM", "SELL", "60", "85", { order_id: paper.order_id, broker: "paper" });
    await waitFor(
      async () => {
        clock.advance(1_000);
        await feed.quote("IBM", "80", "80.5");
        await timers.tick("stops");
        return (await closing(f)).length === 3;
      },
      { message: "a closing order for the 40 at ibkr" },
    );
    expect((await closing(f))[2]).toMatchObject({ side: "SELL", quantity: "40", broker: "ibkr" });
    expect(qty(f, "IBM")).toBe("40");
  });
  it("the done event lands while the engine is down, a crossing mark in force: no second order on becoming live", async () => {
    for (const [f, sym, dir] of [
      ["rt-down-same", "AVGO", stateDir],
      ["rt-down-fresh", "QCOM", mkdtempSync(join(tmpdir(), "mts-rt-stops-down-"))],
    ] as const) {
      await setup(f, sym, true);
      await feed.fill(f, sym, "BUY", "100", "100");
      const [c] = await trigger(f, sym);
      await engine.close();
      clock.advance(3_000);
      await bus.js.publish(
        Subjects.orderEvent("done", f),
        JSON.stringify({
          order_id: c!.order_id,
          fund_id: f,
          event: "done",
          filled_quantity: "100",
          at: iso(clock.now()),
        }),
      );
      await bus.quote(sym, "80", "80.5", iso(clock.now()));
      engine = await startTestEngine(server.url, { clock, timers, flags, stateDir: dir });
      await settled(engine);
      await pressOn(sym, "79", "79.5");
      expect(await closing(f)).toHaveLength(1);
      expect(stop(f, sym)?.state).toBe("triggered");
      await feed.fill(f, sym, "SELL", "100", "85", { order_id: c!.order_id });
      await waitFor(() => stop(f, sym)?.state === "cleared", { message: `${f} cleared once flat` });
      expect(qty(f, sym)).toBe("0");
      expect(await closing(f)).toHaveLength(1);
    }
  });
  it("the position grows while the fills are due: no order meanwhile, then one for exactly what is left", async () => {
    const f = "rt-grow";
    await setup(f, "CRM", true);
    await feed.fill(f, "CRM", "BUY", "100", "100");
    const [c] = await trigger(f, "CRM");
    await ended(f, c!.order_id, "100");
    await feed.fill(f, "CRM", "BUY", "50", "84"); // a strategy's buy lands meanwhile
    await pressOn("CRM", "80", "80.5");
    expect(await closing(f)).toHaveLength(1);
    expect(stop(f, "CRM")?.state).toBe("triggered");
    await feed.fill(f, "CRM", "SELL", "100", "85", { order_id: c!.order_id });
    await waitFor(
      async () => {
        clock.advance(1_000);
        await feed.quote("CRM", "70", "70.5");
        await timers.tick("stops");
        return (await closing(f)).length === 2;
      },
      { message: "a closing order for the 50 left" },
    );
    expect((await closing(f))[1]).toMatchObject({ side: "SELL", quantity: "50" });
    expect(qty(f, "CRM")).toBe("50");
  });
});
