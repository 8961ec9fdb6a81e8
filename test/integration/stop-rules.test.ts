/**
 * The rules a fund relies on for its synthetic stops (ENGINE.md "Workers", issue 9 cases 1–7),
 * each black-box through a real nats-server with an injected clock: a stop fires on exactly the
 * marks the check accepts, polled quotes become the mark, one closing order per broker, a closing
 * order fully filled is closed, every armed stop is evaluated on becoming live, nothing is emitted
 * under a KILL_SWITCH halt, and OMS rejections back off and are alerted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, Feeder, NOW, applied, envelope, readStream, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

type Closing = {
  order_id: string;
  idempotency_key: string;
  broker: string;
  side: string;
  quantity: string;
  order_type: string;
  reduce_only: boolean;
};

describe("synthetic stop rules", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock(NOW);
  const timers = steppableTimers();
  /** The stops worker's tick, run now; resolves once what was published so far is on the streams. */
  const stopsTick = () => timers.tick("stops");

  const closing = async (fund: string) =>
    (await readStream<Closing>(nc, "OMS_INTENTS", Subjects.orderSubmit(fund))).map((m) => m.data);
  const alerts = (fund: string) =>
    readStream<{ kind: string; message: string; details?: Record<string, string> }>(
      nc,
      "RISK_CONTROL",
      Subjects.alert("stop", fund),
    );
  const stop = (fund: string, symbol: string) => engine.observe.stop(fund, symbol);
  const triggers = async (fund: string) =>
    (await readStream(nc, "RISK_CONTROL", Subjects.stop("triggered", fund))).length;
  /** `act` (a quote) fires nothing: after the stops' tick, no new trigger or closing order; still armed. */
  async function firesNothing(fund: string, symbol: string, act: () => Promise<unknown>) {
    const before = { closing: (await closing(fund)).length, triggers: await triggers(fund) };
    await act();
    await stopsTick();
    expect({ closing: (await closing(fund)).length, triggers: await triggers(fund) }).toEqual(before);
    expect(stop(fund, symbol)?.state).toBe("armed");
  }
  let feed: Feeder;
  const quote = (symbol: string, bid: string, ask: string, ageMs = 0) => feed.quote(symbol, bid, ask, ageMs);
  const setupFund = (fund: string, extra: Record<string, unknown> = {}) =>
    feed.envelope(
      envelope(fund, { synthetic_stop_pct: "0.10", allowed_order_types: ["MARKET", "LIMIT"], ...extra }),
    );
  const fill = (fund: string, symbol: string, side: string, quantity: string, price: string, o = {}) =>
    feed.fill(fund, symbol, side, quantity, price, o);
  async function armed(fund: string, symbol: string, armSeq = 1) {
    await waitFor(
      () => {
        const s = engine.observe.stop(fund, symbol);
        return s?.state === "armed" && s.arm_seq === armSeq;
      },
      { message: `${fund} ${symbol} armed #${armSeq}` },
    );
  }
  const orderEvent = (event: string, fund: string, orderId: string) => feed.orderEvent(event, fund, orderId);

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

  it("1. fires on exactly the marks the check accepts (the fund's max_quote_age_ms, not a fixed 5 s)", async () => {
    await setupFund("r1a", { max_quote_age_ms: 1000 });
    await fill("r1a", "AAPL", "BUY", "100", "500");
    await armed("r1a", "AAPL");
    // crossing, 3 s old: stale for this fund
    await firesNothing("r1a", "AAPL", () => quote("AAPL", "440", "441", 3000));
    const stale = await bus.check({
      order_id: "r1a-probe",
      idempotency_key: "r1a-probe",
      fund_id: "r1a",
      broker: "paper",
      symbol: "AAPL",
      side: "SELL",
      order_type: "MARKET",
      quantity: "1",
    });
    expect(stale.rejection_code).toBe("STALE_MARKET_DATA"); // the check agrees: not a mark
    await quote("AAPL", "440", "441", 900); // crossing, fresh for this fund
    await waitFor(async () => (await closing("r1a")).length === 1);
    expect(await bus.check((await closing("r1a"))[0])).toMatchObject({ approved: true });

    await setupFund("r1b", { max_quote_age_ms: 600_000 });
    await fill("r1b", "MSFT", "BUY", "10", "400");
    await armed("r1b", "MSFT");
    await quote("MSFT", "300", "301", 60_000); // 60 s old: fresh for a 600 s limit
    await waitFor(async () => (await closing("r1b")).length === 1, { message: "r1b closing order" });
    expect(await bus.check((await closing("r1b"))[0])).toMatchObject({ approved: true });
  });

  it("2. a polled quote is published to QUOTES: it becomes the mark and the closing order is approved", async () => {
    const symbol = "SOL-USD";
    const sub = nc.subscribe(Subjects.mdQuote(symbol), {
      callback: (_e, m) => {
        m.respond(JSON.stringify({ symbol, bid: "80", ask: "80.5", timestamp: iso(clock.now()) }));
      },
    });
    await nc.flush();
    try {
      await setupFund("r2");
      await fill("r2", symbol, "BUY", "3", "100");
      await armed("r2", symbol);
      await waitFor(async () => {
        clock.advance(60_000); // no quote stream, no refdata: polled at the equities interval
        await stopsTick();
        return (await readStream(nc, "QUOTES", Subjects.quote(symbol))).length > 0;
      });
      await waitFor(() => engine.observe.mark(symbol)?.bid === "80");
      await waitFor(async () => (await closing("r2")).length === 1, { message: "r2 closing order" });
      expect(await bus.check((await closing("r2"))[0])).toMatchObject({ approved: true });
    } finally {
      await sub.drain();
    }
  });

  it("3. a position at two brokers gets one closing order per broker, each for that broker's quantity", async () => {
    await setupFund("r3");
    await fill("r3", "NVDA", "BUY", "4", "100", { broker: "ibkr" });
    await fill("r3", "NVDA", "BUY", "6", "100", { broker: "paper" });
    await armed("r3", "NVDA", 2);
    await quote("NVDA", "89", "89.5");
    await waitFor(async () => (await closing("r3")).length === 2, { message: "two closing orders" });
    const orders = (await closing("r3")).sort((a, b) => a.broker.localeCompare(b.broker));
    expect(orders.map((o) => [o.broker, o.side, o.quantity])).toEqual([
      ["ibkr", "SELL", "4"],
      ["paper", "SELL", "6"],
    ]);
    expect(new Set(orders.map((o) => o.idempotency_key)).size).toBe(2);
    expect(new Set(orders.map((o) => o.order_id)).size).toBe(2);
    for (const o of orders) expect(await bus.check(o)).toMatchObject({ approved: true });
    // fully filled at both brokers: the stop is cleared
    for (const o of orders)
      await fill("r3", "NVDA", "SELL", o.quantity, "89", { broker: o.broker, order_id: o.order_id });
    await waitFor(() => engine.observe.stop("r3", "NVDA")?.state === "cleared");
  });

  it("4. a closing order fully filled with no OMS event is closed: cleared, and the next position is armed and fires", async () => {
    await setupFund("r4");
    await fill("r4", "AMD", "BUY", "100", "500");
    await armed("r4", "AMD");
    await quote("AMD", "450", "450.5");
    await waitFor(async () => (await closing("r4")).length === 1);
    const [c] = await closing("r4");
    await fill("r4", "AMD", "SELL", "100", "449", { order_id: c!.order_id }); // no check, no OMS event
    await waitFor(() => engine.observe.stop("r4", "AMD")?.state === "cleared", {
      message: "stop cleared after its closing order filled",
    });
    await fill("r4", "AMD", "BUY", "50", "400");
    await armed("r4", "AMD", 2);
    await quote("AMD", "300", "300.5");
    await waitFor(async () => (await closing("r4")).length === 2);
    expect((await closing("r4"))[1]).toMatchObject({ idempotency_key: "stop:r4:AMD:2", quantity: "50" });
  });

  it("4b. the sweeper closes a fully filled closing order it finds (no change event) and arms the next position", async () => {
    await setupFund("r4b");
    await fill("r4b", "INTC", "BUY", "10", "100");
    await armed("r4b", "INTC");
    await quote("INTC", "80", "80.5");
    await waitFor(async () => (await closing("r4b")).length === 1);
    const [c] = await closing("r4b");
    // the fill of the closing order and a new buy land while the engine is down
    await engine.close();
    await bus.fill({
      fund_id: "r4b",
      symbol: "INTC",
      side: "SELL",
      quantity: "10",
      price: "80",
      order_id: c!.order_id,
      timestamp: iso(clock.now()),
    });
    // stop at 76.5: not crossed by the mark in force (bid 80)
    await bus.fill({ fund_id: "r4b", symbol: "INTC", side: "BUY", quantity: "5", price: "85" });
    engine = await startTestEngine(server.url, {
      clock,
      timers,
      flags: { "position_arm_sweeper.interval_s": 3600 },
    });
    await armed("r4b", "INTC", 2);
    expect(stop("r4b", "INTC")?.qty).toBe("5");
  });

  it("5. a crossing that happened while the engine was down fires as soon as it is live", async () => {
    await setupFund("r5");
    await fill("r5", "ORCL", "BUY", "10", "100");
    await armed("r5", "ORCL");
    await engine.close();
    await bus.quote("ORCL", "85", "85.5", iso(clock.now()));
    engine = await startTestEngine(server.url, {
      clock,
      timers,
      flags: { "position_arm_sweeper.interval_s": 3600 },
    });
    await waitFor(async () => (await closing("r5")).length === 1, { message: "closing order on start" });
    expect(await bus.check((await closing("r5"))[0])).toMatchObject({ approved: true });
  });

  it("6. under a KILL_SWITCH halt no closing order is emitted; the crossing raises a stop alert", async () => {
    await setupFund("r6");
    await fill("r6", "IBM", "BUY", "10", "100");
    await armed("r6", "IBM");
    const h = await bus.control(Subjects.halt("r6"), {
      fund_id: "r6",
      severity: "KILL_SWITCH",
      reason: "t",
      at: iso(clock.now()),
      by: "ops",
    });
    await waitFor(() => applied(engine, "RISK_CONTROL", h));
    await quote("IBM", "80", "80.5");
    await waitFor(async () => (await alerts("r6")).length >= 1, { message: "stop alert under kill switch" });
    expect((await alerts("r6"))[0]!.data.message).toMatch(/KILL_SWITCH/);
    expect(await triggers("r6")).toBe(0);
    await firesNothing("r6", "IBM", () => quote("IBM", "79", "79.5"));
    expect(await closing("r6")).toHaveLength(0);
  });

  it("7. after an OMS rejection the stop re-arms and fires again only after a doubling backoff; each rejection alerted", async () => {
    await setupFund("r7");
    await fill("r7", "QCOM", "BUY", "10", "100");
    await armed("r7", "QCOM");
    await quote("QCOM", "80", "80.5");
    await waitFor(async () => (await closing("r7")).length === 1);

    await orderEvent("rejected", "r7", "stop-r7-QCOM-1");
    await armed("r7", "QCOM", 2);
    await waitFor(async () => (await alerts("r7")).length === 1, { message: "first rejection alerted" });
    await firesNothing("r7", "QCOM", () => quote("QCOM", "79", "79.5")); // crossing, inside the 1 s backoff
    clock.advance(1000);
    await quote("QCOM", "79", "79.5");
    await waitFor(async () => (await closing("r7")).length === 2, { message: "second closing order" });

    await orderEvent("rejected", "r7", "stop-r7-QCOM-2");
    await armed("r7", "QCOM", 3);
    await waitFor(async () => (await alerts("r7")).length === 2, { message: "second rejection alerted" });
    clock.advance(1000); // 1 s of a 2 s backoff
    await firesNothing("r7", "QCOM", () => quote("QCOM", "78", "78.5"));
    clock.advance(1000);
    // no new quote: the worker's own evaluation fires once the backoff has passed
    await waitFor(async () => (await closing("r7")).length === 3, { message: "third closing order" });
    expect((await closing("r7"))[2]).toMatchObject({ idempotency_key: "stop:r7:QCOM:3" });
  });
});
