/**
 * Protobuf encoding of the request-reply messages (subjects/riskengine.proto).
 * Decoding yields the JSON wire shape of CONTRACT.md so that the same zod schemas validate both
 * encodings: enums as their contract names, 64-bit integers as numbers, absent fields (empty
 * strings, unset optionals, *_UNSPECIFIED enums) omitted, list wrappers unwrapped to arrays.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type protobuf from "protobufjs";
import { AssetClass, OrderType, Side } from "./codes.js";
import type { RiskDecision } from "./schemas.js";

export const PROTOBUF_CONTENT_TYPE = "application/x-protobuf";
export const JSON_CONTENT_TYPE = "application/json";
/** The registered name of protobuf; `application/x-protobuf` (the older form) means the same. */
export const PROTOBUF_CONTENT_TYPE_ALT = "application/protobuf";
const PROTOBUF_TYPES = new Set([PROTOBUF_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE_ALT]);

/** The protobuf media type a `Content-Type` header value names (parameters and case ignored), if any. */
export function protobufContentTypeOf(value: string | null | undefined): string | undefined {
  const base = (value ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  return PROTOBUF_TYPES.has(base) ? base : undefined;
}

/** True when a `Content-Type` header value names protobuf (either name; parameters and case ignored). */
export function isProtobufContentType(value: string | null | undefined): boolean {
  return protobufContentTypeOf(value) !== undefined;
}

/** Bytes that are not a message of the expected type, or a value that cannot be encoded. */
export class CodecError extends Error {
  readonly code = "CODEC_ERROR";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CodecError";
  }
}

const PROTO_URL = new URL("../../subjects/riskengine.proto", import.meta.url);
const PACKAGE = "mts.risk.v1";

/** The contract's names of each proto enum's values (the proto names are <ENUM>_<NAME>). */
const CONTRACT_ENUMS: Record<string, Record<string, string>> = { Side, OrderType, AssetClass };

interface EnumMap {
  toJson: Map<string, string>; // SIDE_BUY -> BUY
  toProto: Map<string, string>; // BUY -> SIDE_BUY
}

interface Loaded {
  Order: protobuf.Type;
  RiskDecision: protobuf.Type;
  EnvelopeRequest: protobuf.Type;
  RiskEnvelope: protobuf.Type;
  enums: Map<protobuf.Enum, EnumMap>;
}

let loaded: Loaded | undefined;

function enumPrefix(name: string): string {
  return `${name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()}_`;
}

/**
 * A proto value names its contract value either exactly (`BUY`: the names of today) or as
 * <ENUM>_<VALUE> (`SIDE_BUY`: the former names, kept as aliases; AssetClass, whose `option` cannot
 * be a .proto identifier). Encoding uses the exact name when the .proto has it.
 */
function buildEnumMap(e: protobuf.Enum): EnumMap {
  const contract = CONTRACT_ENUMS[e.name];
  if (!contract) throw new Error(`riskengine.proto: enum ${e.name} has no contract counterpart`);
  const prefix = enumPrefix(e.name);
  const map: EnumMap = { toJson: new Map(), toProto: new Map() };
  for (const [protoName, num] of Object.entries(e.values)) {
    if (num === 0) continue; // *_UNSPECIFIED: absent
    const json = Object.values(contract).find(
      (v) => v === protoName || prefix + v.toUpperCase() === protoName,
    );
    if (json === undefined)
      throw new Error(`riskengine.proto: ${protoName} is not a ${e.name} of the contract`);
    map.toJson.set(protoName, json);
    if (!map.toProto.has(json) || protoName === json) map.toProto.set(json, protoName);
  }
  return map;
}

let pbjs: typeof protobuf | undefined;
/**
 * protobufjs, required on first use: an engine or a CLI command that sees no protobuf message
 * never pays for its import (≈ 60–120 ms of a restart on the benchmark machine).
 */
function pb(): typeof protobuf {
  pbjs ??= createRequire(import.meta.url)("protobufjs") as typeof protobuf;
  return pbjs;
}

