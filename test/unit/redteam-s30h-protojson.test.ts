/**
 * Red team, stop 30 (h): JSON and protobuf are one contract (CONTRACT.md "Encoding", "Messages").
 * A differential property test: the same order sent as JSON text, as protobuf bytes from the
 * engine's codec and as protobuf bytes built from subjects/riskengine.proto alone (protobufjs) gets
 * the same decision (order_id, approved, rejecting_gate, rejection_code, details, envelope_id) on
 * identical fresh states; a retry under the same key in the other encoding is replayed or a
 * conflict exactly as a retry in JSON is (same answer, details.field included).
 *
 * Documented differences, not generated (README "Protobuf and JSON are one contract", the
 * .proto's header, the CLI's `--protobuf` row): an empty string of an optional field other than
 * time_in_force (protobuf: absent; JSON: SCHEMA_INVALID), a JSON number that is not an exact
 * integer and a non-string value of a string field (protobufjs coerces them), the former enum
 * names (`SIDE_BUY`: protobuf parsers accept them), a name given twice (JSON only), field 7.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  type Body,
  Engine,
  type FieldValue,
  type Spec,
  answer,
  codecBytes,
  formerFieldBytes,
  handBytes,
  jsonBody,
  standardSetup,
} from "./redteam-s30h-support.js";

const SEED = 0x5e30_0008;

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

const num = (num: string, int: string): FieldValue => ({ num, int });

/** Decimals near the limits (qty 1000, notional 100 000, collar 5 % of 100) and odd forms. */
const decimalArb = (near: string[]): fc.Arbitrary<FieldValue> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...near) },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        "0",
        "0.0",
        "-0",
        "-1",
        "-100",
        "0.000000000000000001",
        "0.0000000000000000001",
        "1.000000000000000000",
        "1.0000000000000000001",
        "1e3",
        "1E3",
        "1e+3",
        "1e-3",
        "0.1e4",
        "01000",
        "00100.50",
        "000",
        "+100",
        " 100",
        "100 ",
        "1_000",
        "1,000",
        ".5",
        "5.",
        "0x10",
        "NaN",
        "Infinity",
        "-Infinity",
        "\u0661\u0660\u0660",
        "１００",
        "100000000000000000000000000000000000000",
        "99999999999999999999999999999999.999999999999999999",
        "1000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "",
      ),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        num("100", "100"),
        num("1000", "1000"),
        num("1e3", "1000"),
        num("1E+3", "1000"),
        num("1000.0", "1000"),
        num("1000.000", "1000"),
        num("10.0e2", "1000"),
        num("100000e-2", "1000"),
        num("-0", "0"),
        num("0", "0"),
        num("-5", "-5"),
        num("105", "105"),
        num("9007199254740991", "9007199254740991"),
      ),
    },
    { weight: 1, arbitrary: fc.constant(null) },
  );

const QTY = decimalArb([
  "1",
  "100",
  "200",
  "300",
  "1000",
  "1000.0",
  "999.999999999999999999",
  "1000.000000000000000001",
  "1001",
  "0.5",
  "200.000000000000000000",
  "20000",
]);
const PRICE = decimalArb([
  "100",
  "100.01",
  "105",
  "105.0000000000000001",
  "104.999999999999999999",
  "95",
  "94.99",
  "100.000000000000000000",
  "50000",
  "52500",
  "20",
  "1",
]);

const unicodeId = fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 });
const ORDER_ID = fc.oneof(
  fc.constantFrom(
    "ord-1",
    "o",
    "ÖRD-ü",
    "订单-1",
    "🚀-1",
    "a\u0000b",
    "\ufeffbom",
    "x".repeat(128),
    "y".repeat(129),
  ),
  unicodeId,
);
const KEY = fc.oneof(fc.constantFrom("k-1", "ключ", "\ufeffk", "k".repeat(256), "k".repeat(257)), unicodeId);
const FUND = fc.constantFrom<FieldValue>("alpha", "alpha", "alpha", "beta", "_", "al pha", "ALPHA", null, "");
const BROKER = fc.constantFrom<FieldValue>("paper", "paper", "ibkr", "nope", "pa/per", null, "");
const SYMBOL = fc.constantFrom<FieldValue>(
  "AAPL",
  "AAPL",
  "AAPL",
  "BTC-USD",
  "MSFT",
  "aapl",
  "BRK.B",
  "ÄAPL",
  "S".repeat(64),
  "S".repeat(65),
  null,
  "",
);
const SIDE = fc.constantFrom<FieldValue>(
  "BUY",
  "BUY",
  "SELL",
  "SELL",
  "buy",
  "HOLD",
  "SIDE_UNSPECIFIED",
  null,
  "",
);
const TYPE = fc.constantFrom<FieldValue>(
  "MARKET",
  "LIMIT",
  "LIMIT",
  "STOP",
  "STOP_LIMIT",
  "ICEBERG",
  "limit",
  "ORDER_TYPE_UNSPECIFIED",
  null,
  "",
);

