/**
 * Red-team pass (stop 30a) on the strict JSON order parse (src/contract/json-strict.ts) and what the
 * check does with the parsed body, through the bus on a real nats-server. CONTRACT.md "Encoding":
 * "Numbers given as JSON numbers are accepted only where they are exactly representable integers;
 * anything else is SCHEMA_INVALID"; "Messages": "Unknown fields are ignored; missing required
 * fields are SCHEMA_INVALID"; "Gates": "SCHEMA_INVALID (details.path names the field)", "Every
 * decision is journaled". One nats-server, one engine on a manual clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, startTestEngine } from "../support/engine.js";

type D = {
  order_id: string;
  approved: boolean;
  rejecting_gate: string;
  rejection_code: string;
  details: Record<string, string>;
};
const outcome = (d: D) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);
const withPath = (d: D) => `${outcome(d)} ${d.details["path"] ?? ""}`.trim();

describe("red-team s30a: strict JSON order parsing", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  let n = 0;

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  const fund = async (F: string, over: Record<string, unknown> = {}) =>
    until("RISK_ENVELOPES", await bus.envelope(envelope(F, over)));
  const nextId = () => `s30j-${process.pid}-${++n}`;
  /** A raw JSON order text: the head names the order; `tail` is appended verbatim. */
  const raw = (F: string, symbol: string, tail: string, id = nextId()) =>
    `{"order_id":"${id}","idempotency_key":"${id}","fund_id":"${F}","broker":"paper","symbol":"${symbol}","side":"BUY","order_type":"LIMIT",${tail}}`;

  // ---------------------------------------------------------------- regression guards (pass)

  it("a name written with \\u escapes that equals another name is a duplicate (SCHEMA_INVALID)", async () => {
    const F = "s30j-esc";
    await fund(F, { max_order_qty: "100" });
    const d = await bus.check(raw(F, "JEA", `"quantity":"1000000","limit_price":"5","quantit\\u0079":"1"`));
    expect(withPath(d)).toBe("schema/SCHEMA_INVALID quantity");
    // and the escaped form alone is just the name
    expect(outcome(await bus.check(raw(F, "JEA", `"quantit\\u0079":"1","limit_price":"5"`)))).toBe(
      "approved",
    );
  });

  it("exponent and fraction forms of exact integers are those integers; others are SCHEMA_INVALID", async () => {
    const F = "s30j-exp";
    await fund(F, { max_order_qty: "100" });
    for (const q of ["1E+2", "100e0", "0.1e3", "1000e-1", "100.000", "10000000000000000000000e-20"]) {
      expect(`${q} ${outcome(await bus.check(raw(F, "JEB", `"quantity":${q},"limit_price":5`)))}`).toBe(
        `${q} approved`,
      );
    }
    for (const q of ["1.015e2", "100.5", "-0", "0", "0e5", "1e-400", "9007199254740993", "1e400"]) {
      expect(`${q} ${withPath(await bus.check(raw(F, "JEB", `"quantity":${q},"limit_price":5`)))}`).toBe(
        `${q} schema/SCHEMA_INVALID quantity`,
      );
    }
    // one unit above the limit in exponent form fails the limit, as "101" does
    expect(outcome(await bus.check(raw(F, "JEB", `"quantity":1.01E2,"limit_price":5`)))).toBe(
      "static/MAX_ORDER_QTY_EXCEEDED",
    );
  });

  it("numbers and names inside strings (escaped quotes, backslashes) are not parsed as JSON", async () => {
    const F = "s30j-str";
    await fund(F, { max_order_qty: "100" });
    // a string value holding `\"quantity\":1.00000000000000001` and a trailing backslash
    const d = await bus.check(
      raw(
        F,
        "JEC",
        `"time_in_force":"x\\\\\\",\\"quantity\\":1.00000000000000001\\\\","quantity":"7","limit_price":"5"`,
      ),
    );
    expect(outcome(d)).toBe("approved");
  });

  it("a UTF-8 byte-order mark and JSON whitespace around names are accepted", async () => {
    const F = "s30j-ws";
    await fund(F);
    const id = nextId();
    const text = `\uFEFF \r\n{\t"order_id" :"${id}" ,\n"idempotency_key"\r\n:\t"${id}","fund_id":"${F}","broker":"paper","symbol":"JED","side":"BUY","order_type":"LIMIT","quantity" : 10 ,"limit_price":"5"}\n`;
    expect(outcome(await bus.check(text))).toBe("approved");
  });

  it('the same order with its quantity as "100", 100, 1e2 and 100.0 replays the first decision', async () => {
    const F = "s30j-forms";
    await fund(F);
    const id = nextId();
    const first = await bus.check(raw(F, "JEE", `"quantity":"100","limit_price":"5"`, id));
    expect(outcome(first)).toBe("approved");
    for (const q of ["100", "1e2", "100.0", "0.1e3"]) {
      const d = await bus.check(raw(F, "JEE", `"quantity":${q},"limit_price":"5.0"`, id));
      expect(`${q} ${outcome(d)} ${d.details["replayed"]}`).toBe(`${q} approved true`);
    }
  });

  it("unknown fields holding deep arrays (20 000) are ignored", async () => {
    const F = "s30j-deepok";
    await fund(F);
    const deep = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
    const d = await bus.check(raw(F, "JEF", `"x_meta":${deep},"quantity":"1","limit_price":"5"`));
    expect(outcome(d)).toBe("approved");
  });

  // ---------------------------------------------------------------- defects (fail now)

  /**
   * A known Order field (here `time_in_force`, `strategy_id`, `quantity`) given a deeply nested
   * array is simply the wrong type: CONTRACT.md makes that SCHEMA_INVALID with details.path naming
   * the field, journaled like every decision. The engine computes per-field hashes of the request
   * (src/gates/idempotency.ts fieldHashes → hashValue → JSON.stringify of the value) before the
   * schema answers; JSON.stringify of ≈ 5 000+ nested arrays overflows the stack, the decider
   * throws, and the check is answered engine/STATE_NOT_READY "internal error" (transient: the OMS
   * retries the same body for ever), with no decision journaled.
   */
  it("a known field holding a deeply nested array is SCHEMA_INVALID at that field, not a transient STATE_NOT_READY", async () => {
    const F = "s30j-deep";
    await fund(F);
    const deep = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
    const answers: string[] = [];
    for (const field of ["time_in_force", "strategy_id", "quantity"]) {
      const tail =
        field === "quantity"
          ? `"quantity":${deep},"limit_price":"5"`
          : `"${field}":${deep},"quantity":"1","limit_price":"5"`;
      answers.push(`${field}: ${withPath(await bus.check(raw(F, "JEG", tail)))}`);
    }
    expect(answers).toEqual([
      "time_in_force: schema/SCHEMA_INVALID time_in_force",
      "strategy_id: schema/SCHEMA_INVALID strategy_id",
      "quantity: schema/SCHEMA_INVALID quantity",
    ]);
  });

  /**
   * CONTRACT.md: "Unknown fields are ignored". The strict parse refuses a name given twice in ANY
   * object of the body, an unknown field's object included (json-strict.ts keyCount counts every
   * object), and a top-level unknown name given twice: the whole order is SCHEMA_INVALID (with an
   * empty details.path for the nested case, which names no field). Neither duplicate can change
   * any Order field the engine judges (the stated rationale, a parser differential on `quantity`,
   * does not apply to a field nobody reads). Expected: judged as the order it is (approved here).
   */
  it("a name given twice inside an unknown field does not make a valid order SCHEMA_INVALID", async () => {
    const F = "s30j-dupunk";
    await fund(F);
    const nested = await bus.check(
      raw(F, "JEH", `"x_meta":{"tag":"a","tag":"b"},"quantity":"1","limit_price":"5"`),
    );
    const top = await bus.check(
      raw(F, "JEH", `"x_trace":"a","quantity":"1","limit_price":"5","x_trace":"b"`),
    );
    expect([withPath(nested), withPath(top)]).toEqual(["approved", "approved"]);
  });
});
