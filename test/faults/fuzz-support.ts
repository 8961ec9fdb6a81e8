/**
 * Generators for the hostile-input fuzz suite (test/faults/fuzz.test.ts): check requests in JSON
 * and protobuf, and garbage and valid messages for every stream the engine consumes. Values that
 * must be rejected are built from the contract's rules (CONTRACT.md), not from the engine's zod
 * schemas, so that a schema that lets something through is caught.
 */
import fc from "fast-check";
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";
import {
  GATE_OF_CODE,
  HaltSeverity,
  OrderEventKind,
  TERMINAL_ORDER_EVENTS,
  type RejectionCode,
} from "../../src/contract/codes.js";
import { encodeOrderProto } from "../../src/contract/codec.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { Subjects, type StreamName } from "../../src/contract/subjects.js";
import { dec } from "../../src/decimal/index.js";
import type { EngineObserver } from "../../src/engine/observe.js";

export const ID_OK = /^[A-Za-z0-9_-]{1,64}$/;
const te = new TextEncoder();

/** How many fuzz inputs of each kind were tried. */
export class Tally {
  readonly counts = new Map<string, number>();
  add(kind: string, n = 1): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + n);
  }
  total(prefix: string): number {
    let n = 0;
    for (const [k, v] of this.counts) if (k.startsWith(prefix)) n += v;
    return n;
  }
  table(): string {
    return [...this.counts]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k.padEnd(44)} ${String(v).padStart(6)}`)
      .join("\n");
  }
}

/** Attach a readable form for fast-check's counterexample report to a builder function. */
function described<F extends object>(what: unknown, f: F): F {
  return Object.assign(f, { [fc.toStringMethod]: () => JSON.stringify(what) });
}

/** Deterministic pseudo-random bytes (xorshift32), for large payloads without shrinking cost. */
export function bytesOf(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed | 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

// ---------------------------------------------------------------- values

function scaled(units: number | bigint, scale: number): string {
  const s = String(units).padStart(scale + 1, "0");
  return scale === 0 ? s : `${s.slice(0, -scale)}.${s.slice(-scale)}`;
}
/** A positive decimal string with up to `maxScale` fraction digits, at most `max` in value. */
export const posDecimal = (max: number, maxScale: number) =>
  fc
    .integer({ min: 0, max: maxScale })
    .chain((s) => fc.bigInt({ min: 1n, max: BigInt(max) * 10n ** BigInt(s) }).map((u) => scaled(u, s)));
const anyDecimal = (max: number, maxScale: number) =>
  fc.tuple(fc.boolean(), posDecimal(max, maxScale)).map(([neg, d]) => (neg ? `-${d}` : d));

export const timestampArb = fc
  .date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2099-12-31T00:00:00Z"), noInvalidDate: true })
  .chain((d) => {
    const s = d.toISOString();
    return fc.constantFrom(s, s.replace(/\.\d{3}Z$/, "Z"), s.replace("Z", "+00:00"));
  });

const finiteDouble = fc.double({ noNaN: true, noDefaultInfinity: true });
/** JSON values that are neither strings nor null. */
const nonString = fc.oneof(
  fc.integer(),
  finiteDouble,
  fc.boolean(),
  fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
);
const BAD_ID_STRINGS = ["", "a.b", "a b", "a*", ">", "x".repeat(65), "ü", "BRK.B", "a/b", "\u0000", "a\nb"];
const badIdString = fc.oneof(
  fc.constantFrom(...BAD_ID_STRINGS),
  fc.string({ unit: "binary", maxLength: 70 }).filter((s) => !ID_OK.test(s)),
);
/** Decimal strings the contract refuses: no exponent, NaN, Infinity, hex, signs, separators, blanks. */
const BAD_DECIMAL_FORMAT = [
  "NaN",
  "-NaN",
  "Infinity",
  "-Infinity",
  "+Infinity",
  "1e3",
  "1E3",
  "1e-7",
  "0x10",
  "0b1",
  "+1",
  " 1",
  "1 ",
  "1,000",
  "1_000",
  ".5",
  "5.",
  "",
  "-",
  "--1",
  "1.2.3",
  "١٢٣",
  "１",
  "½",
  "null",
  "true",
  "1/2",
];
/** JSON numbers the contract refuses anywhere: not exactly representable integers. */
const BAD_DECIMAL_NUMBERS = [1e308, -1e308, 2 ** 53 + 1, -(2 ** 53) - 2, 0.5, 1.5e-10, 123.456];

export type Bound = "pos" | "nonneg" | "any";
/**
 * Values a decimal field with this bound must refuse. `wire` decimals are limited to 30 integer and
 * 18 fraction digits; the engine's own records (internal: exact products of wire values) to 300 and 300.
 */
export function badDecimal(bound: Bound, scope: "wire" | "internal" = "wire"): fc.Arbitrary<unknown> {
  const tooLong =
    scope === "wire"
      ? ["9".repeat(100), "1".repeat(31), `0.${"1".repeat(19)}`]
      : ["9".repeat(301), `0.${"1".repeat(301)}`];
  const signed =
    bound === "pos"
      ? ["0", "-0", "0.0", "-1", "-0.5", `-${"9".repeat(30)}`, 0, -0, -1, -(2 ** 31)]
      : bound === "nonneg"
        ? ["-1", "-0.000001", -1, -(2 ** 31)]
        : [];
  return fc.oneof(
    fc.constantFrom<unknown>(...BAD_DECIMAL_FORMAT, ...tooLong, ...BAD_DECIMAL_NUMBERS, ...signed),
    fc.constantFrom<unknown>(true, false, [], {}, ["1"], { value: "1" }),
    fc.string({ maxLength: 8 }).filter((s) => !/^-?\d+(\.\d+)?$/.test(s)),
  );
}
const BAD_TIMESTAMPS = [
  "yesterday",
  "2026-11-21",
  "2026-11-21 14:30:00Z",
  "2026-13-45T99:99:99Z",
  "2026-11-21T14:30:00",
  "21/11/2026",
  "",
  "2026-11-21T14:30:00.1234567890Z",
  "2026-11-21T14:30:00+0100",
  "NaN",
];
const badTimestamp = fc.oneof(fc.constantFrom<unknown>(...BAD_TIMESTAMPS), nonString);
const badEnum = (values: readonly string[]) =>
  fc
    .oneof(
      nonString,
      fc.string({ maxLength: 12 }),
      fc.constantFrom(
        ...values.flatMap((v) => [v.toLowerCase(), v.toUpperCase(), ` ${v}`, `${v}\u0000`, `${v}S`]),
      ),
    )
    .filter((v) => !(typeof v === "string" && values.includes(v)));
const badBool = fc.oneof(
  fc.constantFrom<unknown>("true", "false", 1, 0, "yes", [], {}),
  fc.integer(),
  fc.string({ maxLength: 5 }),
);

export type FieldType =
  | { t: "id" }
  | { t: "text"; max?: number; min1?: boolean }
  | { t: "dec"; bound: Bound; internal?: boolean }
  | { t: "ts" }
  | { t: "enum"; values: readonly string[] }
  | { t: "bool" }
  | { t: "int"; min?: number; max?: number }
  | { t: "array"; of: FieldType }
  | { t: "object" };
/** `req`: must be present; `nullish`: null means absent (else null is refused). */
export type Field = FieldType & { req?: boolean; nullish?: boolean };

/** A value the field must refuse. */
export function badValue(f: Field): fc.Arbitrary<unknown> {
  const arbs: fc.Arbitrary<unknown>[] = [];
  if (f.req || !f.nullish) arbs.push(fc.constant(null));
  switch (f.t) {
    case "id":
      arbs.push(nonString, badIdString);
      break;
    case "text":
      arbs.push(nonString);
      if (f.max !== undefined) arbs.push(fc.constant("x".repeat(f.max + 1)));
      if (f.min1) arbs.push(fc.constant(""));
      break;
    case "dec":
      arbs.push(badDecimal(f.bound, f.internal ? "internal" : "wire"));
      break;
    case "ts":
      arbs.push(badTimestamp);
      break;
    case "enum":
      arbs.push(badEnum(f.values));
      break;
    case "bool":
      arbs.push(badBool);
      break;
    case "int": {
      const bad: unknown[] = [1.5, "1", "7", true, [], {}, 1e308, -1e308, 2 ** 53 + 1];
      if (f.min !== undefined) bad.push(f.min - 1, f.min - 1000);
      if (f.max !== undefined) bad.push(f.max + 1);
      arbs.push(fc.constantFrom(...bad));
      break;
    }
    case "array":
      arbs.push(
        fc.constantFrom<unknown>("x", 1, {}, true),
        badValue({ ...f.of, req: true }).map((v) => [v]),
      );
      break;
    case "object":
      arbs.push(fc.constantFrom<unknown>("x", 1, [], true));
      break;
  }
  return fc.oneof(...arbs);
}

/** One field of a body replaced by a value it must refuse, or one required field removed. */
export function mutation(
  fields: Record<string, Field>,
): fc.Arbitrary<{ field: string; value?: unknown; drop?: true }> {
  const names = Object.keys(fields);
  const required = names.filter((n) => fields[n]?.req);
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .constantFrom(...names)
        .chain((field) => badValue(fields[field]!).map((value) => ({ field, value }))),
    },
    { weight: 1, arbitrary: fc.constantFrom(...required).map((field) => ({ field, drop: true as const })) },
  );
}
export function applyMutation(
  body: Record<string, unknown>,
  m: { field: string; value?: unknown; drop?: true },
): Record<string, unknown> {
  const out = { ...body };
  if (m.drop) delete out[m.field];
  else out[m.field] = m.value;
  return out;
}

/** Unknown fields: ignored by every schema. */
export const extraFields = fc.dictionary(
  fc.string({ maxLength: 8 }).map((k) => `x_${k}`),
  fc.jsonValue({ maxDepth: 2 }),
  { maxKeys: 3 },
);
/** JSON text of `body` with a `__proto__` own key and a deeply nested unknown field. */
export function hostileJsonText(body: Record<string, unknown>, depth: number): string {
  const nested = `${"[".repeat(depth)}${"]".repeat(depth)}`;
  return `{"__proto__":{"approved":true,"polluted":"yes"},"x_deep":${nested},${JSON.stringify(body).slice(1)}`;
}

// ---------------------------------------------------------------- check requests

export const ORDER_TYPES = ["MARKET", "LIMIT", "STOP", "STOP_LIMIT"] as const;
export const SIDES = ["BUY", "SELL"] as const;
export const ASSET_CLASSES = ["equity", "crypto", "option", "future", "fx"] as const;
/** Brokers the fuzz envelope allows. */
export const ALLOWED_BROKERS = ["paper", "ibkr"];
/** Symbols of the check fuzz: no quotes, no refdata (the stream fuzz uses FZ* symbols). */
const CHECK_SYMBOLS = ["AAPL", "MSFT", "BTC-USD", "BRK-B", "ES_F"] as const;
const CHECK_SYMBOL_CLASS: Record<(typeof CHECK_SYMBOLS)[number], (typeof ASSET_CLASSES)[number]> = {
  AAPL: "equity",
  MSFT: "equity",
  "BTC-USD": "crypto",
  "BRK-B": "equity",
  ES_F: "future",
};
/** The envelope the check fuzz runs against: approves every well-formed order below. */
export const CHECK_LIMITS = { max_order_qty: "10000", max_order_notional: "10000000", enable_shorting: true };

export interface Ids {
  orderId: string;
  key: string;
  /** The last approved order (for idempotency conflicts). */
  lastApproved: Record<string, unknown> | undefined;
}
export interface CheckCase {
  kind: string;
  proto: boolean;
  /** Partitioned subject token (mts.v1.risk.check.<token>); the plain subject when absent. */
  token?: string;
  /** approve, or reject (with the only acceptable codes when known). */
  expect: { approved: true } | { approved: false; codes?: readonly RejectionCode[] };
  build(ids: Ids): string | Uint8Array;
}

/** A well-formed order that the CHECK_LIMITS envelope approves, without its ids. */
export const goodOrder = fc
  .record({
    symbol: fc.constantFrom(...CHECK_SYMBOLS),
    broker: fc.constantFrom(...ALLOWED_BROKERS),
    side: fc.constantFrom(...SIDES),
    order_type: fc.constantFrom("LIMIT", "STOP_LIMIT"),
    quantity: fc.oneof(posDecimal(1000, 4), fc.integer({ min: 1, max: 1000 })),
    limit_price: posDecimal(1000, 4),
    stop_price: posDecimal(1000, 4),
    strategy_id: fc.option(fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/), { nil: undefined }),
    // stated or not, and then always the symbol's one class (a fund's book in a symbol without
    // refdata takes its class from its first approval; another class is SCHEMA_INVALID)
    asset_class: fc.option(fc.constant(true), { nil: undefined }),
    time_in_force: fc.option(fc.constantFrom("DAY", "GTC", "IOC", "FOK"), { nil: undefined }),
    reduce_only: fc.option(fc.constant(false), { nil: undefined }),
    created_at: fc.option(timestampArb, { nil: undefined }),
    locate_id: fc.stringMatching(/^loc-[a-z0-9]{1,10}$/),
  })
  .map((o) => {
    const out: Record<string, unknown> = { fund_id: "alpha", ...o };
    out["asset_class"] = o.asset_class ? CHECK_SYMBOL_CLASS[o.symbol] : undefined;
    if (o.order_type === "LIMIT") delete out["stop_price"];
    for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
    return out;
  });

const withIds = (o: Record<string, unknown>, ids: Ids) => ({
  order_id: ids.orderId,
  idempotency_key: ids.key,
  ...o,
});

/** Order fields and how the contract constrains them (the base order is a LIMIT without stop_price). */
const ORDER_FIELDS: Record<string, Field> = {
  order_id: { t: "text", max: 128, min1: true, req: true },
  idempotency_key: { t: "text", max: 256, min1: true, req: true },
  fund_id: { t: "id", req: true },
  strategy_id: { t: "id", nullish: true },
  broker: { t: "id", req: true },
  symbol: { t: "id", req: true },
  asset_class: { t: "enum", values: ASSET_CLASSES, nullish: true },
  side: { t: "enum", values: SIDES, req: true },
  order_type: { t: "enum", values: ORDER_TYPES, req: true },
  quantity: { t: "dec", bound: "pos", req: true },
  limit_price: { t: "dec", bound: "pos", req: true },
  stop_price: { t: "dec", bound: "pos", nullish: true },
  time_in_force: { t: "text", max: 64, nullish: true },
  reduce_only: { t: "bool", nullish: true },
  created_at: { t: "ts", nullish: true },
  locate_id: { t: "text", max: 128, min1: true, nullish: true },
};

/** Schema-valid but beyond CHECK_LIMITS, or naming what the envelope does not allow. */
const overLimit = fc.oneof(
  fc.record({
    field: fc.constant("quantity"),
    value: fc.constantFrom<unknown>("9".repeat(30), "10000.000000000000000001", "10001", 10001, 2 ** 53 - 1),
    code: fc.constant<RejectionCode>("MAX_ORDER_QTY_EXCEEDED"),
  }),
  fc.record({
    field: fc.constant("limit_price"),
    value: fc.constantFrom<unknown>("9".repeat(30), "1000000.000000000000000001", 2 ** 53 - 1),
    code: fc.constant<RejectionCode>("MAX_ORDER_NOTIONAL_EXCEEDED"),
  }),
  fc.record({
    field: fc.constant("broker"),
    value: fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/).filter((b) => !ALLOWED_BROKERS.includes(b)),
    code: fc.constant<RejectionCode>("BROKER_NOT_ALLOWED"),
  }),
  fc.record({
    field: fc.constant("fund_id"),
    // `_` is reserved (the journal's "no fund" token): SCHEMA_INVALID, tested with the schema cases
    value: fc
      .stringMatching(/^[A-Za-z0-9_-]{1,12}$/)
      .filter((f) => f !== "alpha" && f !== "_" && !f.startsWith("fz")),
    code: fc.constant<RejectionCode>("NO_ENVELOPE"),
  }),
);

const SCHEMA: readonly RejectionCode[] = ["SCHEMA_INVALID"];
const reject = (codes?: readonly RejectionCode[]) => ({
  approved: false as const,
  ...(codes ? { codes } : {}),
});

function jsonCase(
  kind: string,
  what: unknown,
  body: (ids: Ids) => string | Uint8Array,
  codes?: readonly RejectionCode[],
): CheckCase {
  return { kind, proto: false, expect: reject(codes), build: described(what, body) };
}

/** Protobuf tag + varint helpers for hand-made wire bytes. */
function varint(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}
const concat = (a: Uint8Array, b: number[]) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};
/** The base order's required fields only: any strict prefix of its encoding lacks limit_price. */
const BASE_ORDER = {
  fund_id: "alpha",
  broker: "paper",
  symbol: "AAPL",
  side: "BUY",
  order_type: "LIMIT",
  quantity: "10",
  limit_price: "10",
};

/** Every kind of check request the fuzz sends, with what the engine must answer. */
export const checkCase: fc.Arbitrary<CheckCase> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .uint8Array({ maxLength: 512 })
      .map((b) => jsonCase("json.random-bytes", b, () => b, SCHEMA)),
  },
  {
    weight: 3,
    arbitrary: fc
      .jsonValue({ maxDepth: 4 })
      .map((v) => jsonCase("json.arbitrary-value", v, () => JSON.stringify(v) ?? "", SCHEMA)),
  },
  {
    weight: 8,
    arbitrary: fc
      .tuple(mutation(ORDER_FIELDS), extraFields)
      .map(([m, extra]) =>
        jsonCase(
          m.drop ? `json.missing-field` : `json.bad-field`,
          m,
          (ids) => JSON.stringify({ ...extra, ...applyMutation(withIds(BASE_ORDER, ids), m) }),
          SCHEMA,
        ),
      ),
  },
  {
    weight: 2,
    arbitrary: overLimit.map((m) =>
      jsonCase(
        "json.over-limit",
        m,
        (ids) => JSON.stringify({ ...withIds(BASE_ORDER, ids), [m.field]: m.value }),
        [m.code],
      ),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 40 }).map((cut) =>
      jsonCase(
        "json.truncated",
        cut,
        (ids) => {
          const s = JSON.stringify(withIds(BASE_ORDER, ids));
          return s.slice(0, Math.max(0, s.length - cut));
        },
        SCHEMA,
      ),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constant(
      jsonCase(
        "json.idempotency-conflict",
        "same key, other content",
        (ids) => {
          const last = ids.lastApproved ?? withIds(BASE_ORDER, ids);
          return JSON.stringify({ ...last, quantity: "1000.5", junk: [1, 2] });
        },
        ["IDEMPOTENCY_CONFLICT"],
      ),
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .stringMatching(/^[A-Za-z0-9_-]{1,16}$/)
      .filter((t) => t !== "alpha")
      .map((token) => ({
        kind: "json.partition-mismatch",
        proto: false,
        token,
        expect: reject(SCHEMA),
        build: described(token, (ids: Ids) => JSON.stringify(withIds(BASE_ORDER, ids))),
      })),
  },
  {
    weight: 4,
    arbitrary: fc
      .tuple(goodOrder, extraFields, fc.boolean(), fc.boolean())
      .map(([o, extra, hostile, partitioned]) => ({
        kind: hostile ? "json.well-formed+proto-key+deep-nesting" : "json.well-formed+extra-fields",
        proto: false,
        ...(partitioned ? { token: "alpha" } : {}),
        expect: { approved: true as const },
        build: described(o, (ids: Ids) => {
          const body = { ...extra, ...withIds(o, ids) };
          return hostile ? hostileJsonText(body, 5000) : JSON.stringify(body);
        }),
      })),
  },
  {
    weight: 2,
    arbitrary: fc.uint8Array({ maxLength: 512 }).map((b) => ({
      kind: "proto.random-bytes",
      proto: true,
      expect: reject(SCHEMA),
      build: described(b, () => b),
    })),
  },
  {
    weight: 1,
    // bytes cut from the end: any strict prefix lacks a complete limit_price (the last field)
    arbitrary: fc.oneof(fc.integer({ min: 0, max: 7 }), fc.nat()).map((k) => ({
      kind: "proto.truncated",
      proto: true,
      expect: reject(SCHEMA),
      build: described(k, (ids: Ids) => {
        const full = encodeOrderProto(withIds(BASE_ORDER, ids));
        return full.subarray(0, full.length - 1 - (k % full.length));
      }),
    })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(7, 8, 9), fc.integer({ min: 6, max: 1_000_000 }))
      .map(([field, value]) => ({
        kind: "proto.unknown-enum-number",
        proto: true,
        expect: reject(SCHEMA),
        build: described({ field, value }, (ids: Ids) =>
          concat(encodeOrderProto(withIds(BASE_ORDER, ids)), [field << 3, ...varint(value)]),
        ),
      })),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 300 }).map((len) => ({
      kind: "proto.wrong-wire-type",
      proto: true,
      expect: reject(SCHEMA),
      // quantity (field 10, a string) sent as a varint at the end: the decoder reads past the end
      build: described(len, (ids: Ids) =>
        concat(encodeOrderProto(withIds(BASE_ORDER, ids)), [10 << 3, ...varint(len)]),
      ),
    })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom("quantity", "limit_price", "stop_price"),
        badDecimal("pos").filter((v) => typeof v === "string"),
      )
      // an empty string is an absent field in protobuf, and stop_price is optional on a LIMIT
      .filter(([field, value]) => !(field === "stop_price" && value === ""))
      .map(([field, value]) => ({
        kind: "proto.bad-decimal",
        proto: true,
        expect: reject(SCHEMA),
        build: described({ field, value }, (ids: Ids) =>
          encodeOrderProto({ ...withIds(BASE_ORDER, ids), [field]: value }),
        ),
      })),
  },
  {
    weight: 2,
    // Order uses fields 1-17 (17: asset_class as a string); 18 and up are unknown
    arbitrary: fc.tuple(goodOrder, fc.integer({ min: 18, max: 2000 })).map(([o, unknownField]) => ({
      kind: "proto.well-formed+unknown-field",
      proto: true,
      expect: { approved: true as const },
      build: described(o, (ids: Ids) =>
        concat(encodeOrderProto(withIds(o, ids)), [...varint(unknownField << 3), 1]),
      ),
    })),
  },
);

/** Requests over the 64 KiB limit and under the server's 1 MiB max_payload. */
export const bigCase = fc
  .record({
    size: fc.integer({ min: 64 * 1024 + 1, max: 1_000_000 }),
    mode: fc.constantFrom(
      "json.padded-order",
      "json.random-bytes",
      "proto.random-bytes",
      "proto.padded-order",
    ),
    seed: fc.integer(),
  })
  .map(({ size, mode, seed }): CheckCase => ({
    kind: `big.${mode}`,
    proto: mode.startsWith("proto"),
    expect: reject(SCHEMA),
    build: described({ size, mode }, (ids: Ids) => {
      if (mode.endsWith("random-bytes")) return bytesOf(size, seed);
      const o = withIds(BASE_ORDER, ids);
      if (mode === "proto.padded-order")
        return encodeOrderProto({ ...o, time_in_force: "", order_id: "x".repeat(size) });
      const s = JSON.stringify(o);
      return `${s.slice(0, -1)},"pad":"${"x".repeat(Math.max(0, size - s.length - 9))}"}`;
    }),
  }));

/** Throws unless `d` is a structured RiskDecision of the contract. */
export function assertDecision(d: unknown): RiskDecision {
  if (d === null || typeof d !== "object") throw new Error(`reply is not an object: ${JSON.stringify(d)}`);
  const o = d as Record<string, unknown>;
  for (const k of ["order_id", "rejecting_gate", "rejection_code", "reason", "envelope_id", "decided_at"]) {
    if (typeof o[k] !== "string") throw new Error(`reply.${k} is not a string: ${JSON.stringify(d)}`);
  }
  if (typeof o["approved"] !== "boolean")
    throw new Error(`reply.approved is not a boolean: ${JSON.stringify(d)}`);
  const details = o["details"];
  if (
    details === null ||
    typeof details !== "object" ||
    Object.values(details).some((v) => typeof v !== "string")
  ) {
    throw new Error(`reply.details is not a flat map of strings: ${JSON.stringify(d)}`);
  }
  const r = d as RiskDecision;
  if (!Number.isFinite(Date.parse(r.decided_at))) throw new Error(`bad decided_at: ${r.decided_at}`);
  if (r.approved) {
    if (r.rejection_code !== "" || r.rejecting_gate !== "")
      throw new Error(`approved with a code: ${JSON.stringify(d)}`);
  } else {
    const gate = GATE_OF_CODE[r.rejection_code as RejectionCode] as string | undefined;
    if (!gate) throw new Error(`rejection_code not in the contract: ${JSON.stringify(d)}`);
    if (r.rejecting_gate !== gate)
      throw new Error(`rejecting_gate ${r.rejecting_gate} for ${r.rejection_code}`);
  }
  return r;
}

// ---------------------------------------------------------------- streams

export interface Ctx {
  u: number;
  /** The envelope version a message should carry to take force (current + 1). */
  version: number;
  now: number;
}
export interface StreamMsg {
  subject: string;
  data: string | Uint8Array;
  msgID?: string;
}
export interface Garbage extends StreamMsg {
  kind: string;
}
export interface Valid {
  kind: string;
  msgs: StreamMsg[];
  /** The valid message's effect is visible in the engine state (read through Engine.observe). */
  visible: (s: EngineObserver) => boolean;
}
export type Build<T> = (ctx: Ctx) => T;

/** One message type of a consumed stream: its fields, a valid body, and a subject. */
export interface MessageDef {
  stream: StreamName;
  label: string;
  fields: Record<string, Field>;
  base(ctx: Ctx): Record<string, unknown>;
  subject(ctx: Ctx): string;
  valid: fc.Arbitrary<Build<Valid>>;
  /** Garbage only this message type has. */
  special?: fc.Arbitrary<Build<Garbage>>;
}

const isoNow = (ctx: Ctx, jitterMs = 0) => new Date(ctx.now - jitterMs).toISOString();

/** Objects without the keys every consumed schema requires one of: never valid. */
const foreignObject = fc
  .dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 })
  .filter((o) => !("fund_id" in o) && !("symbol" in o) && !("decision_id" in o));

/** Garbage any message type gets: bytes, non-objects, mutated and truncated bodies, ~1 MB payloads. */
export function garbage(def: MessageDef): fc.Arbitrary<Build<Garbage>> {
  const g = (kind: string, what: unknown, f: (ctx: Ctx) => string | Uint8Array) =>
    described(what, (ctx: Ctx): Garbage => ({ kind, subject: def.subject(ctx), data: f(ctx) }));
  const arbs: { weight: number; arbitrary: fc.Arbitrary<Build<Garbage>> }[] = [
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 256 }).map((b) => g("random-bytes", b, () => b)) },
    {
      weight: 2,
      arbitrary: fc
        .oneof(
          fc
            .jsonValue({ maxDepth: 3 })
            .filter((v) => v === null || typeof v !== "object" || Array.isArray(v)),
          foreignObject,
        )
        .map((v) => g("json-not-the-message", v, () => JSON.stringify(v))),
    },
    {
      weight: 8,
      arbitrary: fc
        .tuple(mutation(def.fields), extraFields)
        .map(([m, extra]) =>
          g(m.drop ? "missing-field" : "bad-field", m, (ctx) =>
            JSON.stringify({ ...extra, ...applyMutation(def.base(ctx), m) }),
          ),
        ),
    },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 1, max: 30 }).map((cut) =>
        g("truncated-json", cut, (ctx) => {
          const s = JSON.stringify(def.base(ctx));
          return s.slice(0, s.length - cut);
        }),
      ),
    },
    {
      weight: 1,
      arbitrary: mutation(def.fields).map((m) =>
        g("deep-nesting+bad-field", m, (ctx) => hostileJsonText(applyMutation(def.base(ctx), m), 20_000)),
      ),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: 900_000, max: 1_000_000 }), fc.boolean(), mutation(def.fields))
        .map(([size, bytes, m]) =>
          g(bytes ? "1MB-random-bytes" : "1MB-bad-field", { size, m }, (ctx) => {
            if (bytes) return bytesOf(size, ctx.u);
            const s = JSON.stringify(applyMutation(def.base(ctx), m));
            return `${s.slice(0, -1)},"x_pad":"${"x".repeat(size - s.length - 12)}"}`;
          }),
        ),
    },
  ];
  if (def.special) arbs.push({ weight: 6, arbitrary: def.special });
  return fc.oneof(...arbs);
}

export const byteLength = (d: string | Uint8Array) =>
  typeof d === "string" ? te.encode(d).length : d.length;

/**
 * Every message of `stream` on subjects matching `filter`, parsed as JSON. Reads with an ordered
 * consumer until nothing is pending.
 */
export async function readAll<T>(
  js: JetStreamClient,
  stream: string,
  filter: string,
): Promise<{ subject: string; seq: number; data: T }[]> {
  const jsm = await js.jetstreamManager();
  const info = await jsm.streams.info(stream, { subjects_filter: filter });
  const total = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  if (total === 0) return [];
  const c = await js.consumers.get(stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.All });
  const out: { subject: string; seq: number; data: T }[] = [];
  const iter = await c.consume({ max_messages: 512 });
  for await (const m of iter) {
    out.push({ subject: m.subject, seq: m.seq, data: m.json<T>() });
    if (m.info.pending === 0) break;
  }
  await iter.close();
  return out;
}

// ---------------------------------------------------------------- the consumed message types

const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
/** Drop undefined members (absent optional fields). */
function clean(o: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}
function validOf<P>(kind: string, arb: fc.Arbitrary<P>, build: (p: P, ctx: Ctx) => Omit<Valid, "kind">) {
  return arb.map((p) => described(p, (ctx: Ctx): Valid => ({ kind, ...build(p, ctx) })));
}
const qtyOrInt = fc.oneof(
  posDecimal(1e12, 6),
  fc.bigInt({ min: 1n, max: BigInt(Number.MAX_SAFE_INTEGER) }).map(Number),
);
const text = (max: number) => fc.string({ maxLength: max });
const idArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/);
const fundOf = (s: EngineObserver, f: string) => s.fund(f);

export const FILLS: MessageDef = {
  stream: "FILLS",
  label: "fill",
  fields: {
    fill_id: { t: "text", max: 256, min1: true, req: true },
    order_id: { t: "text", max: 128, min1: true, req: true },
    fund_id: { t: "id", req: true },
    strategy_id: { t: "id", nullish: true },
    broker: { t: "id", req: true },
    symbol: { t: "id", req: true },
    side: { t: "enum", values: SIDES, req: true },
    quantity: { t: "dec", bound: "pos", req: true },
    price: { t: "dec", bound: "nonneg", req: true }, // 0: a transfer in (CONTRACT.md)
    fees: { t: "dec", bound: "any" },
    venue: { t: "text", max: 64, nullish: true },
    timestamp: { t: "ts", req: true },
    kind: { t: "enum", values: ["TRADE", "ADJUSTMENT"], nullish: true },
  },
  base: (c) => ({
    fill_id: `fzf-g-${c.u}`,
    order_id: `fzo-${c.u}`,
    fund_id: "fz-fills",
    broker: "paper",
    symbol: `FZF${c.u}`,
    side: "BUY",
    quantity: "1",
    price: "1",
    fees: "0",
    timestamp: isoNow(c),
  }),
  subject: (c) => Subjects.fill("fz-fills", `FZG${c.u}`),
  valid: validOf(
    "fill",
    fc.record({
      side: fc.constantFrom(...SIDES),
      quantity: qtyOrInt,
      price: posDecimal(1e9, 6),
      fees: opt(anyDecimal(1e6, 4)),
      venue: opt(text(64)),
      strategy_id: opt(idArb),
      kind: opt(fc.constantFrom("TRADE", "ADJUSTMENT")),
      extra: extraFields,
    }),
    ({ extra, ...p }, c) => {
      const symbol = `FZF${c.u}`;
      const fill_id = `fzf-${c.u}`;
      const body = clean({
        ...extra,
        ...p,
        fill_id,
        order_id: `fzo-${c.u}`,
        fund_id: "fz-fills",
        broker: "ibkr",
        symbol,
        timestamp: isoNow(c, 1000),
      });
      const q = p.side === "BUY" ? dec(p.quantity) : dec(p.quantity).neg();
      return {
        msgs: [{ subject: Subjects.fill("fz-fills", symbol), data: JSON.stringify(body), msgID: fill_id }],
        visible: (s) => {
          const held = s.book("fz-fills", symbol)?.qty;
          return held !== undefined && dec(held).eq(q);
        },
      };
    },
  ),
};

export const QUOTES: MessageDef = {
  stream: "QUOTES",
  label: "quote",
  fields: {
    symbol: { t: "id", req: true },
    bid: { t: "dec", bound: "nonneg", req: true }, // one side at 0 is a one-sided market (valid)
    ask: { t: "dec", bound: "nonneg", req: true },
    bid_size: { t: "dec", bound: "nonneg", nullish: true },
    ask_size: { t: "dec", bound: "nonneg", nullish: true },
    venue: { t: "text", max: 64, nullish: true },
    timestamp: { t: "ts", req: true },
  },
  base: (c) => ({ symbol: `FZQ${c.u}`, bid: "1", ask: "2", timestamp: isoNow(c) }),
  subject: (c) => Subjects.quote(`FZG${c.u}`),
  special: fc.tuple(fc.integer({ min: 2, max: 1e9 }), fc.integer({ min: 0, max: 4 })).map(([units, scale]) =>
    described({ units, scale }, (c: Ctx): Garbage => ({
      kind: "crossed-quote",
      subject: Subjects.quote(`FZG${c.u}`),
      data: JSON.stringify({
        symbol: `FZQ${c.u}`,
        bid: scaled(units, scale),
        ask: scaled(units - 1, scale),
        timestamp: isoNow(c),
      }),
    })),
  ),
  valid: validOf(
    "quote",
    fc.record({
      bid: fc.integer({ min: 1, max: 1e12 }),
      spread: fc.integer({ min: 0, max: 1e6 }),
      scale: fc.integer({ min: 0, max: 8 }),
      bid_size: opt(posDecimal(1e6, 2)),
      venue: opt(text(64)),
      timestamp: timestampArb,
      extra: extraFields,
    }),
    ({ extra, bid, spread, scale, ...p }, c) => {
      const symbol = `FZQ${c.u}`;
      const b = scaled(bid, scale);
      const body = clean({ ...extra, ...p, symbol, bid: b, ask: scaled(bid + spread, scale) });
      return {
        msgs: [{ subject: Subjects.quote(symbol), data: JSON.stringify(body) }],
        visible: (s) => {
          const bid = s.mark(symbol)?.bid;
          return bid !== undefined && dec(bid).eq(dec(b));
        },
      };
    },
  ),
};

export const REFDATA: MessageDef = {
  stream: "REFDATA",
  label: "instrument",
  fields: {
    symbol: { t: "id", req: true },
    asset_class: { t: "enum", values: ASSET_CLASSES, req: true },
    sector: { t: "text", max: 64, min1: true, nullish: true },
    shortable: { t: "bool", nullish: true },
    borrow_fee_bps: { t: "dec", bound: "nonneg", nullish: true },
    multiplier: { t: "dec", bound: "pos", nullish: true },
  },
  base: (c) => ({ symbol: `FZR${c.u}`, asset_class: "equity" }),
  subject: (c) => Subjects.instrument(`FZG${c.u}`),
  valid: validOf(
    "instrument",
    fc.record({
      asset_class: fc.constantFrom(...ASSET_CLASSES),
      sector: opt(fc.string({ minLength: 1, maxLength: 64 })),
      shortable: opt(fc.boolean()),
      borrow_fee_bps: opt(posDecimal(1000, 2)),
      multiplier: opt(posDecimal(1000, 2)),
      extra: extraFields,
    }),
    ({ extra, ...p }, c) => {
      const symbol = `FZR${c.u}`;
      return {
        msgs: [
          { subject: Subjects.instrument(symbol), data: JSON.stringify(clean({ ...extra, ...p, symbol })) },
        ],
        visible: (s) => s.instrumentOf(symbol)?.asset_class === p.asset_class,
      };
    },
  ),
};

const pctArb = posDecimal(3, 4);
const limitsArb = fc.record({
  allowed_brokers: opt(fc.uniqueArray(idArb, { maxLength: 3 })),
  allowed_order_types: opt(fc.subarray([...ORDER_TYPES])),
  allowed_asset_classes: opt(fc.subarray([...ASSET_CLASSES])),
  max_order_notional: opt(posDecimal(1e9, 2)),
  max_order_qty: opt(fc.oneof(posDecimal(1e6, 2), fc.constant("0"))),
  max_position_pct: opt(pctArb),
  max_gross_exposure_pct: opt(pctArb),
  max_net_exposure_pct: opt(pctArb),
  max_sector_pct: opt(pctArb),
  max_asset_class_pct: opt(fc.dictionary(fc.constantFrom(...ASSET_CLASSES), pctArb, { maxKeys: 3 })),
  daily_loss_halt_pct: opt(pctArb),
  enable_shorting: opt(fc.boolean()),
  max_borrow_fee_bps: opt(posDecimal(1000, 0)),
  price_collar_pct: opt(pctArb),
  max_quote_age_ms: opt(fc.integer({ min: 0, max: 86_400_000 })),
  restricted_symbols: opt(fc.uniqueArray(idArb, { maxLength: 3 })),
  velocity: opt(
    fc.record({
      window_s: fc.integer({ min: 1, max: 86_400 }),
      max_orders: opt(fc.nat(1000)),
      max_notional: opt(posDecimal(1e9, 2)),
    }),
  ),
});

/** Envelopes with nonsense limits: each must be rejected whole (the version in force stays). */
export const NONSENSE_LIMITS: Record<string, unknown>[] = [
  { max_position_pct: "-0.10" },
  { max_position_pct: -1 },
  { max_gross_exposure_pct: "-1.5" },
  { daily_loss_halt_pct: "-0.03" },
  { price_collar_pct: "Infinity" },
  { max_order_notional: "1e6" },
  { max_order_qty: "9".repeat(100) },
  { max_order_qty: 1e308 },
  { version: 0 },
  { version: -1 },
  { version: 1.5 },
  { version: "7" },
  { version: 2 ** 53 },
  { version: null },
  { capital: "0" },
  { capital: "-1000000" },
  { capital: "NaN" },
  { capital: 1e308 },
  { capital: null },
  { max_quote_age_ms: "5000" },
  { max_quote_age_ms: -1 },
  { max_quote_age_ms: 1.5 },
  { velocity: { window_s: 0, max_orders: 5 } },
  { velocity: { window_s: "1" } },
  { velocity: { window_s: 1, max_orders: -1 } },
  { velocity: { window_s: 86_401 } },
  { velocity: { window_s: 1, max_notional: "-5" } },
  { velocity: null },
  { allowed_order_types: ["ICEBERG"] },
  { allowed_brokers: ["bad broker"] },
  { allowed_brokers: "paper" },
  { allowed_asset_classes: ["stocks"] },
  { max_asset_class_pct: { stocks: "0.1" } },
  { max_asset_class_pct: { crypto: "-0.2" } },
  { strategies: { "bad id!": {} } },
  { strategies: { s1: { max_position_pct: "-1" } } },
  { strategies: { s1: { velocity: { window_s: 0 } } } },
  { enable_shorting: "yes" },
  { restricted_symbols: ["BRK.B"] },
  { fund_id: "fz env" },
];

export const ENVELOPE_FUND = "fz-env";
export const RISK_ENVELOPES: MessageDef = {
  stream: "RISK_ENVELOPES",
  label: "envelope",
  fields: {
    fund_id: { t: "id", req: true },
    version: { t: "int", min: 1, max: Number.MAX_SAFE_INTEGER, req: true },
    capital: { t: "dec", bound: "pos", req: true },
    allowed_brokers: { t: "array", of: { t: "id" } },
    allowed_order_types: { t: "array", of: { t: "enum", values: ORDER_TYPES } },
    allowed_asset_classes: { t: "array", of: { t: "enum", values: ASSET_CLASSES } },
    max_order_notional: { t: "dec", bound: "nonneg", nullish: true },
    max_order_qty: { t: "dec", bound: "nonneg", nullish: true },
    max_position_pct: { t: "dec", bound: "nonneg", nullish: true },
    max_gross_exposure_pct: { t: "dec", bound: "nonneg", nullish: true },
    max_net_exposure_pct: { t: "dec", bound: "nonneg", nullish: true },
    max_sector_pct: { t: "dec", bound: "nonneg", nullish: true },
    max_asset_class_pct: { t: "object" },
    daily_loss_halt_pct: { t: "dec", bound: "nonneg", nullish: true },
    weekly_loss_halt_pct: { t: "dec", bound: "nonneg", nullish: true },
    monthly_loss_halt_pct: { t: "dec", bound: "nonneg", nullish: true },
    enable_shorting: { t: "bool", nullish: true },
    max_borrow_fee_bps: { t: "dec", bound: "nonneg", nullish: true },
    synthetic_stop_pct: { t: "dec", bound: "nonneg", nullish: true },
    price_collar_pct: { t: "dec", bound: "nonneg", nullish: true },
    max_quote_age_ms: { t: "int", min: 0, max: 86_400_000 },
    restricted_symbols: { t: "array", of: { t: "id" } },
    velocity: { t: "object" },
    strategies: { t: "object" },
  },
  base: (c) => ({
    fund_id: ENVELOPE_FUND,
    version: c.version,
    capital: "1000000",
    allowed_brokers: ["paper"],
    allowed_order_types: ["LIMIT"],
  }),
  subject: () => Subjects.envelopeUpdated(ENVELOPE_FUND),
  special: fc.constantFrom(...NONSENSE_LIMITS).map((over) =>
    described(over, (c: Ctx): Garbage => ({
      kind: "nonsense-limits",
      subject: Subjects.envelopeUpdated(ENVELOPE_FUND),
      data: JSON.stringify({ ...RISK_ENVELOPES.base(c), ...over }),
    })),
  ),
  valid: validOf(
    "envelope",
    fc.record({
      capital: posDecimal(1e12, 2),
      limits: limitsArb,
      strategies: opt(fc.dictionary(idArb, limitsArb, { maxKeys: 2 })),
      extra: extraFields,
    }),
    ({ capital, limits, strategies, extra }, c) => {
      const body = { ...extra, ...clean({ ...limits }), fund_id: ENVELOPE_FUND, version: c.version, capital };
      if (strategies) {
        (body as Record<string, unknown>)["strategies"] = Object.fromEntries(
          Object.entries(strategies).map(([k, v]) => [k, clean({ ...v })]),
        );
      }
      return {
        msgs: [{ subject: Subjects.envelopeUpdated(ENVELOPE_FUND), data: JSON.stringify(body) }],
        visible: (s) => fundOf(s, ENVELOPE_FUND)?.envelope_id === `${ENVELOPE_FUND}@v${c.version}`,
      };
    },
  ),
};

const ORDER_EVENTS = Object.values(OrderEventKind);
export const OMS_ORDERS: MessageDef = {
  stream: "OMS_ORDERS",
  label: "order-event",
  fields: {
    order_id: { t: "text", max: 128, min1: true, req: true },
    fund_id: { t: "id", req: true },
    event: { t: "enum", values: ORDER_EVENTS, req: true },
    filled_quantity: { t: "dec", bound: "nonneg", nullish: true },
    at: { t: "ts", req: true },
  },
  base: (c) => ({ order_id: `fzo-g-${c.u}`, fund_id: "fz-oms", event: "accepted", at: isoNow(c) }),
  subject: (c) => Subjects.orderEvent(ORDER_EVENTS[c.u % ORDER_EVENTS.length]!, "fz-oms"),
  valid: validOf(
    "order-event",
    fc.record({
      event: fc.constantFrom(...ORDER_EVENTS),
      filled_quantity: opt(posDecimal(1000, 2)),
      extra: extraFields,
    }),
    ({ extra, ...p }, c) => {
      const order_id = `fzo-${c.u}`;
      const body = clean({ ...extra, ...p, order_id, fund_id: "fz-oms", at: isoNow(c) });
      return {
        msgs: [{ subject: Subjects.orderEvent(p.event, "fz-oms"), data: JSON.stringify(body) }],
        visible: (s) => {
          const r = s.order("fz-oms", order_id);
          if (!r) return false;
          return p.event === "accepted" ? r.accepted : TERMINAL_ORDER_EVENTS.has(p.event) ? r.terminal : true;
        },
      };
    },
  ),
};

const SEVERITIES = Object.values(HaltSeverity);
const haltFields: Record<string, Field> = {
  fund_id: { t: "id", req: true },
  severity: { t: "enum", values: SEVERITIES, req: true },
  reason: { t: "text", max: 1024, req: true },
  at: { t: "ts", req: true },
  by: { t: "text", max: 128, req: true },
};
const haltBody = (fund: string, severity: string, at: string) => ({
  fund_id: fund,
  severity,
  reason: "fuzz",
  at,
  by: "fuzz",
});

export const HALT: MessageDef = {
  stream: "RISK_CONTROL",
  label: "halt",
  fields: haltFields,
  base: (c) => haltBody(`fzh-g-${c.u}`, "MANUAL", isoNow(c)),
  subject: (c) => Subjects.halt(`fzh-g-${c.u}`),
  valid: validOf(
    "halt",
    fc.record({
      severity: fc.constantFrom(...SEVERITIES),
      reason: text(1024),
      by: text(128),
      at: timestampArb,
    }),
    (p, c) => {
      const fund = `fzh-${c.u}`;
      return {
        msgs: [{ subject: Subjects.halt(fund), data: JSON.stringify({ ...p, fund_id: fund }) }],
        visible: (s) => fundOf(s, fund)?.halts[p.severity] !== undefined,
      };
    },
  ),
};

export const RESUME: MessageDef = {
  stream: "RISK_CONTROL",
  label: "resume",
  fields: {
    fund_id: { t: "id", req: true },
    operator: { t: "text", max: 128, min1: true, req: true },
    reason: { t: "text", max: 1024, min1: true, req: true },
    at: { t: "ts", req: true },
  },
  base: (c) => ({ fund_id: `fzr-g-${c.u}`, operator: "op", reason: "fuzz", at: isoNow(c) }),
  subject: (c) => Subjects.resume(`fzr-g-${c.u}`),
  valid: validOf(
    "halt+resume",
    fc.record({
      severity: fc.constantFrom(...SEVERITIES),
      operator: fc.string({ minLength: 1, maxLength: 128 }),
      reason: fc.string({ minLength: 1, maxLength: 200 }),
      at: timestampArb,
    }),
    (p, c) => {
      const fund = `fzr-${c.u}`;
      return {
        msgs: [
          { subject: Subjects.halt(fund), data: JSON.stringify(haltBody(fund, p.severity, isoNow(c))) },
          {
            subject: Subjects.resume(fund),
            data: JSON.stringify({ fund_id: fund, operator: p.operator, reason: p.reason, at: p.at }),
          },
        ],
        visible: (s) => {
          const f = fundOf(s, fund);
          return f !== undefined && Object.keys(f.halts).length === 0 && f.lifted.length === 1;
        },
      };
    },
  ),
};

export const BASELINE: MessageDef = {
  stream: "RISK_CONTROL",
  label: "pnl-baseline",
  fields: {
    fund_id: { t: "id", req: true },
    period: { t: "enum", values: ["day", "week", "month"], req: true },
    starts_at: { t: "ts", req: true },
    equity: { t: "dec", bound: "any", internal: true, req: true },
  },
  base: (c) => ({ fund_id: `fzb-g-${c.u}`, period: "day", starts_at: isoNow(c), equity: "1000" }),
  subject: (c) => Subjects.pnlBaseline(`fzb-g-${c.u}`),
  valid: validOf(
    "pnl-baseline",
    fc.record({
      period: fc.constantFrom("day", "week", "month"),
      starts_at: timestampArb,
      equity: anyDecimal(1e15, 8),
    }),
    (p, c) => {
      const fund = `fzb-${c.u}`;
      return {
        msgs: [{ subject: Subjects.pnlBaseline(fund), data: JSON.stringify({ ...p, fund_id: fund }) }],
        visible: (s) => fundOf(s, fund)?.baselines[p.period]?.starts_at === p.starts_at,
      };
    },
  ),
};

const STOP_EVENTS = ["armed", "triggered", "cleared"] as const;
export const STOP: MessageDef = {
  stream: "RISK_CONTROL",
  label: "stop",
  fields: {
    fund_id: { t: "id", req: true },
    symbol: { t: "id", req: true },
    side: { t: "enum", values: ["LONG", "SHORT"], req: true },
    quantity: { t: "dec", bound: "nonneg", internal: true, req: true },
    stop_price: { t: "dec", bound: "nonneg", internal: true, req: true },
    arm_seq: { t: "int", min: 1, req: true },
    at: { t: "ts", req: true },
    closing_order_id: { t: "text" },
    reason: { t: "text", max: 1024 },
  },
  base: (c) => ({
    fund_id: `fzs-g-${c.u}`,
    symbol: "FZS",
    side: "LONG",
    quantity: "1",
    stop_price: "1",
    arm_seq: 1,
    at: isoNow(c),
  }),
  subject: (c) => Subjects.stop(STOP_EVENTS[c.u % 3]!, `fzs-g-${c.u}`),
  special: fc
    .stringMatching(/^[a-z_-]{1,12}$/)
    .filter((e) => !(STOP_EVENTS as readonly string[]).includes(e))
    .map((event) =>
      described(event, (c: Ctx): Garbage => ({
        kind: "unknown-stop-event",
        subject: `mts.v1.risk.stop.${event}.fzs-g-${c.u}`,
        data: JSON.stringify(STOP.base(c)),
      })),
    ),
  valid: validOf(
    "stop",
    fc.record({
      event: fc.constantFrom(...STOP_EVENTS),
      side: fc.constantFrom("LONG", "SHORT"),
      quantity: posDecimal(1e9, 6),
      stop_price: posDecimal(1e6, 6),
      arm_seq: fc.integer({ min: 1, max: 1e9 }),
      at: timestampArb,
      closing_order_id: opt(fc.string({ maxLength: 40 })),
      reason: opt(text(200)),
    }),
    ({ event, ...p }, c) => {
      const fund = `fzs-${c.u}`;
      const symbol = `FZS${c.u}`;
      return {
        msgs: [
          {
            subject: Subjects.stop(event, fund),
            data: JSON.stringify(clean({ ...p, fund_id: fund, symbol })),
          },
        ],
        visible: (s) => s.stop(fund, symbol)?.state === event,
      };
    },
  ),
};

export const RECONCILE: MessageDef = {
  stream: "RISK_CONTROL",
  label: "reconcile",
  fields: {
    fund_id: { t: "id", req: true },
    locked: { t: "bool", req: true },
    reason: { t: "text", max: 4096, req: true },
    at: { t: "ts", req: true },
    brokers: { t: "array", of: { t: "id" } },
  },
  base: (c) => ({ fund_id: `fzk-g-${c.u}`, locked: true, reason: "fuzz", at: isoNow(c) }),
  subject: (c) => Subjects.reconcile("lock", `fzk-g-${c.u}`),
  valid: validOf(
    "reconcile",
    fc.record({
      locked: fc.boolean(),
      reason: text(300),
      at: timestampArb,
      brokers: opt(fc.uniqueArray(idArb, { maxLength: 3 })),
    }),
    (p, c) => {
      const fund = `fzk-${c.u}`;
      return {
        msgs: [
          {
            subject: Subjects.reconcile(p.locked ? "lock" : "unlock", fund),
            data: JSON.stringify(clean({ ...p, fund_id: fund })),
          },
        ],
        visible: (s) => {
          const f = fundOf(s, fund);
          return f !== undefined && (f.lock !== undefined) === p.locked;
        },
      };
    },
  ),
};

const DECISION_FIELDS: Record<string, Field> = {
  order_id: { t: "text", req: true },
  approved: { t: "bool", req: true },
  rejecting_gate: { t: "text", req: true },
  rejection_code: { t: "text", req: true },
  reason: { t: "text", req: true },
  details: { t: "object", req: true },
  envelope_id: { t: "text", req: true },
  decided_at: { t: "text", req: true },
};
const RESERVATION_FIELDS: Record<string, Field> = {
  order_id: { t: "text", min1: true, req: true },
  symbol: { t: "id", req: true },
  side: { t: "enum", values: SIDES, req: true },
  quantity: { t: "dec", bound: "pos", internal: true, req: true },
  price: { t: "dec", bound: "pos", internal: true, req: true },
  asset_class: { t: "enum", values: ASSET_CLASSES },
  expires_at_ms: { t: "int", req: true },
};
const DECISION_FUND = "fz-dec";
function decisionBody(c: Ctx, approved: boolean, key?: string): Record<string, unknown> {
  const order_id = `fzd-o-${c.u}`;
  return clean({
    decision_id: `fzd-${c.u}`,
    instance: "fuzz",
    fund_id: DECISION_FUND,
    at_ms: c.now,
    idempotency_key: key,
    fingerprint: key ? `fp-${c.u}` : undefined,
    recorded: key !== undefined,
    counted: true,
    replayed: false,
    notional: "100",
    reservation: approved
      ? {
          order_id,
          symbol: "FZD",
          side: "BUY",
          quantity: "10",
          price: "10",
          expires_at_ms: c.now + 3_600_000,
        }
      : undefined,
    decision: {
      order_id,
      approved,
      rejecting_gate: approved ? "" : "static",
      rejection_code: approved ? "" : "MAX_ORDER_QTY_EXCEEDED",
      reason: approved ? "approved" : "fuzz",
      details: {},
      envelope_id: `${DECISION_FUND}@v1`,
      decided_at: isoNow(c),
    },
  });
}
export const DECISIONS: MessageDef = {
  stream: "RISK_DECISIONS",
  label: "decision",
  fields: {
    decision_id: { t: "text", min1: true, req: true },
    instance: { t: "text", req: true },
    fund_id: { t: "text", req: true },
    at_ms: { t: "int", req: true },
    idempotency_key: { t: "text" },
    fingerprint: { t: "text" },
    recorded: { t: "bool", req: true },
    counted: { t: "bool", req: true },
    replayed: { t: "bool", req: true },
    notional: { t: "dec", bound: "nonneg", internal: true },
    reservation: { t: "object" },
    decision: { t: "object", req: true },
  },
  base: (c) => decisionBody(c, true, `fzd-g-${c.u}`),
  subject: () => Subjects.decision(DECISION_FUND),
  special: fc
    .oneof(
      mutation(DECISION_FIELDS).map((m) => ({ in: "decision" as const, m })),
      mutation(RESERVATION_FIELDS).map((m) => ({ in: "reservation" as const, m })),
    )
    .map((x) =>
      described(x, (c: Ctx): Garbage => {
        const body = decisionBody(c, true, `fzd-g-${c.u}`);
        body[x.in] = applyMutation(body[x.in] as Record<string, unknown>, x.m);
        return {
          kind: `bad-${x.in}-field`,
          subject: Subjects.decision(DECISION_FUND),
          data: JSON.stringify(body),
        };
      }),
    ),
  valid: validOf(
    "decision",
    fc.record({ approved: fc.boolean(), extra: extraFields }),
    ({ approved, extra }, c) => {
      const key = `fzd-k-${c.u}`;
      const body = { ...extra, ...decisionBody(c, approved, key) };
      return {
        msgs: [
          { subject: Subjects.decision(DECISION_FUND), data: JSON.stringify(body), msgID: `fzd-${c.u}` },
        ],
        visible: (s) =>
          s.decided(DECISION_FUND, key) &&
          (!approved || s.order(DECISION_FUND, `fzd-o-${c.u}`)?.approvals.includes(key) === true),
      };
    },
  ),
};

/** Every message type of every consumed stream. */
export const MESSAGE_DEFS: readonly MessageDef[] = [
  FILLS,
  QUOTES,
  REFDATA,
  RISK_ENVELOPES,
  OMS_ORDERS,
  HALT,
  RESUME,
  BASELINE,
  STOP,
  RECONCILE,
  DECISIONS,
];
