/**
 * One nats-server and one engine on a manual clock (synthetic stops off unless `flags` say
 * otherwise), with the publish-and-wait helpers the exposure red-team suites share. Call inside a
 * `describe`: it registers the suite's beforeAll/afterAll. `engine`, `nc` and `bus` exist once
 * beforeAll ran: read them from the returned object, not destructured.
 */
import { afterAll, beforeAll } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { Subjects } from "../../src/contract/subjects.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "./nats.js";
import { Bus, NOW, applied, envelope, order, readStream, startTestEngine } from "./engine.js";
import { steppableTimers } from "./timers.js";

type Outcome = { approved: boolean; rejecting_gate: string; rejection_code: string };

export function exposureBench(flags: Record<string, unknown> = { "synthetic_stop.enabled": false }) {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const now = () => iso(clock.now());
  const timers = steppableTimers();

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock, timers, flags });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  const outcome = (d: Outcome) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);
  return {
    get engine() {
      return engine;
    },
    get nc() {
      return nc;
    },
    get bus() {
      return bus;
    },
    clock,
    timers,
    now,
    until,
    outcome,
    setup: async (fund: string, env: Record<string, unknown>) =>
      until("RISK_ENVELOPES", await bus.envelope(envelope(fund, env))),
    quote: async (s: string, b: string, a: string) => until("QUOTES", await bus.quote(s, b, a, now())),
    fill: async (f: Record<string, unknown>) => until("FILLS", await bus.fill({ timestamp: now(), ...f })),
    inst: async (i: Record<string, unknown>) => until("REFDATA", await bus.instrument(i)),
    ev: async (e: string, fund: string, id: unknown, extra: Record<string, unknown> = {}) =>
      until("OMS_ORDERS", await bus.orderEvent(e, fund, String(id), now(), extra)),
    check: async (o: Record<string, unknown>) => outcome(await bus.check(order(o))),
    /** The fund's limit_warning alerts, `measure|scope:value`. */
    warnings: async (fund: string) =>
      (
        await readStream<{ details: Record<string, string> }>(
          nc,
          "RISK_CONTROL",
          Subjects.alert("limit_warning", fund),
        )
      ).map((a) => `${a.data.details["measure"]}|${a.data.details["scope"]}:${a.data.details["value"]}`),
  };
}