/** Parse the .proto once (snake_case field names kept) and cache the types. */
function load(): Loaded {
  if (loaded) return loaded;
  const root = pb().parse(readFileSync(PROTO_URL, "utf8"), { keepCase: true }).root;
  root.resolveAll();
  const type = (name: string) => root.lookupType(`${PACKAGE}.${name}`);
  const enums = new Map<protobuf.Enum, EnumMap>();
  for (const name of Object.keys(CONTRACT_ENUMS)) {
    const e = root.lookupEnum(`${PACKAGE}.${name}`);
    enums.set(e, buildEnumMap(e));
  }
  loaded = {
    Order: type("Order"),
    RiskDecision: type("RiskDecision"),
    EnvelopeRequest: type("EnvelopeRequest"),
    RiskEnvelope: type("RiskEnvelope"),
    enums,
  };
  return loaded;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** A message wrapping one repeated field `values` (StringList, ...): an array with presence. */
function listField(t: protobuf.Type): protobuf.Field | undefined {
  const [f, ...rest] = t.fieldsArray;
  return f && rest.length === 0 && f.name === "values" && f.repeated ? f : undefined;
}

function enumMap(e: protobuf.Enum): EnumMap {
  const m = load().enums.get(e);
  if (!m) throw new Error(`riskengine.proto: enum ${e.name} has no mapping`);
  return m;
}

// ---- proto object (Type.toObject) -> JSON wire shape ----

/** One value of a field; `undefined` means absent. Unknown enum numbers pass through for zod to reject. */
function valueToJson(f: protobuf.Field, v: unknown, inList: boolean): unknown {
  const rt = f.resolvedType;
  if (rt instanceof pb().Enum) {
    if (typeof v !== "string") return v;
    return enumMap(rt).toJson.get(v) ?? (inList ? v : undefined);
  }
  if (rt instanceof pb().Type && isObj(v)) {
    const lf = listField(rt);
    if (!lf) return messageToJson(rt, v);
    const values = v.values;
    return Array.isArray(values) ? values.map((x) => valueToJson(lf, x, true)) : [];
  }
  if (v === "" && !inList) return undefined;
  return v;
}

function messageToJson(t: protobuf.Type, o: Obj): Obj {
  const out: Obj = {};
  for (const f of t.fieldsArray) {
    const v = o[f.name];
    if (v === undefined || v === null) continue;
    let j: unknown;
    if (f.map && isObj(v)) {
      j = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, valueToJson(f, x, true)]));
    } else if (f.repeated && Array.isArray(v)) {
      j = v.map((x) => valueToJson(f, x, true));
    } else {
      j = valueToJson(f, v, false);
    }
    if (j !== undefined) out[f.name] = j;
  }
  return out;
}

// ---- JSON wire shape -> proto object (for Type.fromObject) ----

function valueToProto(f: protobuf.Field, v: unknown, path: string): unknown {
  const rt = f.resolvedType;
  if (rt instanceof pb().Enum) {
    const p = typeof v === "string" ? enumMap(rt).toProto.get(v) : undefined;
    if (p === undefined) throw new CodecError(`${path}: not a ${rt.name}: ${JSON.stringify(v)}`);
    return p;
  }
  if (rt instanceof pb().Type) {
    const lf = listField(rt);
    if (lf) {
      if (!Array.isArray(v)) throw new CodecError(`${path}: must be an array`);
      return { values: v.map((x, i) => valueToProto(lf, x, `${path}.${i}`)) };
    }
    if (!isObj(v)) throw new CodecError(`${path}: must be an object`);
    return messageToProto(rt, v, path);
  }
  return v;
}

function messageToProto(t: protobuf.Type, o: Obj, prefix = ""): Obj {
  const out: Obj = {};
  for (const f of t.fieldsArray) {
    const v = o[f.name];
    if (v === undefined || v === null) continue;
    const path = prefix ? `${prefix}.${f.name}` : f.name;
    if (f.map) {
      if (!isObj(v)) throw new CodecError(`${path}: must be an object`);
      out[f.name] = Object.fromEntries(
        Object.entries(v).map(([k, x]) => [k, valueToProto(f, x, `${path}.${k}`)]),
      );
    } else if (f.repeated) {
      if (!Array.isArray(v)) throw new CodecError(`${path}: must be an array`);
      out[f.name] = v.map((x, i) => valueToProto(f, x, `${path}.${i}`));
    } else {
      out[f.name] = valueToProto(f, v, path);
    }
  }
  return out;
}

// ---- entry points ----

const TO_OBJECT: protobuf.IConversionOptions = { enums: String, longs: Number, defaults: false };

/**
 * proto3 `string` fields must be UTF-8. protobufjs's own reader turns an invalid byte into U+FFFD
 * or drops it, so two different byte strings (ids "a\xff" and "a\xfe", or "a" and "a\x80") would
 * read as one order, and the second be answered with the first's decision: strings are read with
 * a fatal decoder instead (a leading U+FEFF is kept, not stripped), as a JSON body is.
 */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function strictReader(view: Uint8Array): protobuf.Reader {
  const r = pb().Reader.create(view);
  r.string = () => strictUtf8.decode(r.bytes());
  return r;
}

