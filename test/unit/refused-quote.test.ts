/**
 * A newer quote the engine refuses (crossed, no price) supersedes the mark in force: the mark keeps
 * valuing positions, but is not fresh for an order or a stop until the next valid quote; the same
 * in a rebuild (the projector) and after a restart (the snapshot keeps it).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freshMark } from "../../src/gates/context.js";
import { createState, openSnapshot, project, type EngineState } from "../../src/state/index.js";

const T0 = Date.parse("2026-11-21T14:30:00Z");
const te = new TextEncoder();
const LIMITS = { max_quote_age_ms: 5000 };
let seq = 0;

function quote(state: EngineState, bid: string, ask: string, ts: number | string, storedMs = T0 + 10_000) {
  const timestamp = typeof ts === "number" ? new Date(ts).toISOString() : ts;
  const body = te.encode(JSON.stringify({ symbol: "X", bid, ask, timestamp }));
  return project(state, "QUOTES", "mts.v1.quote.X", body, ++seq, storedMs);
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("a refused quote supersedes the mark", () => {
  it("given a newer crossed quote, then the mark is not fresh until the next valid quote", () => {
    const s = createState();
    expect(quote(s, "99", "101", T0).ok).toBe(true);
    expect(freshMark(s, "X", LIMITS, T0 + 1000)?.mid.toFixed()).toBe("100");
    expect(quote(s, "51", "49", T0 + 1000).ok).toBe(false);
    expect(freshMark(s, "X", LIMITS, T0 + 1000)).toBeUndefined();
    expect(s.marks.get("X")?.mid.toFixed()).toBe("100"); // still values positions
    expect(s.marks.get("X")?.refused).toMatch(/crossed/);
    // an older valid quote does not make it sound again; a newer one does
    expect(quote(s, "98", "100", T0 + 500).ok).toBe(true);
    expect(freshMark(s, "X", LIMITS, T0 + 1000)).toBeUndefined();
    expect(quote(s, "49", "51", T0 + 2000).ok).toBe(true);
    expect(freshMark(s, "X", LIMITS, T0 + 2000)?.mid.toFixed()).toBe("50");
  });

  it("given a refused quote older than the mark, then the mark stays fresh; one with no timestamp counts at the stream's time", () => {
    const s = createState();
    quote(s, "99", "101", T0 + 1000);
    expect(quote(s, "51", "49", T0).ok).toBe(false);
    expect(freshMark(s, "X", LIMITS, T0 + 1000)?.mid.toFixed()).toBe("100");
    expect(quote(s, "0", "0", "not a time", T0 + 1000).ok).toBe(false);
    expect(freshMark(s, "X", LIMITS, T0 + 1000)).toBeUndefined();
  });

  it("given a flush and a load, then the superseded mark is still not fresh", async () => {
    const dir = mkdtempSync(join(tmpdir(), "refused-quote-"));
    dirs.push(dir);
    const path = join(dir, "snapshot.sqlite");
    const s = createState();
    quote(s, "99", "101", T0);
    quote(s, "51", "49", T0 + 1000);
    const snap = openSnapshot(path);
    try {
      await snap.flushInBackground(s);
      const loaded = snap.load();
      expect(loaded.marks.get("X")?.mid.toFixed()).toBe("100");
      expect(freshMark(loaded, "X", LIMITS, T0 + 1000)).toBeUndefined();
    } finally {
      snap.close();
    }
  });
});

describe("a refused quote of a symbol with no mark yet", () => {
  it("given a crossed quote and then an older valid one, then the mark values positions but is not fresh", () => {
    const s = createState();
    expect(quote(s, "51", "49", T0 + 1000).ok).toBe(false);
    expect(s.marks.get("X")).toBeUndefined();
    expect(quote(s, "99", "101", T0).ok).toBe(true);
    expect(s.marks.get("X")?.mid.toFixed()).toBe("100");
    expect(freshMark(s, "X", LIMITS, T0 + 1000)).toBeUndefined();
    // the next valid quote newer than the refused one makes it fresh
    expect(quote(s, "49", "51", T0 + 1500).ok).toBe(true);
    expect(freshMark(s, "X", LIMITS, T0 + 1500)?.mid.toFixed()).toBe("50");
  });

  it("given a valid quote newer than the refused one, then it is fresh at once", () => {
    const s = createState();
    quote(s, "51", "49", T0);
    expect(quote(s, "99", "101", T0 + 1000).ok).toBe(true);
    expect(freshMark(s, "X", LIMITS, T0 + 1000)?.mid.toFixed()).toBe("100");
  });

  it("given a flush and a load between the refusal and the older quote, then the same", async () => {
    const dir = mkdtempSync(join(tmpdir(), "refused-quote-"));
    dirs.push(dir);
    const s = createState();
    quote(s, "51", "49", T0 + 1000);
    const snap = openSnapshot(join(dir, "snapshot.sqlite"));
    try {
      await snap.flushInBackground(s);
      const loaded = snap.load();
      expect(loaded.marks.get("X")).toBeUndefined();
      expect(quote(loaded, "99", "101", T0).ok).toBe(true);
      expect(freshMark(loaded, "X", LIMITS, T0 + 1000)).toBeUndefined();
    } finally {
      snap.close();
    }
  });
});
