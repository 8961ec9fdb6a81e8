import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import protobuf from "protobufjs";
import {
  CodecError,
  JSON_CONTENT_TYPE,
  PROTOBUF_CONTENT_TYPE,
  decodeDecisionProto,
  decodeEnvelopeProto,
  decodeEnvelopeRequestProto,
  decodeOrderProto,
  encodeDecisionProto,
  encodeEnvelopeProto,
  encodeEnvelopeRequestProto,
  encodeOrderProto,
  isProtobufContentType,
} from "../src/contract/codec.js";
import {
  EnvelopeRequestSchema,
  EnvelopeSchema,
  OrderSchema,
  type RiskDecision,
} from "../src/contract/schemas.js";
import { toWire } from "../src/contract/wire.js";

const FULL_ORDER = {
  order_id: "ord-1",
  idempotency_key: "oms-ord-1",
  fund_id: "alpha",
  strategy_id: "mom-1",
  broker: "paper",
  symbol: "AAPL",
  asset_class: "equity",
  side: "SELL",
  order_type: "STOP_LIMIT",
  quantity: "100",
  limit_price: "190.12",
  stop_price: "189.5",
  time_in_force: "DAY",
  reduce_only: true,
  created_at: "2026-11-21T14:30:00.123Z",
  locate_id: "loc-42",
};

function without(o: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...o };
  for (const k of keys) delete out[k];
  return out;
}

function issuePaths(v: unknown): string[] {
  const r = OrderSchema.safeParse(v);
  expect(r.success).toBe(false);
  return r.success ? [] : r.error.issues.map((i) => i.path.join("."));
}

describe("Order protobuf", () => {
  it("round-trips every field and validates with OrderSchema to the same values", () => {
    const decoded = decodeOrderProto(encodeOrderProto(FULL_ORDER));
    expect(decoded).toEqual(FULL_ORDER);
    const fromProto = OrderSchema.safeParse(decoded);
    const fromJson = OrderSchema.safeParse(FULL_ORDER);
    expect(fromProto.success).toBe(true);
    expect(fromJson.success).toBe(true);
    if (!fromProto.success || !fromJson.success) return;
    expect(toWire(fromProto.data)).toEqual(toWire(fromJson.data));
    expect(fromProto.data.quantity.eq("100")).toBe(true);
    expect(fromProto.data.limit_price?.eq("190.12")).toBe(true);
    expect(fromProto.data.created_at).toBe(Date.parse("2026-11-21T14:30:00.123Z"));
  });

  it("maps every enum value, keeps reduce_only=false and omits absent optionals", () => {
    for (const asset_class of ["equity", "crypto", "option", "future", "fx"]) {
      for (const order_type of ["MARKET", "LIMIT", "STOP", "STOP_LIMIT"]) {
        const o = { ...FULL_ORDER, asset_class, order_type, side: "BUY" };
        expect(decodeOrderProto(encodeOrderProto(o))).toEqual(o);
      }
    }
    const minimal = without(
      { ...FULL_ORDER, order_type: "MARKET", reduce_only: false },
      "strategy_id",
      "asset_class",
      "limit_price",
      "stop_price",
      "time_in_force",
      "created_at",
      "locate_id",
    );
    const decoded = decodeOrderProto(encodeOrderProto(minimal));
    expect(decoded).toEqual(minimal);
    expect(OrderSchema.safeParse(decoded).success).toBe(true);
    const noReduce = decodeOrderProto(encodeOrderProto(without(minimal, "reduce_only")));
    expect(noReduce).not.toHaveProperty("reduce_only");
  });

  it("a missing required field decodes to an object OrderSchema rejects at that path", () => {
    const decoded = decodeOrderProto(encodeOrderProto(without(FULL_ORDER, "quantity")));
    expect(decoded).not.toHaveProperty("quantity");
    expect(issuePaths(decoded)).toEqual(["quantity"]);
    // an empty string is an absent field
    expect(issuePaths(decodeOrderProto(encodeOrderProto({ ...FULL_ORDER, fund_id: "" })))).toEqual([
      "fund_id",
    ]);
    expect(issuePaths(decodeOrderProto(encodeOrderProto({ ...FULL_ORDER, quantity: "0" })))).toEqual([
      "quantity",
    ]);
    expect(issuePaths(decodeOrderProto(encodeOrderProto(without(FULL_ORDER, "limit_price"))))).toEqual([
      "limit_price",
    ]);
  });

  it("an unspecified or unknown enum value is rejected, never defaulted", () => {
    const base = encodeOrderProto(without(FULL_ORDER, "side"));
    // field 8 (side), varint: 0 = SIDE_UNSPECIFIED, 7 = not in the .proto
    for (const value of [0, 7]) {
      const bytes = new Uint8Array([...base, 0x40, value]);
      expect(issuePaths(decodeOrderProto(bytes))).toEqual(["side"]);
    }
  });

  it("garbage bytes throw CodecError", () => {
    const bad = [
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]),
      new Uint8Array([0x0a, 0x10, 0x61]), // string field longer than the buffer
      new Uint8Array([0x0f]), // wire type 7
    ];
    for (const bytes of bad) {
      let caught: unknown;
      try {
        decodeOrderProto(bytes);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CodecError);
      expect((caught as CodecError).code).toBe("CODEC_ERROR");
      expect((caught as CodecError).cause).toBeInstanceOf(Error);
    }
  });

  it("random bytes never decode to a valid order", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        let decoded: unknown;
        try {
          decoded = decodeOrderProto(bytes);
        } catch (err) {
          return err instanceof CodecError;
        }
        return !OrderSchema.safeParse(decoded).success;
      }),
      { numRuns: 2000 },
    );
  });
});

