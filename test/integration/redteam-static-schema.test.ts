/**
 * Red-team pass on gate 2, schema (CONTRACT.md "Encoding", "Messages"): SCHEMA_INVALID with
 * details.path for odd JSON and protobuf inputs, valid odd-looking orders accepted, and the order
 * of gates 1 → 2 → engine → 3. One nats-server, one engine on a manual clock.
 */
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import type protobufT from "protobufjs";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { Subjects } from "../../src/contract/subjects.js";
import { decodeDecisionProto, encodeOrderProto } from "../../src/contract/codec.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

const protobuf = createRequire(import.meta.url)("protobufjs") as typeof protobufT;

type D = {
  approved: boolean;
  rejecting_gate: string;
  rejection_code: string;
  details: Record<string, string>;
};
const outcome = (d: D) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);

/** A hand-built protobuf Order: [field number, "s" string | "v" varint | "b" raw bytes, value]. */
type PbField = [number, "s" | "v" | "b", string | number | Uint8Array];
function pbOrder(fields: PbField[]): Uint8Array {
  const w = protobuf.Writer.create();
  for (const [tag, t, v] of fields) {
    if (t === "s") w.uint32((tag << 3) | 2).string(v as string);
    else if (t === "v") w.uint32((tag << 3) | 0).uint64(v as number);
    else w.uint32((tag << 3) | 2).bytes(v as Uint8Array);
  }
  return w.finish();
}
const utf8 = (s: string) => new TextEncoder().encode(s);
const bytes = (s: string, ...tail: number[]) => new Uint8Array([...utf8(s), ...tail]);

