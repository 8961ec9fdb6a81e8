/**
 * Kill switch: a KILL_SWITCH halt publishes one cancel-all intent for the fund; orders still open
 * on OMS_ORDERS after kill_switch.verify_s are alerted with their ids.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

describe("kill switch", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock(NOW);
  const timers = steppableTimers();
  /** The kill switch's tick, run now: it verifies the presses whose time has come. */
  const verify = () => timers.tick("kill-switch");
  /** kill_switch alerts on RISK_CONTROL for the fund (a fired tick's alerts are stored when it ends). */
  const alerts = async (fund: string) =>
    (await readStream(nc, "RISK_CONTROL", Subjects.alert("kill_switch", fund))).length;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, { clock, timers, flags: { "kill_switch.verify_s": 30 } });
    const e = await bus.envelope(envelope("k1"));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("asks the OMS to cancel everything, and alerts on the orders still open after verify_s", async () => {
    const open = order({ fund_id: "k1", order_id: "k-open" });
    const gone = order({ fund_id: "k1", order_id: "k-cancelled" });
    expect((await bus.check(open)).approved).toBe(true);
    expect((await bus.check(gone)).approved).toBe(true);
    await bus.orderEvent("accepted", "k1", "k-open");
    await bus.orderEvent("accepted", "k1", "k-external"); // accepted by the OMS without an engine check
    const c = await bus.orderEvent("cancelled", "k1", "k-cancelled");
    await waitFor(() => applied(engine, "OMS_ORDERS", c));

    const h = await bus.control(Subjects.halt("k1"), {
      fund_id: "k1",
      severity: "KILL_SWITCH",
      reason: "desk kill",
      at: iso(clock.now()),
      by: "ops",
    });
    await waitFor(() => applied(engine, "RISK_CONTROL", h));
    await waitFor(async () => (await readStream(nc, "OMS_INTENTS", Subjects.cancelAll("k1"))).length === 1);
    expect((await readStream(nc, "OMS_INTENTS", Subjects.cancelAll("k1")))[0]!.data).toMatchObject({
      fund_id: "k1",
    });

    clock.advance(29_999);
    await verify();
    expect(await alerts("k1")).toBe(0);
    clock.advance(1);
    await verify();
    expect(await alerts("k1")).toBe(1);
    const alert = (
      await readStream<{ details: Record<string, string> }>(
        nc,
        "RISK_CONTROL",
        Subjects.alert("kill_switch", "k1"),
      )
    )[0]!;
    expect(alert.data.details).toMatchObject({ order_ids: "k-external,k-open", count: "2" });
    // risk-increasing orders are rejected while killed
    expect((await bus.check(order({ fund_id: "k1" }))).details["severity"]).toBe("KILL_SWITCH");
  });

  it("does not alert when the OMS cancelled everything in time", async () => {
    const e = await bus.envelope(envelope("k2"));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
    expect((await bus.check(order({ fund_id: "k2", order_id: "k2-a" }))).approved).toBe(true);
    const h = await bus.control(Subjects.halt("k2"), {
      fund_id: "k2",
      severity: "KILL_SWITCH",
      reason: "x",
      at: iso(clock.now()),
      by: "ops",
    });
    await waitFor(() => applied(engine, "RISK_CONTROL", h));
    const c = await bus.orderEvent("cancelled", "k2", "k2-a");
    await waitFor(() => applied(engine, "OMS_ORDERS", c));
    clock.advance(30_000);
    await verify();
    expect(await alerts("k2")).toBe(0);
  });

  const kill = (fund: string, at = iso(clock.now())) =>
    bus.control(Subjects.halt(fund), {
      fund_id: fund,
      severity: "KILL_SWITCH",
      reason: "kill",
      at,
      by: "ops",
    });
  const cancelAlls = async (fund: string) =>
    (await readStream(nc, "OMS_INTENTS", Subjects.cancelAll(fund))).length;

  it("verifies verify_s after the engine applied the halt, whatever the halt's `at` says", async () => {
    const e = await bus.envelope(envelope("k3"));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
    expect((await bus.check(order({ fund_id: "k3", order_id: "k3-open" }))).approved).toBe(true);
    const h = await kill("k3", iso(clock.now() + 3_600_000)); // stamped an hour ahead
    await waitFor(() => applied(engine, "RISK_CONTROL", h));
    clock.advance(29_999);
    await verify();
    expect(await alerts("k3")).toBe(0);
    clock.advance(1);
    await verify();
    expect(await alerts("k3")).toBe(1);
    const [alert] = await readStream<{ details: Record<string, string> }>(
      nc,
      "RISK_CONTROL",
      Subjects.alert("kill_switch", "k3"),
    );
    expect(alert!.data.details).toMatchObject({ order_ids: "k3-open", count: "1" });
  });

  it("a second press puts a new cancel_all on OMS_INTENTS and is verified on its own", async () => {
    const e = await bus.envelope(envelope("k4"));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
    expect((await bus.check(order({ fund_id: "k4", order_id: "k4-open" }))).approved).toBe(true);
    const h1 = await kill("k4");
    await waitFor(() => applied(engine, "RISK_CONTROL", h1));
    await waitFor(async () => (await cancelAlls("k4")) === 1);
    clock.advance(30_000);
    await verify();
    expect(await alerts("k4")).toBe(1);

    const h2 = await kill("k4"); // pressed again: the fund is still killed
    await waitFor(() => applied(engine, "RISK_CONTROL", h2));
    await waitFor(async () => (await cancelAlls("k4")) === 2, { message: "a second cancel_all" });
    const k4 = engine.observe.fund("k4")!.halts["KILL_SWITCH"]!;
    expect({ seq: k4.seq, lastSeq: k4.last_seq }).toEqual({ seq: h1, lastSeq: h2 }); // the halt is still the first
    clock.advance(29_999);
    await verify();
    expect(await alerts("k4")).toBe(1);
    clock.advance(1);
    await verify();
    expect(await alerts("k4")).toBe(2);
    const second = (
      await readStream<{ details: Record<string, string> }>(
        nc,
        "RISK_CONTROL",
        Subjects.alert("kill_switch", "k4"),
      )
    )[1]!;
    expect(second.data.details).toMatchObject({ order_ids: "k4-open", count: "1" });
  });
});
