/**
 * Red team (drawdown): a one-sided FX quote (bid 0, valid per the contract) is no move of the rate.
 * A fund holding a EUR position with a large unrealized gain must not be halted for a "loss" the
 * moment the EUR-USD quote goes one-sided (the engine values the position's P&L at 0 meanwhile).
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

describe("red team: drawdown and a one-sided FX quote", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock("2026-11-18T10:00:00.000Z");
  const timers = steppableTimers();
  const F = "ddfxgap";
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
      stateDir: mkdtempSync(join(tmpdir(), "mts-rt-dd-fxgap-")),
      timers,
    });
    await until("REFDATA", await bus.instrument({ symbol: "SAPG", asset_class: "equity", currency: "EUR" }));
    await quote("EUR-USD", "0.9999", "1.0001");
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { daily_loss_halt_pct: "0.03" })));
    await until(
      "FILLS",
      await bus.fill({
        fund_id: F,
        symbol: "SAPG",
        quantity: "10000",
        price: "100",
        timestamp: iso(clock.now()),
      }),
    );
    await quote("SAPG", "199.99", "200.01"); // +1 000 000 EUR unrealized
    clock.set(Date.parse("2026-11-19T09:00:00.000Z")); // the next day starts at equity 2 000 000
    await quote("SAPG", "199.99", "200.01");
    await quote("EUR-USD", "0.9999", "1.0001");
    await waitFor(async () =>
      (await publishedBaselines(nc, F)).includes("day@2026-11-19T00:00:00.000Z=2000000"),
    );
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("an EUR-USD quote with bid 0 does not halt a fund whose day lost nothing", async () => {
    await quote("EUR-USD", "0", "1.0001"); // one-sided: valid, and no trading loss happened
    await timers.tick("drawdown"); // resolves once what the monitor published is stored
    expect(await publishedHalts(nc, F, true)).toEqual([]);
    expect(fund().halts).toEqual({});
  });
});
