/**
 * Red team (issue 11): replays of records read back from disk must not count in the velocity
 * window (the contract: "replays excluded"), before and after a restart and a crash; conflicts and
 * duplicates do count (schema-valid, not replays).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, settled, startTestEngine } from "../support/engine.js";

describe("red team: velocity and replays of cold records", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  for (const how of ["close", "abort"] as const) {
    it(`replays never count, conflicts do (restart by ${how})`, async () => {
      const clock = manualClock(NOW);
      const fund = `vel-${how}`;
      const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-vel-"));
      const flags = { "state.flush_interval_ms": 20, "state.commit_interval_ms": 1000 };
      let engine = await startTestEngine(server.url, { clock, stateDir, flags });
      try {
        const s = await bus.envelope(
          envelope(fund, { velocity: { window_s: 60, max_orders: 6, max_notional: "100000000" } }),
        );
        await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
        const mk = () => order({ fund_id: fund, quantity: "1", limit_price: "100" });
        const p = [mk(), mk(), mk()];
        for (const o of p) expect((await bus.check(o)).approved).toBe(true); // counted: 3
        await settled(engine);
        await engine.flush();
        await engine.flush();
        for (let i = 0; i < 4; i++)
          for (const o of p) expect((await bus.check(o)).details["replayed"]).toBe("true");
        const c = await bus.check({ ...p[0]!, quantity: "2" }); // counted: 4
        expect(c.rejection_code).toBe("IDEMPOTENCY_CONFLICT");
        await settled(engine);
        await (how === "close" ? engine.close() : engine.abort());
        engine = await startTestEngine(server.url, { clock, stateDir, flags });
        await settled(engine);
        for (let i = 0; i < 2; i++)
          for (const o of p) expect((await bus.check(o)).details["replayed"]).toBe("true");
        const fresh = [mk(), mk(), mk(), mk()];
        const ds = [];
        for (const o of fresh) ds.push(await bus.check(o));
        expect(ds.map((d) => d.rejection_code)).toEqual(["", "", "VELOCITY_EXCEEDED", "VELOCITY_EXCEEDED"]);
      } finally {
        await engine.close().catch(() => undefined);
      }
    }, 60_000);
  }
});
