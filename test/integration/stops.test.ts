/**
 * Synthetic stops on a real nats-server with an injected clock: long and short, a gap through
 * the stop, exactly one closing order under a burst of quotes, re-arm when the position grows,
 * nothing once flat, the sweeper, polling, and the closing order approved while halted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { PREFIX, Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, Feeder, NOW, applied, envelope, readStream, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

type Closing = {
  order_id: string;
  idempotency_key: string;
  side: string;
  quantity: string;
  order_type: string;
  reduce_only: boolean;
};

describe("synthetic stops", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock(NOW);
  const timers = steppableTimers();
  /**
   * The stops worker's tick, run now: the closing-order watch, the held stops, the quote poll. It
   * resolves once what it published (and anything published before it) is on the streams.
   */
  const stopsTick = () => timers.tick("stops");

  const closing = (fund: string) => readStream<Closing>(nc, "OMS_INTENTS", Subjects.orderSubmit(fund));
  const stop = (fund: string, symbol: string) => engine.observe.stop(fund, symbol);
  let feed: Feeder;
  const quote = (symbol: string, bid: string, ask: string) => feed.quote(symbol, bid, ask);
  const setupFund = (fund: string, extra: Record<string, unknown> = {}) =>
    feed.envelope(
      envelope(fund, {
        synthetic_stop_pct: "0.10",
        allowed_order_types: ["MARKET", "LIMIT"],
        enable_shorting: true,
        ...extra,
      }),
    );
  const fill = (fund: string, symbol: string, side: string, quantity: string, price: string) =>
    feed.fill(fund, symbol, side, quantity, price);

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

  it("arms a long at entry × 0.9 and fires one MARKET reduce-only SELL when the bid reaches it", async () => {
    await setupFund("s1");
    await fill("s1", "AAPL", "BUY", "100", "500");
    await waitFor(() => engine.observe.stop("s1", "AAPL")?.state === "armed");
    expect(stop("s1", "AAPL")).toMatchObject({ side: "LONG", arm_seq: 1, stop_price: "450" });
    await quote("AAPL", "450.01", "450.5");
    expect(await closing("s1")).toHaveLength(0);
    await quote("AAPL", "450", "450.5");
    await waitFor(async () => (await closing("s1")).length === 1);
    expect((await closing("s1"))[0]!.data).toMatchObject({
      order_id: "stop-s1-AAPL-1",
      idempotency_key: "stop:s1:AAPL:1",
      side: "SELL",
      quantity: "100",
      order_type: "MARKET",
      reduce_only: true,
    });
    await waitFor(() => engine.observe.stop("s1", "AAPL")?.state === "triggered");
  });

  it("arms a short at entry × 1.1 on the ask, and a gap far through the stop fires once under a burst of 1 000 quotes", async () => {
    await setupFund("s2");
    await fill("s2", "TSLA", "SELL", "50", "200");
    await waitFor(() => stop("s2", "TSLA")?.state === "armed");
    expect(stop("s2", "TSLA")!.stop_price).toBe("220");
    const pubs: Promise<number>[] = [];
    for (let i = 0; i < 1000; i++) pubs.push(bus.quote("TSLA", "299", "300", iso(clock.now())));
    const last = Math.max(...(await Promise.all(pubs)));
    await waitFor(() => applied(engine, "QUOTES", last));
    await waitFor(() => engine.observe.stop("s2", "TSLA")?.state === "triggered");
    const orders = await closing("s2");
    expect(orders).toHaveLength(1);
    expect(orders[0]!.data).toMatchObject({ side: "BUY", quantity: "50", idempotency_key: "stop:s2:TSLA:1" });
  });

  it("re-arms with a new sequence when the position grows, and clears with no order once flat", async () => {
    await setupFund("s3");
    await fill("s3", "MSFT", "BUY", "100", "500");
    await waitFor(() => stop("s3", "MSFT")?.arm_seq === 1);
    await fill("s3", "MSFT", "BUY", "100", "600"); // average 550 → stop 495
    await waitFor(() => engine.observe.stop("s3", "MSFT")?.arm_seq === 2);
    expect(stop("s3", "MSFT")!.stop_price).toBe("495");
    await fill("s3", "MSFT", "SELL", "200", "580");
    await waitFor(() => engine.observe.stop("s3", "MSFT")?.state === "cleared");
    await quote("MSFT", "100", "101");
    expect(await closing("s3")).toHaveLength(0);
  });

  it("the closing order is approved by the engine's own gates while the fund is halted", async () => {
    await setupFund("s4", { max_position_pct: "0.01" });
    await fill("s4", "NVDA", "BUY", "10", "100");
    await waitFor(() => stop("s4", "NVDA")?.state === "armed");
    const h = await bus.control(Subjects.halt("s4"), {
      fund_id: "s4",
      severity: "MANUAL",
      reason: "t",
      at: NOW,
      by: "ops",
    });
    await waitFor(() => applied(engine, "RISK_CONTROL", h));
    await quote("NVDA", "80", "80.5");
    await waitFor(async () => (await closing("s4")).length === 1);
    const d = await bus.check((await closing("s4"))[0]!.data);
    expect(d).toMatchObject({ approved: true, order_id: "stop-s4-NVDA-1" });
  });

  it("a position held at two brokers gets one closing order per broker, each approved while halted with shorting disabled (issue 8 case 7)", async () => {
    await setupFund("s10", { enable_shorting: false });
    for (const [broker, quantity] of [
      ["ibkr", "60"],
      ["paper", "40"],
    ] as const) {
      const seq = await bus.fill({
        fund_id: "s10",
        symbol: "ORCL",
        broker,
        quantity,
        price: "100",
        timestamp: iso(clock.now()),
      });
      await waitFor(() => applied(engine, "FILLS", seq));
    }
    await waitFor(() => stop("s10", "ORCL")?.qty === "100" && stop("s10", "ORCL")?.state === "armed");
    const h = await bus.control(Subjects.halt("s10"), {
      fund_id: "s10",
      severity: "MANUAL",
      reason: "t",
      at: NOW,
      by: "ops",
    });
    await waitFor(() => applied(engine, "RISK_CONTROL", h));
    await quote("ORCL", "89", "89.5");
    await waitFor(async () => (await closing("s10")).length === 2);
    const orders = (await closing("s10")).map((m) => m.data as Closing & { broker: string });
    expect(orders.map((o) => [o.broker, o.quantity, o.order_id])).toEqual([
      ["ibkr", "60", `stop-s10-ORCL-${stop("s10", "ORCL")!.arm_seq}-ibkr`],
      ["paper", "40", `stop-s10-ORCL-${stop("s10", "ORCL")!.arm_seq}-paper`],
    ]);
    for (const o of orders) expect(await bus.check(o)).toMatchObject({ approved: true });
  });

  it("a bid of 0 (one-sided market) does not trigger a long stop; a positive bid through it does (issue 8 case 9)", async () => {
    await setupFund("s11");
    await fill("s11", "OPTX", "BUY", "10", "2");
    await waitFor(() => stop("s11", "OPTX")?.state === "armed");
    await quote("OPTX", "0", "0.05");
    expect(engine.observe.mark("OPTX")?.bid).toBe("0");
    await stopsTick(); // whatever the quote set off is on the streams by now
    expect(await closing("s11")).toHaveLength(0);
    expect(stop("s11", "OPTX")?.state).toBe("armed");
    await quote("OPTX", "0.01", "0.05");
    await waitFor(async () => (await closing("s11")).length === 1);
  });

  it("an envelope that turns stops on arms the open positions", async () => {
    await setupFund("s5", { synthetic_stop_pct: undefined });
    await fill("s5", "AMD", "BUY", "10", "100");
    await stopsTick(); // what the fill set off is on the streams by now: no arm
    expect(await readStream(nc, "RISK_CONTROL", Subjects.stop("armed", "s5"))).toHaveLength(0);
    expect(stop("s5", "AMD")).toBeUndefined();
    const seq = await bus.envelope(
      envelope("s5", { version: 2, synthetic_stop_pct: "0.05", allowed_order_types: ["MARKET"] }),
    );
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
    await waitFor(() => engine.observe.stop("s5", "AMD")?.state === "armed");
    expect(stop("s5", "AMD")!.stop_price).toBe("95");
  });

  it("the position-arm sweeper arms positions filled while the engine was down, and reports how many", async () => {
    await setupFund("s7"); // symbols of its own: an earlier test left ORCL's mark below any stop here
    await engine.close();
    await bus.fill({
      fund_id: "s7",
      symbol: "INTC",
      side: "BUY",
      quantity: "10",
      price: "100",
      timestamp: iso(clock.now()),
    });
    await bus.fill({
      fund_id: "s7",
      symbol: "IBM",
      side: "BUY",
      quantity: "10",
      price: "100",
      timestamp: iso(clock.now()),
    });
    engine = await startTestEngine(server.url, { clock, timers, flags: { "synthetic_stop.enabled": false } });
    await stopsTick(); // stops disabled: nothing armed on start (nor by the tick)
    expect(await readStream(nc, "RISK_CONTROL", Subjects.stop("armed", "s7"))).toHaveLength(0);
    expect(stop("s7", "INTC")).toBeUndefined();
    await engine.close();
    engine = await startTestEngine(server.url, {
      clock,
      timers,
      flags: { "position_arm_sweeper.interval_s": 3600 },
    });
    // armed on start by the sweep, with no fill or quote to trigger it
    await waitFor(
      () =>
        engine.observe.stop("s7", "INTC")?.state === "armed" &&
        engine.observe.stop("s7", "IBM")?.state === "armed",
    );
    // nothing left to arm: the sweeper's tick publishes no stop event, and the arms stay the same
    const events = async () => (await readStream(nc, "RISK_CONTROL", `${PREFIX}.risk.stop.`)).length;
    const arms = () => [engine.observe.stop("s7", "INTC"), engine.observe.stop("s7", "IBM")];
    const [before, armsBefore] = [await events(), arms()];
    await timers.tick("position-arm-sweeper");
    expect(await events()).toBe(before);
    expect(arms()).toEqual(armsBefore);
  });

  it("polls mts.v1.md.quote.<symbol> for a symbol with a stop and no quote stream", async () => {
    let asked = 0;
    const sub = nc.subscribe(Subjects.mdQuote("BTC-USD"), {
      callback: (_e, m) => {
        asked++;
        m.respond(
          JSON.stringify({ symbol: "BTC-USD", bid: "44000", ask: "44010", timestamp: iso(clock.now()) }),
        );
      },
    });
    await nc.flush();
    await setupFund("s6");
    await fill("s6", "BTC-USD", "BUY", "1", "50000");
    await waitFor(() => stop("s6", "BTC-USD")?.state === "armed");
    // no refdata: polled at the equities interval (60 s); the worker's timer may also get there first
    await waitFor(async () => {
      clock.advance(60_000);
      await stopsTick();
      return (await closing("s6")).length === 1;
    });
    expect(asked).toBeGreaterThan(0);
    await sub.drain();
  });
  it("a closing order the OMS never acknowledges is alerted once after closing_order_alert_s; an accepted one that neither fills nor ends, as working", async () => {
    for (const [fund, symbol] of [
      ["s8", "NVDA"],
      ["s9", "AMD"],
    ] as const) {
      await setupFund(fund);
      await fill(fund, symbol, "BUY", "100", "500");
      await waitFor(() => stop(fund, symbol)?.state === "armed");
      await quote(symbol, "450", "450.5");
      await waitFor(() => engine.observe.stop(fund, symbol)?.state === "triggered");
    }
    const ack = await bus.orderEvent("accepted", "s9", "stop-s9-AMD-1", iso(clock.now()));
    await waitFor(() => applied(engine, "OMS_ORDERS", ack));
    const alerts = async (fund: string) => readStream(nc, "RISK_CONTROL", Subjects.alert("stop", fund));

    await stopsTick(); // 0 s after the trigger: nothing yet
    clock.advance(29_000);
    await stopsTick();
    expect(await alerts("s8")).toHaveLength(0);

    clock.advance(2_000); // 31 s: the default closing_order_alert_s (30) has passed
    await stopsTick();
    expect(await alerts("s8")).toHaveLength(1);
    const [a] = await alerts("s8");
    expect(a!.data).toMatchObject({
      kind: "stop",
      fund_id: "s8",
      details: { symbol: "NVDA", closing_order_id: "stop-s8-NVDA-1" },
    });
    await stopsTick(); // once per arm
    expect(await alerts("s8")).toHaveLength(1);
    // the OMS accepted that closing order: not "unacknowledged", but an IOC order neither filled
    // nor ended 31 s later is stuck at the OMS or the broker: alerted once as working
    const s9 = await alerts("s9");
    expect(s9).toHaveLength(1);
    expect(s9[0]!.data).toMatchObject({ details: { closing_order_id: "stop-s9-AMD-1", working: "true" } });
    expect(String((s9[0]!.data as { message: string }).message)).toMatch(/accepted by the OMS/);
    await stopsTick();
    expect(await alerts("s9")).toHaveLength(1);
  });
});
