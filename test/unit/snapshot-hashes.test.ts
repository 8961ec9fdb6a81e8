/**
 * A restart reads the snapshot's hash lists (orders, idempotency keys, owned order ids, record
 * digests, fill ids) on a worker thread while the engine connects and loads the rest
 * (src/state/snapshot-hashes.ts). The state must be the one a load that reads them itself gives,
 * also when the load changes the table first (records never read back are dropped) and when the
 * worker cannot read at all.
 */
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Evaluation } from "../../src/service/decide.js";
import {
  type EngineState,
  createState,
  key2,
  openSnapshot,
  startHashReader,
  stateDigest,
} from "../../src/state/index.js";
import { HASH_QUERIES } from "../../src/state/snapshot-hashes.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW, rawOrder, testDecider } from "./fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "riskengine-unit-hashes-"));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A snapshot of `count` decisions (every third rejected), the last `unread` never read back. */
function snapshotOf(count: number, unread = 0): string {
  const feed = new Feed(createState({ idempotencyCacheSize: 8 }))
    .envelope({ max_order_qty: "10" })
    .quote("AAPL", "99.99", "100.01");
  const clock = manualClock(NOW);
  const decider = testDecider(feed, clock);
  const path = join(dir, `s-${++n}.db`);
  const snap = openSnapshot(path);
  try {
    for (let i = 0; i < count; i++) {
      clock.advance(10);
      const ids = { order_id: `o-${i}`, idempotency_key: `k-${i}`, quantity: "10" };
      const e = decider.decide({
        raw: rawOrder(i % 3 === 2 ? { ...ids, quantity: "11" } : ids),
      }) as Evaluation;
      if (i < count - unread) feed.decision(e.record); // read back: confirmed
      if (e.decision.approved && i % 2 === 0) feed.fill("AAPL", "10", "100", { order_id: `o-${i}` }); // filled in full: ended
      if (i % 50 === 49) snap.flush(feed.state);
    }
    snap.flush(feed.state);
  } finally {
    snap.close();
  }
  return path;
}

/** Loads a copy of the snapshot, with the hash lists read on a worker or not, and reads it. */
function load(path: string, worker: boolean | string): ReturnType<typeof view> {
  const copy = join(dir, `load-${++n}.db`);
  for (const ext of ["", "-wal", "-shm"]) if (existsSync(path + ext)) copyFileSync(path + ext, copy + ext);
  const reader = worker ? startHashReader(typeof worker === "string" ? worker : copy) : undefined;
  const snap = openSnapshot(copy);
  try {
    return view(snap.load({ idempotencyCacheSize: 8 }, reader));
  } finally {
    reader?.close();
    snap.close();
  }
}

function view(s: EngineState) {
  return {
    digest: stateDigest(s),
    idem: s.idem.size,
    fills: s.fillIds.size,
    owner: s.idem.owner(key2(FUND, "o-4"))?.key,
    record: s.idem.get(key2(FUND, "k-7"))?.decision.approved,
  };
}

describe("a snapshot's hash lists read on a worker thread", () => {
  it("given a snapshot, when the worker reads its lists, then each is its query's rows, in order", () => {
    const path = snapshotOf(300);
    const db = new Database(path, { readonly: true });
    const reader = startHashReader(path);
    try {
      for (const [list, sql] of Object.entries(HASH_QUERIES)) {
        const rows = db.prepare(sql).pluck().all() as number[];
        // 300 records; 200 approvals, 100 of them filled in full (ended orders and their fills)
        if (list === "idem") expect(rows.length).toBe(300);
        if (list === "fills") expect(rows.length).toBe(100);
        if (list === "orders") expect(rows.length).toBeGreaterThanOrEqual(100);
        expect([...(reader.take(list as keyof typeof HASH_QUERIES) ?? [])]).toEqual(rows);
      }
    } finally {
      reader.close();
      db.close();
    }
  });

  it("given a row with a NULL hash (written before the hash columns), then that list is not the worker's, and the others still are", () => {
    const path = snapshotOf(60);
    const db = new Database(path);
    try {
      db.prepare("UPDATE idem SET dh = NULL WHERE k = ?").run(key2(FUND, "k-7"));
    } finally {
      db.close();
    }
    const reader = startHashReader(path);
    try {
      expect(reader.take("idem")).toHaveLength(60);
      expect(reader.take("digests")).toBeUndefined();
    } finally {
      reader.close();
    }
    // and the load fills the column and reads that list itself: the same state as reading every list
    expect(load(path, true)).toEqual(load(path, false));
  });

  it("given a snapshot, when loaded with the worker's lists, then the state is the one a load reading them itself gives", () => {
    const path = snapshotOf(300);
    const plain = load(path, false);
    expect(plain.idem).toBe(300);
    expect(plain.owner).toBe("k-4");
    expect(load(path, true)).toEqual(plain);
  });

  it("given records never read back (the load drops them first), then the worker's idempotency lists are not used", () => {
    const path = snapshotOf(300, 25);
    const plain = load(path, false);
    expect(plain.idem).toBe(275);
    expect(load(path, true)).toEqual(plain);
  });

  it("given a worker that cannot read the snapshot, then the load reads every list itself", () => {
    const path = snapshotOf(120);
    const reader = startHashReader(join(dir, "absent.db"));
    try {
      expect(reader.take("orders")).toBeUndefined();
    } finally {
      reader.close();
    }
    expect(load(path, join(dir, "absent.db"))).toEqual(load(path, false));
  });
});
