/**
 * A loss in the first instant of a period is a loss of that period (issue 9 case 8): the day's and
 * month's baselines are the equity as of the boundary (positions and marks in force just before
 * the first event after it), never the equity after that event. Injected clock, real nats-server.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import {
  Bus,
  applied,
  envelope,
  publishedBaselines,
  publishedHalts,
  startTestEngine,
} from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

const EVE = "2026-11-30T23:59:59.900Z"; // a Monday; the next instant after midnight starts a day and a month

describe("drawdown: the period's baseline is the equity as of its boundary", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock(EVE);
  const timers = steppableTimers();

  const fundOf = (id: string) => engine.observe.fund(id)!;
  const baselines = (fund: string) => publishedBaselines(nc, fund);
  const halts = (fund: string) => publishedHalts(nc, fund);

  async function longFund(fund: string, symbol: string) {
    const e = await bus.envelope(
      envelope(fund, { daily_loss_halt_pct: "0.03", monthly_loss_halt_pct: "0.10", enable_shorting: false }),
    );
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
    const f = await bus.fill({ fund_id: fund, symbol, quantity: "10000", price: "100", timestamp: EVE });
    await waitFor(() => applied(engine, "FILLS", f));
    const q = await bus.quote(symbol, "99.99", "100.01", iso(clock.now()));
    await waitFor(() => applied(engine, "QUOTES", q));
    await waitFor(() => Object.keys(fundOf(fund).baselines).length === 3);
    // The monitor evaluates a quote burst on the next turn of the event loop (setImmediate); the
    // engine runs in this process, so one turn of ours lets that evaluation run before the clock moves.
    await new Promise((r) => setImmediate(r));
  }

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, { clock, timers });
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("a crash quote 60 ms after midnight halts the day and the month", async () => {
    await longFund("mid", "MQ");
    clock.set(Date.parse("2026-12-01T00:00:00.060Z"));
    const q = await bus.quote("MQ", "84.99", "85.01", iso(clock.now())); // −150 000: 15 %
    await waitFor(() => applied(engine, "QUOTES", q));
    await waitFor(
      () =>
        fundOf("mid").halts["DAILY_LOSS"] !== undefined && fundOf("mid").halts["MONTHLY_LOSS"] !== undefined,
    );
    await waitFor(async () => (await baselines("mid")).length === 5);
    expect((await baselines("mid")).filter((b) => b.includes("2026-12-01"))).toEqual([
      "day@2026-12-01T00:00:00.000Z=1000000",
      "month@2026-12-01T00:00:00.000Z=1000000",
    ]);
    expect((await halts("mid")).sort()).toEqual(["DAILY_LOSS", "MONTHLY_LOSS"]);
  });

  it("a losing fill in the first millisecond of a day is that day's loss", async () => {
    clock.set(Date.parse("2026-12-01T23:59:59.000Z"));
    await longFund("fillday", "FQ");
    clock.set(Date.parse("2026-12-02T00:00:00.001Z"));
    // sells everything at 96: realizes −40 000, 4 % of the day's starting equity
    const f = await bus.fill({
      fund_id: "fillday",
      symbol: "FQ",
      side: "SELL",
      quantity: "10000",
      price: "96",
      timestamp: iso(clock.now()),
    });
    await waitFor(() => applied(engine, "FILLS", f));
    await waitFor(() => fundOf("fillday").halts["DAILY_LOSS"] !== undefined);
    expect(fundOf("fillday").baselines["day"]!.equity).toBe("1000000");
    expect(fundOf("fillday").halts["MONTHLY_LOSS"] !== undefined).toBe(false); // 4 % of the month: below 10 %
  });

  it("a fund with no event since the boundary keeps the boundary's equity (timer roll)", async () => {
    clock.set(Date.parse("2026-12-02T23:59:59.000Z"));
    await longFund("quiet", "QQ");
    clock.set(Date.parse("2026-12-03T00:00:00.500Z"));
    await timers.tick("drawdown"); // the monitor's tick: its baselines are on the stream when it resolves
    expect(await baselines("quiet")).toContain("day@2026-12-03T00:00:00.000Z=1000000");
    expect(await halts("quiet")).toEqual([]);
    expect(fundOf("quiet").halts).toEqual({});
  });
});
