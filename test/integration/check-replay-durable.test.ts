/**
 * A retry of an approval whose journal write is still unanswered is not told "approved" before
 * the original is durable, even once the idempotency record has left memory (flushed to the
 * snapshot, then evicted from the store's cache by other records read back): before, the wait was
 * a promise on the record object, and a record read back from disk had none, so the retry was
 * answered "approved, replayed" at once, for a decision the journal might never hold. And when the
 * write certainly failed, the record read back is forgotten too, so a later retry is decided afresh
 * instead of replaying an approval that was never journaled.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
import { createState, key2, openSnapshot } from "../../src/state/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats } from "../support/nats.js";
import { FUND, Feed, NOW, NOW_ISO, rawOrder } from "../unit/fixtures.js";

const te = new TextEncoder();
const td = new TextDecoder();

describe("check service: a retry of an approval not yet durable, its record on disk", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    await (
      await jetstreamManager(nc)
    ).streams.add({ name: "RISK_DECISIONS", subjects: ["mts.v1.risk.decision.>"] });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  /**
   * One fund, its decider (decision ids `<prefix>-<n>`, an idempotency cache of one record) and a
   * check service writing through `wrap(real publisher)`.
   */
  function rig(prefix: string, wrap: (real: JsPublisher) => JsPublisher, journalRetryMs?: number) {
    const state = createState({ idempotencyCacheSize: 1 });
    new Feed(state).envelope();
    let n = 0;
    const decider = createDecider({
      state,
      pipeline: createPipeline(DETERMINISTIC_GATES),
      clock: manualClock(NOW),
      instance: "t",
      ready: () => true,
      nextId: () => `${prefix}-${++n}`,
    });
    const real = createJsPublisher(nc, { timeoutMs: 2000 });
    const service = createCheckService({
      nc,
      decider,
      state,
      log: silentLogger,
      journal: createFundJournal({ publisher: wrap(real), state }),
      clock: () => NOW_ISO,
      journalTimeoutMs: 300,
      ...(journalRetryMs === undefined ? {} : { journalRetryMs }),
    });
    service.listen();
    const check = async (order: unknown) =>
      JSON.parse(
        td.decode(
          (await nc.request(Subjects.check, te.encode(JSON.stringify(order)), { timeout: 10_000 })).data,
        ),
      ) as { approved: boolean; rejection_code: string; details: Record<string, string> };
    const snap = openSnapshot(join(mkdtempSync(join(tmpdir(), "mts-replay-durable-")), "s.db"));
    /** k-1's record leaves memory: flushed, then pushed out of the cache by k-2's, read back anew. */
    const evict = () => {
      const before = state.idem.get(key2(FUND, "k-1"));
      expect(before).toBeDefined();
      snap.flush(state);
      const other = decider.decide({ raw: rawOrder({ order_id: "o-2", idempotency_key: "k-2" }) });
      expect(other instanceof Promise).toBe(false);
      snap.flush(state);
      expect(state.idem.get(key2(FUND, "k-2"))).toBeDefined();
      const after = state.idem.get(key2(FUND, "k-1"));
      expect(after).toBeDefined();
      expect(after).not.toBe(before);
    };
    const close = async () => {
      await service.stop();
      snap.close();
      real.close();
    };
    return { state, check, evict, close };
  }

  it("waits for the original, and replays nothing once the original certainly failed", async () => {
    // the first approval's write hangs until the test fails it (certainly not written)
    let fail: (() => void) | undefined;
    let asked = false;
    const { check, evict, close } = rig("dec", (real): JsPublisher => ({
      inFlight: () => real.inFlight(),
      close: () => real.close(),
      publish(subject, data, msgId, opts) {
        if (msgId !== "dec-1") return real.publish(subject, data, msgId, opts);
        asked = true;
        return new Promise((_ok, ko) => {
          fail = () => ko(new JsPublishError("JOURNAL_WRONG_LAST_SEQ", "another engine wrote (injected)"));
        });
      },
    }));
    try {
      const order = rawOrder({ order_id: "o-1", idempotency_key: "k-1" });
      const first = check(order);
      for (let i = 0; !asked && i < 500; i++) await delay(10);
      expect(asked).toBe(true);
      evict();

      const retrying = check(order);
      await delay(500);
      fail!();
      const retry = await retrying;
      expect((await first).rejection_code).toBe("STATE_NOT_READY");
      expect({ approved: retry.approved, code: retry.rejection_code }).toEqual({
        approved: false,
        code: "STATE_NOT_READY",
      });
      await delay(50);
      // never journaled: the OMS's next retry is decided afresh (and journaled), not a replay
      const fresh = await check(order);
      expect({ approved: fresh.approved, replayed: fresh.details["replayed"] }).toEqual({
        approved: true,
        replayed: undefined,
      });
    } finally {
      await close();
    }
  }, 30_000);
  it("forgets an approval it never journaled (every write timed out) though its record was read back from disk", async () => {
    // every write of the first approval times out; the first one only once the test says so
    let release: (() => void) | undefined;
    let attempts = 0;
    const timedOut = () => new JsPublishError("JOURNAL_TIMEOUT", "no acknowledgement (injected)");
    const { state, check, evict, close } = rig(
      "d2",
      (real): JsPublisher => ({
        inFlight: () => real.inFlight(),
        close: () => real.close(),
        publish(subject, data, msgId, opts) {
          if (msgId !== "d2-1") return real.publish(subject, data, msgId, opts);
          if (++attempts > 1) return Promise.reject(timedOut());
          return new Promise((_ok, ko) => {
            release = () => ko(timedOut());
          });
        },
      }),
      500,
    );
    try {
      const order = rawOrder({ order_id: "o-1", idempotency_key: "k-1" });
      const first = check(order);
      for (let i = 0; release === undefined && i < 500; i++) await delay(10);
      evict();
      release!();
      expect((await first).rejection_code).toBe("STATE_NOT_READY");
      // published again until the retry time is up, then dropped
      for (let i = 0; state.idem.get(key2(FUND, "k-1")) !== undefined && i < 300; i++) await delay(10);
      expect(state.idem.get(key2(FUND, "k-1"))).toBeUndefined();
      const fresh = await check(order);
      expect(fresh.details["replayed"]).toBeUndefined();
    } finally {
      await close();
    }
  }, 30_000);
});
