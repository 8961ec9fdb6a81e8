/**
 * A journal write whose acknowledgement is lost (a leader change in a cluster) but which the
 * stream stored: its retry, same message id and condition, may then fail its own condition on that
 * very message (the duplicate window lapsed, or the new leader does not know the id). The write is
 * stored: the fund journal must resolve it as written at that sequence, never as a definite failure
 * (the approval would be undone and the OMS's retry approved a second time; seen once in the
 * 3-node cluster test as two approvals journaled for one key). Real nats-server; the only fault
 * injected is the lost acknowledgement of the first attempt.
 */
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JsPublisher, JsPublishError, createJsPublisher } from "../../src/bus/js-publisher.js";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { DecisionRecord } from "../../src/contract/records.js";
import { createFundJournal } from "../../src/service/fund-journal.js";
import { createState } from "../../src/state/index.js";
import { connectTest, startTestNats } from "../support/nats.js";

const WINDOW_MS = 200;

function approval(i: number): DecisionRecord {
  return {
    decision_id: `lost-ack-${i}`,
    instance: "test",
    fund_id: "la",
    at_ms: 1_800_000_000_000,
    idempotency_key: `k-${i}`,
    fingerprint: `fp-${i}`,
    recorded: true,
    counted: true,
    replayed: false,
    decision: {
      order_id: `o-${i}`,
      approved: true,
      rejecting_gate: "",
      rejection_code: "",
      reason: "",
      details: {},
      envelope_id: "la:1",
      decided_at: "2027-01-15T08:00:00.000Z",
    },
  };
}

/** The real publisher; the first publish is stored but reported as timed out, its retry sent late. */
function losingFirstAck(real: JsPublisher): JsPublisher & { calls: () => number } {
  let calls = 0;
  return {
    inFlight: () => real.inFlight(),
    close: () => real.close(),
    calls: () => calls,
    publish(...args) {
      calls++;
      if (calls === 1) {
        return real.publish(...args).then(() => {
          throw new JsPublishError("JOURNAL_TIMEOUT", "acknowledgement lost (injected)");
        });
      }
      // past the duplicate window: the server no longer knows the id, only the condition answers
      return delay(WINDOW_MS * 3).then(() => real.publish(...args));
    },
  };
}

describe("fund journal: a stored write whose acknowledgement was lost", () => {
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

  it("resolves as written at the stored sequence, once on the stream, and the next write follows it", async () => {
    const publisher = losingFirstAck(createJsPublisher(nc, { timeoutMs: 2000 }));
    const journal = createFundJournal({
      publisher,
      state: createState(),
      storedMsgId: async (seq) =>
        (await jsm.streams.getMessage("RISK_DECISIONS", { seq }))?.header.get("Nats-Msg-Id") || undefined,
    });
    const first = await journal.write(approval(1)).ack;
    expect(publisher.calls()).toBe(2); // the retry did go out, and failed its condition
    const second = await journal.write(approval(2)).ack;

    const info = await jsm.streams.info("RISK_DECISIONS");
    expect({ first: first.seq, second: second.seq, messages: info.state.messages }).toEqual({
      first: 1,
      second: 2,
      messages: 2,
    });
    const stored = await jsm.streams.getMessage("RISK_DECISIONS", { seq: 1 });
    expect(stored?.header.get("Nats-Msg-Id")).toBe("lost-ack-1");
  }, 30_000);
});
