/**
 * Issue 8 at the boundaries of what changed: the idempotency gate (DUPLICATE_ORDER_ID, the
 * fingerprint without created_at, the conflict's field), the reserved fund id, the refdata asset
 * class, the velocity history kept regardless of the envelope, and reservations that the TTL
 * releases only when the OMS never acknowledged them.
 */
import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fastParseOrder } from "../../src/contract/fast-order.js";
import { EnvelopeSchema, InstrumentSchema, OrderSchema } from "../../src/contract/schemas.js";
import { canon, dec } from "../../src/decimal/index.js";
import {
  DETERMINISTIC_GATES,
  ORDER_FIELDS,
  checkRefdataClass,
  createPipeline,
  fieldHashes,
  fingerprint,
  firstDifferingField,
  legacyFingerprint,
} from "../../src/gates/index.js";
import { type Evaluation, createDecider } from "../../src/service/decide.js";
import {
  VELOCITY_HISTORY_S,
  addVelocity,
  createVelocity,
  key2,
  SnapshotError,
  openSnapshot,
  stateDigest,
  sweepIdempotency,
  sweepReservations,
  velocityOnDisk,
  velocityUsage,
} from "../../src/state/index.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW, envelope, order, rawOrder } from "./fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "riskengine-unit-identity-"));
let snapN = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DAY = 86_400_000;

