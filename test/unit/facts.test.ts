/**
 * The engine's own decision records (facts/decisions.ts): applied live as pending, confirmed on the
 * journal's acknowledgement, recognised on read-back (by the acknowledged sequence, or byte for
 * byte before the acknowledgement) and folded by the projector on a replay. Whatever the path, the
 * state is the parsing path's.
 */
import { describe, expect, it } from "vitest";
import { Subjects } from "../../src/contract/subjects.js";
import { toWire } from "../../src/contract/wire.js";
import type { DecisionRecord } from "../../src/contract/records.js";
import { type ReadBack, createOwnDecisions } from "../../src/facts/decisions.js";
import { DETERMINISTIC_GATES, createPipeline } from "../../src/gates/index.js";
import { createDecider } from "../../src/service/decide.js";
import { type EngineState, project, stateDigest } from "../../src/state/index.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW, rawOrder } from "./fixtures.js";

const te = new TextEncoder();

/** A live engine's state after deciding `n` orders (applied as pending); the journal texts in order. */
function live(n: number): { state: EngineState; texts: string[]; records: DecisionRecord[] } {
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
  const records: DecisionRecord[] = [];
  for (let i = 0; i < n; i++) {
    clock.advance(10);
    // every third order is rejected (over max_order_qty), the rest approved
    const ids = { order_id: `o-${i}`, idempotency_key: `k-${i}` };
    const e = decider.decide({ raw: rawOrder(i % 3 === 2 ? { ...ids, quantity: "100000000" } : ids) });
    if (e instanceof Promise) throw new Error("sync gates expected");
    texts.push(JSON.stringify(toWire(e.record)));
    records.push(e.record);
  }
  return { state: feed.state, texts, records };
}

/** The follower's fold: own facts first, else the projector (sequences start after the feed's). */
function follow(state: EngineState, own: ReturnType<typeof createOwnDecisions> | undefined, texts: string[]) {
  const base = state.cursors.get("RISK_DECISIONS") ?? 0;
  texts.forEach((t, i) => {
    const data = te.encode(t);
    const seq = base + i + 1;
    const subject = Subjects.decision(FUND);
    const r =
      own?.recognise("RISK_DECISIONS", subject, seq, data) ??
      project(state, "RISK_DECISIONS", subject, data, seq);
    expect(r).toMatchObject({ ok: true });
  });
}

const unconfirmed = (s: EngineState) =>
  [...s.idem.values()].filter((r) => !r.confirmed).length +
  [...s.orders.values()].reduce((n, o) => n + o.unconfirmed.size, 0);