describe("red-team schema gate", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const F = "rtsc";

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await waitFor(() => applied(engine, "RISK_ENVELOPES", 0));
    const s = await bus.envelope(envelope(F, { max_open_orders: 1000 }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const pbRequest = async (body: Uint8Array, ct = "application/x-protobuf") => {
    const h = natsHeaders();
    h.set("Content-Type", ct);
    const m = await nc.request(Subjects.check, body, { timeout: 5000, headers: h });
    return { d: decodeDecisionProto(m.data), ct: m.headers?.get("Content-Type") };
  };

  it("JSON: odd values are SCHEMA_INVALID naming the field", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ quantity: "-1" }, "quantity"],
      [{ quantity: "0" }, "quantity"],
      [{ quantity: "0.000" }, "quantity"],
      [{ quantity: "1e3" }, "quantity"],
      [{ quantity: "1E3" }, "quantity"],
      [{ quantity: "1.0000000000000000001" }, "quantity"], // 19 fraction digits
      [{ quantity: "1".repeat(31) }, "quantity"],
      [{ quantity: 10.5 }, "quantity"],
      [{ quantity: 1e300 }, "quantity"],
      [{ quantity: "" }, "quantity"],
      [{ quantity: " 10" }, "quantity"],
      [{ quantity: "+10" }, "quantity"],
      [{ quantity: "10." }, "quantity"],
      [{ quantity: ".5" }, "quantity"],
      [{ quantity: "0x10" }, "quantity"],
      [{ quantity: "NaN" }, "quantity"],
      [{ quantity: true }, "quantity"],
      [{ quantity: null }, "quantity"],
      [{ quantity: undefined }, "quantity"],
      [{ limit_price: "0" }, "limit_price"],
      [{ limit_price: "-100" }, "limit_price"],
      [{ limit_price: 100.5 }, "limit_price"],
      [{ limit_price: undefined }, "limit_price"], // LIMIT needs one
      [{ order_type: "STOP", stop_price: undefined }, "stop_price"],
      [{ order_type: "STOP_LIMIT", stop_price: "1", limit_price: undefined }, "limit_price"],
      [{ side: "buy" }, "side"],
      [{ side: "Buy" }, "side"],
      [{ side: "SHORT" }, "side"],
      [{ order_type: "limit" }, "order_type"],
      [{ order_type: "STOP-LIMIT" }, "order_type"],
      [{ asset_class: "EQUITY" }, "asset_class"],
      [{ asset_class: "stock" }, "asset_class"],
      [{ broker: "" }, "broker"],
      [{ symbol: "" }, "symbol"],
      [{ symbol: "BRK.B" }, "symbol"],
      [{ symbol: "BTC/USD" }, "symbol"],
      [{ symbol: "A".repeat(65) }, "symbol"],
      [{ strategy_id: "" }, "strategy_id"],
      [{ strategy_id: "a.b" }, "strategy_id"],
      [{ order_id: "" }, "order_id"],
      [{ reduce_only: "false" }, "reduce_only"],
      [{ created_at: "yesterday" }, "created_at"],
      [{ fund_id: "_" }, "fund_id"],
    ];
    for (const [over, path] of cases) {
      const d = await bus.check(order({ fund_id: F, symbol: "SCA", ...over }));
      expect(`${JSON.stringify(over)} → ${outcome(d)} ${d.details["path"]}`).toBe(
        `${JSON.stringify(over)} → schema/SCHEMA_INVALID ${path}`,
      );
    }
  });

  it("JSON: valid odd-looking orders pass (unknown fields ignored, integers as numbers, 18 decimals, 30 digits)", async () => {
    const ok: Record<string, unknown>[] = [
      { unknown_field: { nested: [1, 2] }, Quantity: "1e99" },
      { quantity: 100, limit_price: 5 },
      { quantity: "0.000000000000000001" },
      { quantity: "1.000000000000000001" },
      { quantity: "10.50000" },
      { stop_price: null, strategy_id: null, asset_class: null, time_in_force: null, created_at: null },
      { time_in_force: "GTC", reduce_only: false, created_at: "2026-11-21T14:30:00.123Z" },
      { symbol: "BRK-B" },
      { symbol: "A".repeat(64) },
    ];
    for (const over of ok) {
      const d = await bus.check(order({ fund_id: F, symbol: "SCB", ...over }));
      expect(`${JSON.stringify(over)} → ${outcome(d)}`).toBe(`${JSON.stringify(over)} → approved`);
    }
  });

  it("JSON: not an object, not JSON, not UTF-8: SCHEMA_INVALID", async () => {
    for (const body of ["[]", "null", "42", '"order"', "{", ""]) {
      const d = await bus.check(body);
      expect(`${body} → ${outcome(d)}`).toBe(`${body} → schema/SCHEMA_INVALID`);
    }
    const o = JSON.stringify(order({ fund_id: F, symbol: "SCC" }));
    const bad = new Uint8Array([...utf8(o.slice(0, -1)), ...utf8(',"x":"'), 0xff, ...utf8('"}')]);
    expect(outcome(await bus.check(bad))).toBe("schema/SCHEMA_INVALID");
  });

  it("protobuf: odd bodies are SCHEMA_INVALID naming the field, answered in protobuf", async () => {
    const base: PbField[] = [
      [1, "s", "pb-odd-1"],
      [2, "s", "pb-odd-1"],
      [3, "s", F],
      [5, "s", "paper"],
      [6, "s", "SCD"],
      [8, "v", 1],
      [9, "v", 2],
      [10, "s", "10"],
      [11, "s", "5"],
    ];
    const without = (n: number) => base.filter((f) => f[0] !== n);
    const cases: [string, PbField[], string][] = [
      ["side 99", [...without(8), [8, "v", 99]], "side"],
      ["side 0", [...without(8), [8, "v", 0]], "side"],
      ["no side", without(8), "side"],
      ["order_type 99", [...without(9), [9, "v", 99]], "order_type"],
      ["quantity empty", [...without(10), [10, "s", ""]], "quantity"],
      ["quantity 1e3", [...without(10), [10, "s", "1e3"]], "quantity"],
      ["quantity -5", [...without(10), [10, "s", "-5"]], "quantity"],
      ["limit empty on LIMIT", [...without(11), [11, "s", ""]], "limit_price"],
      ["asset_class EQUITY", [...base, [17, "s", "EQUITY"]], "asset_class"],
      ["asset_class_enum 99", [...base, [7, "v", 99]], "asset_class"],
      ["asset_class both, differing", [...base, [17, "s", "equity"], [7, "v", 2]], "asset_class"],
      ["fund _", [...without(3), [3, "s", "_"]], "fund_id"],
      ["symbol BRK.B", [...without(6), [6, "s", "BRK.B"]], "symbol"],
    ];
    for (const [name, fields, path] of cases) {
      const { d, ct } = await pbRequest(pbOrder(fields));
      expect(`${name} → ${outcome(d)} ${d.details["path"]} ${ct}`).toBe(
        `${name} → schema/SCHEMA_INVALID ${path} application/x-protobuf`,
      );
    }
    // garbage bytes
    const { d } = await pbRequest(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]));
    expect(outcome(d)).toBe("schema/SCHEMA_INVALID");
    // and a good one, either media type
    for (const ct of ["application/x-protobuf", "application/protobuf"]) {
      const r = await pbRequest(encodeOrderProto(order({ fund_id: F, symbol: "SCD", quantity: "3" })), ct);
      expect(`${ct} → ${outcome(r.d)} ${r.ct}`).toBe(`${ct} → approved ${ct}`);
    }
  });

  /**
   * CONTRACT.md "Encoding": "JSON (UTF-8) … Protobuf and JSON are one contract"; protobuf string
   * fields are UTF-8 by definition (proto3 parsers must reject invalid UTF-8 in `string` fields).
   * README "Odd input": "a check body that is not UTF-8 is SCHEMA_INVALID … before, its bad bytes
   * became U+FFFD, so two different orders could read the same and the second be answered with the
   * first's decision". The protobuf path still does exactly that: protobufjs replaces an invalid
   * byte by U+FFFD (0xFF, 0xFE, 0xC0 all read as U+FFFD) or drops it (a lone 0x80), so two
   * different orders (different order ids and idempotency keys on the wire) read as one, and the
   * second is answered "approved, replayed" with the first's decision: the OMS routes two orders
   * while the engine reserved one.
   * Expected: SCHEMA_INVALID (as for JSON), or at least not the first order's approval.
   * Before the fix: approved, details.replayed = "true".
   */
  it("protobuf: a string field that is not UTF-8 is SCHEMA_INVALID, never read as another order", async () => {
    const fields = (idBytes: Uint8Array): PbField[] => [
      [1, "b", idBytes],
      [2, "b", idBytes],
      [3, "s", F],
      [5, "s", "paper"],
      [6, "s", "SCE"],
      [8, "v", 1],
      [9, "v", 2],
      [10, "s", "10"],
      [11, "s", "5"],
    ];
    // the JSON form of the same bytes is refused
    const jsonBad = new Uint8Array([
      ...utf8(`{"order_id":"pb-utf8-`),
      0xff,
      ...utf8(`","idempotency_key":"pb-utf8-`),
      0xff,
      ...utf8(
        `","fund_id":"${F}","broker":"paper","symbol":"SCE","side":"BUY","order_type":"LIMIT","quantity":"10","limit_price":"5"}`,
      ),
    ]);
    expect(outcome(await bus.check(jsonBad))).toBe("schema/SCHEMA_INVALID");

    const first = (await pbRequest(pbOrder(fields(bytes("pb-utf8-", 0xff))))).d;
    const second = (await pbRequest(pbOrder(fields(bytes("pb-utf8-", 0xfe))))).d;
    // neither may be approved as somebody else's order
    expect({ code: second.rejection_code, replayed: second.details["replayed"] }).toEqual({
      code: "SCHEMA_INVALID",
      replayed: undefined,
    });
    expect(outcome(first)).toBe("schema/SCHEMA_INVALID");
  });

  /**
   * Same contract sentences as above. A lone continuation byte 0x80 is dropped by protobufjs's
   * UTF-8 reader: order_id / idempotency_key "pb-drop-1" + 0x80 (bytes no valid UTF-8 string has)
   * read as "pb-drop-1", an order already approved, so this different request is answered with that
   * order's approval (details.replayed = "true") and reserves nothing.
   * Expected: SCHEMA_INVALID. Before the fix: approved, replayed.
   */
  it("protobuf: a dropped invalid byte makes another order's id (0x80 after a valid id)", async () => {
    const f = (id: Uint8Array, qty: string): PbField[] => [
      [1, "b", id],
      [2, "b", id],
      [3, "s", F],
      [5, "s", "paper"],
      [6, "s", "SCF"],
      [8, "v", 1],
      [9, "v", 2],
      [10, "s", qty],
      [11, "s", "5"],
    ];
    const good = (await pbRequest(pbOrder(f(utf8("pb-drop-1"), "10")))).d;
    expect(outcome(good)).toBe("approved");
    // a different byte string on the wire, "pb-drop-1" + 0x80
    const other = (await pbRequest(pbOrder(f(bytes("pb-drop-1", 0x80), "10")))).d;
    expect({ code: other.rejection_code, replayed: other.details["replayed"] }).toEqual({
      code: "SCHEMA_INVALID",
      replayed: undefined,
    });
  });

  it("gate order: idempotency before schema; schema (refdata class) before engine; engine before static", async () => {
    // a fund with no envelope: schema first
    const noEnv = await bus.check(order({ fund_id: "rtsc-none", symbol: "SCG", quantity: "-1" }));
    expect(outcome(noEnv)).toBe("schema/SCHEMA_INVALID");
    const noEnv2 = await bus.check(order({ fund_id: "rtsc-none", symbol: "SCG", broker: "nope" }));
    expect(outcome(noEnv2)).toBe("engine/NO_ENVELOPE");
    // refdata says crypto, the order says equity, and the fund has no envelope: SCHEMA_INVALID
    const r = await bus.instrument({ symbol: "SCCRY", asset_class: "crypto" });
    await waitFor(() => applied(engine, "REFDATA", r));
    const cls = await bus.check(order({ fund_id: "rtsc-none", symbol: "SCCRY", asset_class: "equity" }));
    expect(`${outcome(cls)} ${cls.details["path"]}`).toBe("schema/SCHEMA_INVALID asset_class");
    // an order id decided (rejected by static) under one key, reused under another key with a
    // schema-invalid body: DUPLICATE_ORDER_ID (gate 1) answers before SCHEMA_INVALID (gate 2)
    const first = order({ fund_id: F, symbol: "SCH", broker: "nope" });
    expect(outcome(await bus.check(first))).toBe("static/BROKER_NOT_ALLOWED");
    const reuse = await bus.check({ ...first, idempotency_key: "another-key", quantity: "-5" });
    expect(outcome(reuse)).toBe("idempotency/DUPLICATE_ORDER_ID");
    const reuse2 = await bus.check({ ...first, idempotency_key: "another-key-2" });
    expect(outcome(reuse2)).toBe("idempotency/DUPLICATE_ORDER_ID");
    // the same key with a schema-invalid body: IDEMPOTENCY_CONFLICT
    const conflict = await bus.check({ ...first, quantity: "-5" });
    expect(outcome(conflict)).toBe("idempotency/IDEMPOTENCY_CONFLICT");
  });

  it("a subject fund that differs from the order's fund is SCHEMA_INVALID at fund_id", async () => {
    const d = await bus.check(order({ fund_id: F, symbol: "SCI" }), Subjects.checkFund("other"));
    expect(`${outcome(d)} ${d.details["path"]}`).toBe("schema/SCHEMA_INVALID fund_id");
  });

  /**
   * CONTRACT.md "Messages": `time_in_force` is an optional Order field with no stated form or
   * length ("strategy_id, time_in_force, reduce_only, created_at are optional"); neither README nor
   * subjects/riskengine.proto documents a limit. The engine refuses any value over 16 characters
   * (src/contract/schemas.ts OrderSchema `time_in_force: opt(text(16))`, and fast-order.ts), so an
   * OMS using FIX's names ("ImmediateOrCancel", 17) or proto-style names ("IMMEDIATE_OR_CANCEL",
   * 19; "GOOD_TILL_CROSSING", 18) has every such valid order refused.
   * Expected: approved. Before the fix: SCHEMA_INVALID at time_in_force.
   */
  it("a valid order with a long time_in_force name is not refused", async () => {
    for (const tif of ["ImmediateOrCancel", "IMMEDIATE_OR_CANCEL", "GOOD_TILL_CROSSING"]) {
      const d = await bus.check(order({ fund_id: F, symbol: "SCT", time_in_force: tif }));
      expect(`${tif} → ${outcome(d)} ${d.details["path"] ?? ""}`).toBe(`${tif} → approved `);
    }
  });
});
