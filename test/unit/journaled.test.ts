/**
 * The engine's own decision records read back from RISK_DECISIONS: when the bytes are exactly the
 * ones it journaled (state.journaled), they confirm the record in memory without a re-parse. The
 * outcome must be the one the parsing path gives.
 */
import { describe, expect, it } from "vitest";
import { Subjects } from "../../src/contract/subjects.js";
import { toWire } from "../../src/contract/wire.js";
import { DETERMINISTIC_GATES, createPipeline } from "../../src/gates/index.js";
import { createDecider } from "../../src/service/decide.js";
import { type EngineState, project, stateDigest } from "../../src/state/index.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW, rawOrder } from "./fixtures.js";

const te = new TextEncoder();

/** A live engine's state after deciding `n` orders; returns the journal texts in order. */
function live(n: number, register: boolean): { state: EngineState; texts: string[] } {
  const feed = new Feed().envelope({}).quote("AAPL", "99.99", "100.01");
  const clock = manualClock(NOW);
  let id = 0;
  const decider = createDecider({
    state: feed.state,
    pipeline: createPipeline(DETERMINISTIC_GATES),
    clock,
    instance: "t",
    ready: () => true,
    nextId: () => `d-${++id}`,
  });
  const texts: string[] = [];
  for (let i = 0; i < n; i++) {
    clock.advance(10);
    // every third order is rejected (over max_order_qty), the rest approved
    const ids = { order_id: `o-${i}`, idempotency_key: `k-${i}` };
    const e = decider.decide({ raw: rawOrder(i % 3 === 2 ? { ...ids, quantity: "100000000" } : ids) });
    if (e instanceof Promise) throw new Error("sync gates expected");
    const text = JSON.stringify(toWire(e.record));
    if (register) feed.state.journaled.set(text, e.record);
    texts.push(text);
  }
  return { state: feed.state, texts };
}

function readBack(state: EngineState, texts: string[], fund = FUND): void {
  texts.forEach((t, i) => {
    expect(project(state, "RISK_DECISIONS", Subjects.decision(fund), te.encode(t), i + 1)).toMatchObject({
      ok: true,
    });
  });
}

describe("read-back of the engine's own decision records", () => {
  it("given journaled records, when read back byte for byte, then the state is the parsing path's and the map is emptied", () => {
    const fast = live(12, true);
    const slow = live(12, false);
    expect(fast.texts).toEqual(slow.texts);
    readBack(fast.state, fast.texts);
    readBack(slow.state, slow.texts);
    expect(fast.state.journaled.size).toBe(0);
    expect(stateDigest(fast.state)).toBe(stateDigest(slow.state));
    // confirmed: every idempotency record and reservation of the fund is no longer "live only"
    for (const r of fast.state.idem.values()) expect(r.confirmed).toBe(true);
    const unread = live(12, false).state; // without the read-back, they are still live only
    expect([...unread.idem.values()].some((r) => !r.confirmed)).toBe(true);
  });

  it("given a record with other bytes or on another fund's subject, when read back, then it is parsed, not trusted", () => {
    const { state, texts } = live(2, true);
    const other = texts[0]!.replace('"approved":true', '"approved":false');
    expect(project(state, "RISK_DECISIONS", Subjects.decision(FUND), te.encode(other), 1)).toMatchObject({
      ok: true,
    });
    expect(state.journaled.size).toBe(2); // not matched: both entries still wait
    const wrongSubject = project(state, "RISK_DECISIONS", Subjects.decision("other"), te.encode(texts[1]), 2);
    expect(wrongSubject).toMatchObject({ ok: false }); // parsed: the body names another fund
    expect(state.journaled.size).toBe(2);
  });
});
