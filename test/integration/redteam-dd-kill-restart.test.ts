/**
 * Red team (kill switch, regression): a KILL_SWITCH press survives restarts. A press published
 * while the engine is down gets its cancel_all once the engine is back and is verified verify_s
 * after that (engine clock); a restart after a press re-asks with the same message id (one
 * cancel_all per press on OMS_INTENTS) and verifies again; a halt stays in force across days until
 * a Resume published after it.
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
import { Bus, applied, envelope, order, readStream, settled, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

describe("red team: kill switch across restarts", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine | undefined;
  const clock = manualClock("2026-11-18T10:00:00.000Z");
  const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-dd-kill-"));
  const timers = steppableTimers();
  const F = "ddkill";
  const live = () => engine!;
  const start = async () => {
    engine = await startTestEngine(server.url, {
      clock,
      stateDir,
      timers,
      flags: { "kill_switch.verify_s": 30 },
    });
    await settled(live(), ["RISK_CONTROL", "RISK_ENVELOPES", "OMS_ORDERS", "RISK_DECISIONS"]);
  };
  const cancelAlls = async () => readStream<{ fund_id: string }>(nc, "OMS_INTENTS", Subjects.cancelAll(F));
  const alerts = async () => (await readStream(nc, "RISK_CONTROL", Subjects.alert("kill_switch", F))).length;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await start();
    const e = await bus.envelope(envelope(F));
    await waitFor(() => applied(live(), "RISK_ENVELOPES", e));
    expect((await bus.check(order({ fund_id: F, order_id: "kr-open" }))).approved).toBe(true);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("a press published while the engine is down: cancel_all once back, verified 30 s after that", async () => {
    await engine!.close();
    engine = undefined;
    await bus.control(Subjects.halt(F), {
      fund_id: F,
      severity: "KILL_SWITCH",
      reason: "desk",
      at: iso(clock.now()),
      by: "ops",
    });
    clock.advance(3_600_000); // the engine comes back an hour later
    await start();
    await waitFor(async () => (await cancelAlls()).length === 1, { message: "no cancel_all after restart" });
    clock.advance(29_999);
    await timers.tick("kill-switch");
    expect(await alerts()).toBe(0);
    clock.advance(1);
    await timers.tick("kill-switch");
    await waitFor(async () => (await alerts()) === 1);
  });

  it("a restart re-asks with the same id (still one cancel_all) and the halt is sticky across days", async () => {
    await engine!.close();
    clock.set(Date.parse("2026-11-19T10:00:00.000Z"));
    await start();
    // the tick resolves once what the kill switch published (its re-ask on becoming live) is stored
    await timers.tick("kill-switch");
    expect((await cancelAlls()).length).toBe(1);
    expect(live().observe.fund(F)!.halts["KILL_SWITCH"]).toBeDefined();
    const d = await bus.check(order({ fund_id: F }));
    expect({ code: d.rejection_code, severity: d.details["severity"] }).toEqual({
      code: "FUND_HALTED",
      severity: "KILL_SWITCH",
    });
    const r = await bus.control(Subjects.resume(F), {
      fund_id: F,
      operator: "ops",
      reason: "ok",
      at: iso(clock.now()),
    });
    await waitFor(() => applied(live(), "RISK_CONTROL", r));
    expect((await bus.check(order({ fund_id: F }))).approved).toBe(true);
  });
});
