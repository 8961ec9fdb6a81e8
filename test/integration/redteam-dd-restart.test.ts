/**
 * Red team (drawdown, regression): restarts and rebuilds give the same halts. A breach that
 * happened while the engine was down halts once it is back (no missed halt); a resumed breach does
 * not halt again after a restart on the same state dir, nor on an engine built from the streams
 * alone (no re-halt); `rebuild` gives the live digest; the next day's new breach halts the day again
 * while the resumed month stays resumed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { type Engine, rebuild } from "../../src/engine/index.js";
import { silentLogger } from "../../src/obs/index.js";
import { Subjects } from "../../src/contract/subjects.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import {
  Bus,
  applied,
  envelope,
  order,
  publishedHalts,
  settled,
  startTestEngine,
  testConfig,
} from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

const FUND = "ddrs";
const START = "2026-11-18T10:00:00.000Z"; // a Wednesday

describe("red team: drawdown halts across restarts and rebuilds", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine | undefined;
  const clock = manualClock(START);
  const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-dd-rs-"));
  const timers = steppableTimers();
  const live = () => engine!;
  const fund = () => live().observe.fund(FUND)!;
  async function quote(mid: number) {
    return bus.quote("RS", String(mid - 0.01), String(mid + 0.01), iso(clock.now()));
  }
  async function mark(mid: number) {
    const seq = await quote(mid);
    await waitFor(() => applied(live(), "QUOTES", seq));
  }
  const restart = async (dir: string | undefined = stateDir) => {
    await engine?.close();
    engine = await startTestEngine(server.url, { clock, stateDir: dir, timers });
    await settled(live(), ["RISK_CONTROL", "FILLS", "RISK_ENVELOPES", "QUOTES"]);
  };
  const noMoreHalts = async (expected: string[]) => {
    await timers.tick("drawdown"); // resolves once what the monitor published is stored
    expect((await publishedHalts(nc, FUND)).sort()).toEqual([...expected].sort());
  };

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, { clock, stateDir, timers });
    const e = await bus.envelope(
      envelope(FUND, { daily_loss_halt_pct: "0.03", monthly_loss_halt_pct: "0.05" }),
    );
    await waitFor(() => applied(live(), "RISK_ENVELOPES", e));
    const f = await bus.fill({
      fund_id: FUND,
      symbol: "RS",
      quantity: "10000",
      price: "100",
      timestamp: START,
    });
    await waitFor(() => applied(live(), "FILLS", f));
    await mark(100);
    await waitFor(() => Object.keys(fund().baselines).length === 3);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("a breach quoted while the engine was down halts once it is back, and only once", async () => {
    await engine!.close();
    engine = undefined;
    clock.advance(60_000);
    await quote(96); // −4 %: day breached (3 %), month not (5 %)
    await restart();
    await waitFor(() => fund().halts["DAILY_LOSS"] !== undefined, { message: "missed halt after restart" });
    await restart();
    await noMoreHalts(["DAILY_LOSS"]);
  });

  it("a resumed breach does not halt again after a restart, nor on an engine built from the streams", async () => {
    await mark(94.5); // −5.5 %: the month breaches too
    await waitFor(() => fund().halts["MONTHLY_LOSS"] !== undefined);
    clock.advance(60_000);
    const r = await bus.control(Subjects.resume(FUND), {
      fund_id: FUND,
      operator: "ops",
      reason: "reviewed",
      at: iso(clock.now()),
    });
    await waitFor(() => applied(live(), "RISK_CONTROL", r));
    expect(fund().halts).toEqual({});
    await mark(94);
    await noMoreHalts(["DAILY_LOSS", "MONTHLY_LOSS"]);

    await restart();
    await mark(93.9);
    await noMoreHalts(["DAILY_LOSS", "MONTHLY_LOSS"]);
    expect(fund().halts).toEqual({});
    expect(
      (await bus.check(order({ fund_id: FUND, symbol: "RS", quantity: "1", limit_price: "93.9" }))).approved,
    ).toBe(true);

    await settled(live(), ["RISK_CONTROL", "FILLS", "RISK_ENVELOPES", "QUOTES", "RISK_DECISIONS"]);
    const digest = live().status().state_digest;
    const rebuilt = await rebuild({
      config: testConfig(server.url, {}, mkdtempSync(join(tmpdir(), "mts-rt-dd-rb-"))),
      out: join(mkdtempSync(join(tmpdir(), "mts-rt-dd-rb-out-")), "rebuilt.sqlite"),
      clock,
      log: silentLogger,
    });
    expect(rebuilt.state_digest).toBe(digest);

    await restart(mkdtempSync(join(tmpdir(), "mts-rt-dd-empty-"))); // from the streams alone
    await settled(live(), ["RISK_CONTROL", "FILLS", "RISK_ENVELOPES", "QUOTES", "RISK_DECISIONS"]);
    expect(live().status().state_digest).toBe(digest);
    await mark(93.8);
    await noMoreHalts(["DAILY_LOSS", "MONTHLY_LOSS"]);
  });

  it("the next day: a new 3 % loss halts the day again; the resumed month does not re-halt", async () => {
    clock.set(Date.parse("2026-11-19T09:00:00.000Z"));
    await mark(93.8); // the day's baseline: 938 000
    await waitFor(() => fund().baselines["day"]?.starts_at === "2026-11-19T00:00:00.000Z");
    await mark(90.99); // −28 100: 2.996 %
    await noMoreHalts(["DAILY_LOSS", "MONTHLY_LOSS"]);
    await mark(90.98); // −28 200: 3.006 %
    await waitFor(() => fund().halts["DAILY_LOSS"] !== undefined);
    await noMoreHalts(["DAILY_LOSS", "MONTHLY_LOSS", "DAILY_LOSS"]);
    expect(fund().halts["MONTHLY_LOSS"]).toBeUndefined();
  });
});
