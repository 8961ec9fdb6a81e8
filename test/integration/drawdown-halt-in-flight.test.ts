/**
 * A drawdown breach the monitor has decided halts the fund's checks at once, not only once its Halt
 * is read back from RISK_CONTROL: while the Halt's publish fails (the stream refuses writes for a
 * while) the monitor retries it each tick, and meanwhile a risk-increasing order must not pass.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";

const FUND = "ddf";
const START = "2026-11-20T14:00:00.000Z";

describe("drawdown halt decided but not yet on RISK_CONTROL", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock(START);

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, { clock, flags: { "synthetic_stop.enabled": false } });
    const e = await bus.envelope(envelope(FUND, { daily_loss_halt_pct: "0.03" }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
    const f = await bus.fill({
      fund_id: FUND,
      symbol: "AAPL",
      quantity: "10000",
      price: "100",
      timestamp: START,
    });
    await waitFor(() => applied(engine, "FILLS", f));
    const q = await bus.quote("AAPL", "99.99", "100.01", iso(clock.now()));
    await waitFor(() => applied(engine, "QUOTES", q));
    await waitFor(() => Object.keys(engine.observe.fund(FUND)!.baselines).length === 3);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("rejects a risk-increasing order with FUND_HALTED while the breach's Halt cannot be published", async () => {
    const jsm = await jetstreamManager(nc);
    // RISK_CONTROL refuses every write from now on (sealed): the Halt stays in flight
    const seal: Record<string, unknown> = { sealed: true }; // not in the v3 update type; the server takes it
    await jsm.streams.update("RISK_CONTROL", seal);
    expect((await jsm.streams.info("RISK_CONTROL")).config.sealed).toBe(true);
    const alertsBefore = engine.alerter.count().alerts;
    const q = await bus.quote("AAPL", "79.99", "80.01", iso(clock.now())); // −20 % of equity
    await waitFor(() => applied(engine, "QUOTES", q));
    await waitFor(() => engine.alerter.count().alerts > alertsBefore); // the breach is decided
    expect(engine.observe.fund(FUND)!.halts).toEqual({}); // not read back: the publish failed
    const d = await bus.check(order({ fund_id: FUND, quantity: "10", limit_price: "80" }));
    expect(d).toMatchObject({
      approved: false,
      rejecting_gate: "drawdown",
      rejection_code: "FUND_HALTED",
      details: { severity: "DAILY_LOSS" },
    });
    // a risk-reducing order still passes
    const r = await bus.check(order({ fund_id: FUND, side: "SELL", quantity: "10", limit_price: "80" }));
    expect(r.approved).toBe(true);
  });
});
