/**
 * Red-team pass: orders that race while the CRO advisor (an asynchronous gate) is asked. Every
 * order of a burst passes the synchronous gates on arrival, when none of the others is decided
 * yet; the newer velocity-gate checks (duplicate_window_ms, max_open_orders) and the rate limit
 * must still let exactly the headroom through once the advisor answers them all at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";

describe("red-team gates: bursts held by the CRO advisor", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  let advisor: Subscription | undefined;
  const held: Msg[] = [];

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, {
      flags: { "cro_veto.enabled": true, "cro_veto.timeout_s": 8, "cro_veto.confidence_threshold": 0.85 },
    });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    advisor = nc.subscribe(Subjects.croVeto, {
      callback: (_e, m) => {
        held.push(m);
      },
    });
    await nc.flush();
  });
  afterAll(async () => {
    if (advisor && !advisor.isClosed()) await advisor.drain();
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const outcome = (d: { approved: boolean; rejecting_gate: string; rejection_code: string }) =>
    d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`;

  /** Sends the orders at once, holds every advisor request until all arrived, then clears them all. */
  async function burst(orders: Record<string, unknown>[]): Promise<string[]> {
    held.length = 0;
    const pending = orders.map((o) => bus.check(o, Subjects.check, 15000));
    await waitFor(() => held.length === orders.length, { message: "advisor did not get every order" });
    for (const m of held) m.respond(JSON.stringify({ veto: false, confidence: "0.1" }));
    return (await Promise.all(pending)).map(outcome);
  }
  const count = (xs: string[]) =>
    xs.reduce<Record<string, number>>((a, x) => ((a[x] = (a[x] ?? 0) + 1), a), {});

  async function setup(fund: string, env: Record<string, unknown>) {
    const seq = await bus.envelope(envelope(fund, env));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
  }

  it("duplicate_window_ms: of 6 identical orders under 6 keys, exactly one is not DUPLICATE_ORDER", async () => {
    const F = "cro-dup";
    await setup(F, { duplicate_window_ms: 60000 });
    const r = await burst(
      Array.from({ length: 6 }, () => order({ fund_id: F, symbol: "CD", quantity: "5" })),
    );
    expect(count(r)).toEqual({ approved: 1, "velocity/DUPLICATE_ORDER": 5 });
  });

  it("max_open_orders: of 6 orders, exactly the limit (2) is approved", async () => {
    const F = "cro-open";
    await setup(F, { max_open_orders: 2 });
    const r = await burst(
      Array.from({ length: 6 }, (_, i) => order({ fund_id: F, symbol: "CO", quantity: String(i + 1) })),
    );
    expect(count(r)).toEqual({ approved: 2, "velocity/MAX_OPEN_ORDERS_EXCEEDED": 4 });
  });

  it("velocity max_orders: of 6 orders, exactly 3 are approved", async () => {
    const F = "cro-vel";
    await setup(F, { velocity: { window_s: 60, max_orders: 3 } });
    const r = await burst(
      Array.from({ length: 6 }, (_, i) => order({ fund_id: F, symbol: "CV", quantity: String(i + 1) })),
    );
    expect(count(r)).toEqual({ approved: 3, "velocity/VELOCITY_EXCEEDED": 3 });
  });
});
