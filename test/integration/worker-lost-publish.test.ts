/**
 * A worker's publish to OMS_INTENTS that fails once (the stream unavailable for a moment: a leader
 * change, here the stream deleted and created again as it was) is sent again, never dropped:
 *  - a synthetic stop's closing order: else the stop stays triggered for ever (no re-arm while a
 *    closing order "works") and the position is left with no stop, even across a restart;
 *  - a kill-switch press's cancel_all: else the OMS is never asked to cancel for that press.
 * Found by a red-team pass; real nats-server, the engine's own timers stepped.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager, type StreamConfig } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, Feeder, NOW, envelope, readStream, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

/** The first attempt fails only at its acknowledgement's timeout (a few seconds). */
const LONG = { timeoutMs: 30_000 };

describe("a worker's publish to OMS_INTENTS that failed", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock(NOW);
  let timers = steppableTimers();
  const stateDir = mkdtempSync(join(tmpdir(), "mts-lost-publish-"));
  let feed: Feeder;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, { clock, timers, stateDir });
    feed = new Feeder(bus, () => engine, clock);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  /**
   * OMS_INTENTS unavailable while `during` runs, then back as it was; resolves once the engine
   * has tried to publish on `subject` meanwhile (seen by a plain subscriber: no stream holds the
   * message, and no acknowledgement ever answers that attempt).
   */
  async function intentsDown(subject: string, during: () => Promise<void>): Promise<void> {
    const jsm = await jetstreamManager(nc);
    const cfg: StreamConfig = (await jsm.streams.info("OMS_INTENTS")).config;
    await jsm.streams.delete("OMS_INTENTS");
    const sub = nc.subscribe(subject, { max: 1 });
    const seen = (async () => {
      for await (const m of sub) return m;
    })();
    await during();
    await waitFor(() => Promise.race([seen, delay(50, undefined)]), { message: `no publish on ${subject}` });
    await jsm.streams.add(cfg);
  }

  it("sends a stop's closing order again once OMS_INTENTS takes publishes, the same order once", async () => {
    await feed.envelope(
      envelope("rt1", { synthetic_stop_pct: "0.10", allowed_order_types: ["MARKET", "LIMIT"] }),
    );
    await feed.fill("rt1", "AAPL", "BUY", "100", "500");
    await waitFor(() => engine.observe.stop("rt1", "AAPL")?.state === "armed");
    const submits = () => readStream(nc, "OMS_INTENTS", Subjects.orderSubmit("rt1"));
    await intentsDown(Subjects.orderSubmit("rt1"), async () => {
      await feed.quote("AAPL", "440", "441"); // through the stop at 450
      await waitFor(() => engine.observe.stop("rt1", "AAPL")?.state === "triggered");
    });
    // the bus is healthy again: the worker's tick sends the closing order again
    await waitFor(async () => {
      clock.advance(5_000);
      await timers.tick("stops");
      return (await submits()).length > 0;
    }, LONG);
    const sent = await submits();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.data).toMatchObject({
      order_id: "stop-rt1-AAPL-1",
      idempotency_key: "stop:rt1:AAPL:1",
      side: "SELL",
      quantity: "100",
      reduce_only: true,
    });
    // sent again after a restart (it cannot know it landed): the stream's duplicate window drops it
    await engine.close();
    timers = steppableTimers();
    engine = await startTestEngine(server.url, { clock, timers, stateDir });
    for (let i = 0; i < 3; i++) {
      clock.advance(5_000);
      await timers.tick("stops");
    }
    expect(await submits()).toHaveLength(1);
  }, 60_000);

  it("publishes a kill-switch press's cancel_all once OMS_INTENTS takes publishes again", async () => {
    await feed.envelope(envelope("rt2"));
    await intentsDown(Subjects.cancelAll("rt2"), async () => {
      const h = await bus.control(Subjects.halt("rt2"), {
        fund_id: "rt2",
        severity: "KILL_SWITCH",
        reason: "desk kill",
        at: new Date(clock.now()).toISOString(),
        by: "ops",
      });
      await feed.until("RISK_CONTROL", h);
    });
    await waitFor(async () => {
      clock.advance(1_000);
      await timers.tick("kill-switch");
      return (await readStream(nc, "OMS_INTENTS", Subjects.cancelAll("rt2"))).length > 0;
    }, LONG);
    expect(Object.keys(engine.observe.fund("rt2")?.halts ?? {})).toContain("KILL_SWITCH");
    for (let i = 0; i < 3; i++) {
      clock.advance(1_000);
      await timers.tick("kill-switch");
    }
    expect(await readStream(nc, "OMS_INTENTS", Subjects.cancelAll("rt2"))).toHaveLength(1);
  }, 60_000);
});
