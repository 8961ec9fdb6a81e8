/**
 * The engine's timers (src/engine/scheduling.ts): what runs when, on the injected clock and timers;
 * the snapshot flush against a real SQLite snapshot; the staleness sample, one at a time.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import {
  type Timers,
  createFlusher,
  createSchedule,
  createStalenessSampler,
} from "../../src/engine/scheduling.js";
import type { StaleReport } from "../../src/ingest/staleness.js";
import { type SnapshotOptions, createState, openSnapshot } from "../../src/state/index.js";
import { manualClock } from "../../src/time/clock.js";

/** Timers a test drives: `advance(ms)` fires every interval due, in time order. */
function manualTimers() {
  let now = 0;
  let id = 0;
  const live = new Map<number, { every: number; next: number; fn: () => void }>();
  const timers: Timers = {
    every(ms, fn) {
      const k = ++id;
      live.set(k, { every: ms, next: now + ms, fn });
      return () => live.delete(k);
    },
  };
  const advance = (ms: number) => {
    const end = now + ms;
    for (;;) {
      const due = [...live.values()].filter((t) => t.next <= end).sort((a, b) => a.next - b.next)[0];
      if (!due) break;
      now = due.next;
      due.next += due.every;
      due.fn();
    }
    now = end;
  };
  return { timers, advance, count: () => live.size };
}

/** A pino logger whose lines the test reads. */
function captured() {
  const lines: { level: number; msg: string }[] = [];
  const log = pino(
    { level: "debug" },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
        cb();
      },
    }),
  );
  return { log, lines, errors: () => lines.filter((l) => l.level >= 50) };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("engine schedule", () => {
  it("given the timers, flushes every interval, and sweeps and samples every second at the clock's time", () => {
    const t = manualTimers();
    const clock = manualClock("2026-11-21T14:30:00Z");
    const flushes: number[] = [];
    const sweeps: number[] = [];
    let samples = 0;
    const schedule = createSchedule({
      timers: t.timers,
      clock,
      flushIntervalMs: 200,
      flush: () => flushes.push(1),
      sweep: (now) => sweeps.push(now),
      sample: () => samples++,
    });
    t.advance(999);
    expect(flushes.length).toBe(4);
    expect(sweeps).toEqual([]);
    clock.advance(5000);
    t.advance(1);
    expect(flushes.length).toBe(5);
    expect(sweeps).toEqual([Date.parse("2026-11-21T14:30:05Z")]);
    expect(samples).toBe(1);
    schedule.stop();
    schedule.stop();
    expect(t.count()).toBe(0);
    t.advance(10_000);
    expect(flushes.length).toBe(5);
    expect(samples).toBe(1);
  });
});

/** A flusher on a fresh snapshot (batched with `options.commitEveryMs`), its errors captured. */
function flusherOn(options?: SnapshotOptions) {
  const dir = mkdtempSync(join(tmpdir(), "flusher-"));
  dirs.push(dir);
  const path = join(dir, "snapshot.sqlite");
  const snapshot = openSnapshot(path, options);
  const state = createState();
  const { log, errors } = captured();
  return { path, snapshot, state, errors, flusher: createFlusher({ snapshot, state, log }) };
}

/** The FILLS cursor a snapshot reopened from `path` loads. */
function cursorOnDisk(path: string): number | undefined {
  const again = openSnapshot(path);
  try {
    return again.load().cursors.get("FILLS");
  } finally {
    again.close();
  }
}