/** Optional fields: undefined = absent. No "" (protobuf: absent; documented) but for time_in_force. */
const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 3, arbitrary: a });
const STRATEGY = opt(
  fc.constantFrom<FieldValue>("mom-1", "mom-1", "other", "mömentum", "m".repeat(65), null),
);
const ASSET = opt(fc.constantFrom<FieldValue>("equity", "crypto", "option", "fx", "EQUITY", "stock", null));
const TIF = opt(
  fc.constantFrom<FieldValue>(
    "DAY",
    "GTC",
    "",
    "ImmediateOrCancel",
    "t".repeat(64),
    "t".repeat(65),
    "日",
    null,
  ),
);
const REDUCE = opt(fc.constantFrom<FieldValue>(true, false, null));
const CREATED = opt(
  fc.constantFrom<FieldValue>(
    "2026-11-21T14:30:00Z",
    "2026-11-21T14:30:00.123456789Z",
    "2026-11-21T15:30:00+01:00",
    "2026-11-21T14:30:00.1234567890Z",
    "2026-11-21 14:30:00Z",
    "21/11/2026 14:30",
    "2026-13-45T99:99:99Z",
    "2026-02-30T00:00:00Z",
    null,
  ),
);
const LOCATE = opt(fc.constantFrom<FieldValue>("loc-1", "L".repeat(128), "L".repeat(129), "位置", null));

export const specArb: fc.Arbitrary<Spec> = fc
  .record({
    order_id: opt(ORDER_ID as fc.Arbitrary<FieldValue>),
    idempotency_key: opt(KEY as fc.Arbitrary<FieldValue>),
    fund_id: opt(FUND),
    strategy_id: STRATEGY,
    broker: opt(BROKER),
    symbol: opt(SYMBOL),
    asset_class: ASSET,
    side: opt(SIDE),
    order_type: opt(TYPE),
    quantity: opt(QTY),
    limit_price: opt(PRICE),
    stop_price: opt(PRICE),
    time_in_force: TIF,
    reduce_only: REDUCE,
    created_at: CREATED,
    locate_id: LOCATE,
  })
  .map((r) => {
    const s: Spec = {};
    for (const [k, v] of Object.entries(r)) if (v !== undefined) s[k] = v;
    // an optional decimal's "" is one of the documented differences
    for (const k of ["limit_price", "stop_price"]) if (s[k] === "") delete s[k];
    return s;
  });

/** Mostly valid orders: required fields present with their usual values, limit/stop per type. */
const validishArb: fc.Arbitrary<Spec> = fc
  .tuple(specArb, fc.constantFrom("MARKET", "LIMIT", "STOP", "STOP_LIMIT"), fc.constantFrom("BUY", "SELL"))
  .map(([s, type, side]) => {
    const o: Spec = {
      order_id: typeof s["order_id"] === "string" && s["order_id"] !== "" ? s["order_id"] : "ord-1",
      idempotency_key:
        typeof s["idempotency_key"] === "string" && s["idempotency_key"] !== ""
          ? s["idempotency_key"]
          : "k-1",
      fund_id: "alpha",
      broker: "paper",
      symbol: s["symbol"] === "BTC-USD" ? "BTC-USD" : "AAPL",
      side,
      order_type: type,
      quantity: s["quantity"] ?? "100",
      ...s,
    };
    o["fund_id"] = "alpha";
    o["broker"] = "paper";
    o["symbol"] = s["symbol"] === "BTC-USD" ? "BTC-USD" : "AAPL";
    const okText = (v: FieldValue | undefined, max: number) =>
      typeof v === "string" && v.length >= 1 && v.length <= max;
    if (!okText(o["order_id"], 128)) o["order_id"] = "ord-1";
    if (!okText(o["idempotency_key"], 256)) o["idempotency_key"] = "k-1";
    if (o["strategy_id"] !== "mom-1" && o["strategy_id"] !== "other") delete o["strategy_id"];
    if (o["asset_class"] !== undefined && o["asset_class"] !== null) {
      o["asset_class"] = o["symbol"] === "BTC-USD" ? "crypto" : "equity";
    }
    o["side"] = side;
    o["order_type"] = type;
    if (type === "LIMIT" || type === "STOP_LIMIT") o["limit_price"] ??= "100";
    if (type === "STOP" || type === "STOP_LIMIT") o["stop_price"] ??= "99";
    return o;
  });

