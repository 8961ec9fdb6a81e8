/**
 * The decision core without transport (src/service/decide.ts): idempotency, schema, the engine
 * gate, reservations and headroom, on a manual clock.
 */
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { canon, dec } from "../../src/decimal/index.js";
import { DETERMINISTIC_GATES, createPipeline } from "../../src/gates/index.js";
import { type CheckInput, type Evaluation, createDecider } from "../../src/service/decide.js";
import { key2 } from "../../src/state/index.js";
import { toWire } from "../../src/contract/wire.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW, NOW_ISO, order, rawOrder } from "./fixtures.js";
import { fingerprint } from "../../src/gates/idempotency.js";

/** envOver null: no envelope published. */
function setup(envOver: Record<string, unknown> | null = {}, ready = true) {
  const feed = new Feed();
  if (envOver !== null) feed.envelope(envOver);
  const clock = manualClock(NOW);
  let n = 0;
  let isReady = ready;
  const decider = createDecider({
    state: feed.state,
    pipeline: createPipeline(DETERMINISTIC_GATES),
    clock,
    instance: "t",
    ready: () => isReady,
    nextId: () => `dec-${++n}`,
  });
  const decide = (raw: unknown, extra: Omit<CheckInput, "raw"> = {}): Evaluation => {
    const out = decider.decide({ raw, ...extra });
    if (out instanceof Promise) throw new Error("the deterministic pipeline must decide synchronously");
    return out;
  };
  return {
    feed,
    clock,
    decider,
    decide,
    setReady: (r: boolean) => {
      isReady = r;
    },
  };
}

describe("idempotency", () => {
  it("given an approved order, when the same key and order arrive again, then the original decision is replayed with details.replayed", () => {
    const { decide, feed } = setup();
    const raw = rawOrder();
    const first = decide(raw);
    expect(first.decision.approved).toBe(true);
    expect(first.decision.envelope_id).toBe(`${FUND}@v1`);
    expect(first.decision.decided_at).toBe(NOW_ISO);
    const again = decide({ ...raw });
    expect(again.decision).toEqual({ ...first.decision, details: { replayed: "true" } });
    expect(again.replayOf).toBeDefined();
    expect(again.record).toMatchObject({ replayed: true, recorded: false, counted: false });
    expect(again.record.reservation).toBeUndefined();
    // the reservation is not taken twice
    expect(canon(feed.fund.books.get("AAPL")!.pendBuyQty)).toBe("100");
  });

  it("given a rejected order, when the same key and order arrive again, then the rejection is replayed", () => {
    const { decide } = setup({ max_order_qty: "10" });
    const raw = rawOrder({ quantity: "11" });
    const first = decide(raw);
    expect(first.decision.rejection_code).toBe("MAX_ORDER_QTY_EXCEEDED");
    const again = decide(raw);
    expect(again.decision).toEqual({
      ...first.decision,
      details: { ...first.decision.details, replayed: "true" },
    });
  });

  it("given a decided key, when a different order arrives with that key, then it is IDEMPOTENCY_CONFLICT and the original stays", () => {
    const { decide } = setup();
    const raw = rawOrder();
    const first = decide(raw);
    const other = decide({ ...raw, quantity: "101" });
    expect(other.decision).toMatchObject({
      approved: false,
      rejecting_gate: "idempotency",
      rejection_code: "IDEMPOTENCY_CONFLICT",
      details: { original_order_id: raw["order_id"], original_decided_at: first.decision.decided_at },
    });
    expect(other.record.recorded).toBe(false);
    expect(other.record.reservation).toBeUndefined();
    expect(decide(raw).decision.details["replayed"]).toBe("true");
  });

  it("given a decided key, when a schema-invalid request reuses it, then it is IDEMPOTENCY_CONFLICT", () => {
    const { decide } = setup();
    const raw = rawOrder();
    decide(raw);
    expect(decide({ ...raw, quantity: "-1" }).decision.rejection_code).toBe("IDEMPOTENCY_CONFLICT");
  });

  it("given a key used in fund alpha, when fund beta uses the same key, then beta's order is evaluated on its own", () => {
    const { decide, feed } = setup();
    feed.envelope({}, "beta");
    const raw = rawOrder();
    decide(raw);
    const beta = decide({ ...raw, fund_id: "beta", quantity: "5" });
    expect(beta.decision.approved).toBe(true);
    expect(beta.decision.details["replayed"]).toBeUndefined();
    expect(beta.decision.envelope_id).toBe("beta@v1");
  });

  it("given free-text fields holding a NUL, when another order moves it from one field to the next under the same key, then it is a conflict, never a replay", () => {
    const { decide } = setup();
    const first = rawOrder({ idempotency_key: "K", time_in_force: "DAY\u0000", locate_id: "X" });
    expect(decide(first).decision.approved).toBe(true);
    // joined with NUL, both read "DAY\0\0X": another order, same business text
    const other = decide({ ...first, time_in_force: "DAY", locate_id: "\u0000X" });
    expect(other.decision).toMatchObject({ approved: false, rejection_code: "IDEMPOTENCY_CONFLICT" });
    expect(other.replayOf).toBeUndefined();
    // and the very same order is still a replay
    expect(decide({ ...first }).replayOf).toBeDefined();
  });

  it("given an order without a NUL, its fingerprint is the one journaled records carry (they still replay)", () => {
    const o = order({
      order_id: "o-fixed",
      idempotency_key: "k-fixed",
      time_in_force: "DAY",
      locate_id: "L1",
    });
    expect(fingerprint(o)).toBe("68zNm2AG7bNswBpq8yen_9GVOvI");
  });
});

