/**
 * Ended order records and fill ids on disk (src/state/order-store.ts, src/state/fill-store.ts):
 * they leave memory once the snapshot has them, are found again by key (a late fill merges into
 * an ended order, a replayed fill is a duplicate, a reused order id is in use), also after a
 * restart and after a crash between two flushes; the digest is an in-memory state's.
 */
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { DETERMINISTIC_GATES, createPipeline } from "../../src/gates/index.js";
import { checkIdempotency } from "../../src/gates/idempotency.js";
import { createDecider } from "../../src/service/decide.js";
import {
  type EngineState,
  createState,
  key2,
  openSnapshot,
  stateDigest,
  sweepReservations,
} from "../../src/state/index.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW, rawOrder } from "./fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "riskengine-unit-orders-"));
let snapN = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = () => join(dir, `s-${++snapN}.db`);

const CACHE = 4;
const DAY = 86_400_000;

function feedOf(state: EngineState = createState({ idempotencyCacheSize: CACHE })): Feed {
  return new Feed(state).envelope({ max_order_qty: "1000" }).quote("AAPL", "99.99", "100.01");
}

/** Order `o<i>` approved for 10 and filled in full by fill `f<i>`. */
function filledOrder(feed: Feed, i: number): void {
  feed.reserve(`o${i}`, "AAPL", "BUY", "10", "100");
  feed.fill("AAPL", "10", "100", { fill_id: `f${i}`, order_id: `o${i}` });
}

const qty = (s: EngineState) => s.funds.get(FUND)?.books.get("AAPL")?.pos.qty.toFixed();
const filled = (s: EngineState, id: string) => s.orders.get(key2(FUND, id))?.filled.toFixed();

