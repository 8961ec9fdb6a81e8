/**
 * Red team (operations): every check the engine answers is in riskengine_check_latency_seconds.
 * Checks answered STATE_NOT_READY by the routing path (src/service/check.ts `notReady`: the
 * engine shutting down, not ready, no owner for the fund, an internal error) are replies like
 * any other; here 60 checks in flight when the engine stops are all answered "state not ready",
 * and the histogram must count them (outcome "unavailable" or "rejected").
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";
import { find, parseExposition } from "../support/prom.js";

const clock = { now: () => Date.parse(NOW) + 100 };

describe("red team: STATE_NOT_READY answers in the check latency histogram", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  const stateDir = mkdtempSync(join(tmpdir(), "mts-redteam-ops-notready-"));
  afterAll(async () => {
    await nc?.close();
    await engine?.close().catch(() => undefined);
    await server?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("checks answered while the engine stops are observed", async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock, stateDir });
    nc = await connectTest(server.url);
    const bus = new Bus(nc);
    const s = await bus.envelope(envelope("alpha"));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s) && engine.readiness().ready);
    const replies = Array.from({ length: 60 }, () =>
      bus.check(order(), undefined, 5000).then(
        (d) => d,
        () => undefined,
      ),
    );
    await engine.close();
    const answered = (await Promise.all(replies)).filter((d) => d !== undefined);
    expect(answered.length).toBeGreaterThan(0);
    // (in this run they are all STATE_NOT_READY "state not ready": the engine is shutting down)
    // the histogram itself (a whole /metrics scrape needs the open engine's state store)
    const m = parseExposition(
      await engine.metrics.registry.getSingleMetricAsString("riskengine_check_latency_seconds"),
    );
    const observed = find(m, "riskengine_check_latency_seconds_count").reduce((a, x) => a + x.value, 0);
    expect({ answered: answered.length, observed }).toEqual({
      answered: answered.length,
      observed: answered.length,
    });
  }, 60_000);
});
