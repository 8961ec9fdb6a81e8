/**
 * Red team, stop 30 (h): support for the JSON/protobuf differential test. An order is described
 * once, as its JSON form (with JSON numbers kept as their literal text), and sent three ways to
 * the engine's check entry in process, decoded exactly as src/service/check.ts decodes a request:
 *
 *  - JSON text, through the fatal UTF-8 decoder and parseOrderJson;
 *  - protobuf bytes from the engine's own codec (encodeOrderProto);
 *  - protobuf bytes built by a client from subjects/riskengine.proto alone (protobufjs
 *    fromObject/encode, keepCase), to catch asymmetries of the codec itself.
 *
 * Each goes through createDecider on a state fed by the real projector (test/unit/fixtures.ts),
 * every decision record read back as the journal would.
 */
import { createRequire } from "node:module";
import type protobufT from "protobufjs";
import { decodeOrderProto, encodeOrderProto } from "../../src/contract/codec.js";
import { JsonDuplicateKeyError, parseOrderJson } from "../../src/contract/json-strict.js";
import { ORDER_NAMES, type RiskDecision } from "../../src/contract/schemas.js";
import { MAX_ORDER_BYTES } from "../../src/service/check.js";
import { manualClock } from "../../src/time/clock.js";
import { Feed, NOW, testDecider } from "./fixtures.js";

const protobuf = createRequire(import.meta.url)("protobufjs") as typeof protobufT;
const root = new protobuf.Root().loadSync(
  new URL("../../subjects/riskengine.proto", import.meta.url).pathname,
  { keepCase: true },
);
export const PbOrder = root.lookupType("mts.risk.v1.Order");

/** A JSON number given as its literal text (`1e3`, `1000.0`), with the integer it denotes. */
export interface NumText {
  num: string;
  int: string;
}
/** A value of one field of the JSON form: absent (undefined), null, a string, a boolean, a number. */
export type FieldValue = string | boolean | null | NumText;
export type Spec = Record<string, FieldValue>;

const ENUM_FIELDS: Record<string, ReadonlySet<string>> = {
  side: new Set(["BUY", "SELL"]),
  order_type: new Set(["MARKET", "LIMIT", "STOP", "STOP_LIMIT"]),
};

const isNum = (v: FieldValue): v is NumText => typeof v === "object" && v !== null;

/** The JSON text of a spec (`keys`: the order of the names in the object). */
export function jsonText(spec: Spec, keys: readonly string[] = Object.keys(spec)): string {
  const parts: string[] = [];
  for (const k of keys) {
    const v = spec[k];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${isNum(v) ? v.num : JSON.stringify(v)}`);
  }
  return `{${parts.join(",")}}`;
}

/**
 * The protobuf object of a spec, as a client holding the JSON form builds it: null and "" are
 * absent (proto3 has no presence for strings, documented), a JSON integer is its decimal string,
 * an enum name the .proto does not know is carried as an unknown enum number (7).
 */
export function protoObject(spec: Spec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) {
    if (v === null || v === "") continue;
    if (isNum(v)) out[k] = v.int;
    else if (ENUM_FIELDS[k] && typeof v === "string" && !ENUM_FIELDS[k].has(v)) out[k] = 7;
    else out[k] = v;
  }
  return out;
}

/** Bytes built from the .proto alone (protobufjs, no project code). */
export function handBytes(spec: Spec): Uint8Array {
  return PbOrder.encode(PbOrder.fromObject(protoObject(spec))).finish();
}

const CLASSES = new Set(["equity", "crypto", "option", "future", "fx"]);

/**
 * Bytes of an older client (field 7, `asset_class_enum`, in place of field 17), when the order's
 * asset class is one of the contract's; undefined otherwise. README: field 7 gives the asset
 * class when field 17 is empty.
 */
export function formerFieldBytes(spec: Spec): Uint8Array | undefined {
  const ac = spec["asset_class"];
  if (typeof ac !== "string" || !CLASSES.has(ac)) return undefined;
  const { asset_class: _, ...rest } = protoObject(spec);
  return PbOrder.encode(
    PbOrder.fromObject({ ...rest, asset_class_enum: `ASSET_CLASS_${ac.toUpperCase()}` }),
  ).finish();
}

/** Bytes from the engine's codec, or undefined when it refuses the value (an unknown enum name). */
export function codecBytes(spec: Spec): Uint8Array | undefined {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) {
    if (v === null || v === "") continue;
    o[k] = isNum(v) ? v.int : v;
  }
  try {
    return encodeOrderProto(o);
  } catch {
    return undefined;
  }
}

const td = new TextDecoder("utf-8", { fatal: true });
const te = new TextEncoder();

export type Body = { enc: "json"; bytes: Uint8Array } | { enc: "proto"; bytes: Uint8Array };
export const jsonBody = (spec: Spec, keys?: readonly string[]): Body => ({
  enc: "json",
  bytes: te.encode(jsonText(spec, keys)),
});

/** The engine's check, in process: decoded as check.ts decodes, decided, its record read back. */
export class Engine {
  readonly feed: Feed;
  private readonly decider: ReturnType<typeof testDecider>;

  constructor(setup: (f: Feed) => void) {
    this.feed = new Feed();
    setup(this.feed);
    this.decider = testDecider(this.feed, manualClock(NOW));
  }

  check(body: Body): RiskDecision {
    const proto = body.enc === "proto";
    let raw: unknown;
    let decodeError: string | undefined;
    let decodePath: string | undefined;
    if (body.bytes.length > MAX_ORDER_BYTES) {
      decodeError = `request is ${body.bytes.length} bytes; the limit is ${MAX_ORDER_BYTES}`;
    } else {
      try {
        raw = proto ? decodeOrderProto(body.bytes) : parseOrderJson(td.decode(body.bytes), ORDER_NAMES);
      } catch (err) {
        if (err instanceof JsonDuplicateKeyError) {
          decodeError = "a name is given twice in one object";
          decodePath = err.path;
        } else decodeError = proto ? "not a valid protobuf Order" : "not valid JSON";
      }
    }
    const e = this.decider.decide({ raw, decodeError, decodePath });
    if (e instanceof Promise) throw new Error("the deterministic pipeline decides synchronously");
    this.feed.decision(e.record);
    return e.decision;
  }
}

/** What the claim compares: everything but the free-text reason. */
export function answer(d: RiskDecision): Record<string, unknown> {
  return {
    order_id: d.order_id,
    approved: d.approved,
    rejecting_gate: d.rejecting_gate,
    rejection_code: d.rejection_code,
    details: Object.fromEntries(Object.entries(d.details).sort(([a], [b]) => (a < b ? -1 : 1))),
    envelope_id: d.envelope_id,
  };
}

/** The fund every test uses: limits near which orders are generated. */
export function standardSetup(f: Feed): void {
  f.instrument({
    symbol: "AAPL",
    asset_class: "equity",
    sector: "tech",
    shortable: true,
    borrow_fee_bps: "50",
  });
  f.instrument({ symbol: "BTC-USD", asset_class: "crypto" });
  f.quote("AAPL", "99.99", "100.01");
  f.quote("BTC-USD", "49990", "50010");
  f.envelope({
    allowed_asset_classes: ["equity", "crypto"],
    max_order_qty: "1000",
    max_order_notional: "100000",
    price_collar_pct: "0.05",
    max_position_pct: "0.5",
    enable_shorting: false,
    strategies: { "mom-1": { max_order_notional: "20000" } },
  });
  f.fill("AAPL", "300", "100");
}
