/**
 * The idempotency store (src/state/idem-store.ts): records on disk once the snapshot has them,
 * found by key through a compact hash index, a bounded cache, eviction after the commit, the
 * sweep, and a restart from the snapshot. The decisions must be the ones an in-memory state gives.
 */
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DETERMINISTIC_GATES, createPipeline } from "../../src/gates/index.js";
import { type Evaluation, createDecider } from "../../src/service/decide.js";
import { HashSet32, hash32 } from "../../src/state/idem-store.js";
import { IdemDigest, lineHash, recordHash } from "../../src/state/idem-digest.js";
import { revokeLive } from "../../src/state/projections/decisions.js";
import {
  type EngineState,
  createState,
  key2,
  openSnapshot,
  stateDigest,
  sweepIdempotency,
} from "../../src/state/index.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW, rawOrder } from "./fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "riskengine-unit-idem-"));
let snapN = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DAY = 86_400_000;
const CACHE = 8;

function setup(state: EngineState = createState({ idempotencyCacheSize: CACHE })) {
  const feed = new Feed(state).envelope({ max_order_qty: "10" }).quote("AAPL", "99.99", "100.01");
  const clock = manualClock(NOW);
  let n = 0;
  const decider = createDecider({
    state: feed.state,
    pipeline: createPipeline(DETERMINISTIC_GATES),
    clock,
    instance: "t",
    ready: () => true,
    nextId: () => `dec-${++n}`,
  });
  const decide = (raw: unknown): Evaluation => {
    const out = decider.decide({ raw });
    if (out instanceof Promise) throw new Error("expected a synchronous decision");
    return out;
  };
  return { feed, clock, decide };
}

const code = (e: Evaluation) => `${e.decision.rejecting_gate}/${e.decision.rejection_code}`;
const ids = (i: number) => ({ order_id: `o-${i}`, idempotency_key: `k-${i}` });
/** Every third order over max_order_qty (rejected, recorded), the rest approved. */
const nth = (i: number) => rawOrder(i % 3 === 2 ? { ...ids(i), quantity: "11" } : ids(i));

describe("HashSet32", () => {
  it("given many hashes, some twice, when added and removed, then membership counts occurrences", () => {
    const s = new HashSet32();
    for (let i = 0; i < 50_000; i++) s.add(hash32(`k${i}`));
    s.add(hash32("k7"));
    expect(s.size).toBe(50_001);
    for (let i = 0; i < 50_000; i++) expect(s.has(hash32(`k${i}`))).toBe(true);
    expect(s.has(hash32("absent"))).toBe(false);
    expect(s.remove(hash32("k7"))).toBe(true);
    expect(s.has(hash32("k7"))).toBe(true); // added twice
    expect(s.remove(hash32("k7"))).toBe(true);
    expect(s.has(hash32("k7"))).toBe(false);
    expect(s.remove(hash32("k7"))).toBe(false);
    for (let i = 0; i < 50_000; i += 2) s.remove(hash32(`k${i}`));
    for (let i = 0; i < 50_000; i++) expect(s.has(hash32(`k${i}`))).toBe(i % 2 === 1 && i !== 7);
    expect(s.bytes).toBeLessThanOrEqual(50_000 * 16); // 4 bytes a slot, at most a quarter full after growth
  });
});