function decodeRaw(t: protobuf.Type, bytes: Uint8Array, options = TO_OBJECT): Obj {
  try {
    // A plain Uint8Array view, never a Buffer: protobufjs's Buffer reader clips a string that runs
    // past the end instead of rejecting it (a truncated "190.12" would decode as "190.1").
    const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return t.toObject(t.decode(strictReader(view)), options);
  } catch (err) {
    throw new CodecError(`invalid ${t.name} protobuf: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
}

function encode(t: protobuf.Type, wire: Obj): Uint8Array {
  const obj = messageToProto(t, wire);
  try {
    return t.encode(t.fromObject(obj)).finish();
  } catch (err) {
    throw new CodecError(`cannot encode ${t.name}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
}

/** An Order in the JSON shape of CONTRACT.md, to be validated by OrderSchema. Throws CodecError. */
export function decodeOrderProto(bytes: Uint8Array): unknown {
  const t = load().Order;
  const o = messageToJson(t, decodeRaw(t, bytes));
  return mergeFormerAssetClass(o);
}

/**
 * Order field 7 (`asset_class_enum`, the enum of the earlier .proto) is still understood: it gives
 * `asset_class` when field 17 is empty. Both set and different is ambiguous: a value no schema
 * accepts is left at `asset_class`, so the order is SCHEMA_INVALID there.
 */
function mergeFormerAssetClass(o: Obj): Obj {
  const former = o["asset_class_enum"];
  if (former === undefined) return o;
  const { asset_class_enum: _, ...rest } = o;
  const current = rest["asset_class"];
  if (current === undefined) return { ...rest, asset_class: former };
  if (current === former) return rest;
  return {
    ...rest,
    asset_class: `${JSON.stringify(current)} (field 17) != ${JSON.stringify(former)} (field 7)`,
  };
}

/** Encode a JSON wire Order (decimals as strings); for clients, tests and the CLI. */
export function encodeOrderProto(wireOrder: Record<string, unknown>): Uint8Array {
  return encode(load().Order, wireOrder);
}

/** The Order fields that are decimals: a JSON integer there is the same value as its string. */
const ORDER_DECIMALS = new Set(["quantity", "limit_price", "stop_price"]);

/**
 * encodeOrderProto, refusing (CodecError) an order that protobuf would carry as another order:
 * protobufjs coerces a field's value to its type (`10.5` -> "10.5", `3` -> "3", `"false"` ->
 * true) and proto3 cannot tell "" from absent, so such an order, SCHEMA_INVALID as JSON, could
 * arrive valid. Every field must decode back to its JSON value (a JSON integer decimal to its
 * string). For the CLI, which sends what an operator wrote.
 */
export function encodeOrderProtoExact(wireOrder: Record<string, unknown>): Uint8Array {
  const t = load().Order;
  const bytes = encode(t, wireOrder);
  const back = messageToJson(t, decodeRaw(t, bytes));
  for (const f of t.fieldsArray) {
    const v = wireOrder[f.name];
    if (v === undefined || v === null) continue;
    const b = back[f.name];
    const same =
      b === v ||
      (ORDER_DECIMALS.has(f.name) && typeof v === "number" && Number.isSafeInteger(v) && b === String(v));
    if (!same) throw new CodecError(`${f.name}: ${JSON.stringify(v)} has no faithful protobuf form`);
  }
  return bytes;
}

export function encodeDecisionProto(d: RiskDecision): Uint8Array {
  return encode(load().RiskDecision, { ...d });
}

/** A RiskDecision with every field present (empty strings, `approved: false`, `details: {}`). */
export function decodeDecisionProto(bytes: Uint8Array): RiskDecision {
  const t = load().RiskDecision;
  const o = decodeRaw(t, bytes, { ...TO_OBJECT, defaults: true });
  return o as unknown as RiskDecision;
}

/** `{ fund_id, version? }`, to be validated by EnvelopeRequestSchema. Throws CodecError. */
export function decodeEnvelopeRequestProto(bytes: Uint8Array): unknown {
  const t = load().EnvelopeRequest;
  return messageToJson(t, decodeRaw(t, bytes));
}

export function encodeEnvelopeRequestProto(req: { fund_id: string; version?: number }): Uint8Array {
  return encode(load().EnvelopeRequest, { ...req });
}

/** Encode the JSON wire form of an envelope (decimals as strings). Throws CodecError on a bad enum. */
export function encodeEnvelopeProto(wireEnvelope: Record<string, unknown>): Uint8Array {
  return encode(load().RiskEnvelope, wireEnvelope);
}

/** The JSON wire form of an envelope, to be validated by EnvelopeSchema. Throws CodecError. */
export function decodeEnvelopeProto(bytes: Uint8Array): unknown {
  const t = load().RiskEnvelope;
  return messageToJson(t, decodeRaw(t, bytes));
}
