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
import { KeyIndex, Role, hash32 } from "../../src/state/key-index.js";
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

describe("KeyIndex", () => {
  it("given many hashes in several roles, some twice, when added and removed, then membership counts occurrences per role", () => {
    // an injective fingerprint (a bijection of the key number mod 2²⁸): exact counts, no chance collision
    const s = new KeyIndex((h) => Math.imul(h, 0x9e3779b1) & 0x0fffffff);
    const h = (i: number) => i + 1;
    for (let i = 0; i < 50_000; i++) s.add(h(i), Role.idem);
    for (let i = 0; i < 50_000; i += 5) s.add(h(i), Role.order);
    s.add(h(7), Role.idem);
    expect(s.slots).toBe(50_000); // a key held in two roles takes one slot
    for (let i = 0; i < 50_000; i++) expect(s.has(h(i), Role.idem)).toBe(true);
    for (let i = 0; i < 50_000; i++) expect(s.has(h(i), Role.order)).toBe(i % 5 === 0);
    expect(s.has(h(7), Role.fill)).toBe(false);
    expect(s.has(h(1_000_000), Role.idem)).toBe(false);
    expect(s.remove(h(7), Role.order)).toBe(false); // never added in that role
    expect(s.remove(h(7), Role.idem)).toBe(true);
    expect(s.has(h(7), Role.idem)).toBe(true); // added twice
    expect(s.remove(h(7), Role.idem)).toBe(true);
    expect(s.has(h(7), Role.idem)).toBe(false);
    expect(s.remove(h(7), Role.idem)).toBe(false);
    for (let i = 0; i < 50_000; i += 2) s.remove(h(i), Role.idem);
    for (let i = 0; i < 50_000; i++) {
      expect(s.has(h(i), Role.idem)).toBe(i % 2 === 1 && i !== 7);
      expect(s.has(h(i), Role.order)).toBe(i % 5 === 0); // the other role's bit stays
    }
    // live slots: the odd keys (but k7) and the even multiples of 5 (order bit only)
    expect(s.slots).toBe(25_000 - 1 + 5_000);
    expect(s.bytes).toBeLessThanOrEqual(Math.ceil(50_000 / 0.55) * 4 + 4); // ≥ 55 % full after growth
  });

  it("given every key with the same fingerprint, then each (key, role) is counted and none is lost until its last removal", () => {
    const s = new KeyIndex(() => 1);
    const N = 2_000;
    for (let i = 0; i < N; i++) s.add(hash32(`k${i}`), i % 2 === 0 ? Role.idem : Role.fill);
    expect(s.slots).toBe(1);
    for (let i = 0; i < N - 2; i++)
      expect(s.remove(hash32(`k${i}`), i % 2 === 0 ? Role.idem : Role.fill)).toBe(true);
    expect(s.has(hash32("any"), Role.idem)).toBe(true); // k1998 is left
    expect(s.has(hash32("any"), Role.fill)).toBe(true); // k1999 is left
    expect(s.remove(hash32("k1998"), Role.idem)).toBe(true);
    expect(s.has(hash32("any"), Role.idem)).toBe(false);
    expect(s.remove(hash32("x"), Role.idem)).toBe(false);
    expect(s.remove(hash32("k1999"), Role.fill)).toBe(true);
    expect(s.slots).toBe(0);
  });

  it("given keys added and removed for a long time, then tombstones are cleared and the table stays at most 1 / 0.55 of what is live", () => {
    const s = new KeyIndex();
    let lost = 0;
    for (let i = 0; i < 300_000; i++) {
      s.add(hash32(`k${i}`), Role.fill);
      if (i >= 10_000 && !s.remove(hash32(`k${i - 10_000}`), Role.fill)) lost++;
    }
    expect(lost).toBe(0);
    expect(s.slots).toBeGreaterThan(9_990); // a chance collision of two live keys shares a slot
    expect(s.slots).toBeLessThanOrEqual(10_000);
    expect(s.bytes).toBeLessThanOrEqual(Math.ceil(10_001 / 0.55) * 4 * 2);
    let missing = 0;
    for (let i = 290_000; i < 300_000; i++) if (!s.has(hash32(`k${i}`), Role.fill)) missing++;
    expect(missing).toBe(0);
    let hits = 0;
    for (let i = 0; i < 100_000; i++) if (s.has(hash32(`k${i}`), Role.fill)) hits++;
    expect(hits).toBeLessThan(10); // removed: only a fingerprint collision (≈ 10 000 / 2²⁸ each) hits
  });

  it("given room reserved for the keys a load will add, then the table is sized once, holds them all and stays within 1 / 0.55", () => {
    const s = new KeyIndex();
    for (let i = 0; i < 100; i++) s.add(hash32(`a${i}`), Role.order);
    s.reserve(50_000);
    const sized = s.bytes;
    expect(sized).toBeLessThanOrEqual(Math.ceil(50_100 / 0.55) * 4 + 4);
    for (let i = 0; i < 50_000; i++) s.add(hash32(`b${i}`), Role.idem);
    expect(s.bytes).toBe(sized); // never rebuilt while they were added
    let missing = 0;
    for (let i = 0; i < 50_000; i++) if (!s.has(hash32(`b${i}`), Role.idem)) missing++;
    for (let i = 0; i < 100; i++) if (!s.has(hash32(`a${i}`), Role.order)) missing++;
    expect(missing).toBe(0);
    s.reserve(10); // room enough already: unchanged
    expect(s.bytes).toBe(sized);
  });
});

describe("idempotency records on disk", () => {
  /** Every key with one fingerprint: each lookup hits, and only the exact key read back answers. */
  const COLLIDING = { name: "every key colliding in the index", fp: () => 1 };
  const FINGERPRINTS = [{ name: "the index's fingerprint", fp: undefined }, COLLIDING];

  it.each(FINGERPRINTS)(
    "given records flushed to the snapshot ($name), then memory holds at most the cache and every answer is an in-memory state's",
    ({ fp }) => {
      const N = 60;
      const disk = setup(createState({ idempotencyCacheSize: CACHE, keyFingerprint: fp }));
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
    },
  );

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

  it.each(FINGERPRINTS)(
    "given a restart from the snapshot ($name), then replays, conflicts and order ids answer as before, and unconfirmed records are dropped",
    ({ fp }) => {
      const s = setup(createState({ idempotencyCacheSize: CACHE, keyFingerprint: fp }));
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
        const state = reopened.load({ idempotencyCacheSize: CACHE, keyFingerprint: fp });
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
    },
  );
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