describe("snapshot flusher", () => {
  it("when a flush is asked while a background flush is under way, it waits for it and writes everything", async () => {
    const { path, snapshot, state, errors, flusher } = flusherOn();
    state.cursors.set("FILLS", 41);
    flusher.background();
    flusher.background(); // one at a time: the second is the same flush
    state.cursors.set("FILLS", 42);
    await flusher.flush(); // a synchronous flush during a background one would throw
    expect(errors()).toEqual([]);
    snapshot.close();
    expect(cursorOnDisk(path)).toBe(42);
  });

  it("with batched commits, a flush commits what waits, waits for every capture sent and writes everything", async () => {
    // a commit at most every 60 s: without committing at once, the flush would wait that long
    const { path, snapshot, state, errors, flusher } = flusherOn({ commitEveryMs: 60_000 });
    state.cursors.set("FILLS", 41);
    await snapshot.flushInBackground(state); // a commit just made: the next batch waits a minute
    state.cursors.set("FILLS", 42);
    flusher.background(); // waits for the next batch
    flusher.background(); // nothing new: settled at once, the one before still waiting
    state.cursors.set("FILLS", 43);
    await flusher.flush();
    expect(errors()).toEqual([]);
    snapshot.close();
    expect(cursorOnDisk(path)).toBe(43);
  });

  it("with batched commits, a periodic capture is not taken while a flush waits, and the flush writes everything", async () => {
    const { path, snapshot, state, errors, flusher } = flusherOn({ commitEveryMs: 60_000 });
    state.cursors.set("FILLS", 41);
    await snapshot.flushInBackground(state); // a commit just made: the next batch waits a minute
    state.cursors.set("FILLS", 42);
    flusher.background();
    const flushing = flusher.flush(); // commits the batch holding 42, and waits for it
    state.cursors.set("FILLS", 43);
    flusher.background(); // the timer's next capture: skipped while the flush waits
    state.cursors.set("FILLS", 44);
    await flushing; // a synchronous write while a capture waited would have failed ("in progress")
    expect(errors()).toEqual([]);
    snapshot.close();
    expect(cursorOnDisk(path)).toBe(44);
  });

  it("a flush that fails is logged, not thrown", async () => {
    const { snapshot, errors, flusher } = flusherOn();
    snapshot.close();
    flusher.background();
    await flusher.flush();
    expect(errors().map((e) => e.msg)).toEqual(["snapshot flush failed", "snapshot flush failed"]);
  });
});

describe("staleness sampler", () => {
  const report = (stale: boolean): StaleReport => ({
    stale,
    lagging: stale ? [{ stream: "FILLS", cursor: 3, behind_seq: 9 }] : [],
    unmeasured_ms: 0,
  });
  function sampler(caught = true) {
    let stale = false;
    let release: (() => void) | undefined;
    let next = report(false);
    const events: string[] = [];
    const { log, errors } = captured();
    const s = createStalenessSampler({
      staleness: {
        stale: () => stale,
        sample: () =>
          new Promise<StaleReport>((resolve) => {
            release = () => {
              stale = next.stale;
              resolve(next);
            };
          }),
      },
      caught: () => caught,
      onStale: (r) => {
        events.push(`stale ${r.lagging.map((l) => l.stream).join(",")}`);
        return Promise.resolve();
      },
      onFresh: () => events.push("fresh"),
      log,
    });
    return {
      s,
      events,
      errors,
      answer: (r: StaleReport) => {
        next = r;
        release?.();
      },
    };
  }

  it("takes no sample before the engine caught up", () => {
    expect(sampler(false).s.tick()).toBeUndefined();
  });

  it("takes one sample at a time, and reports only the transitions", async () => {
    const x = sampler();
    const first = x.s.tick();
    expect(first).toBeDefined();
    expect(x.s.tick()).toBeUndefined(); // the first is still under way
    x.answer(report(true));
    await first;
    expect(x.events).toEqual(["stale FILLS"]);
    const second = x.s.tick();
    x.answer(report(true)); // still stale: no second alert
    await second;
    expect(x.events).toEqual(["stale FILLS"]);
    const third = x.s.tick();
    x.answer(report(false));
    await third;
    expect(x.events).toEqual(["stale FILLS", "fresh"]);
    expect(x.errors()).toEqual([]);
  });
});
