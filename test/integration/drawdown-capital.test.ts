/**
 * Drawdown compares *trading* P&L since the period start with equity at that start: a change of
 * `capital` in a new envelope version is neither a gain nor a loss (issue 8, case 2), live, after a
 * restart, and in an engine rebuilt from the streams alone (same state_digest as a rebuild).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { type Engine, rebuild } from "../../src/engine/index.js";
import { silentLogger } from "../../src/obs/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import {
  Bus,
  applied,
  envelope,
  publishedHalts,
  readStream,
  settled,
  startTestEngine,
  testConfig,
} from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";
import { Subjects } from "../../src/contract/subjects.js";

const START = "2026-11-20T14:00:00.000Z";

describe("drawdown: capital changes are not trading P&L", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock(START);
  const timers = steppableTimers();

  const halts = (fund: string) => publishedHalts(nc, fund, true);
  const fundOf = (e: Engine, id: string) => e.observe.fund(id)!;
  /** Every halt on RISK_CONTROL, of any fund. */
  const allHalts = async () => (await readStream(nc, "RISK_CONTROL", Subjects.halt(""))).length;
  /**
   * The drawdown monitor's tick run now (it ticks every second; this decides at a known instant):
   * it publishes no halt, and `fund` has none (what a tick publishes is on the stream when it resolves).
   */
  async function tickHaltsNothing(fund: string) {
    const before = await allHalts();
    await timers.tick("drawdown");
    expect(await allHalts()).toBe(before);
    expect(await halts(fund)).toEqual([]);
  }

  async function setEnvelope(fund: string, version: number, capital: string) {
    const seq = await bus.envelope(
      envelope(fund, { version, capital, daily_loss_halt_pct: "0.03", enable_shorting: false }),
    );
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
  }
  async function mark(symbol: string, mid: number) {
    const seq = await bus.quote(symbol, String(mid - 0.01), String(mid + 0.01), iso(clock.now()));
    await waitFor(() => applied(engine, "QUOTES", seq));
  }
  /** A fund long 10 000 `symbol` at 100 (1 000 000 of it), marked at 100, baselines taken. */
  async function fundWithPosition(fund: string, symbol: string) {
    await setEnvelope(fund, 1, "1000000");
    const f = await bus.fill({ fund_id: fund, symbol, quantity: "10000", price: "100", timestamp: START });
    await waitFor(() => applied(engine, "FILLS", f));
    await mark(symbol, 100);
    await waitFor(() => Object.keys(fundOf(engine, fund).baselines).length === 3);
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

  it("lowering capital with no trade is no loss; a later 3 % trading loss still halts", async () => {
    await fundWithPosition("capdown", "CD");
    await setEnvelope("capdown", 2, "900000"); // NAV 900 000: not a 10 % loss
    await tickHaltsNothing("capdown");
    await mark("CD", 97.01); // −29 900 of trading: 2.99 % of 1 000 000
    await tickHaltsNothing("capdown");
    await settled(engine);
    expect(fundOf(engine, "capdown").halts).toEqual({});
    await mark("CD", 97); // −30 000: 3 % of the day's starting equity
    await waitFor(() => fundOf(engine, "capdown").halts["DAILY_LOSS"] !== undefined);
    await waitFor(async () => (await halts("capdown")).length === 1);
    expect(await halts("capdown")).toEqual([
      "DAILY_LOSS: day loss 3.0% of equity 1000000 reached the 3.0% halt",
    ]);
    const b = fundOf(engine, "capdown").baselines["day"]!;
    expect({ equity: b.equity, capital: b.capital }).toEqual({
      equity: "1000000",
      capital: "1000000",
    });
  });

  it("raising capital does not hide a 10 % trading loss", async () => {
    await fundWithPosition("capup", "CU");
    await setEnvelope("capup", 2, "2000000"); // NAV 2 000 000: not a gain
    await tickHaltsNothing("capup");
    await mark("CU", 90); // −100 000 of trading: 10 % of the day's starting equity (NAV 1 900 000)
    await waitFor(() => fundOf(engine, "capup").halts["DAILY_LOSS"] !== undefined);
    expect(await halts("capup")).toEqual([
      "DAILY_LOSS: day loss 10.0% of equity 1000000 reached the 3.0% halt",
    ]);
  });

  it("across a rebuild: an engine built from the streams alone decides the same; digests agree", async () => {
    await fundWithPosition("caprb", "CR");
    await setEnvelope("caprb", 2, "900000");
    await mark("CR", 98); // −20 000 of trading: 2 %, with NAV at 880 000
    await tickHaltsNothing("caprb");
    await settled(engine);
    const live = engine.status().state_digest;
    const rebuilt = await rebuild({
      config: testConfig(server.url, {}, mkdtempSync(join(tmpdir(), "mts-rb-"))),
      out: join(mkdtempSync(join(tmpdir(), "mts-rb-out-")), "rebuilt.sqlite"),
      clock,
      log: silentLogger,
    });
    expect(rebuilt.state_digest).toBe(live);

    // a second engine with an empty state dir: baselines (with their capital) from the streams
    await engine.close();
    engine = await startTestEngine(server.url, { clock, timers });
    await settled(engine);
    expect(engine.status().state_digest).toBe(live);
    expect(fundOf(engine, "caprb").baselines["day"]?.capital).toBe("1000000");
    await tickHaltsNothing("caprb");
    await settled(engine);
    expect(fundOf(engine, "caprb").halts).toEqual({});
    expect(await halts("caprb")).toEqual([]);
    expect(fundOf(engine, "capup").halts["DAILY_LOSS"] !== undefined).toBe(true);
  });
});