export const anySpec = fc.oneof({ weight: 3, arbitrary: validishArb }, { weight: 2, arbitrary: specArb });

/** A permutation of the names (JSON key order is free). */
const withKeys = anySpec.chain((s) =>
  fc.tuple(fc.constant(s), fc.shuffledSubarray(Object.keys(s), { minLength: Object.keys(s).length })),
);

// ---------------------------------------------------------------------------------------------
// The differential
// ---------------------------------------------------------------------------------------------

const fresh = () => new Engine(standardSetup);

function protoBodies(spec: Spec): { name: string; body: Body }[] {
  const out = [
    { name: "protobuf (hand-built from the .proto)", body: { enc: "proto", bytes: handBytes(spec) } as Body },
  ];
  const c = codecBytes(spec);
  if (c) out.push({ name: "protobuf (engine codec)", body: { enc: "proto", bytes: c } });
  const f7 = formerFieldBytes(spec);
  if (f7) out.push({ name: "protobuf (former field 7)", body: { enc: "proto", bytes: f7 } });
  return out;
}

/** The retry's change to the first order. */
type Mutation =
  | { k: "same" }
  | { k: "restamp"; at: FieldValue | undefined }
  | { k: "set"; field: string; v: FieldValue | undefined }
  | { k: "reduceForm" };

/** Values a retry may give a field, of the field's own type (protobufjs coerces the others). */
const RETRY_VALUES: Record<string, (FieldValue | undefined)[]> = {
  quantity: [
    undefined,
    null,
    "1000.0",
    "1e3",
    { num: "1000", int: "1000" },
    "100",
    "100.000",
    "0100",
    "",
    "200",
  ],
  limit_price: [undefined, null, "100.0", "1e2", { num: "100", int: "100" }, "100", "0100", "101"],
  stop_price: [undefined, null, "99.0", "9.9e1", { num: "99", int: "99" }, "99", "98"],
  time_in_force: [undefined, null, "", "GTC", "DAY"],
  reduce_only: [undefined, null, true, false],
  locate_id: [undefined, null, "loc-1", "loc-2"],
  strategy_id: [undefined, null, "mom-1", "other"],
  asset_class: [undefined, null, "equity", "crypto"],
  side: [undefined, null, "BUY", "SELL", "HOLD"],
  order_type: [undefined, null, "MARKET", "LIMIT", "STOP", "ICEBERG"],
  symbol: ["AAPL", "BTC-USD", "MSFT"],
  order_id: ["ord-1", "ord-2"],
};

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ k: "same" }) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom<FieldValue | undefined>("2026-11-21T14:31:00Z", undefined, null, "21/11/2026 14:30")
      .map((at): Mutation => ({ k: "restamp", at })),
  },
  { weight: 1, arbitrary: fc.constant({ k: "reduceForm" }) },
  {
    weight: 4,
    arbitrary: fc
      .constantFrom(...Object.keys(RETRY_VALUES))
      .chain((field) =>
        fc.constantFrom(...RETRY_VALUES[field]!).map((v): Mutation => ({ k: "set", field, v })),
      ),
  },
);

function mutate(s: Spec, m: Mutation): Spec {
  const o: Spec = { ...s };
  if (m.k === "restamp") {
    if (m.at === undefined) delete o["created_at"];
    else o["created_at"] = m.at;
  } else if (m.k === "reduceForm") {
    if (o["reduce_only"] === false) delete o["reduce_only"];
    else if (o["reduce_only"] === undefined || o["reduce_only"] === null) o["reduce_only"] = false;
  } else if (m.k === "set") {
    if (m.v === undefined) delete o[m.field];
    else o[m.field] = m.v;
    // documented: an optional field's "" is absent in protobuf, SCHEMA_INVALID in JSON
    if (m.v === "" && m.field !== "time_in_force" && m.field !== "quantity") delete o[m.field];
  }
  return o;
}

const show = (x: unknown) => JSON.stringify(x, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v));

