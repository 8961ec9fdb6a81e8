/**
 * Red team (drawdown, regression): under a loss halt, risk-reducing orders pass, counting pending
 * reducing orders: the sells that would together cross zero are not reducing and are FUND_HALTED;
 * a cancelled sell frees its room again. Under a KILL_SWITCH a cancel_all is published and a
 * reducing order still passes the drawdown gate (the contract's exemption names the gate).
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
import { Bus, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

describe("red team: reducing orders under a drawdown halt", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock("2026-11-18T10:00:00.000Z");
  const timers = steppableTimers();
  const F = "ddred";
  const fund = () => engine.observe.fund(F)!;
  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  const mark = async (mid: number) =>
    until("QUOTES", await bus.quote("RD", String(mid - 0.01), String(mid + 0.01), iso(clock.now())));
  const sell = (qty: string, id: string) =>
    bus.check(
      order({ fund_id: F, order_id: id, symbol: "RD", side: "SELL", quantity: qty, limit_price: "96" }),
    );

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, {
      clock,
      stateDir: mkdtempSync(join(tmpdir(), "mts-rt-dd-red-")),
      timers,
    });
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { daily_loss_halt_pct: "0.03" })));
    await until(
      "FILLS",
      await bus.fill({
        fund_id: F,
        symbol: "RD",
        quantity: "10000",
        price: "100",
        timestamp: iso(clock.now()),
      }),
    );
    await mark(100);
    await waitFor(() => Object.keys(fund().baselines).length === 3);
    await mark(96);
    await waitFor(() => fund().halts["DAILY_LOSS"] !== undefined);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("reducing sells pass up to the position; the one that would cross zero with the pending ones is halted", async () => {
    expect((await sell("6000", "rd-1")).approved).toBe(true);
    expect((await sell("4000", "rd-2")).approved).toBe(true);
    const over = await sell("1", "rd-3");
    expect({ code: over.rejection_code, severity: over.details["severity"] }).toEqual({
      code: "FUND_HALTED",
      severity: "DAILY_LOSS",
    });
    expect(
      (await bus.check(order({ fund_id: F, symbol: "RD", quantity: "1", limit_price: "96" }))).rejection_code,
    ).toBe("FUND_HALTED");
    await until("OMS_ORDERS", await bus.orderEvent("cancelled", F, "rd-2", iso(clock.now())));
    expect((await sell("4000", "rd-4")).approved).toBe(true);
  });

  it("a KILL_SWITCH press on the halted fund publishes a cancel_all; a reducing order still passes", async () => {
    const h = await bus.control(Subjects.halt(F), {
      fund_id: F,
      severity: "KILL_SWITCH",
      reason: "desk kill",
      at: iso(clock.now()),
      by: "ops",
    });
    await until("RISK_CONTROL", h);
    await waitFor(async () => (await readStream(nc, "OMS_INTENTS", Subjects.cancelAll(F))).length === 1);
    await until("OMS_ORDERS", await bus.orderEvent("cancelled", F, "rd-1", iso(clock.now())));
    await until("OMS_ORDERS", await bus.orderEvent("cancelled", F, "rd-4", iso(clock.now())));
    const up = await bus.check(order({ fund_id: F, symbol: "RD", quantity: "1", limit_price: "96" }));
    expect(up.details["severity"]).toBe("KILL_SWITCH");
    expect((await sell("100", "rd-5")).approved).toBe(true);
  });
});