describe("the engine's own decisions: pending → acknowledged → recognised", () => {
  it("given records applied live, before any acknowledgement, then they are pending (a snapshot would drop them)", () => {
    const { state } = live(6);
    expect(unconfirmed(state)).toBeGreaterThan(0);
  });

  for (const mode of ["skip", "apply"] as ReadBack[]) {
    it(`given acknowledged records, when read back (readBack=${mode}), then they were confirmed on the ack and the state is the parsing path's`, () => {
      const fast = live(12);
      const slow = live(12);
      expect(fast.texts).toEqual(slow.texts);
      const own = createOwnDecisions({ state: fast.state, readBack: mode });
      const base = fast.state.cursors.get("RISK_DECISIONS") ?? 0;
      fast.texts.forEach((t, i) => own.pending(t, fast.records[i]!));
      fast.texts.forEach((t, i) => own.acked(t, base + i + 1));
      // confirmed on the acknowledgement, before the follower has read anything back
      expect(unconfirmed(fast.state)).toBe(0);
      expect(own.size()).toEqual({ pending: 12, acked: mode === "skip" ? 12 : 0 });
      follow(fast.state, own, fast.texts);
      follow(slow.state, undefined, slow.texts);
      expect(own.size()).toEqual({ pending: 0, acked: 0 });
      expect(fast.state.cursors.get("RISK_DECISIONS")).toBe(slow.state.cursors.get("RISK_DECISIONS"));
      expect(fast.state.decisionSeq.get(FUND)).toBe(slow.state.decisionSeq.get(FUND));
      expect(stateDigest(fast.state)).toBe(stateDigest(slow.state));
    });
  }

  it("given records read back before their acknowledgement, then they are recognised byte for byte and the late ack changes nothing", () => {
    const fast = live(9);
    const slow = live(9);
    const own = createOwnDecisions({ state: fast.state });
    const base = fast.state.cursors.get("RISK_DECISIONS") ?? 0;
    fast.texts.forEach((t, i) => own.pending(t, fast.records[i]!));
    follow(fast.state, own, fast.texts);
    follow(slow.state, undefined, slow.texts);
    expect(unconfirmed(fast.state)).toBe(0); // the read-back confirmed them
    fast.texts.forEach((t, i) => own.acked(t, base + i + 1));
    expect(own.size()).toEqual({ pending: 0, acked: 0 });
    expect(stateDigest(fast.state)).toBe(stateDigest(slow.state));
  });

  it("given a group-commit batch, when acknowledged and read back, then every record of it is confirmed once", () => {
    const fast = live(5);
    const slow = live(5);
    const body = `[${fast.texts.join(",")}]`;
    const own = createOwnDecisions({ state: fast.state });
    own.pending(body, fast.records);
    const seq = (fast.state.cursors.get("RISK_DECISIONS") ?? 0) + 1;
    own.acked(body, seq);
    expect(unconfirmed(fast.state)).toBe(0);
    follow(fast.state, own, [body]);
    follow(slow.state, undefined, [`[${slow.texts.join(",")}]`]);
    expect(stateDigest(fast.state)).toBe(stateDigest(slow.state));
  });

  it("given a record with other bytes, on another fund's subject or at a sequence it was not acknowledged for, then it is not trusted", () => {
    const { state, texts, records } = live(3);
    const own = createOwnDecisions({ state });
    texts.forEach((t, i) => own.pending(t, records[i]!));
    const base = state.cursors.get("RISK_DECISIONS") ?? 0;
    const other = texts[0]!.replace('"approved":true', '"approved":false');
    expect(
      own.recognise("RISK_DECISIONS", Subjects.decision(FUND), base + 1, te.encode(other)),
    ).toBeUndefined();
    expect(
      own.recognise("RISK_DECISIONS", Subjects.decision("other"), base + 1, te.encode(texts[1])),
    ).toBeUndefined();
    expect(own.recognise("FILLS", Subjects.decision(FUND), base + 1, te.encode(texts[1]))).toBeUndefined();
    expect(own.size().pending).toBe(3); // none matched: every entry still waits
    // acknowledged at base+2: another message at base+1 is not its own
    own.acked(texts[2]!, base + 2);
    expect(
      own.recognise("RISK_DECISIONS", Subjects.decision(FUND), base + 1, te.encode(other)),
    ).toBeUndefined();
  });

  it("given a replay into a fresh state (a restart, another engine taking over), then the projector folds the records to the same state", () => {
    const owner = live(12);
    const own = createOwnDecisions({ state: owner.state });
    const base = owner.state.cursors.get("RISK_DECISIONS") ?? 0;
    owner.texts.forEach((t, i) => own.pending(t, owner.records[i]!));
    owner.texts.forEach((t, i) => own.acked(t, base + i + 1));
    follow(owner.state, own, owner.texts);
    // the follower state: the same feed, without deciding anything, folds the journal
    const follower = new Feed().envelope({}).quote("AAPL", "99.99", "100.01").state;
    follow(follower, undefined, owner.texts);
    expect(stateDigest(follower)).toBe(stateDigest(owner.state));
    // the same records folded again (at later sequences) change nothing: the projections are idempotent
    follow(follower, undefined, owner.texts);
    expect(stateDigest(follower)).toBe(stateDigest(owner.state));
  });

  it("given acknowledged sequences the follower passed without delivering (a purge), then they are forgotten once many wait", () => {
    const state = new Feed().state;
    const own = createOwnDecisions({ state });
    const rec = (i: number) => ({ fund_id: "_", decision_id: `x-${i}` }) as unknown as DecisionRecord;
    for (let i = 1; i <= 10_000; i++) {
      own.pending(`t-${i}`, rec(i));
      own.acked(`t-${i}`, i);
    }
    expect(own.size()).toEqual({ pending: 10_000, acked: 10_000 });
    state.cursors.set("RISK_DECISIONS", 20_000); // the stream's messages up to here were purged
    own.pending("t-next", rec(0));
    own.acked("t-next", 20_001);
    expect(own.size()).toEqual({ pending: 1, acked: 1 });
  });
});
