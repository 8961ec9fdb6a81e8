/**
 * Red-team pass on gate ORDER (CONTRACT.md "Gates and rejection codes": "Gates run in this order,
 * and the codes inside a gate in the order listed; the first rejection answers"): codes inside
 * velocity and position, and drawdown → reconciliation → short side, each with one order that
 * breaks everything, then loosening one limit at a time. One nats-server, one engine on a manual
 * clock; each case its own fund.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { Subjects } from "../../src/contract/subjects.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

type D = {
  approved: boolean;
  rejecting_gate: string;
  rejection_code: string;
  details: Record<string, string>;
};
const outcome = (d: D) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);

describe("red-team gate order", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const now = () => iso(clock.now());

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  const setup = async (fund: string, env: Record<string, unknown>) =>
    until("RISK_ENVELOPES", await bus.envelope(envelope(fund, env)));
  const check = async (o: Record<string, unknown>) => outcome(await bus.check(order(o)));

  it("velocity: DUPLICATE_ORDER before MAX_OPEN_ORDERS_EXCEEDED before VELOCITY_EXCEEDED", async () => {
    const F = "rto-vel";
    const lim = { duplicate_window_ms: 60000, max_open_orders: 1, velocity: { window_s: 60, max_orders: 1 } };
    await setup(F, lim);
    const b = { fund_id: F, symbol: "OVA", quantity: "1", limit_price: "10" };
    expect(await check(b)).toBe("approved");
    expect(await check(b)).toBe("velocity/DUPLICATE_ORDER"); // also 2 open, 2 in the window
    expect(await check({ ...b, quantity: "2" })).toBe("velocity/MAX_OPEN_ORDERS_EXCEEDED");
    await setup(F, { ...lim, version: 2, max_open_orders: 100 });
    expect(await check({ ...b, quantity: "3" })).toBe("velocity/VELOCITY_EXCEEDED");
  });

  it("velocity before position", async () => {
    const F = "rto-velpos";
    await setup(F, { velocity: { window_s: 60, max_orders: 0 }, max_position_pct: "0" });
    expect(await check({ fund_id: F, symbol: "OVB", quantity: "1", limit_price: "10" })).toBe(
      "velocity/VELOCITY_EXCEEDED",
    );
  });

  it("position: MAX_POSITION before GROSS before NET before SECTOR before ASSET_CLASS", async () => {
    const F = "rto-pos";
    await until("REFDATA", await bus.instrument({ symbol: "OPA", asset_class: "equity", sector: "tech" }));
    const all = {
      max_position_pct: "0.01",
      max_gross_exposure_pct: "0.01",
      max_net_exposure_pct: "0.01",
      max_sector_pct: "0.01",
      max_asset_class_pct: { equity: "0.01" },
    };
    const o = { fund_id: F, symbol: "OPA", quantity: "200", limit_price: "100" }; // 20 000 > 10 000
    await setup(F, all);
    expect(await check(o)).toBe("position/MAX_POSITION_EXCEEDED");
    await setup(F, { ...all, version: 2, max_position_pct: "1" });
    expect(await check(o)).toBe("position/GROSS_EXPOSURE_EXCEEDED");
    await setup(F, { ...all, version: 3, max_position_pct: "1", max_gross_exposure_pct: "1" });
    expect(await check(o)).toBe("position/NET_EXPOSURE_EXCEEDED");
    await setup(F, {
      ...all,
      version: 4,
      max_position_pct: "1",
      max_gross_exposure_pct: "1",
      max_net_exposure_pct: "1",
    });
    expect(await check(o)).toBe("position/SECTOR_CONCENTRATION_EXCEEDED");
    await setup(F, {
      ...all,
      version: 5,
      max_position_pct: "1",
      max_gross_exposure_pct: "1",
      max_net_exposure_pct: "1",
      max_sector_pct: "1",
    });
    expect(await check(o)).toBe("position/ASSET_CLASS_CONCENTRATION_EXCEEDED");
    await setup(F, { version: 6 });
    expect(await check(o)).toBe("approved");
  });

  it("drawdown before reconciliation before short side", async () => {
    const F = "rto-ctl";
    await setup(F, { enable_shorting: false });
    await until(
      "RISK_CONTROL",
      await bus.control(Subjects.reconcile("lock", F), {
        fund_id: F,
        locked: true,
        reason: "drift",
        at: now(),
      }),
    );
    await until(
      "RISK_CONTROL",
      await bus.control(Subjects.halt(F), {
        fund_id: F,
        severity: "MANUAL",
        reason: "rt",
        at: now(),
        by: "rt",
      }),
    );
    const s = { fund_id: F, symbol: "OCA", side: "SELL", quantity: "1", limit_price: "10" };
    expect(await check(s)).toBe("drawdown/FUND_HALTED");
    clock.advance(1000);
    await until(
      "RISK_CONTROL",
      await bus.control(Subjects.resume(F), { fund_id: F, operator: "rt", reason: "ok", at: now() }),
    );
    expect(await check(s)).toBe("reconciliation/RECONCILIATION_LOCK");
    await until(
      "RISK_CONTROL",
      await bus.control(Subjects.reconcile("unlock", F), {
        fund_id: F,
        locked: false,
        reason: "clean",
        at: now(),
      }),
    );
    expect(await check(s)).toBe("short_side/SHORTING_DISABLED");
  });
});
