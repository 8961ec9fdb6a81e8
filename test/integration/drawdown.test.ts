/**
 * Drawdown kill switch on a real nats-server with an injected clock: day, ISO week and month
 * baselines; one halt per breach; halts survive a restart; resume lifts them and the same breach
 * does not halt again in the period; risk-reducing orders pass while halted.
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
import {
  Bus,
  applied,
  envelope,
  order,
  publishedBaselines,
  publishedHalts,
  startTestEngine,
} from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

const FUND = "dd";
const START = "2026-11-20T14:00:00.000Z"; // a Friday; ISO week began Monday 2026-11-16

describe("drawdown monitor", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock(START);
  const stateDir = mkdtempSync(join(tmpdir(), "mts-dd-"));
  const timers = steppableTimers();
  /** The drawdown monitor's tick, run now (what it publishes is on the streams when it resolves). */
  const evaluateAll = () => timers.tick("drawdown");

  const halts = () => publishedHalts(nc, FUND);
  const baselines = () => publishedBaselines(nc, FUND);
  async function mark(mid: number) {
    const seq = await bus.quote("AAPL", String(mid - 0.01), String(mid + 0.01), iso(clock.now()));
    await waitFor(() => applied(engine, "QUOTES", seq));
  }
  const fund = () => engine.observe.fund(FUND)!;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, { clock, stateDir, timers });
    const e = await bus.envelope(
      envelope(FUND, {
        daily_loss_halt_pct: "0.03",
        weekly_loss_halt_pct: "0.06",
        monthly_loss_halt_pct: "0.10",
        enable_shorting: false,
      }),
    );
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
    const f = await bus.fill({
      fund_id: FUND,
      symbol: "AAPL",
      quantity: "10000",
      price: "100",
      timestamp: START,
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

  it("journals day, week and month baselines at the fund's equity when first seen", async () => {
    expect((await baselines()).sort()).toEqual([
      "day@2026-11-20T00:00:00.000Z=1000000",
      "month@2026-11-01T00:00:00.000Z=1000000",
      "week@2026-11-16T00:00:00.000Z=1000000",
    ]);
  });

  it("halts once when the daily loss reaches its limit, not before, however many quotes follow", async () => {
    await mark(97.01); // −29 900: 2.99 %
    expect(await halts()).toEqual([]);
    for (let i = 0; i < 50; i++) await bus.quote("AAPL", "96.99", "97.01", iso(clock.now())); // −30 000: 3 %
    await mark(97);
    await waitFor(() => fund().halts["DAILY_LOSS"] !== undefined);
    expect(await halts()).toEqual(["DAILY_LOSS"]);
    expect(fund().halts["DAILY_LOSS"]!.by).toBe("drawdown-monitor");
  });

  it("rejects risk-increasing orders and passes risk-reducing ones while halted", async () => {
    const up = await bus.check(order({ fund_id: FUND, quantity: "1" }));
    expect({ code: up.rejection_code, severity: up.details["severity"] }).toEqual({
      code: "FUND_HALTED",
      severity: "DAILY_LOSS",
    });
    const down = await bus.check(order({ fund_id: FUND, side: "SELL", quantity: "10", limit_price: "97" }));
    expect(down.approved).toBe(true);
  });

  it("adds the weekly halt at 6 %, and keeps both across an engine restart without publishing again", async () => {
    await mark(94);
    await waitFor(() => fund().halts["WEEKLY_LOSS"] !== undefined);
    await engine.close();
    engine = await startTestEngine(server.url, { clock, stateDir, timers });
    await mark(93.5);
    await evaluateAll();
    expect(Object.keys(fund().halts).sort()).toEqual(["DAILY_LOSS", "WEEKLY_LOSS"]);
    expect((await halts()).sort()).toEqual(["DAILY_LOSS", "WEEKLY_LOSS"]);
  });

  it("a resume lifts the halts; the same breach does not halt again in the same period", async () => {
    const r = await bus.control(Subjects.resume(FUND), {
      fund_id: FUND,
      operator: "ops",
      reason: "reviewed",
      at: iso(clock.now()),
    });
    await waitFor(() => applied(engine, "RISK_CONTROL", r));
    expect(fund().halts).toEqual({});
    await mark(93);
    await evaluateAll();
    expect((await halts()).sort()).toEqual(["DAILY_LOSS", "WEEKLY_LOSS"]);
    expect((await bus.check(order({ fund_id: FUND, quantity: "1" }))).approved).toBe(true);
  });

  it("a new day starts a new baseline, and a new 3 % loss that day halts again", async () => {
    clock.set(Date.parse("2026-11-21T00:00:01.000Z"));
    await mark(93); // equity at the start of the day: 1 000 000 − 70 000
    await waitFor(async () => (await baselines()).includes("day@2026-11-21T00:00:00.000Z=930000"));
    await mark(90.21); // −27 900 today: 3.0 % of 930 000
    await waitFor(() => fund().halts["DAILY_LOSS"] !== undefined);
    expect(fund().halts["WEEKLY_LOSS"] !== undefined).toBe(false); // the week's breach was resumed
    expect((await halts()).filter((h) => h === "DAILY_LOSS")).toHaveLength(2);
  });

  it("rolls the ISO week on Monday and the month on the 1st", async () => {
    clock.set(Date.parse("2026-11-23T00:00:00.000Z")); // Monday
    await evaluateAll();
    await waitFor(async () => (await baselines()).some((b) => b.startsWith("week@2026-11-23T00:00:00.000Z")));
    clock.set(Date.parse("2026-12-01T00:00:00.000Z"));
    await evaluateAll();
    await waitFor(async () =>
      (await baselines()).some((b) => b.startsWith("month@2026-12-01T00:00:00.000Z")),
    );
  });
});
