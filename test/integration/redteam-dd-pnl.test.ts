/**
 * Red team (drawdown): what counts as the period's P&L. Fees alone reaching the threshold halt
 * (at exactly the threshold, not a cent before); an FX move alone revalues a foreign position's
 * P&L and halts when the loss reaches the threshold.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

describe("red team: drawdown P&L (fees, FX)", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock("2026-11-18T10:00:00.000Z"); // a Wednesday
  const timers = steppableTimers();
  const fund = (id: string) => engine.observe.fund(id)!;
  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  async function quote(symbol: string, mid: string, spread = "0.0001") {
    const m = Number(mid);
    const s = Number(spread);
    await until("QUOTES", await bus.quote(symbol, (m - s).toFixed(4), (m + s).toFixed(4), iso(clock.now())));
  }

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, {
      clock,
      stateDir: mkdtempSync(join(tmpdir(), "mts-rt-dd-pnl-")),
      timers,
    });
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("fees count: 29 999.99 of fees does not halt a 3 % daily limit, one more cent does", async () => {
    const F = "ddfee";
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { daily_loss_halt_pct: "0.03" })));
    await waitFor(() => Object.keys(fund(F).baselines).length === 3);
    const ts = iso(clock.now());
    await until(
      "FILLS",
      await bus.fill({
        fund_id: F,
        symbol: "FEE",
        quantity: "1",
        price: "100",
        fees: "29999.99",
        timestamp: ts,
      }),
    );
    await timers.tick("drawdown");
    expect(fund(F).halts).toEqual({});
    await until(
      "FILLS",
      await bus.fill({ fund_id: F, symbol: "FEE", quantity: "1", price: "100", fees: "0.01", timestamp: ts }),
    );
    await waitFor(() => fund(F).halts["DAILY_LOSS"] !== undefined);
    expect(await publishedHalts(nc, F)).toEqual(["DAILY_LOSS"]);
  });

  it("an FX move alone halts when it takes the day's loss to the threshold", async () => {
    const F = "ddfx";
    await until("REFDATA", await bus.instrument({ symbol: "SAP", asset_class: "equity", currency: "EUR" }));
    await quote("EUR-USD", "1");
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { daily_loss_halt_pct: "0.03" })));
    await until(
      "FILLS",
      await bus.fill({
        fund_id: F,
        symbol: "SAP",
        quantity: "10000",
        price: "100",
        timestamp: iso(clock.now()),
      }),
    );
    await quote("SAP", "200"); // +1 000 000 EUR unrealized, = 1 000 000 USD at 1.0
    // next day: its baseline is 2 000 000 (capital + the gain in USD at 1.0)
    clock.set(Date.parse("2026-11-19T09:00:00.000Z"));
    await quote("SAP", "200");
    await waitFor(async () =>
      (await publishedBaselines(nc, F)).includes("day@2026-11-19T00:00:00.000Z=2000000"),
    );
    await quote("EUR-USD", "0.9401"); // −59 900: 2.995 %
    await timers.tick("drawdown");
    expect(fund(F).halts).toEqual({});
    await quote("EUR-USD", "0.94"); // −60 000: 3 % of 2 000 000
    await waitFor(() => fund(F).halts["DAILY_LOSS"] !== undefined);
    expect(await publishedHalts(nc, F)).toEqual(["DAILY_LOSS"]);
  });
});