describe("idempotency records on disk", () => {
  it("given records flushed to the snapshot, then memory holds at most the cache and every answer is an in-memory state's", () => {
    const N = 60;
    const disk = setup();
    const mem = setup(createState()); // never flushed: everything stays in memory
    const snap = openSnapshot(join(dir, `s-${++snapN}.db`));
    try {
      for (let i = 0; i < N; i++) {
        for (const s of [disk, mem]) {
          s.clock.advance(10);
          const e = s.decide(nth(i));
          s.feed.decision(e.record); // read back: confirmed
        }
        if (i % 10 === 9) snap.flush(disk.feed.state);
      }
      snap.flush(disk.feed.state);
      const st = disk.feed.state.idem;
      expect(st.attached).toBe(true);
      expect(st.size).toBe(N);
      expect(st.resident).toBeLessThanOrEqual(CACHE);
      expect(mem.feed.state.idem.resident).toBe(N);
      expect(stateDigest(disk.feed.state)).toBe(stateDigest(mem.feed.state));
      for (const s of [disk, mem]) s.clock.advance(1000);
      for (let i = 0; i < N; i++) {
        // same key, same order: the original decision, replayed
        const [a, b] = [disk, mem].map((s) => s.decide(nth(i)));
        expect(a!.decision).toEqual(b!.decision);
        expect(a!.decision.details["replayed"]).toBe("true");
        // same key, another order: a conflict naming the field
        const other = { ...nth(i), symbol: "MSFT" };
        const [c, d] = [disk, mem].map((s) => s.decide(other));
        expect(code(c!)).toBe("idempotency/IDEMPOTENCY_CONFLICT");
        expect(c!.decision).toEqual(d!.decision);
        // another key, the same order id: DUPLICATE_ORDER_ID
        const dup = rawOrder({ order_id: `o-${i}`, idempotency_key: `again-${i}` });
        const [e, f] = [disk, mem].map((s) => s.decide(dup));
        expect(code(e!)).toBe("idempotency/DUPLICATE_ORDER_ID");
        expect(e!.decision).toEqual(f!.decision);
        expect(st.resident).toBeLessThanOrEqual(CACHE + 2 * (i + 1)); // the new dup records are pending
      }
      expect(st.owner(key2(FUND, "o-5"))?.key).toBe("k-5");
      expect(st.owner(key2(FUND, "absent"))).toBeUndefined();
      expect(st.get(key2(FUND, "absent"))).toBeUndefined();
    } finally {
      snap.close();
    }
  });

  it("given a record confirmed after the flush captured it, then it stays in memory until written again", async () => {
    const s = setup();
    const snap = openSnapshot(join(dir, `s-${++snapN}.db`));
    try {
      const e = s.decide(nth(0)); // applied live: unconfirmed
      const k = key2(FUND, "k-0");
      const writing = snap.flushInBackground(s.feed.state); // captures the unconfirmed record
      s.feed.decision(e.record); // read back while the write is under way
      await writing;
      expect(s.feed.state.idem.resident).toBe(1); // still pending: the disk has it unconfirmed
      snap.flush(s.feed.state);
      expect(s.feed.state.idem.resident).toBe(1); // now in the cache only
      expect(s.feed.state.idem.get(k)?.confirmed).toBe(true);
      const loaded = snap.load();
      expect(loaded.idem.get(k)?.confirmed).toBe(true); // survived the load (unconfirmed would not)
    } finally {
      snap.close();
    }
  });

  it("given the window passes, when swept, then the records leave disk and index and the order ids are free", () => {
    const s = setup();
    const snap = openSnapshot(join(dir, `s-${++snapN}.db`));
    try {
      for (let i = 0; i < 20; i++) s.feed.decision(s.decide(nth(i)).record);
      snap.flush(s.feed.state);
      s.clock.advance(DAY / 2);
      for (let i = 20; i < 30; i++) s.feed.decision(s.decide(nth(i)).record);
      expect(sweepIdempotency(s.feed.state, s.clock.now() + DAY / 2)).toBe(20);
      const st = s.feed.state.idem;
      expect(st.size).toBe(10);
      expect(st.get(key2(FUND, "k-3"))).toBeUndefined();
      expect(st.owner(key2(FUND, "o-3"))).toBeUndefined();
      expect(st.get(key2(FUND, "k-25"))?.key).toBe("k-25");
      snap.flush(s.feed.state);
      const loaded = snap.load();
      expect(loaded.idem.size).toBe(10);
      expect([...loaded.idem.values()].map((r) => r.key).sort()).toEqual(
        Array.from({ length: 10 }, (_, i) => `k-${20 + i}`).sort(),
      );
    } finally {
      snap.close();
    }
  });

  it("given a restart from the snapshot, then replays, conflicts and order ids answer as before, and unconfirmed records are dropped", () => {
    const s = setup();
    const path = join(dir, `s-${++snapN}.db`);
    const snap = openSnapshot(path);
    const before: Evaluation[] = [];
    try {
      for (let i = 0; i < 30; i++) {
        s.clock.advance(10);
        const e = s.decide(nth(i));
        if (i !== 29) s.feed.decision(e.record); // the last one is never read back
        before.push(e);
      }
      snap.flush(s.feed.state);
    } finally {
      snap.close();
    }
    const reopened = openSnapshot(path);
    try {
      const state = reopened.load({ idempotencyCacheSize: CACHE });
      expect(state.idem.size).toBe(29);
      expect(state.idem.get(key2(FUND, "k-29"))).toBeUndefined(); // never journaled: dropped
      const r = setup(state);
      r.clock.advance(60_000);
      for (let i = 0; i < 29; i++) {
        const again = r.decide(nth(i));
        expect(again.decision).toEqual({
          ...before[i]!.decision,
          details: { ...before[i]!.decision.details, replayed: "true" },
        });
      }
      expect(code(r.decide({ ...nth(4), quantity: "2" }))).toBe("idempotency/IDEMPOTENCY_CONFLICT");
      expect(code(r.decide(rawOrder({ order_id: "o-4", idempotency_key: "new" })))).toBe(
        "idempotency/DUPLICATE_ORDER_ID",
      );
      // the dropped record's order id is free: its retry is decided afresh
      const retry = r.decide(nth(29));
      expect(retry.decision.details["replayed"]).toBeUndefined();
      expect(state.idem.resident).toBeLessThanOrEqual(CACHE + 3);
    } finally {
      reopened.close();
    }
  });
});

