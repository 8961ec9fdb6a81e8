/**
 * A loss Halt stamped (`at`) in the next UTC day by a clock running ahead (a peer engine, an
 * operator's tool), then resumed. "A resumed breach does not re-halt within the same period": the
 * period of the lifted halt was judged by its `at` alone, so the next day took it for its own
 * resumed halt and a real 4 % loss that day did not halt (a red-team find). The lifted halt's time
 * is bounded by when RISK_CONTROL stored it (+ 1 s), as fills' timestamps are. The engine's clock
 * starts at the real time here, since the stream's stored times are real.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

const FUND = "ddskew";
const DAY = 86_400_000;

describe("a resumed loss halt stamped in the next day", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  // the real time, a whole second: the stream stores messages at the real time
  const clock = manualClock(iso(Math.floor(Date.now() / 1000) * 1000));
  const timers = steppableTimers();
  const tomorrow = Math.floor(clock.now() / DAY) * DAY + DAY; // the next UTC midnight
  const fund = () => engine.observe.fund(FUND)!;
  async function mark(mid: number) {
    const seq = await bus.quote("AAPL", String(mid - 0.01), String(mid + 0.01), iso(clock.now()));
    await waitFor(() => applied(engine, "QUOTES", seq));
  }
  async function control(subject: string, body: Record<string, unknown>) {
    const s = await bus.control(subject, { fund_id: FUND, ...body });
    await waitFor(() => applied(engine, "RISK_CONTROL", s));
  }

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, { clock, timers });
    const e = await bus.envelope(envelope(FUND, { daily_loss_halt_pct: "0.03" }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
    const f = await bus.fill({
      fund_id: FUND,
      symbol: "AAPL",
      quantity: "10000",
      price: "100",
      timestamp: iso(clock.now()),
    });
    await waitFor(() => applied(engine, "FILLS", f));
    await mark(100);
    await waitFor(() => Object.keys(fund().baselines).length === 3);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("the next day's own 4 % loss halts the day", async () => {
    // published today, stamped 00:30 tomorrow
    await control(Subjects.halt(FUND), {
      severity: "DAILY_LOSS",
      reason: "peer engine, clock ahead",
      at: iso(tomorrow + 30 * 60_000),
      by: "drawdown-monitor",
    });
    expect(fund().halts["DAILY_LOSS"]).toBeDefined();
    await control(Subjects.resume(FUND), { operator: "ops", reason: "reviewed", at: iso(clock.now()) });
    expect(fund().halts["DAILY_LOSS"]).toBeUndefined();
    expect(Date.parse(fund().lifted[0]!.since)).toBeLessThan(tomorrow);

    clock.advance(tomorrow + 10 * 3_600_000 - clock.now()); // 10:00 tomorrow
    await timers.tick("drawdown"); // the new day's baseline
    await mark(100);
    await waitFor(() => fund().baselines["day"]?.starts_at === iso(tomorrow), {
      message: "new day's baseline",
    });
    await mark(96); // −4 % of the day's equity
    await waitFor(() => fund().halts["DAILY_LOSS"] !== undefined, { message: "the new day's breach halts" });
  });
});
