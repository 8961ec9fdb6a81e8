/**
 * `mts-risk check --protobuf` sends the order the file says, or nothing: a field whose JSON value
 * has no faithful protobuf form (a fractional JSON number for a decimal, a number for a text
 * field, a string for reduce_only, an empty string the protobuf cannot tell from absent) is refused
 * with one line and exit 2, never coerced into an order the engine approves while the same file
 * sent as JSON is SCHEMA_INVALID.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../src/bus/nats-server.js";
import type { Engine } from "../src/engine/index.js";
import { expectOneLineError, run } from "./support/cli.js";
import { Bus, applied, envelope, order, startTestEngine } from "./support/engine.js";
import { connectTest, startTestNats, waitFor } from "./support/nats.js";

describe("mts-risk check --protobuf: the order of the file, or a refusal", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let dir: string;
  let g: string[];

  beforeAll(async () => {
    vi.stubEnv("RISK_LOG__LEVEL", "warn");
    server = await startTestNats();
    engine = await startTestEngine(server.url);
    nc = await connectTest(server.url);
    const seq = await new Bus(nc).envelope(envelope("alpha"));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
    dir = await mkdtemp(join(tmpdir(), "mts-cli-proto-"));
    g = ["--nats-url", server.url, "--state-dir", join(dir, "state")];
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    vi.unstubAllEnvs();
  });

  async function file(o: Record<string, unknown>): Promise<string> {
    const f = join(dir, `${String(o.order_id)}.json`);
    await writeFile(f, JSON.stringify(o));
    return f;
  }

  it("a schema-valid order gets the same decision in JSON and protobuf (a JSON integer quantity included)", async () => {
    const f = await file(order({ quantity: 10 }));
    const json = await run(["check", "--file", f, ...g]);
    expect(json.code).toBe(0);
    const o2 = order({ quantity: 10 });
    const proto = await run(["check", "--file", await file(o2), "--protobuf", ...g]);
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
      const json = await run(["check", "--file", await file(order(over)), ...g]);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.out)).toMatchObject({ rejection_code: "SCHEMA_INVALID", details: { path } });
      const proto = await run(["check", "--file", await file(order(over)), "--protobuf", ...g]);
      expect(proto.out).toBe("");
      expectOneLineError(proto, 2);
      expect(proto.err).toContain(path);
    });
  }
});