/** The digest line computed from scratch: every record the store answers for, read one by one. */
function fromScratch(state: EngineState): string {
  const d = new IdemDigest();
  for (const r of state.idem.values()) d.add(recordHash(r));
  return d.line();
}

describe("the idempotency records' digest, kept incrementally", () => {
  it("given the same lines added in any order, and some removed again, then the line is the one of the set", () => {
    const lines = Array.from({ length: 2_000 }, (_, i) => `I|f|k-${i}|fp${i % 7}|${i % 3 === 0}|X|${i}`);
    const a = new IdemDigest();
    for (const l of lines) a.add(lineHash(l));
    const b = new IdemDigest();
    for (const l of [...lines].reverse()) b.add(lineHash(l));
    b.add(lineHash("I|f|extra|fp|true||1"));
    expect(b.line()).not.toBe(a.line());
    b.remove(lineHash("I|f|extra|fp|true||1"));
    expect(b.line()).toBe(a.line());
    expect(a.count).toBe(2_000);
    // one field of one record differs: another digest
    const c = new IdemDigest();
    for (const l of lines) c.add(lineHash(l === lines[1234] ? l.replace("|X|", "|Y|") : l));
    expect(c.line()).not.toBe(a.line());
    for (const l of lines) expect(lineHash(l)).toBeLessThan(2 ** 52);
  });

  it("given decisions, flushes, revocations, sweeps from memory and disk and a restart, then it always equals the records read one by one", () => {
    const s = setup();
    const path = join(dir, `s-${++snapN}.db`);
    const snap = openSnapshot(path);
    const check = (state: EngineState) => expect(state.idem.digestLine()).toBe(fromScratch(state));
    try {
      for (let i = 0; i < 40; i++) {
        s.clock.advance(10);
        const e = s.decide(nth(i));
        if (i % 5 === 4)
          revokeLive(s.feed.state, e.record); // its journal write failed: undone
        else s.feed.decision(e.record);
        if (i % 10 === 9) snap.flush(s.feed.state);
        check(s.feed.state);
      }
      s.clock.advance(DAY / 2);
      for (let i = 40; i < 50; i++) s.feed.decision(s.decide(nth(i)).record); // pending, later expiry
      check(s.feed.state);
      expect(sweepIdempotency(s.feed.state, s.clock.now() + DAY / 2 - 1)).toBe(32); // from disk
      check(s.feed.state);
      expect(s.feed.state.idem.size).toBe(10);
      snap.flush(s.feed.state);
      check(s.feed.state);
      const line = s.feed.state.idem.digestLine();
      const loaded = snap.load({ idempotencyCacheSize: CACHE });
      expect(loaded.idem.digestLine()).toBe(line); // from the index's column, no record read
      check(loaded);
      for (let i = 50; i < 53; i++) s.feed.decision(s.decide(nth(i)).record); // pending
      check(s.feed.state);
      expect(sweepIdempotency(s.feed.state, s.clock.now() + DAY)).toBe(13); // from memory and disk
      check(s.feed.state);
      expect(s.feed.state.idem.digestLine()).toBe("I|0|0");
    } finally {
      snap.close();
    }
  });

  it("given a snapshot written before the digest column, when loaded, then the column is filled once and the digest is the same", () => {
    const s = setup();
    const path = join(dir, `s-${++snapN}.db`);
    const snap = openSnapshot(path);
    let line: string;
    try {
      for (let i = 0; i < 30; i++) s.feed.decision(s.decide(nth(i)).record);
      snap.flush(s.feed.state);
      line = s.feed.state.idem.digestLine();
    } finally {
      snap.close();
    }
    // what an earlier engine wrote: no dh column, no index holding it
    const raw = new Database(path);
    raw.exec(
      "DROP INDEX idem_hd; ALTER TABLE idem DROP COLUMN dh; CREATE INDEX idem_h ON idem (h, oh, owner)",
    );
    raw.close();
    const reopened = openSnapshot(path);
    try {
      const state = reopened.load({ idempotencyCacheSize: CACHE });
      expect(state.idem.digestLine()).toBe(line);
      expect(state.idem.size).toBe(30);
    } finally {
      reopened.close();
    }
    const after = new Database(path, { readonly: true });
    try {
      expect(after.prepare("SELECT count(*) FROM idem WHERE dh IS NULL").pluck().get()).toBe(0);
      expect(after.prepare("SELECT count(*) FROM meta WHERE k = 'idem_dh_fill'").pluck().get()).toBe(0);
    } finally {
      after.close();
    }
  });
});