describe("schema", () => {
  it.each([[42], [null], [[]], ["a string"], [true]])(
    "given the non-object request %j, when decided, then it is SCHEMA_INVALID on fund _ and nothing is recorded",
    (raw) => {
      const { decide, feed } = setup();
      const e = decide(raw);
      expect(e.decision).toMatchObject({
        approved: false,
        rejecting_gate: "schema",
        rejection_code: "SCHEMA_INVALID",
        details: { path: "" },
        envelope_id: "",
      });
      expect(e.record).toMatchObject({ fund_id: "_", recorded: false, counted: false });
      expect(feed.state.idem.size).toBe(0);
    },
  );

  it("given an undecodable request, when decided, then it is SCHEMA_INVALID with the decode error", () => {
    const { decide } = setup();
    const e = decide(undefined, { decodeError: "not valid JSON" });
    expect(e.decision).toMatchObject({ rejection_code: "SCHEMA_INVALID", reason: "not valid JSON" });
  });

  it.each([
    ["quantity", { quantity: "0" }],
    ["quantity", { quantity: 1.5 }],
    ["side", { side: "HOLD" }],
    ["limit_price", { limit_price: undefined }],
    ["idempotency_key", { idempotency_key: undefined }],
  ])("given a bad %s, when decided, then SCHEMA_INVALID names it in details.path", (path, over) => {
    const { decide } = setup();
    const e = decide(rawOrder(over));
    expect(e.decision.rejection_code).toBe("SCHEMA_INVALID");
    expect(e.decision.details["path"]).toBe(path);
    expect(e.record.recorded).toBe(false);
  });

  it("given a schema-invalid order with a usable key, when fixed and retried with that key, then it is evaluated afresh", () => {
    const { decide } = setup();
    const raw = rawOrder();
    expect(decide({ ...raw, side: "HOLD" }).decision.rejection_code).toBe("SCHEMA_INVALID");
    const ok = decide(raw);
    expect(ok.decision.approved).toBe(true);
    expect(ok.decision.details["replayed"]).toBeUndefined();
  });

  it("given the partitioned subject of fund beta, when the order is for alpha, then it is SCHEMA_INVALID on fund_id", () => {
    const { decide } = setup();
    const e = decide(rawOrder(), { subjectFund: "beta" });
    expect(e.decision.rejection_code).toBe("SCHEMA_INVALID");
    expect(e.decision.details["path"]).toBe("fund_id");
  });
});

describe("engine gate (transient, not recorded)", () => {
  it("given no envelope, when an order arrives, then it is NO_ENVELOPE and a retry after the envelope is evaluated afresh", () => {
    const { decide, feed } = setup(null);
    const raw = rawOrder();
    const first = decide(raw);
    expect(first.decision).toMatchObject({
      approved: false,
      rejecting_gate: "engine",
      rejection_code: "NO_ENVELOPE",
    });
    expect(first.record.recorded).toBe(false);
    expect(feed.state.idem.has(key2(FUND, String(raw["idempotency_key"])))).toBe(false);
    feed.envelope();
    const retry = decide(raw);
    expect(retry.decision.approved).toBe(true);
    expect(retry.replayOf).toBeUndefined();
    expect(retry.decision.details["replayed"]).toBeUndefined();
  });

  it("given the state is not ready, when an order arrives, then it is STATE_NOT_READY and a retry when ready is evaluated afresh", () => {
    const { decide, setReady, feed } = setup({}, false);
    const raw = rawOrder();
    const first = decide(raw);
    expect(first.decision).toMatchObject({ rejecting_gate: "engine", rejection_code: "STATE_NOT_READY" });
    expect(first.record.recorded).toBe(false);
    expect(feed.fund.books.get("AAPL")?.pendBuyQty.toFixed() ?? "0").toBe("0");
    setReady(true);
    const retry = decide(raw);
    expect(retry.decision.approved).toBe(true);
    expect(retry.replayOf).toBeUndefined();
    // and now it is recorded: the next identical request is a replay
    expect(decide(raw).decision.details["replayed"]).toBe("true");
  });
  it("given the state is not ready and no envelope is known yet, when an order arrives, then it is STATE_NOT_READY, not NO_ENVELOPE", () => {
    const { decide } = setup({}, false);
    const raw = { ...rawOrder(), fund_id: "not-yet-applied" };
    const d = decide(raw);
    expect(d.decision).toMatchObject({ rejecting_gate: "engine", rejection_code: "STATE_NOT_READY" });
    expect(d.record.recorded).toBe(false);
  });
});

