/**
 * The snapshot writer's batched commits (`commitEveryMs`, src/state/snapshot.ts): captures taken
 * every flush interval wait for one transaction together, in order; after a failed commit,
 * nothing captured before the failure was handled commits (the cursors would run ahead of the
 * failed rows), and everything is written again once the writer is reset. Real SQLite, real
 * worker thread.
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { dec } from "../../src/decimal/index.js";
import { toMark } from "../../src/state/projections/market.js";
import {
  type EngineState,
  type IdemRecord,
  type Snapshot,
  createState,
  key2,
  openSnapshot,
  touch,
} from "../../src/state/index.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function snapshotPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "snap-batched-"));
  dirs.push(dir);
  return join(dir, "snapshot.sqlite");
}

/** A mark for `symbol` (an entity row, written only when dirty) and the FILLS cursor with it. */
function quote(state: EngineState, symbol: string, mid: number, seq: number): void {
  state.marks.set(symbol, toMark(dec(mid - 1), dec(mid + 1), 1_000 + seq));
  touch(state, "mark", symbol);
  state.cursors.set("FILLS", seq);
}

/** An approval's idempotency record, applied live (not yet read back). */
function idemRecord(fund: string, key: string): IdemRecord {
  return {
    fund,
    key,
    fingerprint: "fp",
    decision: { approved: true, order_id: key, fund_id: fund } as unknown as IdemRecord["decision"],
    expiresAt: Date.now() + 3_600_000,
    confirmed: false,
  };
}

const CURSORS_DDL = "CREATE TABLE IF NOT EXISTS cursors (stream TEXT PRIMARY KEY, seq INTEGER NOT NULL)";

/**
 * A snapshot batching its commits every 5 s (a capture that joins the next batch waits that long),
 * its first commit just made with the mark A = 10 at cursor 1, and a second connection to the same
 * file (`side`) to break and mend the writer's tables.
 */
async function afterFirstCommit(
  run: (snap: Snapshot, state: EngineState, side: Database.Database) => Promise<void>,
): Promise<void> {
  const path = snapshotPath();
  const snap = openSnapshot(path, { commitEveryMs: 5_000 });
  const state = createState();
  const side = new Database(path);
  try {
    quote(state, "A", 10, 1);
    await snap.flushInBackground(state);
    await run(snap, state, side);
  } finally {
    side.close();
    snap.close();
  }
}

describe("snapshot writer with batched commits", () => {
  it("given captures taken while a commit waits, each settles with the batch, and the snapshot holds the last state", async () => {
    const path = snapshotPath();
    const snap = openSnapshot(path, { commitEveryMs: 300 });
    const state = createState();
    try {
      const writes: Promise<unknown>[] = [];
      for (let k = 1; k <= 6; k++) {
        quote(state, `S${k % 3}`, 100 + k, k);
        const w = snap.flushInBackground(state);
        expect(writes).not.toContain(w); // every call captures: a write of its own
        writes.push(w);
      }
      const reports = (await Promise.all(writes)) as { rows: number }[];
      expect(reports.every((r) => r.rows > 0)).toBe(true);
      const loaded = snap.load();
      expect(loaded.cursors.get("FILLS")).toBe(6);
      expect([...loaded.marks.keys()].sort()).toEqual(["S0", "S1", "S2"]);
      // the last capture of each symbol won (applied in the order taken)
      expect(loaded.marks.get("S0")?.mid.toFixed()).toBe("106");
      expect(loaded.marks.get("S1")?.mid.toFixed()).toBe("104");
      expect(loaded.marks.get("S2")?.mid.toFixed()).toBe("105");
    } finally {
      snap.close();
    }
  });

  it("given a commit that fails, a capture sent before the failure was handled does not commit, and the next write restores everything", async () => {
    await afterFirstCommit(async (snap, state, side) => {
      quote(state, "A", 20, 2); // the failed write's row: A = 20
      side.exec("DROP TABLE cursors"); // the writer's next commit fails
      const failing = snap.flushInBackground(state);
      snap.commitNow(); // the batch holding A = 20 commits now, and fails
      quote(state, "B", 30, 3);
      const later = snap.flushInBackground(state); // B and the cursor 3, without A = 20
      await expect(failing).rejects.toThrow(/snapshot write failed/);
      side.exec(CURSORS_DDL); // the cause is gone while `later` would still wait for its batch
      await expect(later).rejects.toThrow(/an earlier write failed/);
      expect(side.prepare("SELECT count(*) AS n FROM cursors").get()).toEqual({ n: 0 });

      // reset: the next capture writes everything dirty again (A = 20 included) with cursor 3
      const next = snap.flushInBackground(state);
      snap.commitNow();
      await next;
      const loaded = snap.load();
      expect(loaded.cursors.get("FILLS")).toBe(3);
      expect(loaded.marks.get("A")?.mid.toFixed()).toBe("20");
      expect(loaded.marks.get("B")?.mid.toFixed()).toBe("30");
    });
  });

  it("given a record captured again before its first write is answered, it stays in memory until the second is, and a failure of the second writes it again", async () => {
    await afterFirstCommit(async (snap, state, side) => {
      const k = key2("F", "k1");
      state.idem.put(k, idemRecord("F", "k1"));
      const first = snap.flushInBackground(state); // the record, unconfirmed
      snap.commitNow(); // its batch commits now
      state.idem.confirm(k); // read back from the journal: the same record, confirmed
      quote(state, "A", 11, 2);
      const second = snap.flushInBackground(state); // the batch after: waits
      await first;
      expect(state.idem.resident, "still held by the second write").toBe(1);
      side.exec("DROP TABLE cursors");
      snap.commitNow();
      await expect(second).rejects.toThrow(/snapshot write failed/);
      side.exec(CURSORS_DDL);
      const third = snap.flushInBackground(state); // written again: the confirmed record with it
      snap.commitNow();
      await third;
      const loaded = snap.load();
      expect(loaded.cursors.get("FILLS")).toBe(2);
      expect(loaded.idem.get(k)?.confirmed, "the confirmation survived the failed write").toBe(true);
    });
  });

  it("given the default (no batching), a call while a write is under way gets that write's promise", async () => {
    const snap = openSnapshot(snapshotPath());
    const state = createState();
    try {
      quote(state, "A", 10, 1);
      const first = snap.flushInBackground(state);
      quote(state, "A", 20, 2);
      expect(snap.flushInBackground(state)).toBe(first);
      await first;
      await snap.flushInBackground(state);
      expect(snap.load().marks.get("A")?.mid.toFixed()).toBe("20");
    } finally {
      snap.close();
    }
  });
});
