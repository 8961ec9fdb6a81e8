/**
 * Red team (idempotency after a long journal outage): CONTRACT.md "Gates and rejection codes":
 * "`NO_ENVELOPE`, `STATE_NOT_READY` are transient: a retry is evaluated afresh", and
 * "`DUPLICATE_ORDER_ID`: an `order_id` already decided for this fund under another key".
 *
 * An approval whose journal write fails is answered STATE_NOT_READY (README: never an unjournaled
 * approval); the engine re-publishes it for 60 s (src/service/check.ts, JOURNAL_RETRY_MS) and then
 * drops its idempotency record. The OMS's retry of that order, under the very same key, once the
 * journal is back, must then be evaluated afresh: the order was never decided (nothing durable, the
 * OMS was told "not ready"). It must not be refused as DUPLICATE_ORDER_ID, which would tell the OMS
 * the order id is burnt for ever.
 */
import { DiscardPolicy, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rebuild } from "../../src/engine/index.js";
import { silentLogger } from "../../src/obs/log.js";
import { systemClock } from "../../src/time/clock.js";
import { Bus, applied, envelope, order, settled, startTestEngine, testConfig } from "../support/engine.js";

describe("red team: a journal outage longer than the engine's re-publish window", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  let jsm: JetStreamManager;
  let o: Record<string, unknown> = {};

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    jsm = await jetstreamManager(nc);
    engine = await startTestEngine(server.url);
    const s = await bus.envelope(envelope("alpha"));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
  }, 30_000);
  afterAll(async () => {
    await engine?.close();
    await nc?.close();
    await server?.stop();
  });

  it("the OMS's retry of an order answered STATE_NOT_READY is decided afresh, not DUPLICATE_ORDER_ID", async () => {
    expect((await bus.check(order())).approved).toBe(true);
    const info = await jsm.streams.info("RISK_DECISIONS");
    const cfg = info.config;
    // the journal refuses every write (full, discard new)
    await jsm.streams.update("RISK_DECISIONS", {
      ...cfg,
      max_msgs: Math.max(1, info.state.messages),
      discard: DiscardPolicy.New,
    });
    o = order();
    const first = await bus.check(o);
    expect(first.rejection_code).toBe("STATE_NOT_READY");
    // the engine gives up re-publishing it (60 s) and forgets its idempotency record
    await waitFor(() => !engine.observe.decided("alpha", String(o.idempotency_key)), {
      timeoutMs: 90_000,
      intervalMs: 250,
      message: "the engine dropped the unjournaled approval's record",
    });
    // the journal is back
    await jsm.streams.update("RISK_DECISIONS", { ...cfg });
    const retry = await bus.check(o);
    // Expected: approved (evaluated afresh; a fresh order would be). Before stop 29: the
    // reservation the dropped approval left behind makes its id "already in use".
    expect({ code: retry.rejection_code, reason: retry.reason }, JSON.stringify(retry)).toEqual({
      code: "",
      reason: "approved",
    });
  }, 120_000);

  it("live and rebuilt states agree (CONTRACT: the same streams give the same digest, live or rebuilt)", async () => {
    // The dropped approval was never journaled: before stop 29 the live engine still reserved for
    // it (check.ts forget(): "the reservation stays (conservative)") until reservations.ttl_s (a
    // day), which a rebuild from the streams did not: the digests differed, and a restart (or a
    // takeover engine) would free headroom the live engine held. Expected: equal digests.
    expect(o["order_id"]).toBeDefined();
    await settled(engine);
    const live = engine.status().state_digest;
    const reserved = engine.observe.reserved("alpha", String(o["order_id"]));
    const dir = mkdtempSync(join(tmpdir(), "mts-rt-jo-"));
    const r = await rebuild({
      config: testConfig(server.url, {}, dir),
      out: join(dir, "snapshot.sqlite"),
      clock: systemClock,
      log: silentLogger,
    });
    // the dropped approval's reservation was undone; what the order reserves now is its retry's
    // approval (the test above), journaled, so the rebuild holds it too
    expect(
      { digest: r.state_digest, reserved },
      JSON.stringify({ rebuilt: r.state_digest, live, reserved }),
    ).toEqual({
      digest: live,
      reserved: "100",
    });
  }, 60_000);

  it("an outage shorter than the re-publish window: the retry gets that very approval once durable", async () => {
    expect((await bus.check(order())).approved).toBe(true);
    await settled(engine);
    const info = await jsm.streams.info("RISK_DECISIONS");
    const cfg = info.config;
    await jsm.streams.update("RISK_DECISIONS", {
      ...cfg,
      max_msgs: Math.max(1, info.state.messages),
      discard: DiscardPolicy.New,
    });
    const p = order();
    try {
      expect((await bus.check(p)).rejection_code).toBe("STATE_NOT_READY");
      // a retry meanwhile is not told anything not durable
      expect((await bus.check(p)).rejection_code).toBe("STATE_NOT_READY");
    } finally {
      await jsm.streams.update("RISK_DECISIONS", { ...cfg });
    }
    const d = await waitFor(
      async () => {
        const r = await bus.check(p);
        return r.rejection_code === "STATE_NOT_READY" ? undefined : r;
      },
      { timeoutMs: 30_000, intervalMs: 200, message: "the retry answered once the journal is back" },
    );
    expect({ code: d!.rejection_code, replayed: d!.details["replayed"] }).toEqual({
      code: "",
      replayed: "true",
    });
  }, 60_000);
});
