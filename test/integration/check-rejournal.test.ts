/**
 * An approval whose journal write was stored but never acknowledged (every attempt timed out: a
 * leader change in a cluster). The OMS is told STATE_NOT_READY and the check service publishes the
 * record again until it is durable. If the follower read the stored copy back meanwhile, the record
 * is durable already: a second write would put the same decision on the journal twice (seen once
 * in the 3-node cluster test as one decision id at two sequences), since the duplicate window may
 * have lapsed or the new leader may not know the id, and the follower having applied the first
 * copy makes the re-publish's condition hold. Real nats-server, real follower (an ordered consumer
 * handing each message to the journal's read-back as the engine's follower does); the only fault
 * injected is the lost acknowledgement.
 */
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JsPublisher, JsPublishError, createJsPublisher } from "../../src/bus/js-publisher.js";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import { DETERMINISTIC_GATES, createPipeline } from "../../src/gates/index.js";
import { silentLogger } from "../../src/obs/log.js";
import { createCheckService } from "../../src/service/check.js";
import { createDecider } from "../../src/service/decide.js";
import { createFundJournal } from "../../src/service/fund-journal.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats } from "../support/nats.js";
import { FUND, Feed, NOW, NOW_ISO, rawOrder } from "../unit/fixtures.js";

const WINDOW_MS = 200;
const te = new TextEncoder();
const td = new TextDecoder();

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

describe("check service: an approval stored whose acknowledgement was lost", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: "RISK_DECISIONS",
      subjects: ["mts.v1.risk.decision.>"],
      duplicate_window: WINDOW_MS * 1_000_000,
    });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("is not journaled a second time once read back, and the OMS's retry gets that very approval", async () => {
    const feed = new Feed();
    feed.envelope();
    const state = feed.state;
    let n = 0;
    const decider = createDecider({
      state,
      pipeline: createPipeline(DETERMINISTIC_GATES),
      clock: manualClock(NOW),
      instance: "t",
      ready: () => true,
      nextId: () => `dec-${++n}`,
    });

    // The first decision's writes: the first is stored, and its acknowledgement is reported lost
    // once the follower has read it back and the duplicate window has lapsed; the retries of that
    // attempt time out (the leader is gone). Every later write goes through.
    const real = createJsPublisher(nc, { timeoutMs: 2000 });
    let lost = 0;
    const publisher: JsPublisher = {
      inFlight: () => real.inFlight(),
      close: () => real.close(),
      async publish(subject, data, msgId, opts) {
        if (msgId !== "dec-1" || lost >= 4) return real.publish(subject, data, msgId, opts);
        lost++;
        if (lost === 1) {
          const ack = await real.publish(subject, data, msgId, opts);
          await until(
            "the follower to read the stored copy",
            () => (state.decisionSeq.get(FUND) ?? 0) >= ack.seq,
          );
          await delay(WINDOW_MS * 2);
        }
        throw new JsPublishError("JOURNAL_TIMEOUT", "acknowledgement lost (injected)");
      },
    };
    const journal = createFundJournal({ publisher, state });

    // the follower: each journal message handed to the read-back, as the engine's follower does
    const consumer = await jetstream(nc).consumers.get("RISK_DECISIONS");
    const messages = await consumer.consume();
    void (async () => {
      for await (const m of messages) {
        const r = journal.own.recognise("RISK_DECISIONS", m.subject, m.seq, m.data);
        if (!r) throw new Error(`message ${m.seq} not recognised`);
      }
    })();

    const service = createCheckService({
      nc,
      decider,
      state,
      log: silentLogger,
      journal,
      clock: () => NOW_ISO,
    });
    service.listen();
    const check = async (order: unknown): Promise<unknown> =>
      JSON.parse(
        td.decode(
          (await nc.request(Subjects.check, te.encode(JSON.stringify(order)), { timeout: 10_000 })).data,
        ),
      ) as unknown;
    try {
      const order = rawOrder();
      const first = await check(order);
      expect(first).toMatchObject({ approved: false, rejection_code: "STATE_NOT_READY" });
      expect(lost).toBe(4); // the first attempt and its three retries

      // the OMS retries the same order: answered with the approval once it is durable
      const again = await check(order);
      expect(again).toMatchObject({
        approved: true,
        order_id: order["order_id"],
        details: { replayed: "true" },
      });

      // the approval is on the journal once (a second copy would have been acknowledged before the
      // retry's answer, which waits for the approval to be durable); the replay's own record aside
      const stored: string[] = [];
      const info = await jsm.streams.info("RISK_DECISIONS");
      for (let seq = 1; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage("RISK_DECISIONS", { seq });
        const body = JSON.parse(td.decode(m!.data)) as unknown;
        for (const r of (Array.isArray(body) ? body : [body]) as {
          decision_id: string;
          replayed?: boolean;
        }[])
          if (!r.replayed) stored.push(r.decision_id);
      }
      expect(stored).toEqual(["dec-1"]);
    } finally {
      await service.stop();
      messages.stop();
      real.close();
    }
  }, 30_000);
});
