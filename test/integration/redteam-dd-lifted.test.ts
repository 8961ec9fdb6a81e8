/**
 * Red team (drawdown): a resumed loss breach must not halt again within the same period, however
 * many other halts the operator raises and lifts in that period (a fund's lifted-halt history is
 * capped at 50 in src/state/projections/control.ts, so the resumed MONTHLY_LOSS falls out of it).
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
  publishedHalts,
  readStream,
  startTestEngine,
} from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

const FUND = "ddlift";
const START = "2026-11-03T10:00:00.000Z"; // early in the month

describe("red team: a resumed monthly breach after many manual halt/resume cycles", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock(START);
  const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-dd-lift-"));
  const timers = steppableTimers();
  const fund = () => engine.observe.fund(FUND)!;
  async function mark(mid: number) {
    const seq = await bus.quote("AAPL", String(mid - 0.01), String(mid + 0.01), iso(clock.now()));
    await waitFor(() => applied(engine, "QUOTES", seq));
  }
  async function control(kind: "halt" | "resume", body: Record<string, unknown>) {
    const subj = kind === "halt" ? Subjects.halt(FUND) : Subjects.resume(FUND);
    const s = await bus.control(subj, { fund_id: FUND, at: iso(clock.now()), ...body });
    await waitFor(() => applied(engine, "RISK_CONTROL", s));
  }

  const breachAlerts = async () =>
    (
      await readStream<{ details?: Record<string, string> }>(
        nc,
        "RISK_CONTROL",
        Subjects.alert("breach", FUND),
      )
    ).map((m) => m.data.details?.["severity"]);

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, { clock, stateDir, timers });
    const e = await bus.envelope(envelope(FUND, { monthly_loss_halt_pct: "0.10" }));
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

  it("halts MONTHLY_LOSS at 10 %, and a resume lifts it without a re-halt", async () => {
    await mark(90);
    await waitFor(() => fund().halts["MONTHLY_LOSS"] !== undefined);
    clock.advance(60_000);
    await control("resume", { operator: "ops", reason: "reviewed" });
    await timers.tick("drawdown");
    await waitFor(async () => (await breachAlerts()).length > 0);
    expect(await publishedHalts(nc, FUND)).toEqual(["MONTHLY_LOSS"]);
    expect(await breachAlerts()).toEqual(["MONTHLY_LOSS"]);
  });

  it("60 MANUAL halt/resume cycles later the same month, the resumed breach still does not re-halt", async () => {
    for (let i = 0; i < 60; i++) {
      clock.advance(1000);
      await control("halt", { severity: "MANUAL", reason: `drill ${i}`, by: "ops" });
      await control("resume", { operator: "ops", reason: `drill ${i} done` });
    }
    clock.advance(1000);
    await mark(89.5); // still the same (resumed) monthly breach, same day and month
    await timers.tick("drawdown"); // resolves once what the monitor published is stored
    // the monitor decided no second MONTHLY_LOSS halt (its breach alert is not deduplicated; the
    // Halt itself carries the same Nats-Msg-Id as the first and is swallowed within 120 s)
    expect(await breachAlerts()).toEqual(["MONTHLY_LOSS"]);
    expect(await publishedHalts(nc, FUND)).toEqual(["MONTHLY_LOSS", ...Array<string>(60).fill("MANUAL")]);
    expect(fund().halts).toEqual({});
    expect((await bus.check(order({ fund_id: FUND, quantity: "1", limit_price: "89.5" }))).approved).toBe(
      true,
    );
  });
});