describe("RiskDecision protobuf", () => {
  it("round-trips a rejection with its details map", () => {
    const d: RiskDecision = {
      order_id: "ord-1",
      approved: false,
      rejecting_gate: "position",
      rejection_code: "MAX_POSITION_EXCEEDED",
      reason: "position AAPL would be 12.0% of NAV, limit 10.0%",
      details: { resulting_notional: "120000", limit_notional: "100000", empty: "" },
      envelope_id: "alpha@v3",
      decided_at: "2026-11-21T14:30:00.000412Z",
    };
    expect(decodeDecisionProto(encodeDecisionProto(d))).toEqual(d);
  });

  it("round-trips an approval: empty gate and code, empty details", () => {
    const d: RiskDecision = {
      order_id: "ord-2",
      approved: true,
      rejecting_gate: "",
      rejection_code: "",
      reason: "",
      details: {},
      envelope_id: "alpha@v3",
      decided_at: "2026-11-21T14:30:00.1Z",
    };
    expect(decodeDecisionProto(encodeDecisionProto(d))).toEqual(d);
  });
});

const LIMITS = {
  allowed_brokers: ["paper", "ibkr"],
  allowed_order_types: ["MARKET", "LIMIT", "STOP", "STOP_LIMIT"],
  allowed_asset_classes: ["equity", "crypto", "option", "future", "fx"],
  max_order_notional: "50000",
  max_order_qty: "10000",
  max_position_pct: "0.1",
  max_gross_exposure_pct: "1.5",
  max_net_exposure_pct: "1",
  max_sector_pct: "0.3",
  max_asset_class_pct: { crypto: "0.2", equity: "1" },
  daily_loss_halt_pct: "0.03",
  weekly_loss_halt_pct: "0.06",
  monthly_loss_halt_pct: "0.1",
  enable_shorting: false,
  max_borrow_fee_bps: "300",
  synthetic_stop_pct: "0.1",
  price_collar_pct: "0.05",
  max_quote_age_ms: 5000,
  restricted_symbols: ["GME"],
  velocity: { window_s: 1, max_orders: 50, max_notional: "500000" },
};

const FULL_ENVELOPE = {
  fund_id: "alpha",
  version: 3,
  capital: "1000000",
  ...LIMITS,
  strategies: {
    "mom-1": { ...LIMITS, enable_shorting: true, max_quote_age_ms: 0, velocity: { window_s: 60 } },
    // empty lists differ from absent ones: they replace the fund's, not inherit them
    "arb-2": { allowed_brokers: [], allowed_asset_classes: [], restricted_symbols: [] },
    "inherit-all": {},
  },
};

describe("RiskEnvelope protobuf", () => {
  it("round-trips every field JSON -> proto -> JSON", () => {
    const decoded = decodeEnvelopeProto(encodeEnvelopeProto(FULL_ENVELOPE));
    expect(decoded).toEqual(JSON.parse(JSON.stringify(FULL_ENVELOPE)));
    const parsed = EnvelopeSchema.safeParse(decoded);
    expect(parsed.success).toBe(true);
    if (parsed.success) expect(toWire(parsed.data)).toEqual(toWire(EnvelopeSchema.parse(FULL_ENVELOPE)));
  });

  it("round-trips the canonical wire form of a parsed envelope", () => {
    const wire = toWire(EnvelopeSchema.parse(FULL_ENVELOPE)) as Record<string, unknown>;
    expect(decodeEnvelopeProto(encodeEnvelopeProto(wire))).toEqual(wire);
  });

  it("absent lists stay absent; an unknown enum name cannot be encoded", () => {
    const minimal = { fund_id: "beta", version: 1, capital: "10" };
    expect(decodeEnvelopeProto(encodeEnvelopeProto(minimal))).toEqual(minimal);
    expect(() => encodeEnvelopeProto({ ...minimal, allowed_order_types: ["ICEBERG"] })).toThrow(CodecError);
    expect(() => encodeEnvelopeProto({ ...minimal, allowed_brokers: "paper" })).toThrow(CodecError);
  });

  it("decodes an envelope request with and without a version", () => {
    for (const req of [{ fund_id: "alpha" }, { fund_id: "alpha", version: 7 }]) {
      const decoded = decodeEnvelopeRequestProto(encodeEnvelopeRequestProto(req));
      expect(decoded).toEqual(req);
      expect(EnvelopeRequestSchema.safeParse(decoded).success).toBe(true);
    }
    expect(EnvelopeRequestSchema.safeParse(decodeEnvelopeRequestProto(new Uint8Array())).success).toBe(false);
    expect(() => decodeEnvelopeRequestProto(new Uint8Array([0x0a, 0x05, 0x61]))).toThrow(CodecError);
  });
});

