/**
 * What the live engine forgets on its clock (the sweep, about once a second) and a rebuild forgets
 * once, at its end, must not make them disagree: the rebuilt state equals the live one, and an
 * engine restarted on it answers as the live engine did.
 *  - An idempotency key decided again after its window: the live engine had swept the first
 *    record and recorded the key afresh; a rebuild folds both decisions before its sweep.
 *  - An approved order the OMS acknowledges after its reservation lapsed: it reserves again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { type Engine, rebuild } from "../../src/engine/index.js";
import { silentLogger } from "../../src/obs/log.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats } from "../support/nats.js";
import { Bus, NOW, envelope, order, settled, startTestEngine, testConfig } from "../support/engine.js";

const H = 3_600_000;

describe("rebuild after what the live engine forgot on its clock", () => {
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

  /** `mts-risk rebuild` into a fresh state directory; the engine restarted on it when asked. */
  async function rebuildInto(clock: ReturnType<typeof manualClock>, flags: Record<string, unknown>) {
    const dir = mkdtempSync(join(tmpdir(), "mts-rb-"));
    const r = await rebuild({
      config: testConfig(server.url, flags, dir),
      out: join(dir, "snapshot.sqlite"),
      clock,
      log: silentLogger,
    });
    return { dir, digest: r.state_digest };
  }

  it("a key decided again after its window names the second decision, live as rebuilt and restarted", async () => {
    const clock = manualClock(NOW);
    let engine: Engine = await startTestEngine(server.url, { clock });
    try {
      await bus.envelope(envelope("win"));
      await settled(engine);
      const ord = (id: string, quantity: string) =>
        order({ fund_id: "win", order_id: id, idempotency_key: "K", quantity });
      expect((await bus.check(ord("a1", "10"))).approved).toBe(true);
      clock.advance(25 * H); // past idempotency.window_s (24 h)
      engine.status(); // the live sweep runs on the engine's clock
      const second = await bus.check(ord("a2", "20"));
      expect(second).toMatchObject({ approved: true });
      expect(second.details["replayed"]).toBeUndefined();
      await settled(engine);
      expect((await bus.check(ord("a3", "30"))).rejection_code).toBe("IDEMPOTENCY_CONFLICT");
      await settled(engine);
      const live = engine.status().state_digest;

      const rebuilt = await rebuildInto(clock, {});
      expect(rebuilt.digest).toBe(live);
      await engine.close();
      engine = await startTestEngine(server.url, { clock, stateDir: rebuilt.dir });
      await settled(engine);
      const fourth = await bus.check(ord("a4", "40"));
      expect({ approved: fourth.approved, code: fourth.rejection_code }).toEqual({
        approved: false,
        code: "IDEMPOTENCY_CONFLICT",
      });
      // the retry of the second order is still its replay
      expect((await bus.check(ord("a2", "20"))).details["replayed"]).toBe("true");
    } finally {
      await engine.close();
    }
  }, 60_000);

  it("an acknowledgement long after the reservation lapsed makes it reserve again, live as rebuilt", async () => {
    const clock = manualClock(NOW);
    const flags = { "reservations.ttl_s": 60 };
    const engine = await startTestEngine(server.url, { clock, flags });
    try {
      // position limit 0.1 % of 1 000 000 = 1 000: one order of 10 @ 100 takes it all
      await bus.envelope(envelope("late", { max_position_pct: "0.001" }));
      await settled(engine);
      const ord = (id: string) => order({ fund_id: "late", order_id: id, quantity: "10" });
      expect((await bus.check(ord("b1"))).approved).toBe(true);
      clock.advance(121_000); // past twice the TTL: lapsed (and, before, forgotten by the sweep)
      engine.status();
      expect((await bus.check(ord("b0"))).approved).toBe(true); // b1 reserves nothing now
      await bus.orderEvent("cancelled", "late", "b0", iso(clock.now())); // b0 leaves
      await bus.orderEvent("accepted", "late", "b1", iso(clock.now())); // working at a broker after all
      await settled(engine);
      const live = engine.status().state_digest;
      const b2 = await bus.check(ord("b2"));
      expect(b2.rejection_code).toBe("MAX_POSITION_EXCEEDED");
      await settled(engine);
      const rebuilt = await rebuildInto(clock, flags);
      expect(rebuilt.digest).toBe(engine.status().state_digest);
      expect(live).not.toBe("");
    } finally {
      await engine.close();
    }
  }, 60_000);
});
