/**
 * Red team (idempotency, forms of "the same order"): CONTRACT.md "Messages": "The same order" for
 * idempotency means the same values of every field but `created_at` (a retry may be re-stamped);
 * an `IDEMPOTENCY_CONFLICT` names the first differing field in `details.field`. "Gates and
 * rejection codes": the idempotency record keeps every decision made on a schema-valid order
 * except the `engine` gate's (a retry is evaluated afresh).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";

describe("red team: forms of the same order under one key", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url);
    await bus.envelope(envelope("alpha", { max_order_qty: "1000" }));
    const s = await bus.envelope(envelope("beta", { max_order_qty: "10" }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
  }, 30_000);
  afterAll(async () => {
    await engine?.close();
    await nc?.close();
    await server?.stop();
  });

  it("decimal forms of one value, null for absent, an unknown field, a re-stamp: replays", async () => {
    const o = order({ quantity: "100", limit_price: "100", created_at: "2026-11-21T14:30:00Z" });
    const first = await bus.check(o);
    expect(first.approved).toBe(true);
    const forms: Record<string, unknown>[] = [
      { ...o, quantity: "100.0" },
      { ...o, quantity: 100 },
      { ...o, limit_price: "100.000" },
      { ...o, stop_price: null },
      { ...o, strategy_id: null },
      { ...o, note: "retry #2" },
      { ...o, created_at: "2026-11-21T14:30:05.5Z" },
      { ...o, reduce_only: false },
    ];
    for (const f of forms) {
      const d = await bus.check(f);
      expect({ form: f, code: d.rejection_code, replayed: d.details["replayed"] }).toEqual({
        form: f,
        code: "",
        replayed: "true",
      });
      expect(d.decided_at).toBe(first.decided_at);
    }
  });

  it("a retry differing only in a malformed created_at: not a conflict without a field", async () => {
    // Contract: "The same order" means every field but created_at; "an IDEMPOTENCY_CONFLICT names
    // the first differing field in details.field". A retry whose only difference is created_at
    // (here re-stamped in a form the schema refuses) is either the same order (replayed) or
    // SCHEMA_INVALID with details.path = "created_at". If the engine calls it a conflict, it must
    // still name a field.
    const o = order({ created_at: "2026-11-21T14:30:00Z" });
    expect((await bus.check(o)).approved).toBe(true);
    const d = await bus.check({ ...o, created_at: "21/11/2026 14:30" });
    if (d.rejection_code === "IDEMPOTENCY_CONFLICT") {
      expect(d.details["field"], JSON.stringify(d)).toBeDefined();
    } else if (d.rejection_code === "SCHEMA_INVALID") {
      expect(d.details["path"]).toBe("created_at");
    } else {
      expect(d.details["replayed"]).toBe("true");
    }
  });

  it("a schema-invalid first attempt is not recorded: the corrected order under its key is decided", async () => {
    const o = order();
    const bad = await bus.check({ ...o, quantity: "-5" });
    expect(bad.rejection_code).toBe("SCHEMA_INVALID");
    const good = await bus.check(o);
    expect(good.rejection_code).toBe("");
    expect(good.details["replayed"]).toBeUndefined();
    const again = await bus.check(o);
    expect(again.details["replayed"]).toBe("true");
  });

  it("an order id rejected under one key is DUPLICATE_ORDER_ID under another, and that answer replays", async () => {
    const o = order({ quantity: "5000" });
    const first = await bus.check(o);
    expect(first.rejection_code).toBe("MAX_ORDER_QTY_EXCEEDED");
    const again = await bus.check(o);
    expect(again.rejection_code).toBe("MAX_ORDER_QTY_EXCEEDED");
    expect(again.details["replayed"]).toBe("true");
    expect(again.details["limit"] ?? again.details["max_order_qty"] ?? "x").toBeDefined();
    const other = { ...o, idempotency_key: `${String(o["idempotency_key"])}-b`, quantity: "10" };
    const dup = await bus.check(other);
    expect(dup.rejection_code).toBe("DUPLICATE_ORDER_ID");
    expect(dup.rejecting_gate).toBe("idempotency");
    const dup2 = await bus.check(other);
    expect(dup2.rejection_code).toBe("DUPLICATE_ORDER_ID");
    expect(dup2.details["replayed"]).toBe("true");
  });

  it("IDEMPOTENCY_CONFLICT names the first differing field in the contract's order", async () => {
    const o = order();
    expect((await bus.check(o)).approved).toBe(true);
    const cases: [Record<string, unknown>, string][] = [
      [{ quantity: "101", symbol: "MSFT" }, "symbol"],
      [{ quantity: "101" }, "quantity"],
      [{ limit_price: "101", side: "SELL" }, "side"],
      [{ time_in_force: "GTC" }, "time_in_force"],
      [{ reduce_only: true }, "reduce_only"],
      [{ order_id: `${String(o["order_id"])}-x` }, "order_id"],
      [{ broker: "ibkr" }, "broker"],
      [{ locate_id: "loc-1" }, "locate_id"],
    ];
    for (const [diff, field] of cases) {
      const d = await bus.check({ ...o, ...diff });
      expect({ diff, code: d.rejection_code, field: d.details["field"] }).toEqual({
        diff,
        code: "IDEMPOTENCY_CONFLICT",
        field,
      });
    }
  });

  it("one key and one order id in two funds: two decisions, each fund's retry replays its own", async () => {
    const a = order({ quantity: "50" });
    const b = { ...a, fund_id: "beta" };
    const da = await bus.check(a);
    const db = await bus.check(b);
    expect([da.rejection_code, db.rejection_code]).toEqual(["", "MAX_ORDER_QTY_EXCEEDED"]);
    expect(db.envelope_id).toBe("beta@v1");
    const ra = await bus.check(a);
    const rb = await bus.check(b);
    expect([ra.rejection_code, ra.details["replayed"], ra.envelope_id]).toEqual(["", "true", "alpha@v1"]);
    expect([rb.rejection_code, rb.details["replayed"], rb.envelope_id]).toEqual([
      "MAX_ORDER_QTY_EXCEEDED",
      "true",
      "beta@v1",
    ]);
  });
});
