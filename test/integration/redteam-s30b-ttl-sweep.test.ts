/**
 * Red-team s30b: reservations.ttl_s is a deadline of the decision clock, not of the sweep. The
 * engine releases a never-acknowledged order by a periodic sweep (every 1 s of real time, and
 * when the status is read); between the TTL and the next sweep, and right after a restart that
 * rebuilt the state from the streams, the lapsed reservation is still counted. Here the engine's
 * timers only run when the test fires them, so "between the TTL and the sweep" is deterministic.
 *
 * CONTRACT.md: "The OMS reports every approved order's end: an approved order it never routes is
 * reported cancelled (or rejected), or it keeps reserving until reservations.ttl_s", and
 * "reservations.ttl_s releases only an order the OMS never acknowledged".
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import type { Timers } from "../../src/time/timers.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, settled, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

/** Timers that never fire by themselves: only `fire(name)` runs a registration. */
const never: Timers = { every: () => () => undefined };

describe("red-team s30b: a reservation's TTL is judged at the decision's time", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine | undefined;
  const clock = manualClock(NOW);
  const timers = steppableTimers(never);
  const FLAGS = {
    "synthetic_stop.enabled": false,
    "broker_exit_reconciler.enabled": false,
    "reservations.ttl_s": 30,
  };
  const e = () => engine!;
  const STREAMS = ["RISK_CONTROL", "FILLS", "RISK_ENVELOPES", "RISK_DECISIONS", "OMS_ORDERS"];

  async function start(dir: string): Promise<Engine> {
    engine = await startTestEngine(server.url, { clock, timers, stateDir: dir, flags: FLAGS });
    await waitFor(() => engine!.ready(), { message: "engine not ready", timeoutMs: 20_000 });
    return engine;
  }
  const outcome = (d: RiskDecision) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);
  const check = async (o: Record<string, unknown>) => outcome(await bus.check(order(o)));

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await start(mkdtempSync(join(tmpdir(), "mts-s30b-ttl-")));
  }, 30_000);
  afterAll(async () => {
    await nc?.close();
    await engine?.close().catch(() => undefined);
    await server?.stop();
  });

  it("live: an order never acknowledged stops reserving at its TTL, before any sweep runs", async () => {
    const F = "s30b-ttl-live";
    await waitFor(async () =>
      applied(e(), "RISK_ENVELOPES", await bus.envelope(envelope(F, { max_position_pct: "0.1" }))),
    );
    expect(await check({ fund_id: F, symbol: "TTL1", quantity: "1000", limit_price: "100" })).toBe(
      "approved",
    );
    clock.advance(29_999);
    expect(await check({ fund_id: F, symbol: "TTL1", quantity: "1", limit_price: "100" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    clock.advance(2);
    // 30 001 ms after it was approved and never heard of: it reserves nothing any more
    expect(await check({ fund_id: F, symbol: "TTL1", quantity: "1000", limit_price: "100" })).toBe(
      "approved",
    );
  });

  it("restart on a fresh state dir after the TTL passed: the lapsed order does not reserve", async () => {
    const F = "s30b-ttl-fresh";
    await waitFor(async () =>
      applied(e(), "RISK_ENVELOPES", await bus.envelope(envelope(F, { max_position_pct: "0.1" }))),
    );
    expect(await check({ fund_id: F, symbol: "TTL2", quantity: "1000", limit_price: "100" })).toBe(
      "approved",
    );
    clock.advance(31_000);
    await timers.fire("sweep"); // the live engine sweeps: released
    expect(await check({ fund_id: F, symbol: "TTL2", quantity: "1", limit_price: "100" })).toBe("approved");
    await settled(e(), STREAMS);
    await e().close();
    engine = undefined;
    await start(mkdtempSync(join(tmpdir(), "mts-s30b-ttl-fresh-")));
    await settled(e(), STREAMS);
    // live: 1 reserved (the order just approved, within its TTL); the rebuilt engine must agree
    expect(await check({ fund_id: F, symbol: "TTL2", quantity: "999", limit_price: "100" })).toBe("approved");
  });
});
