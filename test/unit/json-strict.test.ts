/**
 * parseOrderJson (src/contract/json-strict.ts): JSON.parse, except that a number rounded to an
 * integer is handed on as a non-integer, and a name given twice in one object is refused.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { JsonDuplicateKeyError, parseOrderJson } from "../../src/contract/json-strict.js";

describe("parseOrderJson", () => {
  it("given numbers JSON.parse rounds to an integer, then they are non-integers; exact integers stay", () => {
    expect(parseOrderJson('{"q":100.0000000000000001}')).toEqual({ q: 100.5 });
    expect(parseOrderJson('{"q":-7.00000000000000000001}')).toEqual({ q: -7.5 });
    expect(parseOrderJson('{"q":5e-400}')).toEqual({ q: 0.5 });
    expect(parseOrderJson('{"a":100.0,"b":1e2,"c":-3E+2,"d":0e5,"e":2.5}')).toEqual({
      a: 100,
      b: 100,
      c: -300,
      d: 0,
      e: 2.5,
    });
    // inside strings nothing is touched
    expect(parseOrderJson('{"d":"1.0000000000000000001","e":"x\\"1.00000000000000001"}')).toEqual({
      d: "1.0000000000000000001",
      e: 'x"1.00000000000000001',
    });
    // an unsafe integer literal reads as JSON.parse reads it (the schema refuses it as unsafe)
    expect(parseOrderJson("[12345678901234567]")).toEqual([12345678901234568]);
  });

  it("given a name twice in one object, at the top or deeper, then it is refused naming a top-level one", () => {
    const top = (() => {
      try {
        parseOrderJson('{"quantity":"1000000","side":"BUY","quantity" : "1"}');
      } catch (e) {
        return e;
      }
    })();
    expect(top).toBeInstanceOf(JsonDuplicateKeyError);
    expect((top as JsonDuplicateKeyError).path).toBe("quantity");
    expect(() => parseOrderJson('{"a":{"q":1,"q":2}}')).toThrow(JsonDuplicateKeyError);
    expect(() => parseOrderJson('{"a":{"q":{"x":1}},"a":2}')).toThrow(JsonDuplicateKeyError);
    // the same name in two different objects is not a duplicate
    expect(parseOrderJson('{"a":{"q":1},"b":{"q":2},"c":[{"q":3},{"q":4}]}')).toEqual({
      a: { q: 1 },
      b: { q: 2 },
      c: [{ q: 3 }, { q: 4 }],
    });
  });

  it("given text that is not JSON, then it throws as JSON.parse does", () => {
    expect(() => parseOrderJson('{"a":1')).toThrow(SyntaxError);
    expect(() => parseOrderJson("01")).toThrow(SyntaxError);
  });

  it("given any JSON value with distinct names, then the result is JSON.parse's", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v);
        expect(parseOrderJson(text)).toStrictEqual(JSON.parse(text));
      }),
      { numRuns: 3000 },
    );
  });
});

describe("parseOrderJson on hostile nesting", () => {
  it("given arrays nested 20 000 deep and a __proto__ name, then it parses as JSON.parse does", () => {
    const text = `{"__proto__":{"approved":true},"x":${"[".repeat(20_000)}${"]".repeat(20_000)},"q":"1"}`;
    const v = parseOrderJson(text) as Record<string, unknown>;
    expect(v["q"]).toBe("1");
    expect(Object.prototype.hasOwnProperty.call(v, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>)["approved"]).toBeUndefined();
  });
});

describe("parseOrderJson with the names the engine reads", () => {
  const known = new Set(["quantity", "side"]);
  it("given a known name twice at the top, then it is refused naming it", () => {
    expect(() => parseOrderJson('{"x":1,"x":2,"side":"BUY","quantity":"1","quantity":"2"}', known)).toThrow(
      expect.objectContaining({ path: "quantity" }) as Error,
    );
  });
  it("given a name twice only in ignored fields or inside a known field, then JSON.parse's reading stands", () => {
    expect(parseOrderJson('{"x_trace":"a","x_trace":"b","quantity":"1"}', known)).toEqual({
      x_trace: "b",
      quantity: "1",
    });
    expect(parseOrderJson('{"x_meta":{"tag":"a","tag":"b"},"quantity":"1"}', known)).toEqual({
      x_meta: { tag: "b" },
      quantity: "1",
    });
    // a known field that is an object is refused by the schema at that field
    expect(parseOrderJson('{"quantity":{"q":1,"q":2}}', known)).toEqual({ quantity: { q: 2 } });
  });
});
