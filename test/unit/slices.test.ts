/**
 * The slice queue (src/ingest/slices.ts) the follower folds live quotes with: in order, never in
 * the pushing turn, a bounded slice a turn so other work runs between slices, everything at once
 * past its bound, nothing after clear().
 */
import { describe, expect, it } from "vitest";
import { createSliceQueue } from "../../src/ingest/slices.js";

/** A manual check phase: `turn()` runs what was scheduled before it. */
function phases() {
  let due: (() => void)[] = [];
  let turns = 0;
  return {
    schedule: (f: () => void) => void due.push(f),
    turn() {
      const now = due;
      due = [];
      turns++;
      for (const f of now) f();
      return now.length;
    },
    get pending() {
      return due.length;
    },
    get turns() {
      return turns;
    },
  };
}

describe("slice queue", () => {
  it("given items pushed, then none is applied in the pushing turn and all are applied in order, a bounded slice a turn", () => {
    const p = phases();
    let clock = 0;
    const applied: [number, number][] = []; // item, turn
    const q = createSliceQueue<number>({
      apply: (i) => {
        clock += 0.3; // each item takes 0.3 ms of the injected clock
        applied.push([i, p.turns]);
      },
      sliceMs: 1,
      maxWaiting: 1_000,
      schedule: p.schedule,
      now: () => clock,
    });
    for (let i = 0; i < 40; i++) q.push(i);
    expect(applied).toEqual([]);
    expect(q.active).toBe(true);
    expect(q.waiting).toBe(40);
    while (p.pending > 0) p.turn();
    expect(applied.map(([i]) => i)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    // the clock is read every 4 items: a slice stops once 1 ms has passed, i.e. after 4 items
    const perTurn = new Map<number, number>();
    for (const [, t] of applied) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
    expect([...perTurn.values()]).toEqual(Array(10).fill(4));
    expect(q.active).toBe(false);
    expect(q.waiting).toBe(0);
  });

  it("given a push during a slice, then it is applied after the items before it", () => {
    const p = phases();
    const applied: number[] = [];
    const q = createSliceQueue<number>({
      apply: (i) => {
        applied.push(i);
        if (i === 1) q.push(100); // arrives while the queue is being folded
      },
      sliceMs: 1_000,
      maxWaiting: 1_000,
      schedule: p.schedule,
      now: () => 0,
    });
    for (let i = 0; i < 5; i++) q.push(i);
    while (p.pending > 0) p.turn();
    expect(applied).toEqual([0, 1, 2, 3, 4, 100]);
  });

  it("given more than its bound waiting, then the push applies everything at once (backpressure)", () => {
    const p = phases();
    const applied: number[] = [];
    const q = createSliceQueue<number>({
      apply: (i) => applied.push(i),
      sliceMs: 1,
      maxWaiting: 8,
      schedule: p.schedule,
      now: () => 0,
    });
    for (let i = 0; i < 7; i++) q.push(i);
    expect(applied).toEqual([]);
    q.push(7);
    expect(applied).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(q.waiting).toBe(0);
    p.turn(); // the slice scheduled earlier finds nothing left
    expect(q.active).toBe(false);
    q.push(8);
    expect(applied).toHaveLength(8);
    p.turn();
    expect(applied).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("given clear(), then nothing waiting is applied; and an apply that throws loses only its item", () => {
    const p = phases();
    const applied: number[] = [];
    const q = createSliceQueue<number>({
      apply: (i) => {
        if (i === 2) throw new Error("boom");
        applied.push(i);
      },
      sliceMs: 1_000,
      maxWaiting: 100,
      schedule: p.schedule,
      now: () => 0,
    });
    for (let i = 0; i < 3; i++) q.push(i);
    q.clear();
    p.turn();
    expect(applied).toEqual([]);
    expect(q.active).toBe(false);
    for (let i = 0; i < 5; i++) q.push(i);
    expect(() => p.turn()).toThrow("boom");
    while (p.pending > 0) p.turn();
    expect(applied).toEqual([0, 1, 3, 4]);
  });

  it("given the default scheduler, then the items are applied in later turns of the event loop", async () => {
    const applied: number[] = [];
    const q = createSliceQueue<number>({ apply: (i) => applied.push(i), sliceMs: 1, maxWaiting: 100 });
    q.push(1);
    q.push(2);
    expect(applied).toEqual([]);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(applied).toEqual([1, 2]);
  });
});
