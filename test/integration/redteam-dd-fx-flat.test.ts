/**
 * Red team (drawdown): "at every fill and mark change" includes an FX mark change revaluing a
 * *flat* foreign book's realized P&L. A fund that closed a EUR position at a loss of 29 000 EUR
 * (2.9 % at EUR-USD 1.00) has lost 3.016 % once EUR-USD is 1.04: that FX quote must halt the fund
 * before the next check reads it, as a quote on a held symbol does — not only at the monitor's
 * next 1 s timer tick. Here the periodic drawdown tick is disabled (every other timer runs) so the
 * test sees what the mark change itself does; the last test fires the tick as a control.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { type Timers, systemTimers } from "../../src/time/timers.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, publishedHalts, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

const noDrawdownTick: Timers = {
  every(ms, fn, o) {
    if (o?.name === "worker:drawdown") return () => {};
    return systemTimers.every(ms, fn, o);
  },
};

describe("red team: an FX move on a flat foreign book's realized loss", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock("2026-11-18T10:00:00.000Z");
  const timers = steppableTimers(noDrawdownTick);
  const F = "ddfxflat";
  const fund = () => engine.observe.fund(F)!;
  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  const quote = async (symbol: string, bid: string, ask: string) =>
    until("QUOTES", await bus.quote(symbol, bid, ask, iso(clock.now())));

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, {
      clock,
      stateDir: mkdtempSync(join(tmpdir(), "mts-rt-dd-fxflat-")),
      timers,
    });
    expect(timers.names()).toContain("worker:drawdown");
    await until("REFDATA", await bus.instrument({ symbol: "SAPF", asset_class: "equity", currency: "EUR" }));
    await quote("EUR-USD", "0.9999", "1.0001");
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { daily_loss_halt_pct: "0.03" })));
    await waitFor(() => Object.keys(fund().baselines).length === 3);
    const ts = iso(clock.now());
    await until(
      "FILLS",
      await bus.fill({ fund_id: F, symbol: "SAPF", quantity: "10000", price: "100", timestamp: ts }),
    );
    await until(
      "FILLS",
      await bus.fill({
        fund_id: F,
        symbol: "SAPF",
        side: "SELL",
        quantity: "10000",
        price: "97.1",
        timestamp: ts,
      }),
    );
    expect(fund().halts).toEqual({}); // −29 000 USD: 2.9 %
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("EUR-USD at 1.04 (−30 160 USD, 3.016 %) halts the fund at that mark change", async () => {
    await quote("EUR-USD", "1.0399", "1.0401");
    const d = await bus.check(order({ fund_id: F, quantity: "1" }));
    expect({ code: d.rejection_code, severity: d.details["severity"] }).toEqual({
      code: "FUND_HALTED",
      severity: "DAILY_LOSS",
    });
    await waitFor(async () => (await publishedHalts(nc, F)).length > 0, {
      timeoutMs: 2000,
      message: "no halt published at the FX mark change",
    });
  });

  it("control: the monitor's timer tick does see the breach", async () => {
    await timers.tick("drawdown");
    await waitFor(() => fund().halts["DAILY_LOSS"] !== undefined);
    expect(await publishedHalts(nc, F)).toEqual(["DAILY_LOSS"]);
  });
});
