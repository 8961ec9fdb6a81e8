/**
 * Malformed requests each get a structured SCHEMA_INVALID reply and the service keeps answering;
 * protobuf requests get protobuf replies; envelope.get answers current and historical versions.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { decodeDecisionProto, encodeOrderProto, PROTOBUF_CONTENT_TYPE } from "../../src/contract/codec.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";

describe("hostile and malformed requests", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url);
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await bus.envelope(envelope("alpha"));
    const seq = await bus.envelope(envelope("alpha", { version: 2, max_order_qty: "500" }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const protoHeaders = () => {
    const h = headers();
    h.set("Content-Type", PROTOBUF_CONTENT_TYPE);
    return h;
  };

  it.each([
    ["not JSON", "{{{", ""],
    ["a JSON array", "[1,2]", ""],
    ["a JSON string", '"order"', ""],
    ["null", "null", ""],
    ["wrong types", JSON.stringify(order({ quantity: true })), "quantity"],
    ["a negative quantity", JSON.stringify(order({ quantity: "-5" })), "quantity"],
    ["a zero quantity", JSON.stringify(order({ quantity: "0" })), "quantity"],
    ["NaN", JSON.stringify(order({ quantity: "NaN" })), "quantity"],
    ["Infinity", JSON.stringify(order({ limit_price: "Infinity" })), "limit_price"],
    ["an exponent", JSON.stringify(order({ quantity: "1e3" })), "quantity"],
    ["an unsafe integer", JSON.stringify(order({ quantity: 2 ** 60 })), "quantity"],
    ["a float number", JSON.stringify(order({ limit_price: 0.1 })), "limit_price"],
    ["a huge number string", JSON.stringify(order({ quantity: "9".repeat(400) })), "quantity"],
    ["an unknown enum", JSON.stringify(order({ order_type: "ICEBERG" })), "order_type"],
    ["a missing field", JSON.stringify(order({ symbol: undefined })), "symbol"],
    ["a bad timestamp", JSON.stringify(order({ created_at: "yesterday" })), "created_at"],
  ])("%s → SCHEMA_INVALID", async (_what, body, path) => {
    const d = await bus.check(body);
    expect(d).toMatchObject({ approved: false, rejecting_gate: "schema", rejection_code: "SCHEMA_INVALID" });
    expect(d.details["path"]).toBe(path);
  });

  it("a 1 MB body gets SCHEMA_INVALID and the service keeps answering", async () => {
    const big = JSON.stringify(order({ padding: "x".repeat(1_000_000) }));
    const d = await bus.check(big, undefined, 10000);
    expect(d).toMatchObject({ approved: false, rejection_code: "SCHEMA_INVALID" });
    expect((await bus.check(order())).approved).toBe(true);
  });

  it("unknown fields are ignored", async () => {
    expect((await bus.check(order({ something_new: { nested: 1 } }))).approved).toBe(true);
  });

  it("bad protobuf gets a protobuf SCHEMA_INVALID reply", async () => {
    for (const bytes of [
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]),
      new Uint8Array([0x0a, 0x50, 0x01]),
    ]) {
      const m = await nc.request(Subjects.check, bytes, { timeout: 5000, headers: protoHeaders() });
      expect(m.headers?.get("Content-Type")).toBe(PROTOBUF_CONTENT_TYPE);
      expect(decodeDecisionProto(m.data)).toMatchObject({
        approved: false,
        rejection_code: "SCHEMA_INVALID",
      });
    }
  });

  it("a valid protobuf order is decided and answered in protobuf", async () => {
    const o = order({ quantity: "501" });
    const m = await nc.request(Subjects.check, encodeOrderProto(o), {
      timeout: 5000,
      headers: protoHeaders(),
    });
    const d = decodeDecisionProto(m.data);
    expect(d).toMatchObject({
      order_id: o["order_id"],
      approved: false,
      rejecting_gate: "static",
      rejection_code: "MAX_ORDER_QTY_EXCEEDED",
      envelope_id: "alpha@v2",
    });
  });

  it("the fund-partitioned subject is served, and a mismatched fund is rejected", async () => {
    expect((await bus.check(order(), Subjects.checkFund("alpha"))).approved).toBe(true);
    const d = await bus.check(order(), Subjects.checkFund("beta"));
    expect(d).toMatchObject({ rejection_code: "SCHEMA_INVALID", details: { path: "fund_id" } });
  });

  it("envelope.get answers the current and a given version, and a structured error", async () => {
    const cur = await nc.request(Subjects.envelopeGet, JSON.stringify({ fund_id: "alpha" }), {
      timeout: 5000,
    });
    expect(cur.json()).toMatchObject({ fund_id: "alpha", version: 2, max_order_qty: "500" });
    const v1 = await nc.request(Subjects.envelopeGet, JSON.stringify({ fund_id: "alpha", version: 1 }), {
      timeout: 5000,
    });
    expect(v1.json()).toMatchObject({ fund_id: "alpha", version: 1, capital: "1000000" });
    const none = await nc.request(Subjects.envelopeGet, JSON.stringify({ fund_id: "zeta" }), {
      timeout: 5000,
    });
    expect(none.json()).toEqual({ error: { code: "NOT_FOUND", message: "no envelope for fund zeta" } });
    const bad = await nc.request(Subjects.envelopeGet, "nope", { timeout: 5000 });
    expect(bad.json<{ error: { code: string } }>().error.code).toBe("INVALID_REQUEST");
  });

  it("invalid stream messages are parked on RISK_DLQ and the consumer keeps going", async () => {
    const jsm = await bus.js.jetstreamManager();
    await bus.js.publish(Subjects.fill("alpha", "AAPL"), "not json at all");
    await bus.js.publish(
      Subjects.envelopeUpdated("alpha"),
      JSON.stringify(envelope("alpha", { version: 3, max_position_pct: "-1" })),
    );
    const good = await bus.fill({ fund_id: "alpha", symbol: "AAPL", quantity: "1", price: "1" });
    await waitFor(() => applied(engine, "FILLS", good));
    await waitFor(async () => (await jsm.streams.info("RISK_DLQ")).state.messages >= 2);
    expect(engine.observe.fund("alpha")!.envelope_id).toBe("alpha@v2"); // the invalid v3 is rejected whole
    expect(engine.observe.book("alpha", "AAPL")!.qty).toBe("1");
  });

  it("a replay after a restart (even from an empty snapshot) does not park the same messages again", async () => {
    const jsm = await bus.js.jetstreamManager();
    const parked = (await jsm.streams.info("RISK_DLQ")).state.messages;
    await engine.close();
    engine = await startTestEngine(server.url); // fresh state dir: replays every stream from the start
    const good = await bus.fill({ fund_id: "alpha", symbol: "AAPL", quantity: "1", price: "1" });
    await waitFor(() => applied(engine, "FILLS", good));
    await bus.js.publish(Subjects.fill("alpha", "AAPL"), "still not json");
    await waitFor(async () => (await jsm.streams.info("RISK_DLQ")).state.messages === parked + 1);
    expect(engine.observe.book("alpha", "AAPL")!.qty).toBe("2");
  });
});
