/**
 * A decision stored twice on RISK_DECISIONS (two sequences, the same record) folds once. On a
 * clustered journal a copy can be stored at a leader change whatever the engine does: nats-server
 * 2.9.x checks `Nats-Expected-Last-Subject-Sequence` (and the message id) on the leader before
 * replication, not when the entry is applied (nats-io/nats-server#4320), so an attempt whose
 * acknowledgement was lost and its retry may both be stored. The copy must change nothing: the
 * idempotency record, the reservation, the velocity count, the duplicate index, the order id.
 */
import { describe, expect, it } from "vitest";
import { Subjects } from "../../src/contract/subjects.js";
import { stateDigest } from "../../src/state/index.js";
import { FUND, Feed, NOW } from "./fixtures.js";

function approval(i: number): Record<string, unknown> {
  return {
    decision_id: `d-${i}`,
    instance: "t",
    fund_id: FUND,
    at_ms: NOW + i,
    idempotency_key: `k-${i}`,
    fingerprint: `fp-${i}`,
    recorded: true,
    counted: true,
    notional: "1000",
    dup_key: `dup-${i % 2}`,
    replayed: false,
    reservation: {
      order_id: `o-${i}`,
      symbol: "AAPL",
      side: "BUY",
      quantity: "10",
      price: "100",
      expires_at_ms: NOW + 86_400_000,
    },
    decision: {
      order_id: `o-${i}`,
      approved: true,
      rejecting_gate: "",
      rejection_code: "",
      reason: "",
      details: {},
      envelope_id: `${FUND}@v1`,
      decided_at: new Date(NOW + i).toISOString(),
    },
  };
}

describe("a decision stored twice", () => {
  it("folds once: the state equals the journal without the copy", () => {
    const once = new Feed().envelope({ max_order_qty: "1000" }).quote("AAPL", "99.99", "100.01");
    const twice = new Feed().envelope({ max_order_qty: "1000" }).quote("AAPL", "99.99", "100.01");
    for (let i = 1; i <= 4; i++) {
      once.publish("RISK_DECISIONS", Subjects.decision(FUND), approval(i));
      twice.publish("RISK_DECISIONS", Subjects.decision(FUND), approval(i));
      if (i === 2) twice.publish("RISK_DECISIONS", Subjects.decision(FUND), approval(1)); // a later copy
    }
    twice.publish("RISK_DECISIONS", Subjects.decision(FUND), approval(4)); // and one right after
    const book = (f: Feed) => f.state.funds.get(FUND)?.books.get("AAPL");
    expect(book(twice)?.pendBuyQty.toFixed()).toBe("40");
    expect(book(once)?.pendBuyQty.toFixed()).toBe("40");
    expect(stateDigest(twice.state)).toBe(stateDigest(once.state));
    const velocity = (f: Feed) => f.state.funds.get(FUND)?.velocity.ids.length;
    expect(velocity(twice)).toBe(velocity(once));
    expect(velocity(once)).toBe(4);
  });
});
