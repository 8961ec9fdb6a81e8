/**
 * What the OMS client makes of a reply that is not a RiskDecision (a stray or broken responder on
 * the check subject, a proxy that mangles the body): never an approval, never a throw, never a
 * rejection without a code. Such a reply is not an answer: the client asks again with the same
 * body, and with no proper answer before its deadline it fails closed (ENGINE_UNAVAILABLE).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { type OrderRequest, createRiskClient } from "../../src/client/index.js";
import { PROTOBUF_CONTENT_TYPE, encodeDecisionProto } from "../../src/contract/codec.js";
import { connectTest, startTestNats } from "../support/nats.js";
import { order } from "../support/engine.js";

const ord = (over: Record<string, unknown> = {}) => order(over) as OrderRequest;
const te = new TextEncoder();

// one server for the file: every test answers on a subject of its own
let server: NatsServerHandle;
let nc: NatsConnection;
beforeAll(async () => {
  server = await startTestNats();
  nc = await connectTest(server.url);
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

describe("risk client: replies that are not a RiskDecision", () => {
  /** Answers every request on `subject` with `reply(order)`; returns how many it answered. */
  function responder(subject: string, reply: (o: Record<string, unknown>) => Uint8Array, proto = false) {
    let n = 0;
    const h = natsHeaders();
    h.set("Content-Type", proto ? PROTOBUF_CONTENT_TYPE : "application/json");
    const sub = nc.subscribe(subject, {
      callback: (_err, m: Msg) => {
        n++;
        const o = proto ? {} : (JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>);
        m.respond(reply(o), { headers: h });
      },
    });
    return { count: () => n, stop: () => sub.unsubscribe() };
  }

  /** Runs `fn` with a responder answering `reply` on a fresh subject, stopped afterwards. */
  async function withResponder(
    reply: (o: Record<string, unknown>) => Uint8Array,
    fn: (subject: string, answered: () => number) => Promise<void>,
    proto = false,
  ): Promise<void> {
    const subject = `test.reply.${Math.random().toString(36).slice(2)}`;
    const r = responder(subject, reply, proto);
    try {
      await fn(subject, r.count);
    } finally {
      r.stop();
    }
  }

  const good = (o: Record<string, unknown>) => ({
    order_id: o.order_id,
    approved: true,
    rejecting_gate: "",
    rejection_code: "",
    reason: "",
    details: {},
    envelope_id: "alpha@v1",
    decided_at: "2026-11-21T14:30:00.000Z",
  });

  const cases: [string, (o: Record<string, unknown>) => unknown][] = [
    ['"approved": "false" (a string)', (o) => ({ ...good(o), approved: "false" })],
    ['"approved": 1', (o) => ({ ...good(o), approved: 1 })],
    ["null", () => null],
    ["an array", (o) => [good(o)]],
    ["an error object", () => ({ error: { code: "INTERNAL", message: "boom" } })],
    ["approved with a rejection code", (o) => ({ ...good(o), rejection_code: "MAX_POSITION_EXCEEDED" })],
    ["approved for another order_id", (o) => ({ ...good(o), order_id: "someone-else" })],
  ];

  for (const [name, body] of cases) {
    it(`a JSON reply of ${name} is never returned as a decision: fails closed, retried with the same body`, async () => {
      await withResponder(
        (o) => te.encode(JSON.stringify(body(o))),
        async (subject, answered) => {
          const c = createRiskClient(nc, { timeoutMs: 100, retries: 1, subject });
          const o = ord();
          const d = await c.check(o);
          expect(d).toMatchObject({
            order_id: o.order_id,
            approved: false,
            rejecting_gate: "client",
            rejection_code: "ENGINE_UNAVAILABLE",
          });
          expect(d.reason).toMatch(/malformed reply/);
          expect(answered()).toBeGreaterThanOrEqual(2);
        },
      );
    });
  }

  it("an empty protobuf reply (every field at its default: a rejection with no code) fails closed", async () => {
    await withResponder(
      () => new Uint8Array(0),
      async (subject) => {
        const c = createRiskClient(nc, { timeoutMs: 100, retries: 1, subject, encoding: "protobuf" });
        const o = ord();
        const d = await c.check(o);
        expect(d).toMatchObject({
          order_id: o.order_id,
          approved: false,
          rejection_code: "ENGINE_UNAVAILABLE",
        });
      },
      true,
    );
  });

  it("a well-formed reply is returned as is (JSON and protobuf)", async () => {
    await withResponder(
      (o) => te.encode(JSON.stringify(good(o))),
      async (subject) => {
        const o = ord();
        const d = await createRiskClient(nc, { timeoutMs: 500, subject }).check(o);
        expect(d).toMatchObject({ order_id: o.order_id, approved: true, rejection_code: "" });
      },
    );
    const o = ord();
    await withResponder(
      () =>
        encodeDecisionProto({
          ...good(o),
          approved: false,
          rejecting_gate: "static",
          rejection_code: "MAX_ORDER_QTY_EXCEEDED",
        } as never),
      async (subject) => {
        const d = await createRiskClient(nc, { timeoutMs: 500, subject, encoding: "protobuf" }).check(o);
        expect(d).toMatchObject({
          order_id: o.order_id,
          approved: false,
          rejection_code: "MAX_ORDER_QTY_EXCEEDED",
        });
      },
      true,
    );
  });
});

describe("risk client: options that would never ask the engine", () => {
  // timeoutMs 0, negative or NaN-retries: every check was ENGINE_UNAVAILABLE after 0 attempts (a
  // phantom outage); retries Infinity: a check never returned while no engine answered.
  for (const bad of [
    { timeoutMs: 0 },
    { timeoutMs: -5 },
    { timeoutMs: Number.NaN },
    { timeoutMs: Number.POSITIVE_INFINITY },
    { retries: Number.NaN },
    { retries: Number.POSITIVE_INFINITY },
    { retries: 1.5 },
  ]) {
    it(`refuses ${JSON.stringify(bad, (_k, v: unknown) => (typeof v === "number" ? String(v) : v))} at creation (RiskClientError INVALID_OPTIONS)`, () => {
      expect(() => createRiskClient(nc, bad)).toThrow(
        expect.objectContaining({ name: "RiskClientError", code: "INVALID_OPTIONS" }) as Error,
      );
    });
  }

  it("accepts the defaults and ordinary options", () => {
    expect(() => createRiskClient(nc)).not.toThrow();
    expect(() => createRiskClient(nc, { timeoutMs: 1, retries: 0 })).not.toThrow();
    expect(() => createRiskClient(nc, { timeoutMs: 250.5, retries: 3 })).not.toThrow();
  });
});

describe("risk client: an order it cannot serialise", () => {
  it("an unknown field JSON cannot carry (a BigInt, a cycle) is a SCHEMA_INVALID answer, not a throw", async () => {
    const c = createRiskClient(nc, { timeoutMs: 100, retries: 0, subject: "test.nobody.check" });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const meta of [10n, cyclic]) {
      const o = ord({ meta });
      const d = await c.check(o);
      expect(d).toMatchObject({
        order_id: o.order_id,
        approved: false,
        rejecting_gate: "schema",
        rejection_code: "SCHEMA_INVALID",
        details: { checked_by: "client" },
      });
    }
  });
});
