/**
 * Issue 8, cases 8-11 and 13, through a real nats-server: zero-price fills, one-sided quotes,
 * out-of-order quotes, the .proto as the JSON contract, and content types.
 * One nats-server and one engine (manual clock) for the file; each case uses its own fund and symbol.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import protobuf from "protobufjs";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { decodeDecisionProto } from "../../src/contract/codec.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, publishedHalts, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

const EARLIER = new Date(Date.parse(NOW) - 1000).toISOString();

describe("market data and wire cases (issue 8)", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const timers = steppableTimers();

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock, timers });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const until = async (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  const setEnvelope = async (fund: string, over: Record<string, unknown>) =>
    until("RISK_ENVELOPES", await bus.envelope(envelope(fund, over)));
  const decision = (d: { approved: boolean; rejecting_gate: string; rejection_code: string }) => ({
    approved: d.approved,
    gate: d.rejecting_gate,
    code: d.rejection_code,
  });
  const approved = { approved: true, gate: "", code: "" };

  describe("case 8: a fill priced at 0", () => {
    it("given a transfer in at price 0, then it moves the position (cost 0) and a buy beyond the limit is refused", async () => {
      await setEnvelope("zf", { max_position_pct: "0.10" });
      await until("QUOTES", await bus.quote("ZF1", "99", "101"));
      await until("FILLS", await bus.fill({ fund_id: "zf", symbol: "ZF1", quantity: "1000", price: "0" }));
      const pos = engine.observe.book("zf", "ZF1");
      expect(pos?.qty).toBe("1000");
      expect(pos?.cost).toBe("0");
      // NAV = 1 000 000 + 100 000 (at mark, cost 0) = 1 100 000; limit 110 000; 100 000 held
      const d = await bus.check(order({ fund_id: "zf", symbol: "ZF1", quantity: "200", limit_price: "100" }));
      expect(decision(d)).toEqual({ approved: false, gate: "position", code: "MAX_POSITION_EXCEEDED" });
      expect(d.details["resulting_notional"]).toBe("120000");
      // its average cost is 0: selling half at 100 realizes 50 000
      await until(
        "FILLS",
        await bus.fill({ fund_id: "zf", symbol: "ZF1", side: "SELL", quantity: "500", price: "100" }),
      );
      expect(engine.observe.book("zf", "ZF1")?.realized).toBe("50000");
    });
  });

  describe("case 9: a one-sided quote", () => {
    it("given bid 0, then the symbol has a mark (mid = ask / 2) and a MARKET order is priced", async () => {
      await setEnvelope("os", { enable_shorting: true, max_position_pct: "0.01" });
      await until("REFDATA", await bus.instrument({ symbol: "OS1", asset_class: "option", shortable: true }));
      await until("QUOTES", await bus.quote("OS1", "0", "0.05"));
      expect(engine.observe.mark("OS1")?.mid).toBe("0.025");
      const buy = await bus.check(
        order({
          fund_id: "os",
          symbol: "OS1",
          order_type: "MARKET",
          limit_price: undefined,
          quantity: "100",
        }),
      );
      expect(decision(buy)).toEqual(approved);
    });

    it("given bid 0, then a SELL MARKET is valued at the mark, not at 0: a huge short does not escape the position limit", async () => {
      // 1 000 000 × 0.025 = 25 000 > 1 % of NAV (10 000); at the 0 bid it would be 0
      const sell = await bus.check(
        order({
          fund_id: "os",
          symbol: "OS1",
          side: "SELL",
          order_type: "MARKET",
          limit_price: undefined,
          quantity: "1000000",
        }),
      );
      expect(decision(sell)).toEqual({ approved: false, gate: "position", code: "MAX_POSITION_EXCEEDED" });
      expect(sell.details["resulting_notional"]).toBe("25000");
    });

    it("given ask 0 (no offer), then the mark is the bid", async () => {
      await until("QUOTES", await bus.quote("OS2", "1.5", "0"));
      expect(engine.observe.mark("OS2")?.mid).toBe("1.5");
      const buy = await bus.check(
        order({ fund_id: "os", symbol: "OS2", order_type: "MARKET", limit_price: undefined, quantity: "10" }),
      );
      expect(decision(buy)).toEqual(approved);
    });
  });

  describe("case 10: quotes out of order", () => {
    it("given a quote older than the mark in force, then the mark stays the newer one", async () => {
      await setEnvelope("oo", { max_order_notional: "8000" });
      await until("QUOTES", await bus.quote("OO1", "100", "102", NOW));
      await until("QUOTES", await bus.quote("OO1", "50", "52", EARLIER));
      expect(engine.observe.mark("OO1")?.mid).toBe("101");
      // priced at the newer ask (102): 10 200 > 8 000; at the late quote's 52 it would pass
      const d = await bus.check(
        order({
          fund_id: "oo",
          symbol: "OO1",
          order_type: "MARKET",
          limit_price: undefined,
          quantity: "100",
        }),
      );
      expect(decision(d)).toEqual({ approved: false, gate: "static", code: "MAX_ORDER_NOTIONAL_EXCEEDED" });
      // a quote with the same timestamp replaces it (stream order), a newer one too
      await until("QUOTES", await bus.quote("OO1", "60", "62", NOW));
      expect(engine.observe.mark("OO1")?.mid).toBe("61");
    });
  });

  describe("a loss that reaches a halt threshold halts (<=)", () => {
    it("given a daily limit of 3 %, when the loss is 1e-14 short of it there is no halt, and at exactly 3 % the fund halts", async () => {
      await setEnvelope("hb", { daily_loss_halt_pct: "0.03" });
      await until("FILLS", await bus.fill({ fund_id: "hb", symbol: "HB1", quantity: "10000", price: "100" }));
      await until("QUOTES", await bus.quote("HB1", "99.99", "100.01"));
      const fund = () => engine.observe.fund("hb")!;
      await waitFor(() => fund().baselines["day"]?.equity === "1000000");
      // mid 97.000000000000000001: loss 29 999.99999999999999 (0.03 × 1 000 000 = 30 000)
      await until("QUOTES", await bus.quote("HB1", "96.999999999999999999", "97.000000000000000003"));
      await timers.tick("drawdown"); // evaluated now: what it halts is on RISK_CONTROL when this resolves
      expect(await publishedHalts(nc, "hb")).toEqual([]);
      expect(fund().halts["DAILY_LOSS"] !== undefined).toBe(false);
      await until("QUOTES", await bus.quote("HB1", "96.99", "97.01")); // mid 97: loss 30 000, exactly 3 %
      await waitFor(() => fund().halts["DAILY_LOSS"] !== undefined);
    });
  });

  describe("case 11: the .proto alone builds an Order from its JSON form", () => {
    it("given protobufjs fromObject({ side: 'BUY', order_type: 'LIMIT', asset_class: 'equity' }), then the order is approved", async () => {
      await setEnvelope("pb", {});
      const root = protobuf.parse(
        readFileSync(new URL("../../subjects/riskengine.proto", import.meta.url), "utf8"),
        { keepCase: true },
      ).root;
      const Order = root.lookupType("mts.risk.v1.Order");
      const json = order({ fund_id: "pb", asset_class: "equity", time_in_force: "DAY" });
      const bytes = Order.encode(Order.fromObject(json)).finish();
      const h = natsHeaders();
      h.set("Content-Type", "application/x-protobuf");
      const m = await nc.request(Subjects.check, bytes, { timeout: 5000, headers: h });
      const d = decodeDecisionProto(m.data);
      expect(decision(d)).toEqual(approved);
      expect(d.order_id).toBe(json["order_id"]);
    });
  });

  describe("case 13: content types", () => {
    it("given Content-Type application/protobuf, then the order is read as protobuf and the reply is protobuf with that type", async () => {
      await setEnvelope("ct", {});
      const root = protobuf.parse(
        readFileSync(new URL("../../subjects/riskengine.proto", import.meta.url), "utf8"),
        { keepCase: true },
      ).root;
      const Order = root.lookupType("mts.risk.v1.Order");
      const json = order({ fund_id: "ct" });
      const h = natsHeaders();
      h.set("Content-Type", "application/protobuf");
      const m = await nc.request(Subjects.check, Order.encode(Order.fromObject(json)).finish(), {
        timeout: 5000,
        headers: h,
      });
      expect(m.headers?.get("Content-Type")).toBe("application/protobuf");
      expect(decision(decodeDecisionProto(m.data))).toEqual(approved);
    });

    it("given JSON requests, then every reply carries Content-Type application/json", async () => {
      const check = await nc.request(Subjects.check, JSON.stringify(order({ fund_id: "ct" })), {
        timeout: 5000,
      });
      expect(check.headers?.get("Content-Type")).toBe("application/json");
      const bad = await nc.request(Subjects.check, "not json", { timeout: 5000 });
      expect(bad.headers?.get("Content-Type")).toBe("application/json");
      const env = await nc.request(Subjects.envelopeGet, JSON.stringify({ fund_id: "ct" }), {
        timeout: 5000,
      });
      expect(env.headers?.get("Content-Type")).toBe("application/json");
      const status = await nc.request(Subjects.status, "{}", { timeout: 5000 });
      expect(status.headers?.get("Content-Type")).toBe("application/json");
    });
  });
});
