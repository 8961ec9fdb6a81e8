/**
 * Every rejection code of CONTRACT.md, produced through the real bus with its exact gate.
 * One nats-server and one engine (manual clock) for the file; each case uses its own fund.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

describe("every gate through the bus", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);

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

  async function setup(
    fund: string,
    env: Record<string, unknown>,
    extra: () => Promise<unknown> = () => Promise.resolve(),
  ) {
    const seqs: [string, number][] = [["RISK_ENVELOPES", await bus.envelope(envelope(fund, env))]];
    await extra();
    for (const [s, n] of seqs) await waitFor(() => applied(engine, s, n));
  }
  async function fills(fund: string, list: Record<string, unknown>[]) {
    let last = 0;
    for (const f of list) last = await bus.fill({ fund_id: fund, ...f });
    await waitFor(() => applied(engine, "FILLS", last));
  }
  const expectRejected = (
    d: { approved: boolean; rejecting_gate: string; rejection_code: string },
    gate: string,
    code: string,
  ) =>
    expect({ approved: d.approved, gate: d.rejecting_gate, code: d.rejection_code }).toEqual({
      approved: false,
      gate,
      code,
    });

  describe("idempotency", () => {
    it("replays the original decision for the same key and order, conflicts for a different order", async () => {
      await setup("idem", {});
      const o = order({ fund_id: "idem" });
      const first = await bus.check(o);
      expect(first.approved).toBe(true);
      const again = await bus.check(o);
      expect(again).toEqual({ ...first, details: { ...first.details, replayed: "true" } });
      const other = await bus.check({ ...o, quantity: "101" });
      expectRejected(other, "idempotency", "IDEMPOTENCY_CONFLICT");
      expect(other.details["original_order_id"]).toBe(o["order_id"]);
    });
  });

  describe("schema", () => {
    it.each([
      ["quantity", { quantity: "-1" }],
      ["quantity", { quantity: "NaN" }],
      ["quantity", { quantity: 1.5 }],
      ["side", { side: "HOLD" }],
      ["limit_price", { limit_price: undefined }],
      ["fund_id", { fund_id: "bad.fund" }],
    ])("rejects a bad %s with details.path", async (path, over) => {
      const d = await bus.check(order(over));
      expectRejected(d, "schema", "SCHEMA_INVALID");
      expect(d.details["path"]).toBe(path);
    });
    it("rejects what is not JSON", async () => {
      const d = await bus.check("{not json");
      expectRejected(d, "schema", "SCHEMA_INVALID");
    });
  });

  describe("engine", () => {
    it("NO_ENVELOPE for a fund without one", async () => {
      expectRejected(await bus.check(order({ fund_id: "nobody" })), "engine", "NO_ENVELOPE");
    });
  });

  describe("static", () => {
    it("BROKER_NOT_ALLOWED", async () => {
      await setup("st1", { allowed_brokers: ["ibkr"] });
      expectRejected(await bus.check(order({ fund_id: "st1" })), "static", "BROKER_NOT_ALLOWED");
    });
    it("BROKER_NOT_ALLOWED when allowed_brokers is absent (fail closed)", async () => {
      await setup("st1b", { allowed_brokers: undefined });
      expectRejected(await bus.check(order({ fund_id: "st1b" })), "static", "BROKER_NOT_ALLOWED");
    });
    it("ORDER_TYPE_NOT_ALLOWED", async () => {
      await setup("st2", { allowed_order_types: ["MARKET"] });
      expectRejected(await bus.check(order({ fund_id: "st2" })), "static", "ORDER_TYPE_NOT_ALLOWED");
    });
    it("ASSET_CLASS_NOT_ALLOWED, also when the class is unknown", async () => {
      await setup("st3", { allowed_asset_classes: ["equity"] });
      expectRejected(
        await bus.check(order({ fund_id: "st3", asset_class: "crypto", symbol: "BTC-USD" })),
        "static",
        "ASSET_CLASS_NOT_ALLOWED",
      );
      expectRejected(
        await bus.check(order({ fund_id: "st3", symbol: "NOREF" })),
        "static",
        "ASSET_CLASS_NOT_ALLOWED",
      );
      expect((await bus.check(order({ fund_id: "st3", asset_class: "equity" }))).approved).toBe(true);
    });
    it("SYMBOL_RESTRICTED", async () => {
      await setup("st4", { restricted_symbols: ["AAPL"] });
      expectRejected(await bus.check(order({ fund_id: "st4" })), "static", "SYMBOL_RESTRICTED");
    });
    it("MAX_ORDER_QTY_EXCEEDED at one unit above the limit", async () => {
      await setup("st5", { max_order_qty: "100" });
      expect((await bus.check(order({ fund_id: "st5", quantity: "100" }))).approved).toBe(true);
      expectRejected(
        await bus.check(order({ fund_id: "st5", quantity: "100.000001" })),
        "static",
        "MAX_ORDER_QTY_EXCEEDED",
      );
    });
    it("MAX_ORDER_NOTIONAL_EXCEEDED", async () => {
      await setup("st6", { max_order_notional: "10000" });
      expect((await bus.check(order({ fund_id: "st6", quantity: "100", limit_price: "100" }))).approved).toBe(
        true,
      );
      expectRejected(
        await bus.check(order({ fund_id: "st6", quantity: "100", limit_price: "100.01" })),
        "static",
        "MAX_ORDER_NOTIONAL_EXCEEDED",
      );
    });
    it("PRICE_COLLAR_BREACHED (both edges pass)", async () => {
      await setup("st7", { price_collar_pct: "0.05" });
      const seq = await bus.quote("COLL", "99", "101"); // mid 100
      await waitFor(() => applied(engine, "QUOTES", seq));
      expect((await bus.check(order({ fund_id: "st7", symbol: "COLL", limit_price: "105" }))).approved).toBe(
        true,
      );
      expect((await bus.check(order({ fund_id: "st7", symbol: "COLL", limit_price: "95" }))).approved).toBe(
        true,
      );
      expectRejected(
        await bus.check(order({ fund_id: "st7", symbol: "COLL", limit_price: "105.01" })),
        "static",
        "PRICE_COLLAR_BREACHED",
      );
    });
    it("STALE_MARKET_DATA for a MARKET order without a fresh mark", async () => {
      await setup("st8", { max_quote_age_ms: 5000 });
      expectRejected(
        await bus.check(
          order({ fund_id: "st8", symbol: "NOQUOTE", order_type: "MARKET", limit_price: undefined }),
        ),
        "static",
        "STALE_MARKET_DATA",
      );
      const seq = await bus.quote("OLDQ", "10", "10.02", "2026-11-21T14:29:54.999Z"); // 5001 ms old
      await waitFor(() => applied(engine, "QUOTES", seq));
      expectRejected(
        await bus.check(
          order({ fund_id: "st8", symbol: "OLDQ", order_type: "MARKET", limit_price: undefined }),
        ),
        "static",
        "STALE_MARKET_DATA",
      );
      const fresh = await bus.quote("NEWQ", "10", "10.02", "2026-11-21T14:29:55.000Z"); // exactly 5000 ms
      await waitFor(() => applied(engine, "QUOTES", fresh));
      expect(
        (
          await bus.check(
            order({ fund_id: "st8", symbol: "NEWQ", order_type: "MARKET", limit_price: undefined }),
          )
        ).approved,
      ).toBe(true);
    });
  });

  describe("velocity", () => {
    it("VELOCITY_EXCEEDED on the order after max_orders in the window", async () => {
      await setup("vel", { velocity: { window_s: 1, max_orders: 3 } });
      for (let i = 0; i < 3; i++) expect((await bus.check(order({ fund_id: "vel" }))).approved).toBe(true);
      expectRejected(await bus.check(order({ fund_id: "vel" })), "velocity", "VELOCITY_EXCEEDED");
      clock.advance(1000);
      expect((await bus.check(order({ fund_id: "vel" }))).approved).toBe(true);
    });
  });

  describe("position", () => {
    it("MAX_POSITION_EXCEEDED counts open reservations", async () => {
      await setup("pos1", { max_position_pct: "0.10" }); // 100 000 of 1 000 000
      expect(
        (await bus.check(order({ fund_id: "pos1", quantity: "600", limit_price: "100" }))).approved,
      ).toBe(true);
      expect(
        (await bus.check(order({ fund_id: "pos1", quantity: "400", limit_price: "100" }))).approved,
      ).toBe(true);
      const d = await bus.check(order({ fund_id: "pos1", quantity: "0.01", limit_price: "100" }));
      expectRejected(d, "position", "MAX_POSITION_EXCEEDED");
      expect(d.details).toMatchObject({ resulting_notional: "100001", limit_notional: "100000" });
    });
    it("GROSS_EXPOSURE_EXCEEDED", async () => {
      await setup("pos2", { max_position_pct: "0.5", max_gross_exposure_pct: "1.0" });
      await fills("pos2", [{ symbol: "MSFT", quantity: "8000", price: "100" }]);
      expectRejected(
        await bus.check(order({ fund_id: "pos2", quantity: "2001", limit_price: "100" })),
        "position",
        "GROSS_EXPOSURE_EXCEEDED",
      );
      expect(
        (await bus.check(order({ fund_id: "pos2", quantity: "2000", limit_price: "100" }))).approved,
      ).toBe(true);
    });
    it("NET_EXPOSURE_EXCEEDED", async () => {
      await setup("pos3", { max_gross_exposure_pct: "2", max_net_exposure_pct: "0.5" });
      await fills("pos3", [{ symbol: "MSFT", quantity: "4000", price: "100" }]);
      expectRejected(
        await bus.check(order({ fund_id: "pos3", quantity: "1001", limit_price: "100" })),
        "position",
        "NET_EXPOSURE_EXCEEDED",
      );
    });
    it("SECTOR_CONCENTRATION_EXCEEDED", async () => {
      await setup("pos4", { max_sector_pct: "0.30" }, async () => {
        await bus.instrument({ symbol: "TECH1", asset_class: "equity", sector: "tech" });
        await bus.instrument({ symbol: "TECH2", asset_class: "equity", sector: "tech" });
      });
      await fills("pos4", [{ symbol: "TECH1", quantity: "2000", price: "100" }]);
      await waitFor(() => engine.observe.instrument("TECH2"));
      expect((await bus.check(order({ fund_id: "pos4", symbol: "TECH2", quantity: "1000" }))).approved).toBe(
        true,
      );
      const d = await bus.check(order({ fund_id: "pos4", symbol: "TECH2", quantity: "1" }));
      expectRejected(d, "position", "SECTOR_CONCENTRATION_EXCEEDED");
      expect(d.details["sector"]).toBe("tech");
    });
    it("ASSET_CLASS_CONCENTRATION_EXCEEDED", async () => {
      await setup("pos5", { max_asset_class_pct: { crypto: "0.20" } });
      expect(
        (
          await bus.check(
            order({
              fund_id: "pos5",
              symbol: "BTC-USD",
              asset_class: "crypto",
              quantity: "2",
              limit_price: "100000",
            }),
          )
        ).approved,
      ).toBe(true);
      expectRejected(
        await bus.check(
          order({
            fund_id: "pos5",
            symbol: "ETH-USD",
            asset_class: "crypto",
            quantity: "0.001",
            limit_price: "1",
          }),
        ),
        "position",
        "ASSET_CLASS_CONCENTRATION_EXCEEDED",
      );
    });
  });

  describe("drawdown", () => {
    it("FUND_HALTED for risk-increasing orders; a risk-reducing order passes", async () => {
      await setup("dd", { enable_shorting: false });
      await fills("dd", [{ symbol: "AAPL", quantity: "100", price: "100" }]);
      const seq = await bus.control(Subjects.halt("dd"), {
        fund_id: "dd",
        severity: "MANUAL",
        reason: "test",
        at: NOW,
        by: "ops",
      });
      await waitFor(() => applied(engine, "RISK_CONTROL", seq));
      const d = await bus.check(order({ fund_id: "dd" }));
      expectRejected(d, "drawdown", "FUND_HALTED");
      expect(d.details["severity"]).toBe("MANUAL");
      expect((await bus.check(order({ fund_id: "dd", side: "SELL", quantity: "100" }))).approved).toBe(true);
      // with that sell pending, another sell would cross zero: not reducing any more
      expectRejected(
        await bus.check(order({ fund_id: "dd", side: "SELL", quantity: "1" })),
        "drawdown",
        "FUND_HALTED",
      );
    });
  });

  describe("reconciliation", () => {
    it("RECONCILIATION_LOCK while locked", async () => {
      await setup("rec", {});
      const seq = await bus.control(Subjects.reconcile("lock", "rec"), {
        fund_id: "rec",
        locked: true,
        reason: "drift at paper",
        at: NOW,
        brokers: ["paper"],
      });
      await waitFor(() => applied(engine, "RISK_CONTROL", seq));
      expectRejected(await bus.check(order({ fund_id: "rec" })), "reconciliation", "RECONCILIATION_LOCK");
      const un = await bus.control(Subjects.reconcile("unlock", "rec"), {
        fund_id: "rec",
        locked: false,
        reason: "clean",
        at: NOW,
      });
      await waitFor(() => applied(engine, "RISK_CONTROL", un));
      expect((await bus.check(order({ fund_id: "rec" }))).approved).toBe(true);
    });
  });

  describe("short side", () => {
    it("SHORTING_DISABLED", async () => {
      await setup("sh1", { enable_shorting: false });
      expectRejected(
        await bus.check(order({ fund_id: "sh1", side: "SELL" })),
        "short_side",
        "SHORTING_DISABLED",
      );
    });
    it("BORROW_FEE_TOO_HIGH", async () => {
      await setup("sh2", { enable_shorting: true, max_borrow_fee_bps: "300" }, async () => {
        await bus.instrument({
          symbol: "HTB",
          asset_class: "equity",
          shortable: true,
          borrow_fee_bps: "300.01",
        });
      });
      await waitFor(() => engine.observe.instrument("HTB"));
      expectRejected(
        await bus.check(order({ fund_id: "sh2", side: "SELL", symbol: "HTB" })),
        "short_side",
        "BORROW_FEE_TOO_HIGH",
      );
    });
    it("LOCATE_REQUIRED unless the order carries a locate", async () => {
      await setup("sh3", { enable_shorting: true, max_borrow_fee_bps: "300" }, async () => {
        await bus.instrument({
          symbol: "NSH",
          asset_class: "equity",
          shortable: false,
          borrow_fee_bps: "300",
        });
      });
      await waitFor(() => engine.observe.instrument("NSH"));
      expectRejected(
        await bus.check(order({ fund_id: "sh3", side: "SELL", symbol: "NSH" })),
        "short_side",
        "LOCATE_REQUIRED",
      );
      expect(
        (await bus.check(order({ fund_id: "sh3", side: "SELL", symbol: "NSH", locate_id: "loc-1" })))
          .approved,
      ).toBe(true);
    });
  });
});
