/**
 * toWire's canonical form (src/contract/wire.ts): keys in the order Array.prototype.sort() gives
 * strings, at every level, decimals canonical, undefined dropped. Its key sort is its own (an
 * insertion sort, allocation-free): held here to the built-in one on generated objects.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Dec, canon, dec } from "../../src/decimal/index.js";
import { canonicalJson, toWire } from "../../src/contract/wire.js";

/** The former implementation: the built-in sort. */
function reference(v: unknown): unknown {
  if (v instanceof Dec) return canon(v);
  if (Array.isArray(v)) return v.map(reference);
  if (v instanceof Map) return reference(Object.fromEntries(v));
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = reference(x);
    }
    return out;
  }
  return v;
}

const key = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom(
    "a",
    "b",
    "B",
    "_",
    "a_b",
    "ab",
    "é",
    "\u{1F600}",
    "z9",
    "10",
    "2",
    "decision",
    "decision_id",
  ),
);
const leaf = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map((n) => dec(`${n}.${Math.abs(n) % 1000}`)),
);
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: "small" }, leaf, tie("obj"), fc.array(tie("v"), { maxLength: 4 })),
  obj: fc.dictionary(key, tie("v"), { maxKeys: 24 }),
})).v;

describe("toWire", () => {
  it("orders keys exactly as the built-in sort, at every level, on generated objects", () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(JSON.stringify(toWire(v))).toBe(JSON.stringify(reference(v)));
        expect(canonicalJson(v)).toBe(JSON.stringify(reference(v)));
      }),
      { numRuns: 2000 },
    );
  });

  it("writes a decision record's keys in sorted order", () => {
    const rec = {
      fund_id: "f",
      at_ms: 1,
      decision: { reason: "", approved: true },
      decision_id: "d",
      counted: false,
    };
    expect(canonicalJson(rec)).toBe(
      '{"at_ms":1,"counted":false,"decision":{"approved":true,"reason":""},"decision_id":"d","fund_id":"f"}',
    );
  });
});
