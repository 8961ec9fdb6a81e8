/**
 * The duplicate index folded in any stream order (a fresh engine catching up reads its streams
 * concurrently): a decision read before its fund's envelope, or under an older, narrower version
 * than the one it was decided under, keeps its duplicate key as long as its own window says (each
 * record carries it: `dup_window_ms`), so the catching-up engine refuses the duplicate as the
 * deciding one does.
 */
import { describe, expect, it } from "vitest";
import { Subjects } from "../../src/contract/subjects.js";
import { toWire } from "../../src/contract/wire.js";
import type { DecisionRecord } from "../../src/contract/records.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW, rawOrder, testDecider } from "./fixtures.js";

describe("duplicate keys folded out of order", () => {
  /** The deciding engine: v1 (window 1 s), then v2 (60 s); two different orders decided under v2. */
  function decided() {
    const feed = new Feed();
    const clock = manualClock(NOW);
    feed.quote("AAPL", "99.99", "100.01");
    feed.envelope({ version: 1, duplicate_window_ms: 1000 });
    feed.envelope({ version: 2, duplicate_window_ms: 60_000 });
    const decider = testDecider(feed, clock);
    const records: DecisionRecord[] = [];
    for (const [i, qty] of [
      [0, "10"],
      [1, "11"],
    ] as const) {
      clock.advance(5000); // 5 s apart: the first key is older than v1's window when the second comes
      const e = decider.decide({
        raw: rawOrder({ order_id: `o${i}`, idempotency_key: `k${i}`, quantity: qty, limit_price: "100" }),
      });
      if (e instanceof Promise) throw new Error("sync");
      records.push(e.record);
    }
    return { records, clock };
  }

  it("the records carry the window they were decided under", () => {
    const { records } = decided();
    expect(records.map((r) => [r.dup_key !== undefined, r.dup_window_ms])).toEqual([
      [true, 60_000],
      [true, 60_000],
    ]);
  });

  for (const order of ["decisions, then envelopes", "v1, decisions, v2"] as const) {
    it(`${order}: the first order's duplicate is still refused 20 s later`, () => {
      const { records, clock } = decided();
      const feed = new Feed();
      feed.quote("AAPL", "99.99", "100.01");
      const decisions = () =>
        records.forEach((r) => feed.publish("RISK_DECISIONS", Subjects.decision(FUND), toWire(r)));
      if (order === "v1, decisions, v2") {
        feed.envelope({ version: 1, duplicate_window_ms: 1000 });
        decisions();
        feed.envelope({ version: 2, duplicate_window_ms: 60_000 });
      } else {
        decisions();
        feed.envelope({ version: 1, duplicate_window_ms: 1000 });
        feed.envelope({ version: 2, duplicate_window_ms: 60_000 });
      }
      clock.advance(10_000); // 20 s after the first order, 15 s after the second
      const decide = testDecider(feed, clock);
      const again = decide.decide({
        raw: rawOrder({ order_id: "o9", idempotency_key: "k9", quantity: "10", limit_price: "100" }),
      });
      if (again instanceof Promise) throw new Error("sync");
      expect(again.decision.rejection_code).toBe("DUPLICATE_ORDER");
    });
  }
});