describe("ended orders and fill ids on disk", () => {
  /** Every key with one fingerprint in the key index: each lookup hits, only the exact key answers. */
  const FINGERPRINTS = [
    { name: "the index's fingerprint", fp: undefined },
    { name: "every key colliding in the index", fp: () => 1 },
  ];

  it.each(FINGERPRINTS)(
    "given ended orders flushed ($name), then they leave memory (the cache only), are found by key and merge a late fill, as in memory",
    ({ fp }) => {
      const N = 20;
      const disk = feedOf(createState({ idempotencyCacheSize: CACHE, keyFingerprint: fp }));
      const mem = feedOf(createState()); // never flushed
      const snap = openSnapshot(path());
      try {
        for (let i = 0; i < N; i++) for (const f of [disk, mem]) filledOrder(f, i);
        disk.reserve("open", "AAPL", "BUY", "5", "100"); // still reserving: stays in memory
        mem.reserve("open", "AAPL", "BUY", "5", "100");
        snap.flush(disk.state);
        expect(disk.state.orders.hotCount).toBe(1);
        expect(disk.state.orders.resident).toBeLessThanOrEqual(1 + CACHE);
        expect(disk.state.orders.size).toBe(N + 1);
        expect(disk.state.fillIds.resident).toBe(0);
        expect(disk.state.fillIds.size).toBe(N);
        expect([...disk.state.orders.values()].map((r) => r.orderId)).toEqual(["open"]);

        // o0 was evicted from the cache by the later ones: read from disk
        expect(filled(disk.state, "o0")).toBe("10");
        expect(disk.state.orders.has(key2(FUND, "never"))).toBe(false);
        expect(stateDigest(disk.state)).toBe(stateDigest(mem.state));

        // a late (over)fill of an ended order merges into it; a replayed fill is a duplicate
        for (const f of [disk, mem]) {
          f.fill("AAPL", "5", "100", { fill_id: "late", order_id: "o0" });
          f.fill("AAPL", "10", "100", { fill_id: "f3", order_id: "o3" });
        }
        expect(filled(disk.state, "o0")).toBe("15");
        expect(filled(disk.state, "o3")).toBe("10");
        expect(qty(disk.state)).toBe(qty(mem.state));
        expect(qty(disk.state)).toBe(String(N * 10 + 5));
        snap.flush(disk.state);
        expect(stateDigest(disk.state)).toBe(stateDigest(mem.state));

        const reloaded = snap.load({ idempotencyCacheSize: CACHE, keyFingerprint: fp });
        // the open order is left on disk by the load (its book's row holds what it reserves)
        expect(reloaded.orders.hotCount).toBe(0);
        expect([...reloaded.orders.open()].map((r) => r.orderId)).toEqual(["open"]);
        expect(reloaded.funds.get(FUND)?.openOrders).toBe(1);
        expect(reloaded.funds.get(FUND)?.books.get("AAPL")?.pendBuyQty.toFixed()).toBe("5");
        expect(filled(reloaded, "o0")).toBe("15");
        expect(reloaded.orders.has(key2(FUND, "never"))).toBe(false);
        expect(stateDigest(reloaded)).toBe(stateDigest(mem.state));
        // a fill replayed after the restart is a duplicate, a new one is not
        const f2 = new Feed(reloaded);
        for (const [st, n] of disk.seqs) f2.seqs.set(st, n);
        f2.fill("AAPL", "10", "100", { fill_id: "f9", order_id: "o9" });
        expect(filled(reloaded, "o9")).toBe("10");
        f2.fill("AAPL", "1", "100", { fill_id: "f-new", order_id: "o9" });
        expect(filled(reloaded, "o9")).toBe("11");
      } finally {
        snap.close();
      }
    },
  );

  it.each(FINGERPRINTS)(
    "given open orders at a restart ($name), then the load leaves them on disk and fills, OMS events, the TTL sweep, the digest and the funds' counts answer as in memory",
    ({ fp }) => {
      const N = 30;
      const disk = feedOf();
      const mem = feedOf(createState()); // never flushed, never reloaded
      const file = path();
      const snap = openSnapshot(file);
      for (const f of [disk, mem]) {
        for (let i = 0; i < N; i++) {
          f.reserve(`o${i}`, "AAPL", i % 2 === 0 ? "BUY" : "SELL", "10", "100", i % 3 === 0 ? "B1" : "B2");
          if (i % 5 === 0) f.orderEvent(`o${i}`, "accepted"); // acknowledged: held past the TTL
        }
        f.fill("AAPL", "4", "100", { fill_id: "p0", order_id: "o0", broker: "B1" }); // partly filled
      }
      snap.flush(disk.state);
      snap.close();
      const again = openSnapshot(file);
      try {
        const state = again.load({ idempotencyCacheSize: CACHE, keyFingerprint: fp });
        expect(state.orders.hotCount).toBe(0); // nothing parsed at load
        expect(state.orders.size).toBe(N);
        expect([...state.orders.open(FUND)].length).toBe(N); // read from disk, one fund's rows
        expect([...state.orders.open("another")].length).toBe(0);
        const funds = (s: EngineState) => {
          const f = s.funds.get(FUND)!;
          const b = f.books.get("AAPL")!;
          return [
            f.openOrders,
            b.pendBuyQty.toFixed(),
            b.pendBuyValue.toFixed(),
            [...b.pendBuyByBroker]
              .map(([k, q]) => `${k}=${q.toFixed()}`)
              .sort()
              .join(","),
            b.pendSellQty.toFixed(),
            [...b.pendSellByBroker]
              .map(([k, q]) => `${k}=${q.toFixed()}`)
              .sort()
              .join(","),
            f.agg.gross.toFixed(),
          ];
        };
        expect(funds(state)).toEqual(funds(mem.state));
        expect(stateDigest(state)).toBe(stateDigest(mem.state));
        const f2 = new Feed(state);
        for (const [st, n] of disk.seqs) f2.seqs.set(st, n);
        for (const f of [f2, mem]) {
          f.fill("AAPL", "10", "100", { fill_id: "x3", order_id: "o3", broker: "B1" }); // fills o3
          f.fill("AAPL", "6", "100", { fill_id: "x0", order_id: "o0", broker: "B1" }); // o0's rest
          f.orderEvent("o7", "cancelled");
          f.reserve("o8", "AAPL", "BUY", "10", "100", "B2"); // the same approval again: idempotent
        }
        expect(state.orders.hotCount).toBe(4); // o3, o0, o7, o8 read back (o8 to find its approval applied)
        expect(funds(state)).toEqual(funds(mem.state));
        expect(stateDigest(state)).toBe(stateDigest(mem.state));
        // the TTL passes: the unacknowledged open orders lapse and are released, on disk or not
        const later = NOW + 86_400_000 + 1;
        for (const s of [state, mem.state]) sweepReservations(s, later);
        expect(funds(state)).toEqual(funds(mem.state));
        expect(stateDigest(state)).toBe(stateDigest(mem.state));
        expect(state.funds.get(FUND)!.openOrders).toBe(5); // o5, o10, …, o25: acknowledged, held
        // and a second restart from what the first wrote
        again.flush(state);
        const third = again.load({ idempotencyCacheSize: CACHE, keyFingerprint: fp });
        expect(funds(third)).toEqual(funds(mem.state));
        expect(stateDigest(third)).toBe(stateDigest(mem.state));
        expect(third.orders.has(key2(FUND, "o8"))).toBe(true);
        expect(third.orders.has(key2(FUND, "nope"))).toBe(false);
      } finally {
        again.close();
      }
    },
  );

  it("given fill ids on disk only, when the snapshot is loaded and a fill is replayed under a later sequence, then it is a duplicate", () => {
    const feed = feedOf();
    const file = path();
    const snap = openSnapshot(file);
    try {
      for (let i = 0; i < 30; i++) filledOrder(feed, i);
      snap.flush(feed.state);
    } finally {
      snap.close();
    }
    const again = openSnapshot(file);
    try {
      const state = again.load({ idempotencyCacheSize: CACHE });
      expect(state.fillIds.resident).toBe(0);
      expect(state.fillIds.size).toBe(30);
      expect(state.orders.hotCount).toBe(0);
      const before = qty(state);
      const f2 = new Feed(state);
      for (const [s, n] of feed.seqs) f2.seqs.set(s, n); // past the cursors: applied, not skipped
      f2.fill("AAPL", "10", "100", { fill_id: "f7", order_id: "o7" }); // the OMS re-sent it
      expect(qty(state)).toBe(before);
      expect(filled(state, "o7")).toBe("10");
      f2.fill("AAPL", "10", "100", { fill_id: "new", order_id: "o7" }); // a new fill of it
      expect(qty(state)).toBe(String(310));
      expect(filled(state, "o7")).toBe("20");
    } finally {
      again.close();
    }
  });

  it("given a crash between two flushes, when the snapshot is loaded and the tail replayed, then it equals the state that crashed", () => {
    const file = path();
    const a = feedOf();
    const snap = openSnapshot(file);
    for (let i = 0; i < 10; i++) filledOrder(a, i);
    snap.flush(a.state); // o0..o9 ended, on disk
    const cursors = new Map(a.seqs);
    const tail = (f: Feed) => {
      f.fill("AAPL", "3", "100", { fill_id: "late", order_id: "o0" }); // promotes o0
      filledOrder(f, 10);
      f.reserve("o11", "AAPL", "BUY", "7", "100");
      f.fill("AAPL", "10", "100", { fill_id: "f4", order_id: "o4" }); // a duplicate
    };
    tail(a);
    // the crashed engine's second flush never happened; its connection is gone
    const b = openSnapshot(file).load({ idempotencyCacheSize: CACHE });
    expect(filled(b, "o0")).toBe("10"); // as of the first flush
    expect(b.fillIds.has("late")).toBe(false);
    expect(b.fillIds.has("f10")).toBe(false);
    expect(b.orders.has(key2(FUND, "o10"))).toBe(false);
    const fb = new Feed(b);
    for (const [s, n] of cursors) fb.seqs.set(s, n);
    tail(fb);
    expect(filled(b, "o0")).toBe("13");
    expect(qty(b)).toBe(qty(a.state));
    expect(stateDigest(b)).toBe(stateDigest(a.state));
    snap.close();
  });

  it("given an approval applied live, filled before the journal's copy is read back, then it stays in memory and a restart drops it", () => {
    const file = path();
    const feed = feedOf();
    const decider = createDecider({
      state: feed.state,
      pipeline: createPipeline(DETERMINISTIC_GATES),
      clock: manualClock(NOW),
      instance: "t",
      ready: () => true,
      nextId: () => "d-live",
    });
    const raw = rawOrder({ order_id: "live", idempotency_key: "k-live", quantity: "10" });
    const e = decider.decide({ raw });
    if (e instanceof Promise) throw new Error("expected a synchronous decision");
    expect(e.decision.approved).toBe(true);
    feed.fill("AAPL", "10", "100", { fill_id: "fl", order_id: "live" });
    const snap = openSnapshot(file);
    try {
      snap.flush(feed.state);
      // done, but its approval unconfirmed: not written as ended, not evicted
      expect(feed.state.orders.hot(key2(FUND, "live"))).toBeDefined();
      const db = new Database(file, { readonly: true });
      const row = db.prepare("SELECT cold FROM orders WHERE k = ?").get(key2(FUND, "live")) as {
        cold: number;
      };
      db.close();
      expect(row.cold).toBe(3); // open with an approval unconfirmed: a load reads it (to drop it)
      const reloaded = snap.load();
      expect(reloaded.orders.get(key2(FUND, "live"))?.approvals.size).toBe(0);
      expect(reloaded.orders.get(key2(FUND, "live"))?.filled.toFixed()).toBe("10");
    } finally {
      snap.close();
    }
  });

  it("given orders known from fills alone (decided elsewhere) flushed, then they leave memory, still name their order id, merge a later fill, an approval and an OMS event, and the sweep forgets them, as in memory", () => {
    const N = 12;
    const disk = feedOf();
    const mem = feedOf(createState()); // never flushed
    const snap = openSnapshot(path());
    // the idempotency gate's answer for a new key naming this order id (nothing applied)
    const idGate = (s: EngineState, orderId: string) => {
      const out = checkIdempotency(s, FUND, `k-${orderId}`, undefined, undefined, orderId);
      return out.kind === "conflict" ? out.denial.code : out.kind;
    };
    try {
      for (const f of [disk, mem]) {
        for (let i = 0; i < N; i++) f.fill("AAPL", "3", "100", { fill_id: `g${i}`, order_id: `x${i}` });
        f.orderEvent("x1", "accepted"); // working at a broker, as the OMS says: stays in memory
      }
      snap.flush(disk.state);
      // what reserves nothing and is not working left memory; the accepted one stays
      expect([...disk.state.orders.values()].map((r) => r.orderId)).toEqual(["x1"]);
      expect(disk.state.orders.size).toBe(N);
      expect(stateDigest(disk.state)).toBe(stateDigest(mem.state));
      // its order id is in use (read from disk), and its fills go on adding up
      for (const s of [disk.state, mem.state]) {
        expect(idGate(s, "x4")).toBe("DUPLICATE_ORDER_ID");
        expect(idGate(s, "never-seen")).toBe("new");
      }
      for (const f of [disk, mem]) {
        f.fill("AAPL", "2", "100", { fill_id: "g-late", order_id: "x0" });
        f.orderEvent("x2", "cancelled");
        f.reserve("x6", "AAPL", "BUY", "10", "100"); // its approval, journaled by another engine, read after its fill
      }
      expect(disk.state.orders.get(key2(FUND, "x6"))?.reserved.toFixed()).toBe("7");
      expect(disk.state.funds.get(FUND)?.books.get("AAPL")?.pendBuyQty.toFixed()).toBe("7");
      expect(filled(disk.state, "x0")).toBe("5");
      expect(filled(disk.state, "x5")).toBe("3");
      expect(disk.state.orders.get(key2(FUND, "x2"))?.terminal).toBe(true);
      expect(qty(disk.state)).toBe(qty(mem.state));
      snap.flush(disk.state);
      expect(stateDigest(disk.state)).toBe(stateDigest(mem.state));
      const reloaded = snap.load({ idempotencyCacheSize: CACHE });
      expect(reloaded.orders.hotCount).toBe(0);
      expect(filled(reloaded, "x0")).toBe("5");
      expect(stateDigest(reloaded)).toBe(stateDigest(mem.state));
      // a TTL after their last fill they are forgotten, on disk as in memory
      for (const s of [disk.state, mem.state]) sweepReservations(s, NOW + DAY - 1);
      expect(disk.state.orders.has(key2(FUND, "x3"))).toBe(true);
      for (const s of [disk.state, mem.state]) sweepReservations(s, NOW + DAY + 1);
      for (const k of ["x0", "x1", "x2", "x3", "x6"].map((id) => key2(FUND, id)))
        expect(disk.state.orders.has(k)).toBe(mem.state.orders.has(k));
      expect(disk.state.orders.has(key2(FUND, "x3"))).toBe(false);
      expect(disk.state.orders.has(key2(FUND, "x6"))).toBe(true); // reserving (not acknowledged: until its TTL)
      expect(disk.state.orders.size).toBe(mem.state.orders.size);
      expect(stateDigest(disk.state)).toBe(stateDigest(mem.state));
      snap.flush(disk.state);
      expect(snap.load().orders.size).toBe(mem.state.orders.size);
    } finally {
      snap.close();
    }
  });

  it("given approvals that lapsed unacknowledged, flushed, then they leave memory, a late acknowledgement makes one reserve again, and the sweep forgets the others as in memory", () => {
    const disk = feedOf();
    const mem = feedOf(createState()); // never flushed
    const snap = openSnapshot(path());
    const pend = (s: EngineState) => s.funds.get(FUND)?.books.get("AAPL")?.pendBuyQty.toFixed();
    try {
      for (const f of [disk, mem]) for (let i = 0; i < 4; i++) f.reserve(`x${i}`, "AAPL", "BUY", "10", "100");
      for (const s of [disk.state, mem.state]) sweepReservations(s, NOW + DAY + 1); // the TTL ran out
      expect(pend(disk.state)).toBe("0");
      snap.flush(disk.state);
      expect(disk.state.orders.hotCount).toBe(0); // reserving nothing: they left memory
      expect(disk.state.orders.size).toBe(4);
      expect(stateDigest(disk.state)).toBe(stateDigest(mem.state));
      // working at a broker after all: the OMS's acknowledgement comes late
      for (const f of [disk, mem]) f.orderEvent("x1", "accepted");
      expect(pend(disk.state)).toBe("10");
      expect(pend(mem.state)).toBe("10");
      snap.flush(disk.state);
      // the others are remembered for the idempotency window after their TTL, then forgotten
      for (const s of [disk.state, mem.state]) sweepReservations(s, NOW + 2 * DAY - 1);
      expect(disk.state.orders.has(key2(FUND, "x0"))).toBe(true);
      for (const s of [disk.state, mem.state]) sweepReservations(s, NOW + 2 * DAY + 1);
      for (const id of ["x0", "x1", "x2", "x3"]) {
        expect(disk.state.orders.has(key2(FUND, id))).toBe(id === "x1");
        expect(mem.state.orders.has(key2(FUND, id))).toBe(id === "x1");
      }
      expect(pend(disk.state)).toBe("10");
      snap.flush(disk.state);
      expect(stateDigest(disk.state)).toBe(stateDigest(mem.state));
      expect(stateDigest(snap.load())).toBe(stateDigest(mem.state));
    } finally {
      snap.close();
    }
  });

  it("given ended orders on disk, when their time comes, then the sweep forgets them as it does in memory, and the snapshot deletes their rows", () => {
    const disk = feedOf();
    const mem = feedOf(createState());
    const snap = openSnapshot(path());
    try {
      for (let i = 0; i < 5; i++) for (const f of [disk, mem]) filledOrder(f, i);
      snap.flush(disk.state);
      for (const s of [disk.state, mem.state]) sweepReservations(s, NOW + DAY - 1);
      expect(disk.state.orders.size).toBe(5);
      expect(mem.state.orders.size).toBe(5);
      // filled at NOW, reserved until NOW + ttl: forgotten then
      for (const s of [disk.state, mem.state]) sweepReservations(s, NOW + DAY + 1);
      expect(disk.state.orders.has(key2(FUND, "o1"))).toBe(false);
      expect(mem.state.orders.has(key2(FUND, "o1"))).toBe(false);
      expect(disk.state.orders.size).toBe(0);
      snap.flush(disk.state);
      expect(snap.load().orders.size).toBe(0);
    } finally {
      snap.close();
    }
  });

  it("given fill ids on disk, when the watermark passes the window, then the oldest are forgotten in the order seen, as in memory", () => {
    const HOUR = 3_600_000;
    const settings = { fillDedupeWindowMs: HOUR, idempotencyCacheSize: CACHE };
    const disk = feedOf(createState(settings));
    const mem = feedOf(createState(settings));
    const snap = openSnapshot(path());
    const at = (ms: number) => new Date(ms).toISOString();
    try {
      for (let i = 0; i < 6; i++)
        for (const f of [disk, mem])
          f.fill("AAPL", "1", "100", { fill_id: `x${i}`, timestamp: at(NOW + i * 1000) });
      snap.flush(disk.state);
      // out of time order: an old one seen last
      for (const f of [disk, mem]) f.fill("AAPL", "1", "100", { fill_id: "old", timestamp: at(NOW - HOUR) });
      for (const f of [disk, mem])
        f.fill("AAPL", "1", "100", { fill_id: "y", timestamp: at(NOW + HOUR + 2500) }); // x0..x2 leave
      for (const s of [disk.state, mem.state])
        expect(["x0", "x1", "x2", "x3", "old", "y"].map((id) => s.fillIds.has(id))).toEqual([
          false,
          false,
          false,
          true,
          true,
          true,
        ]);
      snap.flush(disk.state);
      for (const f of [disk, mem])
        f.fill("AAPL", "1", "100", { fill_id: "z", timestamp: at(NOW + HOUR + 10_000) }); // x3..x5, old leave
      snap.flush(disk.state);
      for (const s of [disk.state, mem.state, snap.load(settings)])
        expect(["x5", "old", "y", "z"].map((id) => s.fillIds.has(id))).toEqual([false, false, true, true]);
      expect(disk.state.fillIds.size).toBe(mem.state.fillIds.size);
    } finally {
      snap.close();
    }
  });

  it("given a snapshot written before the tables (order and fill_id entity rows), when loaded, then its orders and fill ids are found and it keeps working", () => {
    const file = path();
    const feed = feedOf();
    const snap = openSnapshot(file);
    for (let i = 0; i < 3; i++) filledOrder(feed, i);
    feed.reserve("open", "AAPL", "BUY", "5", "100");
    snap.flush(feed.state);
    const digest = stateDigest(feed.state);
    const seqs = new Map(feed.seqs);
    snap.close();
    // rewrite the rows as the entity rows an older engine wrote
    const db = new Database(file);
    const orders = db.prepare("SELECT k, v FROM orders").all() as { k: string; v: string }[];
    const fills = db.prepare("SELECT k, t FROM fill_ids").all() as { k: string; t: number }[];
    const put = db.prepare("INSERT INTO entities (kind, k, v) VALUES (?, ?, ?)");
    db.transaction(() => {
      for (const o of orders) put.run("order", o.k, o.v);
      for (const f of fills) put.run("fill_id", f.k, String(f.t));
      db.exec("DELETE FROM orders; DELETE FROM fill_ids;");
    })();
    db.close();
    const again = openSnapshot(file);
    try {
      const state = again.load({ idempotencyCacheSize: CACHE });
      expect(state.orders.size).toBe(4);
      expect(filled(state, "o1")).toBe("10");
      expect(state.fillIds.has("f2")).toBe(true);
      expect(stateDigest(state)).toBe(digest);
      const f2 = new Feed(state);
      for (const [s2, n] of seqs) f2.seqs.set(s2, n);
      const before = qty(state);
      f2.fill("AAPL", "10", "100", { fill_id: "f1", order_id: "o1" }); // a duplicate
      expect(qty(state)).toBe(before);
      again.flush(state);
      const check = new Database(file, { readonly: true });
      const legacy = check
        .prepare("SELECT count(*) FROM entities WHERE kind IN ('order', 'fill_id')")
        .pluck()
        .get();
      check.close();
      expect(legacy).toBe(0);
      expect(again.load().orders.size).toBe(4);
    } finally {
      again.close();
    }
  });
});