describe("content types", () => {
  it("recognizes the protobuf content type", () => {
    expect(isProtobufContentType(PROTOBUF_CONTENT_TYPE)).toBe(true);
    expect(isProtobufContentType("Application/X-Protobuf; proto=mts.risk.v1.Order")).toBe(true);
    expect(isProtobufContentType(JSON_CONTENT_TYPE)).toBe(false);
    expect(isProtobufContentType(undefined)).toBe(false);
    // both names of protobuf (CONTRACT.md "Encoding")
    expect(isProtobufContentType("application/protobuf")).toBe(true);
    expect(isProtobufContentType(" Application/Protobuf ; charset=binary")).toBe(true);
    expect(isProtobufContentType("application/protobuf+json")).toBe(false);
  });
});

describe("the .proto alone is the JSON contract (proto3 JSON mapping, protobufjs fromObject)", () => {
  const root = protobuf.parse(
    readFileSync(new URL("../subjects/riskengine.proto", import.meta.url), "utf8"),
    {
      keepCase: true,
    },
  ).root;
  root.resolveAll();
  const Order = root.lookupType("mts.risk.v1.Order");
  const Decision = root.lookupType("mts.risk.v1.RiskDecision");

  it("given an Order built by a client from its JSON form with protobufjs, then the engine decodes exactly that JSON", () => {
    for (const asset_class of ["equity", "crypto", "option", "future", "fx"]) {
      for (const order_type of ["MARKET", "LIMIT", "STOP", "STOP_LIMIT"]) {
        for (const side of ["BUY", "SELL"]) {
          const json = { ...FULL_ORDER, asset_class, order_type, side };
          const bytes = Order.encode(Order.fromObject(json)).finish();
          expect(decodeOrderProto(bytes)).toEqual(json);
          // and what the engine encodes reads back, with string enums, as the JSON form
          const back = Order.toObject(Order.decode(encodeOrderProto(json)), { enums: String });
          expect(back).toEqual(json);
        }
      }
    }
  });

  it("given the former enum names (SIDE_BUY, ORDER_TYPE_LIMIT), then protobufjs still encodes them to the same numbers", () => {
    const old = { ...FULL_ORDER, side: "SIDE_BUY", order_type: "ORDER_TYPE_LIMIT" };
    const bytes = Order.encode(Order.fromObject(old)).finish();
    expect(decodeOrderProto(bytes)).toMatchObject({ side: "BUY", order_type: "LIMIT" });
  });

  it("given a binary Order of the earlier .proto (asset class as enum field 7), then it is still decoded; a disagreeing field 17 is SCHEMA_INVALID", () => {
    const base = encodeOrderProto(without(FULL_ORDER, "asset_class"));
    // field 7, varint: 2 = ASSET_CLASS_CRYPTO
    expect(decodeOrderProto(new Uint8Array([...base, 0x38, 2]))).toEqual({
      ...FULL_ORDER,
      asset_class: "crypto",
    });
    const both = encodeOrderProto({ ...FULL_ORDER, asset_class: "crypto" });
    expect(decodeOrderProto(new Uint8Array([...both, 0x38, 2]))).toEqual({
      ...FULL_ORDER,
      asset_class: "crypto",
    });
    expect(issuePaths(decodeOrderProto(new Uint8Array([...both, 0x38, 1])))).toEqual(["asset_class"]);
    expect(issuePaths(decodeOrderProto(new Uint8Array([...base, 0x38, 9])))).toEqual(["asset_class"]);
  });

  it("given a RiskDecision from the engine, then protobufjs toObject gives the JSON reply", () => {
    const d: RiskDecision = {
      order_id: "o",
      approved: false,
      rejecting_gate: "position",
      rejection_code: "MAX_POSITION_EXCEEDED",
      reason: "r",
      details: { nav: "1" },
      envelope_id: "alpha@v1",
      decided_at: "2026-11-21T14:30:00.000Z",
    };
    expect(Decision.toObject(Decision.decode(encodeDecisionProto(d)), { defaults: true })).toEqual(d);
  });
});
