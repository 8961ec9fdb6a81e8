/**
 * `mts-risk check --protobuf` sends the order the file says, or nothing: a field whose JSON value
 * has no faithful protobuf form (a fractional JSON number for a decimal, a number for a text
 * field, a string for reduce_only, an empty string the protobuf cannot tell from absent) is refused
 * with one line and exit 2, never coerced into an order the engine approves while the same file
 * sent as JSON is SCHEMA_INVALID.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliWithEngine, expectOneLineError, run } from "./support/cli.js";
import { order } from "./support/engine.js";

describe("mts-risk check --protobuf: the order of the file, or a refusal", () => {
  const rig = cliWithEngine("mts-cli-proto-");

  async function file(o: Record<string, unknown>): Promise<string> {
    const f = join(rig.dir, `${String(o.order_id)}.json`);
    await writeFile(f, JSON.stringify(o));
    return f;
  }

  it("a schema-valid order gets the same decision in JSON and protobuf (a JSON integer quantity included)", async () => {
    const f = await file(order({ quantity: 10 }));
    const json = await run(["check", "--file", f, ...rig.g]);
    expect(json.code).toBe(0);
    const o2 = order({ quantity: 10 });
    const proto = await run(["check", "--file", await file(o2), "--protobuf", ...rig.g]);
    expect(proto.err).toBe("");
    expect(proto.code).toBe(0);
    expect(JSON.parse(proto.out)).toMatchObject({ approved: true, order_id: o2.order_id });
  });

  const cases: [string, Record<string, unknown>, string][] = [
    ["a fractional JSON number quantity", { quantity: 10.5 }, "quantity"],
    ["a number time_in_force", { time_in_force: 3 }, "time_in_force"],
    ['reduce_only "false"', { reduce_only: "false" }, "reduce_only"],
    ["an empty stop_price on a LIMIT order", { stop_price: "" }, "stop_price"],
  ];
  for (const [name, over, path] of cases) {
    it(`${name}: SCHEMA_INVALID in JSON, refused (exit 2, one line) in protobuf, never approved`, async () => {
      const json = await run(["check", "--file", await file(order(over)), ...rig.g]);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.out)).toMatchObject({ rejection_code: "SCHEMA_INVALID", details: { path } });
      const proto = await run(["check", "--file", await file(order(over)), "--protobuf", ...rig.g]);
      expect(proto.out).toBe("");
      expectOneLineError(proto, 2);
      expect(proto.err).toContain(path);
    });
  }
});