function setup(envOver: Record<string, unknown> = {}, feed = new Feed()) {
  feed.envelope(envOver);
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

describe("idempotency gate: the same order, and the field that differs", () => {
  const base = rawOrder({
    strategy_id: "s1",
    asset_class: "equity",
    time_in_force: "DAY",
    reduce_only: false,
    locate_id: "loc-1",
    created_at: "2026-11-21T14:30:00Z",
  });
  const other: Record<(typeof ORDER_FIELDS)[number], unknown> = {
    order_id: "ord-other",
    strategy_id: "s2",
    broker: "ibkr",
    symbol: "MSFT",
    asset_class: "crypto",
    side: "SELL",
    order_type: "MARKET",
    quantity: "101",
    limit_price: "100.5",
    stop_price: "99",
    time_in_force: "GTC",
    reduce_only: true,
    locate_id: "loc-2",
  };

  it("given a re-stamped created_at, then the fingerprint and the field hashes are unchanged", () => {
    const a = OrderSchema.parse(base);
    const b = OrderSchema.parse({ ...base, created_at: "2026-11-21T14:31:00.5Z" });
    expect(fingerprint(b)).toBe(fingerprint(a));
    expect(fieldHashes({ ...base, created_at: null })).toBe(fieldHashes(base));
  });

  it("given any one field changed, then the fingerprint changes and the first differing field is that one", () => {
    for (const f of ORDER_FIELDS) {
      const changed = { ...base, [f]: other[f] };
      expect(fingerprint(OrderSchema.parse(changed)), f).not.toBe(fingerprint(OrderSchema.parse(base)));
      expect(firstDifferingField(fieldHashes(base), fieldHashes(changed)), f).toBe(f);
    }
  });

  it("given several fields changed, then the first in contract order is named", () => {
    fc.assert(
      fc.property(fc.subarray([...ORDER_FIELDS], { minLength: 1 }), (fields) => {
        const changed: Record<string, unknown> = { ...base };
        for (const f of fields) changed[f] = other[f];
        expect(firstDifferingField(fieldHashes(base), fieldHashes(changed))).toBe(fields[0]);
      }),
      { numRuns: 200 },
    );
  });

  it("given equal values written differently (decimal forms, null for absent), then no field differs", () => {
    const a = fieldHashes({ ...base, quantity: "100", limit_price: "100.50", stop_price: null });
    const b = fieldHashes({ ...base, quantity: 100, limit_price: "100.5" });
    expect(firstDifferingField(a, b)).toBeUndefined();
    // a record journaled before the hashes existed names no field
    expect(firstDifferingField(undefined, b)).toBeUndefined();
  });

  it("given a conflict through the decider, then details.field is set, also against a schema-invalid retry", () => {
    const { decide } = setup();
    const raw = rawOrder();
    expect(decide(raw).decision.approved).toBe(true);
    const c = decide({ ...raw, limit_price: "101" });
    expect(code(c)).toBe("idempotency/IDEMPOTENCY_CONFLICT");
    expect(c.decision.details["field"]).toBe("limit_price");
    const bad = decide({ ...raw, side: "HOLD" });
    expect(code(bad)).toBe("idempotency/IDEMPOTENCY_CONFLICT");
    expect(bad.decision.details["field"]).toBe("side");
  });
});

describe("idempotency gate: records journaled before this fingerprint", () => {
  it("given a record with the old fingerprint (created_at in it, no field hashes), then the very same order still replays", () => {
    const raw = rawOrder({ order_id: "L", idempotency_key: "kL", created_at: "2026-11-21T14:00:00Z" });
    const feed = new Feed().envelope();
    feed.decision({
      decision_id: "old-1",
      instance: "old",
      fund_id: FUND,
      at_ms: NOW,
      idempotency_key: "kL",
      fingerprint: legacyFingerprint(OrderSchema.parse(raw)),
      recorded: true,
      counted: true,
      replayed: false,
      decision: {
        order_id: "L",
        approved: false,
        rejecting_gate: "static",
        rejection_code: "MAX_ORDER_QTY_EXCEEDED",
        reason: "r",
        details: {},
        envelope_id: `${FUND}@v1`,
        decided_at: "2026-11-21T14:30:00.000Z",
      },
    });
    const { decide } = setup({ version: 2 }, feed);
    expect(decide(raw).decision).toMatchObject({
      rejection_code: "MAX_ORDER_QTY_EXCEEDED",
      details: { replayed: "true" },
    });
    const other = decide({ ...raw, quantity: "1" });
    expect(code(other)).toBe("idempotency/IDEMPOTENCY_CONFLICT");
    expect(other.decision.details["field"]).toBeUndefined(); // the old record cannot tell
  });
});

describe("idempotency gate: DUPLICATE_ORDER_ID", () => {
  it("given an order id decided under one key, when another key uses it, then DUPLICATE_ORDER_ID, recorded under the new key, owning nothing", () => {
    const { decide, feed } = setup();
    const first = decide(rawOrder({ order_id: "X", idempotency_key: "k1" }));
    expect(first.decision.approved).toBe(true);
    const dup = decide(rawOrder({ order_id: "X", idempotency_key: "k2", symbol: "MSFT", side: "SELL" }));
    expect(code(dup)).toBe("idempotency/DUPLICATE_ORDER_ID");
    expect(dup.record).toMatchObject({ recorded: true, counted: true });
    expect(dup.record.reservation).toBeUndefined();
    expect(feed.fund.books.get("MSFT")?.pendSellQty.toFixed() ?? "0").toBe("0");
    expect(feed.state.idem.owner(key2(FUND, "X"))?.key).toBe("k1");
    // k2 replays its rejection; k2 with another order id is a conflict, not a new claim
    expect(
      decide(rawOrder({ order_id: "X", idempotency_key: "k2", symbol: "MSFT", side: "SELL" })).decision,
    ).toMatchObject({ rejection_code: "DUPLICATE_ORDER_ID", details: { replayed: "true" } });
    expect(code(decide(rawOrder({ order_id: "Y", idempotency_key: "k2" })))).toBe(
      "idempotency/IDEMPOTENCY_CONFLICT",
    );
    expect(feed.state.idem.owner(key2(FUND, "Y")) !== undefined).toBe(false);
  });

  it("given a reused order id on a schema-invalid request, then the idempotency gate answers first", () => {
    const { decide } = setup();
    decide(rawOrder({ order_id: "X", idempotency_key: "k1" }));
    expect(code(decide(rawOrder({ order_id: "X", idempotency_key: "k2", quantity: "-1" })))).toBe(
      "idempotency/DUPLICATE_ORDER_ID",
    );
    // an order id the schema refuses (too long) is never matched on a prefix
    const long = "X".repeat(129);
    decide(rawOrder({ order_id: long.slice(0, 128), idempotency_key: "k3" }));
    expect(code(decide(rawOrder({ order_id: long, idempotency_key: "k4" })))).toBe("schema/SCHEMA_INVALID");
  });

  it("given an order id seen only in a fill, then a new order with it is DUPLICATE_ORDER_ID", () => {
    const feed = new Feed().fill("AAPL", "10", "100", { order_id: "F" });
    const { decide } = setup({}, feed);
    expect(code(decide(rawOrder({ order_id: "F" })))).toBe("idempotency/DUPLICATE_ORDER_ID");
    expect(feed.fund.books.get("AAPL")!.pendBuyQty.toFixed()).toBe("0");
  });

  it("given the idempotency window, then a rejected order's id is used until it ends and free after", () => {
    const { decide, feed, clock } = setup({ max_order_qty: "10" });
    expect(code(decide(rawOrder({ order_id: "R", idempotency_key: "k1", quantity: "11" })))).toBe(
      "static/MAX_ORDER_QTY_EXCEEDED",
    );
    sweepIdempotency(feed.state, NOW + DAY - 1);
    clock.set(NOW + DAY - 1);
    expect(code(decide(rawOrder({ order_id: "R", idempotency_key: "k2", quantity: "1" })))).toBe(
      "idempotency/DUPLICATE_ORDER_ID",
    );
    sweepIdempotency(feed.state, NOW + DAY);
    clock.set(NOW + DAY);
    expect(feed.state.idem.owner(key2(FUND, "R")) !== undefined).toBe(false);
    expect(decide(rawOrder({ order_id: "R", idempotency_key: "k3", quantity: "1" })).decision.approved).toBe(
      true,
    );
  });

  it("given an approved order still working past the idempotency window, then its id stays used", () => {
    const { decide, feed, clock } = setup();
    expect(decide(rawOrder({ order_id: "G", idempotency_key: "k1" })).decision.approved).toBe(true);
    feed.orderEvent("G", "accepted");
    clock.set(NOW + 3 * DAY);
    sweepIdempotency(feed.state, NOW + 3 * DAY);
    sweepReservations(feed.state, NOW + 3 * DAY);
    expect(code(decide(rawOrder({ order_id: "G", idempotency_key: "k1" })))).toBe(
      "idempotency/DUPLICATE_ORDER_ID",
    );
  });

  it("given an approval applied live but never journaled, when the engine restarts from its snapshot, then the OMS's retry is decided, not a duplicate", () => {
    const { decide, feed } = setup();
    expect(decide(rawOrder({ order_id: "C", idempotency_key: "kC" })).decision.approved).toBe(true);
    const snap = openSnapshot(join(dir, `snap-${++snapN}.db`));
    try {
      snap.flush(feed.state); // the crash: the record never reached the journal
      const restarted = setup({ version: 2 }, new Feed(snap.load()));
      expect(restarted.feed.state.orders.get(key2(FUND, "C"))?.approvals.size ?? 0).toBe(0);
      expect(restarted.decide(rawOrder({ order_id: "C", idempotency_key: "kC" })).decision.approved).toBe(
        true,
      );
      expect(code(restarted.decide(rawOrder({ order_id: "C", idempotency_key: "kC2" })))).toBe(
        "idempotency/DUPLICATE_ORDER_ID",
      );
    } finally {
      snap.close();
    }
  });

  it("given order ids, when the state is flushed to a snapshot and loaded, then they are still owned by their first key", () => {
    const { decide, feed } = setup({ max_order_qty: "10" });
    const decided = [
      decide(rawOrder({ order_id: "A", idempotency_key: "k1", quantity: "11" })),
      decide(rawOrder({ order_id: "A", idempotency_key: "k2" })),
    ];
    for (const e of decided) feed.decision(e.record); // read back from the journal: confirmed
    const snap = openSnapshot(join(dir, `snap-${++snapN}.db`));
    try {
      snap.flush(feed.state);
      const loaded = snap.load();
      expect(loaded.idem.owner(key2(FUND, "A"))?.key).toBe("k1");
      expect(stateDigest(loaded)).toBe(stateDigest(feed.state));
    } finally {
      snap.close();
    }
  });
});

describe("schema: the reserved fund id and the refdata asset class", () => {
  it("given fund `_`, then the order and the envelope are SCHEMA_INVALID and the fast path defers", () => {
    const raw = rawOrder({ fund_id: "_" });
    expect(fastParseOrder(raw)).toBeUndefined();
    expect(OrderSchema.safeParse(raw).success).toBe(false);
    expect(EnvelopeSchema.safeParse(envelope({}, "_")).success).toBe(false);
    // only the single `_` is reserved
    expect(fastParseOrder(rawOrder({ fund_id: "__" }))?.fund_id).toBe("__");
    expect(EnvelopeSchema.safeParse(envelope({}, "_a")).success).toBe(true);
    const { decide } = setup();
    const d = decide(raw);
    expect(code(d)).toBe("schema/SCHEMA_INVALID");
    expect(d.decision.details["path"]).toBe("fund_id");
    expect(d.record).toMatchObject({ fund_id: "_", recorded: false });
  });

  it("given refdata, then only an order stating another class is refused", () => {
    const crypto = InstrumentSchema.parse({ symbol: "BTC-USD", asset_class: "crypto" });
    expect(checkRefdataClass(order({ symbol: "BTC-USD", asset_class: "equity" }), crypto)).toMatchObject({
      code: "SCHEMA_INVALID",
      details: { path: "asset_class" },
    });
    expect(checkRefdataClass(order({ symbol: "BTC-USD", asset_class: "crypto" }), crypto)).toBeUndefined();
    expect(checkRefdataClass(order({ symbol: "BTC-USD" }), crypto)).toBeUndefined();
    expect(checkRefdataClass(order({ symbol: "NOREF", asset_class: "equity" }), undefined)).toBeUndefined();
  });

  it("given a refused class through the decider, then nothing is recorded, counted or reserved", () => {
    const feed = new Feed().instrument({ symbol: "BTC-USD", asset_class: "crypto" });
    const { decide } = setup({}, feed);
    const d = decide(rawOrder({ symbol: "BTC-USD", asset_class: "equity" }));
    expect(code(d)).toBe("schema/SCHEMA_INVALID");
    expect(d.record).toMatchObject({ recorded: false, counted: false });
    expect(d.record.reservation).toBeUndefined();
  });
});

describe("velocity history, whatever the envelope", () => {
  it("given no velocity limit, then decisions are still counted, for exactly VELOCITY_HISTORY_S", () => {
    const feed = new Feed().envelope();
    feed.counted("10", NOW).counted("20", NOW + 1);
    const w = feed.fund.velocity;
    expect(velocityUsage(w, NOW + 1, 60)).toMatchObject({ count: 2 });
    // a decision one history later prunes the first (at or before the cutoff) and keeps the second
    feed.counted("5", NOW + VELOCITY_HISTORY_S * 1000);
    const used = velocityUsage(w, NOW + VELOCITY_HISTORY_S * 1000, VELOCITY_HISTORY_S + 1);
    expect({ count: used.count, notional: canon(used.notional) }).toEqual({ count: 2, notional: "25" });
  });

  it("given an envelope window longer than the history, then the history follows it", () => {
    const feed = new Feed().envelope({ velocity: { window_s: 7200, max_orders: 10 } });
    feed.counted("1", NOW).counted("1", NOW + 5_000_000);
    expect(velocityUsage(feed.fund.velocity, NOW + 5_000_000, 7200).count).toBe(2);
  });

  it("given decisions added in any order, some twice, then every window's count and notional are the brute-force sums", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ id: fc.nat({ max: 40 }), n: fc.nat({ max: 1000 }) }), { maxLength: 60 }),
        fc.integer({ min: 0, max: 400 }),
        fc.integer({ min: 1, max: 300 }),
        (adds, now, windowS) => {
          const w = createVelocity();
          const kept = new Map<number, { at: number; n: number }>();
          for (const a of adds) {
            const at = NOW + (a.id % 20) * 10_000; // an id always comes with its time
            const added = addVelocity(w, `d-${a.id}`, at, dec(a.id * 7));
            expect(added).toBe(!kept.has(a.id));
            if (!kept.has(a.id)) kept.set(a.id, { at, n: a.id * 7 });
          }
          const t = NOW + now * 1000;
          const inWindow = [...kept.values()].filter((e) => e.at > t - windowS * 1000 && e.at <= t);
          const used = velocityUsage(w, t, windowS);
          expect({ count: used.count, notional: canon(used.notional) }).toEqual({
            count: inWindow.length,
            notional: String(inWindow.reduce((sum, e) => sum + e.n, 0)),
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("given per-second snapshot rows, when flushed, pruned, flushed and loaded, then the history survives and pruned rows are gone", () => {
    const feed = new Feed().envelope();
    const snap = openSnapshot(join(dir, `snap-${++snapN}.db`));
    try {
      feed
        .counted("1", NOW)
        .counted("2", NOW + 400)
        .counted("3", NOW + 1500);
      snap.flush(feed.state);
      let loaded = snap.load();
      expect(velocityUsage(loaded.funds.get(FUND)!.velocity, NOW + 1500, 60).count).toBe(3);
      feed.counted("4", NOW + VELOCITY_HISTORY_S * 1000 + 450); // prunes the first two
      snap.flush(feed.state);
      loaded = snap.load();
      const w = loaded.funds.get(FUND)!.velocity;
      const used = velocityUsage(w, NOW + VELOCITY_HISTORY_S * 1000 + 450, VELOCITY_HISTORY_S * 2);
      expect({ count: used.count, notional: canon(used.notional) }).toEqual({ count: 2, notional: "7" });
    } finally {
      snap.close();
    }
  });
});

describe("velocity rows a snapshot leaves on disk (read on first use)", () => {
  it("given a loaded snapshot, then a fund's window is read only when used, and a decision counted into one of its seconds is flushed with that second's earlier entries", () => {
    const feed = new Feed().envelope();
    const snap = openSnapshot(join(dir, `snap-${++snapN}.db`));
    try {
      feed
        .counted("1", NOW)
        .counted("2", NOW + 400)
        .counted("3", NOW + 1500);
      snap.flush(feed.state);
      const loaded = snap.load();
      const w = loaded.funds.get(FUND)!.velocity;
      expect(velocityOnDisk(w)).toBe(true);
      expect(w.at).toEqual([]);
      // a decision in the first second, before anything read the window
      const more = new Feed(loaded);
      more.decN = feed.decN; // and the streams' sequences go on from the first feed's
      for (const [stream, seq] of feed.seqs) more.seqs.set(stream, seq);
      more.counted("4", NOW + 700);
      expect(velocityOnDisk(w)).toBe(false);
      snap.flush(loaded);
      const reloaded = snap.load().funds.get(FUND)!.velocity;
      const used = velocityUsage(reloaded, NOW + 1500, 60);
      expect({ count: used.count, notional: canon(used.notional) }).toEqual({ count: 4, notional: "10" });
    } finally {
      snap.close();
    }
  });

  it("given a closed snapshot, when a window it left on disk is used, then the use fails and the window is still unread, never counted empty", () => {
    const feed = new Feed().envelope().counted("1", NOW);
    const snap = openSnapshot(join(dir, `snap-${++snapN}.db`));
    snap.flush(feed.state);
    const w = snap.load().funds.get(FUND)!.velocity;
    snap.close();
    expect(() => velocityUsage(w, NOW, 60)).toThrow(SnapshotError);
    expect(velocityOnDisk(w)).toBe(true);
    expect(() => velocityUsage(w, NOW, 60)).toThrow(SnapshotError);
  });

  it("given a closed snapshot, when an approval of a fund whose window it left on disk is applied, then nothing of it is (no idempotency record without its reservation)", () => {
    const feed = new Feed().envelope().counted("1", NOW);
    const snap = openSnapshot(join(dir, `snap-${++snapN}.db`));
    snap.flush(feed.state);
    const loaded = snap.load();
    snap.close();
    const more = new Feed(loaded);
    more.decN = feed.decN;
    for (const [stream, seq] of feed.seqs) more.seqs.set(stream, seq);
    // an approval counted for velocity (idempotency key "k-late"), applied as the follower would
    expect(() => more.reserve("late", "AAPL", "BUY", "10", "100", undefined, "1000")).toThrow(SnapshotError);
    expect(loaded.idem.get(key2(FUND, "k-late"))).toBeUndefined();
    expect(loaded.orders.has(key2(FUND, "late"))).toBe(false);
    expect(velocityOnDisk(loaded.funds.get(FUND)!.velocity)).toBe(true);
  });
});

describe("reservations: the TTL releases only what the OMS never acknowledged", () => {
  const pend = (f: Feed) => f.fund.books.get("AAPL")!.pendBuyQty.toFixed();
  const TTL_END = NOW + DAY; // Feed.reserve: expires_at_ms = NOW + 1 day

  it("given no acknowledgement, then it reserves until its TTL, inclusive of the last millisecond before", () => {
    const f = new Feed().envelope().reserve("o1", "AAPL", "BUY", "10", "100");
    sweepReservations(f.state, TTL_END - 1);
    expect(pend(f)).toBe("10");
    sweepReservations(f.state, TTL_END);
    expect(pend(f)).toBe("0");
  });

  it.each([
    ["accepted", (f: Feed) => f.orderEvent("o1", "accepted")],
    ["partly filled", (f: Feed) => f.fill("AAPL", "4", "100", { order_id: "o1" })],
  ])("given it was %s, then it reserves its rest past the TTL, until a terminal event", (_, ack) => {
    const f = ack(new Feed().envelope().reserve("o1", "AAPL", "BUY", "10", "100"));
    const rest = pend(f);
    sweepReservations(f.state, TTL_END + 30 * DAY);
    expect(pend(f)).toBe(rest);
    f.orderEvent("o1", "cancelled");
    expect(pend(f)).toBe("0");
    sweepReservations(f.state, TTL_END + 31 * DAY);
    expect(f.state.orders.has(key2(FUND, "o1"))).toBe(false); // forgotten a TTL after its end
  });

  it("given its last fill, then it reserves nothing and is forgotten in time", () => {
    const f = new Feed().envelope().reserve("o1", "AAPL", "BUY", "10", "100").orderEvent("o1", "accepted");
    sweepReservations(f.state, TTL_END + DAY);
    f.fill("AAPL", "10", "100", { order_id: "o1" });
    expect(pend(f)).toBe("0");
    sweepReservations(f.state, TTL_END + 3 * DAY);
    expect(f.state.orders.has(key2(FUND, "o1"))).toBe(false);
  });

  it("given an acknowledgement after the TTL released it, then it reserves again, as if it had come first", () => {
    const late = new Feed().envelope().reserve("o1", "AAPL", "BUY", "10", "100");
    sweepReservations(late.state, TTL_END + 1);
    expect(pend(late)).toBe("0");
    late.orderEvent("o1", "accepted");
    const early = new Feed()
      .envelope()
      .reserve("o1", "AAPL", "BUY", "10", "100")
      .orderEvent("o1", "accepted");
    sweepReservations(early.state, TTL_END + 1);
    expect(pend(late)).toBe("10");
    expect(stateDigest(late.state)).toBe(stateDigest(early.state));
  });

  it("given a lapsed order in a snapshot, when loaded, then it stays released until acknowledged", () => {
    const f = new Feed().envelope().reserve("o1", "AAPL", "BUY", "10", "100");
    sweepReservations(f.state, TTL_END + 1);
    const snap = openSnapshot(join(dir, `snap-${++snapN}.db`));
    try {
      snap.flush(f.state);
      const loaded = snap.load();
      expect(loaded.funds.get(FUND)?.books.get("AAPL")?.pendBuyQty.toFixed() ?? "0").toBe("0");
      expect(loaded.orders.get(key2(FUND, "o1"))?.lapsed).toBe(true);
      expect(stateDigest(loaded)).toBe(stateDigest(f.state));
      const acked = new Feed(loaded).orderEvent("o1", "accepted");
      expect(acked.fund.books.get("AAPL")!.pendBuyQty.toFixed()).toBe("10");
    } finally {
      snap.close();
    }
  });
});