describe("the order as journaled", () => {
  it("given a conflicting retry with a deeply nested extra field, when decided, then the record keeps only the Order fields and serializes", () => {
    const { decide } = setup();
    const raw = rawOrder();
    expect(decide(raw).decision.approved).toBe(true);
    const deep = JSON.parse(`${"[".repeat(20_000)}${"]".repeat(20_000)}`) as unknown;
    const retry = { ...raw, quantity: "7", x_deep: deep };
    const e = decide(retry);
    expect(e.decision.rejection_code).toBe("IDEMPOTENCY_CONFLICT");
    expect(e.record.order).toEqual({ ...raw, quantity: "7" });
    expect(() => JSON.stringify(toWire(e.record))).not.toThrow();
  });
});

describe("reservations and headroom", () => {
  it("given an approved buy, when the next order is decided, then it sees the reservation", () => {
    // 1% of 1 000 000 = 10 000
    const { decide, feed } = setup({ max_position_pct: "0.01" });
    const first = decide(rawOrder({ quantity: "100", limit_price: "100" }));
    expect(first.decision.approved).toBe(true);
    expect(first.record.reservation).toMatchObject({ order_id: first.decision.order_id, side: "BUY" });
    expect(canon(feed.fund.books.get("AAPL")!.pendBuyValue)).toBe("10000");
    const second = decide(rawOrder({ quantity: "1", limit_price: "100" }));
    expect(second.decision.rejection_code).toBe("MAX_POSITION_EXCEEDED");
    expect(second.decision.details["resulting_notional"]).toBe("10100");
  });

  it("given a rejected order, when decided, then it reserves nothing", () => {
    const { decide, feed } = setup({ max_position_pct: "0.01" });
    const e = decide(rawOrder({ quantity: "101", limit_price: "100" }));
    expect(e.decision.approved).toBe(false);
    expect(e.record.reservation).toBeUndefined();
    expect(feed.fund.books.get("AAPL")?.pendBuyQty.toFixed() ?? "0").toBe("0");
  });

  it("given an approved buy, when it is cancelled, then its headroom is free again", () => {
    const { decide, feed } = setup({ max_position_pct: "0.01" });
    const first = decide(rawOrder({ quantity: "100", limit_price: "100" }));
    feed.orderEvent(first.decision.order_id, "cancelled");
    expect(decide(rawOrder({ quantity: "100", limit_price: "100" })).decision.approved).toBe(true);
  });

  it("given an approved buy, when it partly fills, then the filled part counts as position and the rest stays reserved", () => {
    const { decide, feed } = setup({ max_position_pct: "0.01" });
    const first = decide(rawOrder({ quantity: "100", limit_price: "50" })); // 5 000 reserved
    feed.fill("AAPL", "40", "50", { order_id: first.decision.order_id }); // 2 000 held, 3 000 reserved
    const b = feed.fund.books.get("AAPL")!;
    expect(canon(b.pendBuyQty)).toBe("60");
    expect(canon(b.contrib.longExt)).toBe("5000");
    expect(decide(rawOrder({ quantity: "1", limit_price: "5000" })).decision.approved).toBe(true);
    expect(decide(rawOrder({ quantity: "1", limit_price: "0.000000000000000001" })).decision.approved).toBe(
      false,
    );
  });

  it("given headroom for exactly 7 orders, when 20 orders arrive concurrently, then exactly 7 are approved", async () => {
    const { decider } = setup({ max_position_pct: "0.007" }); // 7 000
    const raws = Array.from({ length: 20 }, () => rawOrder({ quantity: "10", limit_price: "100" }));
    const out = await Promise.all(raws.map((raw) => Promise.resolve().then(() => decider.decide({ raw }))));
    expect(out.filter((e) => e.decision.approved)).toHaveLength(7);
    expect(new Set(out.filter((e) => !e.decision.approved).map((e) => e.decision.rejection_code))).toEqual(
      new Set(["MAX_POSITION_EXCEEDED"]),
    );
  });

  it("given headroom for exactly k orders, when n orders race, then exactly min(k, n) are approved", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 15 }),
        fc.integer({ min: 1, max: 25 }),
        fc.constantFrom("max_position_pct", "max_gross_exposure_pct", "max_net_exposure_pct"),
        async (k, n, limit) => {
          // each order is 1 234.5 of notional; the limit is k × 1 234.5 exactly (fraction of 1 000 000)
          const pct = canon(dec("1234.5").times(k).div(1_000_000));
          const { decider } = setup({ [limit]: pct });
          const raws = Array.from({ length: n }, () => rawOrder({ quantity: "2.5", limit_price: "493.8" }));
          const out = await Promise.all(
            raws.map((raw) => Promise.resolve().then(() => decider.decide({ raw }))),
          );
          expect(out.filter((e) => e.decision.approved)).toHaveLength(Math.min(k, n));
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe("velocity through the decider", () => {
  it("given max_orders 2 per second, when 3 orders arrive, then the 3rd is VELOCITY_EXCEEDED, replays do not count, rejections do, and the window slides", () => {
    const { decide, clock } = setup({ velocity: { window_s: 1, max_orders: 2 } });
    const a = rawOrder({ quantity: "1" });
    expect(decide(a).decision.approved).toBe(true);
    expect(decide(a).decision.details["replayed"]).toBe("true"); // not counted
    expect(decide(rawOrder({ quantity: "1" })).decision.approved).toBe(true);
    const third = decide(rawOrder({ quantity: "1" }));
    expect(third.decision.rejection_code).toBe("VELOCITY_EXCEEDED");
    clock.advance(999);
    expect(decide(rawOrder({ quantity: "1" })).decision.rejection_code).toBe("VELOCITY_EXCEEDED");
    clock.advance(1); // the first three are exactly 1 000 ms old: out of (now − 1 s, now]
    expect(decide(rawOrder({ quantity: "1" })).decision.approved).toBe(true);
    // the rejected order at +999 ms still counts: this is the 3rd in the window
    expect(decide(rawOrder({ quantity: "1" })).decision.rejection_code).toBe("VELOCITY_EXCEEDED");
  });

  it("given max_notional 1000 per second, when rejected orders are decided, then their notional counts too", () => {
    const { decide } = setup({ velocity: { window_s: 1, max_notional: "1000" }, max_order_qty: "5" });
    expect(decide(rawOrder({ quantity: "6", limit_price: "100" })).decision.rejection_code).toBe(
      "MAX_ORDER_QTY_EXCEEDED",
    ); // 600 counted
    expect(decide(rawOrder({ quantity: "4", limit_price: "100" })).decision.approved).toBe(true); // 1 000
    expect(
      decide(rawOrder({ quantity: "1", limit_price: "0.000000000000000001" })).decision.rejection_code,
    ).toBe("VELOCITY_EXCEEDED");
  });
});

describe("velocity with strategy overrides", () => {
  it("given a velocity limit set only in a strategy override, when that strategy sends 2 orders with max_orders 1, then the 2nd is VELOCITY_EXCEEDED", () => {
    const { decide } = setup({ strategies: { "mom-1": { velocity: { window_s: 10, max_orders: 1 } } } });
    expect(decide(rawOrder({ strategy_id: "mom-1", quantity: "1" })).decision.approved).toBe(true);
    expect(decide(rawOrder({ strategy_id: "mom-1", quantity: "1" })).decision.rejection_code).toBe(
      "VELOCITY_EXCEEDED",
    );
  });
});

describe("regressions found in review", () => {
  it("given a 1 s fund window and a 10 s mom-1 window of 2 orders, when a fund order decided in between prunes to 1 s, then mom-1 still sees every order of its 10 s", () => {
    const { decide, clock } = setup({
      velocity: { window_s: 1, max_orders: 100 },
      strategies: { "mom-1": { velocity: { window_s: 10, max_orders: 2 } } },
    });
    expect(decide(rawOrder({ strategy_id: "mom-1", quantity: "1" })).decision.approved).toBe(true); // t0
    clock.advance(2000);
    expect(decide(rawOrder({ quantity: "1" })).decision.approved).toBe(true); // t0 + 2 s, base limits
    clock.advance(1);
    // (t0 + 2.001 s − 10 s, t0 + 2.001 s] holds 2 orders of the fund: a 3rd is over max_orders 2
    expect(decide(rawOrder({ strategy_id: "mom-1", quantity: "1" })).decision.rejection_code).toBe(
      "VELOCITY_EXCEEDED",
    );
  });
});