describe("red team s30h: JSON and protobuf are one contract (differential)", () => {
  it("the same order as JSON, codec protobuf and hand-built protobuf gets the same decision", () => {
    fc.assert(
      fc.property(withKeys, ([spec, keys]) => {
        const want = answer(fresh().check(jsonBody(spec, keys)));
        for (const { name, body } of protoBodies(spec)) {
          const got = answer(fresh().check(body));
          expect(got, `${name} vs JSON ${show(spec)}`).toEqual(want);
        }
      }),
      { seed: SEED, numRuns: 2000, endOnFailure: true },
    );
  });

  it("a retry in the other encoding is replayed or a conflict exactly as in JSON", () => {
    fc.assert(
      fc.property(anySpec, mutationArb, fc.boolean(), (first, m, useCodec) => {
        const second = mutate(first, m);
        const proto = (s: Spec): Body => {
          const c = useCodec ? codecBytes(s) : undefined;
          return { enc: "proto", bytes: c ?? handBytes(s) };
        };
        const run = (a: Body, b: Body) => {
          const e = fresh();
          const d1 = answer(e.check(a));
          return { d1, d2: answer(e.check(b)) };
        };
        const jj = run(jsonBody(first), jsonBody(second));
        const jp = run(jsonBody(first), proto(second));
        const pj = run(proto(first), jsonBody(second));
        const pp = run(proto(first), proto(second));
        const ctx = `first ${show(first)} retry ${show(second)}`;
        expect(jp.d2, `JSON then protobuf: ${ctx}`).toEqual(jj.d2);
        expect(pj.d2, `protobuf then JSON: ${ctx}`).toEqual(jj.d2);
        expect(pp.d2, `protobuf then protobuf: ${ctx}`).toEqual(jj.d2);
      }),
      { seed: SEED, numRuns: 1200, endOnFailure: true },
    );
  });

  // ------------------------------------------------------------------------------------------
  // Findings, shrunk (each asserts the contract's answer)
  // ------------------------------------------------------------------------------------------

  const base: Spec = {
    order_id: "ord-1",
    idempotency_key: "k-1",
    fund_id: "alpha",
    broker: "paper",
    symbol: "AAPL",
    side: "BUY",
    order_type: "MARKET",
    quantity: "100",
  };

  it('finding 1: a protobuf retry of a JSON order with time_in_force "" names the field that differs (locate_id)', () => {
    // JSON's time_in_force "" is the same order as no time_in_force (one fingerprint: a retry without
    // it replays); protobuf cannot send "" (absent). The retry changes locate_id only.
    const first: Spec = { ...base, time_in_force: "" };
    const retry: Spec = { ...first, locate_id: "loc-2" };
    const inJson = fresh();
    inJson.check(jsonBody(first));
    const jj = inJson.check(jsonBody(retry));
    expect(jj).toMatchObject({ rejection_code: "IDEMPOTENCY_CONFLICT", details: { field: "locate_id" } });
    for (const bytes of [handBytes(retry), codecBytes(retry)!]) {
      const e = fresh();
      e.check(jsonBody(first));
      const jp = e.check({ enc: "proto", bytes });
      // the contract: "an IDEMPOTENCY_CONFLICT names the first differing field in details.field"
      expect(answer(jp)).toEqual(answer(jj)); // stop 30: was details.field = "time_in_force"
    }
  });

  it('finding 1 (same cause, JSON alone): time_in_force "" then absent is no differing field', () => {
    const first: Spec = { ...base, time_in_force: "" };
    const e = fresh();
    e.check(jsonBody(first));
    // the same order without time_in_force is a replay: "" and absent are one value
    expect(e.check(jsonBody({ ...base })).details["replayed"]).toBe("true");
    const d = e.check(jsonBody({ ...base, reduce_only: true }));
    expect(d.rejection_code).toBe("IDEMPOTENCY_CONFLICT");
    expect(d.details["field"]).toBe("reduce_only"); // stop 30: was "time_in_force"
  });

  it("finding 2: an order id with a lone surrogate is SCHEMA_INVALID in both encodings", () => {
    // JSON text "ord-\ud800" (an escape, the body is valid UTF-8) reads as a string with a lone
    // surrogate; protobufjs (and the engine's encodeOrderProto) writes it as the bytes ED A0 80,
    // which the engine's fatal UTF-8 reader refuses. Fixed in stop 30: JSON refuses it too (at
    // order_id; protobuf cannot say which string held the bad bytes).
    const o: Spec = { ...base, order_id: "ord-\ud800" };
    const inJson = answer(fresh().check(jsonBody(o)));
    expect([inJson["rejection_code"], (inJson["details"] as Record<string, string>)["path"]]).toEqual([
      "SCHEMA_INVALID",
      "order_id",
    ]);
    for (const bytes of [handBytes(o), codecBytes(o)!]) {
      const inProto = answer(fresh().check({ enc: "proto", bytes }));
      expect([inProto["approved"], inProto["rejection_code"]]).toEqual([false, "SCHEMA_INVALID"]);
    }
  });
});
