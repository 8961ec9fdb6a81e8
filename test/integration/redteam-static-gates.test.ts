/**
 * Red-team pass on the static gate (CONTRACT.md "Gates and rejection codes", gate 3) and on gate
 * order, driven black-box through the bus: codes inside the static gate in the listed order, the
 * static gate before the later gates, price-collar edges, STALE_MARKET_DATA edges (quote age =
 * engine clock − the quote's own timestamp), the notional price of MARKET/STOP/STOP_LIMIT orders,
 * the multiplier, max_adv_pct. One nats-server, one engine on a manual clock; each case its own fund
 * and symbols.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { Subjects } from "../../src/contract/subjects.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

type D = {
  approved: boolean;
  rejecting_gate: string;
  rejection_code: string;
  details: Record<string, string>;
};
const outcome = (d: D) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);

describe("red-team static gate: codes, order and edges", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const now = () => iso(clock.now());

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
  const setup = async (fund: string, env: Record<string, unknown>) =>
    until("RISK_ENVELOPES", await bus.envelope(envelope(fund, env)));
  const quote = async (s: string, b: string, a: string, ageMs = 0) =>
    until("QUOTES", await bus.quote(s, b, a, iso(clock.now() - ageMs)));
  const instrument = async (i: Record<string, unknown>) => until("REFDATA", await bus.instrument(i));
  const fill = async (f: Record<string, unknown>) =>
    until("FILLS", await bus.fill({ timestamp: now(), ...f }));
  const check = async (o: Record<string, unknown>) => outcome(await bus.check(order(o)));

  it("codes inside the static gate answer in the listed order", async () => {
    const F = "rts-order1";
    await setup(F, {
      allowed_brokers: ["paper"],
      allowed_order_types: ["LIMIT"],
      allowed_asset_classes: ["equity"],
      restricted_symbols: ["ORDA"],
      max_order_qty: "10",
      max_adv_pct: "0.01",
      max_order_notional: "100",
      price_collar_pct: "0.01",
    });
    await instrument({ symbol: "ORDA", asset_class: "crypto", adv: "100" });
    await quote("ORDA", "9.99", "10.01");
    // breaks every static check at once
    const all = {
      fund_id: F,
      symbol: "ORDA",
      broker: "ibkr",
      order_type: "MARKET",
      quantity: "50",
      limit_price: "50",
    };
    expect(await check(all)).toBe("static/BROKER_NOT_ALLOWED");
    expect(await check({ ...all, broker: "paper" })).toBe("static/ORDER_TYPE_NOT_ALLOWED");
    expect(await check({ ...all, broker: "paper", order_type: "LIMIT" })).toBe(
      "static/ASSET_CLASS_NOT_ALLOWED",
    );
    // another symbol, equity, restricted
    await instrument({ symbol: "ORDB", asset_class: "equity", adv: "100" });
    await quote("ORDB", "9.99", "10.01");
    await setup(F, {
      version: 2,
      allowed_brokers: ["paper"],
      allowed_order_types: ["LIMIT"],
      allowed_asset_classes: ["equity"],
      restricted_symbols: ["ORDB"],
      max_order_qty: "10",
      max_adv_pct: "0.01",
      max_order_notional: "100",
      price_collar_pct: "0.01",
    });
    const b = {
      fund_id: F,
      symbol: "ORDB",
      broker: "paper",
      order_type: "LIMIT",
      quantity: "50",
      limit_price: "50",
    };
    expect(await check(b)).toBe("static/SYMBOL_RESTRICTED");
    await setup(F, {
      version: 3,
      allowed_brokers: ["paper"],
      allowed_order_types: ["LIMIT"],
      allowed_asset_classes: ["equity"],
      max_order_qty: "10",
      max_adv_pct: "0.01",
      max_order_notional: "100",
      price_collar_pct: "0.01",
    });
    expect(await check(b)).toBe("static/MAX_ORDER_QTY_EXCEEDED");
    expect(await check({ ...b, quantity: "10" })).toBe("static/MAX_ADV_PCT_EXCEEDED"); // 10 > 1 % of 100
    expect(await check({ ...b, quantity: "1", limit_price: "150" })).toBe(
      "static/MAX_ORDER_NOTIONAL_EXCEEDED",
    );
    expect(await check({ ...b, quantity: "1", limit_price: "50" })).toBe("static/PRICE_COLLAR_BREACHED");
    expect(await check({ ...b, quantity: "1", limit_price: "10" })).toBe("approved");
  });

  it("codes inside the static gate: notional before collar before stale", async () => {
    const F = "rts-order2";
    await setup(F, {
      allowed_order_types: ["LIMIT", "MARKET"],
      max_order_notional: "100",
      price_collar_pct: "0.01",
      max_quote_age_ms: 1000,
    });
    await quote("ORDC", "9.99", "10.01");
    const b = { fund_id: F, symbol: "ORDC" };
    // 20 × 50 = 1000 > 100 and 50 is outside the 1 % collar around 10
    expect(await check({ ...b, quantity: "20", limit_price: "50" })).toBe(
      "static/MAX_ORDER_NOTIONAL_EXCEEDED",
    );
    expect(await check({ ...b, quantity: "1", limit_price: "50" })).toBe("static/PRICE_COLLAR_BREACHED");
    expect(await check({ ...b, quantity: "1", limit_price: "10" })).toBe("approved");
    clock.advance(1001); // the mark is now 1001 ms old
    expect(await check({ ...b, quantity: "1", limit_price: "10" })).toBe("static/STALE_MARKET_DATA");
    clock.advance(-1001);
  });

  it("the static gate answers before velocity, position, drawdown and short side", async () => {
    const F = "rts-order3";
    await setup(F, {
      max_order_qty: "10",
      max_position_pct: "0.0001",
      velocity: { window_s: 60, max_orders: 0 },
      enable_shorting: false,
    });
    await until(
      "RISK_CONTROL",
      await bus.control(Subjects.halt(F), {
        fund_id: F,
        severity: "MANUAL",
        reason: "test",
        at: now(),
        by: "rt",
      }),
    );
    // a SELL of 1000 with nothing held: breaks static (qty), velocity, position, drawdown, short side
    expect(
      await check({ fund_id: F, symbol: "GOA", side: "SELL", quantity: "1000", limit_price: "100" }),
    ).toBe("static/MAX_ORDER_QTY_EXCEEDED");
    // within static: velocity answers (max_orders 0)
    expect(await check({ fund_id: F, symbol: "GOA", side: "SELL", quantity: "10", limit_price: "100" })).toBe(
      "velocity/VELOCITY_EXCEEDED",
    );
  });

  it("position before drawdown before short side", async () => {
    const F = "rts-order4";
    await setup(F, { max_position_pct: "0.01", enable_shorting: false }); // 1 % of 1 000 000 = 10 000
    await until(
      "RISK_CONTROL",
      await bus.control(Subjects.halt(F), {
        fund_id: F,
        severity: "MANUAL",
        reason: "test",
        at: now(),
        by: "rt",
      }),
    );
    const b = { fund_id: F, symbol: "GOB", side: "SELL", limit_price: "100" };
    expect(await check({ ...b, quantity: "101" })).toBe("position/MAX_POSITION_EXCEEDED");
    expect(await check({ ...b, quantity: "100" })).toBe("drawdown/FUND_HALTED");
  });

  it("price collar: both edges pass, one smallest unit beyond either fails", async () => {
    const F = "rts-collar1";
    await setup(F, { price_collar_pct: "0.05" });
    await quote("COLX", "99", "101"); // mid 100, band 5
    const b = { fund_id: F, symbol: "COLX", quantity: "1" };
    expect(await check({ ...b, limit_price: "105" })).toBe("approved");
    expect(await check({ ...b, limit_price: "95" })).toBe("approved");
    expect(await check({ ...b, limit_price: "105.000000000000000001" })).toBe("static/PRICE_COLLAR_BREACHED");
    expect(await check({ ...b, limit_price: "94.999999999999999999" })).toBe("static/PRICE_COLLAR_BREACHED");
    // SELL side too, and STOP_LIMIT's limit price
    await fill({ fund_id: F, symbol: "COLX", quantity: "10", price: "100" });
    expect(await check({ ...b, side: "SELL", limit_price: "95" })).toBe("approved");
    expect(await check({ ...b, side: "SELL", limit_price: "94.99" })).toBe("static/PRICE_COLLAR_BREACHED");
    expect(await check({ ...b, order_type: "STOP_LIMIT", stop_price: "104", limit_price: "105.01" })).toBe(
      "static/PRICE_COLLAR_BREACHED",
    );
    expect(await check({ ...b, order_type: "STOP_LIMIT", stop_price: "104", limit_price: "105" })).toBe(
      "approved",
    );
  });

  it("collar set: a LIMIT with no quote at all, or a stale one, is STALE_MARKET_DATA", async () => {
    const F = "rts-collar2";
    await setup(F, { price_collar_pct: "0.05" });
    expect(await check({ fund_id: F, symbol: "COLNONE", quantity: "1", limit_price: "100" })).toBe(
      "static/STALE_MARKET_DATA",
    );
    await quote("COLOLD", "99", "101", 5001);
    expect(await check({ fund_id: F, symbol: "COLOLD", quantity: "1", limit_price: "100" })).toBe(
      "static/STALE_MARKET_DATA",
    );
  });

  it("freshness: a quote exactly max_quote_age_ms old is fresh, 1 ms more is stale (default and set)", async () => {
    const F = "rts-stale1";
    await setup(F, { allowed_order_types: ["MARKET"] });
    const mkt = { fund_id: F, order_type: "MARKET", quantity: "1", limit_price: undefined };
    await quote("STA", "99", "101", 5000);
    expect(await check({ ...mkt, symbol: "STA" })).toBe("approved");
    clock.advance(1);
    expect(await check({ ...mkt, symbol: "STA" })).toBe("static/STALE_MARKET_DATA");
    const G = "rts-stale2";
    await setup(G, { allowed_order_types: ["MARKET", "STOP"], max_quote_age_ms: 250 });
    await quote("STB", "99", "101", 250);
    expect(await check({ ...mkt, fund_id: G, symbol: "STB" })).toBe("approved");
    expect(await check({ ...mkt, fund_id: G, symbol: "STB", order_type: "STOP", stop_price: "90" })).toBe(
      "approved",
    );
    clock.advance(1);
    expect(await check({ ...mkt, fund_id: G, symbol: "STB" })).toBe("static/STALE_MARKET_DATA");
    expect(await check({ ...mkt, fund_id: G, symbol: "STB", order_type: "STOP", stop_price: "90" })).toBe(
      "static/STALE_MARKET_DATA",
    );
    // max_quote_age_ms 0: only a quote stamped at the engine's instant
    const H = "rts-stale3";
    await setup(H, { allowed_order_types: ["MARKET"], max_quote_age_ms: 0 });
    await quote("STC", "99", "101", 0);
    expect(await check({ ...mkt, fund_id: H, symbol: "STC" })).toBe("approved");
    clock.advance(1);
    expect(await check({ ...mkt, fund_id: H, symbol: "STC" })).toBe("static/STALE_MARKET_DATA");
  });

  it("freshness: a quote stamped far in the future prices nothing (documented: |age| ≤ max)", async () => {
    const F = "rts-stale4";
    await setup(F, { allowed_order_types: ["MARKET"] });
    await quote("STD", "99", "101", -60_000);
    expect(
      await check({ fund_id: F, symbol: "STD", order_type: "MARKET", quantity: "1", limit_price: undefined }),
    ).toBe("static/STALE_MARKET_DATA");
  });

  it("MARKET/STOP without any quote, and require_fresh_mark for a LIMIT, are STALE_MARKET_DATA", async () => {
    const F = "rts-stale5";
    await setup(F, {});
    expect(
      await check({ fund_id: F, symbol: "NOQ", order_type: "MARKET", quantity: "1", limit_price: undefined }),
    ).toBe("static/STALE_MARKET_DATA");
    expect(
      await check({
        fund_id: F,
        symbol: "NOQ",
        order_type: "STOP",
        stop_price: "5",
        quantity: "1",
        limit_price: undefined,
      }),
    ).toBe("static/STALE_MARKET_DATA");
    // a LIMIT needs none without collar / require_fresh_mark
    expect(await check({ fund_id: F, symbol: "NOQ", quantity: "1" })).toBe("approved");
    const G = "rts-stale6";
    await setup(G, { require_fresh_mark: true });
    expect(await check({ fund_id: G, symbol: "NOQ", quantity: "1" })).toBe("static/STALE_MARKET_DATA");
    await quote("RFM", "99", "101", 5001);
    expect(await check({ fund_id: G, symbol: "RFM", quantity: "1" })).toBe("static/STALE_MARKET_DATA");
    await quote("RFM", "99", "101", 0);
    expect(await check({ fund_id: G, symbol: "RFM", quantity: "1" })).toBe("approved");
    // a strategy that turns it on
    const H = "rts-stale7";
    await setup(H, { strategies: { strict: { require_fresh_mark: true } } });
    expect(await check({ fund_id: H, symbol: "NOQ2", quantity: "1" })).toBe("approved");
    expect(await check({ fund_id: H, symbol: "NOQ2", quantity: "1", strategy_id: "strict" })).toBe(
      "static/STALE_MARKET_DATA",
    );
  });

  it("MARKET notional: ask for BUY, bid for SELL; STOP at the mark; STOP_LIMIT at its limit", async () => {
    const F = "rts-notional1";
    await setup(F, { max_order_notional: "10100" });
    await quote("NTA", "99", "101");
    await fill({ fund_id: F, symbol: "NTA", quantity: "1000", price: "100" }); // so SELLs are not short
    const mkt = { fund_id: F, symbol: "NTA", order_type: "MARKET", limit_price: undefined };
    expect(await check({ ...mkt, quantity: "100" })).toBe("approved"); // 100 × 101 = 10100
    expect(await check({ ...mkt, quantity: "100.01" })).toBe("static/MAX_ORDER_NOTIONAL_EXCEEDED");
    expect(await check({ ...mkt, side: "SELL", quantity: "102" })).toBe("approved"); // 102 × 99 = 10098
    expect(await check({ ...mkt, side: "SELL", quantity: "102.03" })).toBe(
      "static/MAX_ORDER_NOTIONAL_EXCEEDED",
    );
    const stop = { ...mkt, order_type: "STOP", stop_price: "120" };
    expect(await check({ ...stop, quantity: "100" })).toBe("approved");
    expect(await check({ ...stop, quantity: "100.01" })).toBe("static/MAX_ORDER_NOTIONAL_EXCEEDED");
    // STOP_LIMIT: the limit price, not the mark: 50 × 202 = 10100
    const sl = { fund_id: F, symbol: "NTA", order_type: "STOP_LIMIT", stop_price: "200" };
    expect(await check({ ...sl, quantity: "50", limit_price: "202" })).toBe("approved");
    expect(await check({ ...sl, quantity: "50", limit_price: "202.01" })).toBe(
      "static/MAX_ORDER_NOTIONAL_EXCEEDED",
    );
  });

  it("max_order_notional counts the multiplier; exact at the limit passes", async () => {
    const F = "rts-notional2";
    await setup(F, { max_order_notional: "50000" });
    await instrument({ symbol: "OPTM", asset_class: "option", multiplier: "100" });
    const b = { fund_id: F, symbol: "OPTM" };
    expect(await check({ ...b, quantity: "5", limit_price: "100" })).toBe("approved");
    expect(await check({ ...b, quantity: "5", limit_price: "100.000000000000000001" })).toBe(
      "static/MAX_ORDER_NOTIONAL_EXCEEDED",
    );
    const d = await bus.check(order({ ...b, quantity: "6", limit_price: "100" }));
    expect(outcome(d)).toBe("static/MAX_ORDER_NOTIONAL_EXCEEDED");
    expect(d.details["notional"]).toBe("60000");
    // a MARKET option order at ask × multiplier
    await quote("OPTM", "99", "101");
    await setup(F, { version: 2, max_order_notional: "50500" });
    const m = { ...b, order_type: "MARKET", limit_price: undefined };
    expect(await check({ ...m, quantity: "5" })).toBe("approved");
    expect(await check({ ...m, quantity: "5.001" })).toBe("static/MAX_ORDER_NOTIONAL_EXCEEDED");
  });

  it("max_adv_pct: exact at pct × adv passes, beyond fails; no adv fails closed; strategy override", async () => {
    const F = "rts-adv1";
    await setup(F, { max_adv_pct: "0.1", strategies: { big: { max_adv_pct: "0.5" } } });
    await instrument({ symbol: "ADVA", asset_class: "equity", adv: "1000" });
    await instrument({ symbol: "ADVN", asset_class: "equity" });
    await instrument({ symbol: "ADVZ", asset_class: "equity", adv: "0" });
    const b = { fund_id: F, limit_price: "1" };
    expect(await check({ ...b, symbol: "ADVA", quantity: "100" })).toBe("approved");
    expect(await check({ ...b, symbol: "ADVA", quantity: "100.000000000000000001" })).toBe(
      "static/MAX_ADV_PCT_EXCEEDED",
    );
    expect(await check({ ...b, symbol: "ADVA", quantity: "500", strategy_id: "big" })).toBe("approved");
    expect(await check({ ...b, symbol: "ADVN", quantity: "1" })).toBe("static/MAX_ADV_PCT_EXCEEDED");
    expect(await check({ ...b, symbol: "NOREF", quantity: "1" })).toBe("static/MAX_ADV_PCT_EXCEEDED");
    expect(await check({ ...b, symbol: "ADVZ", quantity: "1" })).toBe("static/MAX_ADV_PCT_EXCEEDED");
  });

  it("allow-lists fail closed; asset class from refdata when the order omits it", async () => {
    const F = "rts-allow1";
    // allowed_brokers and allowed_order_types absent: nothing allowed
    await until("RISK_ENVELOPES", await bus.envelope({ fund_id: F, version: 1, capital: "1000000" }));
    expect(await check({ fund_id: F, symbol: "ALA", quantity: "1" })).toBe("static/BROKER_NOT_ALLOWED");
    const G = "rts-allow2";
    await until(
      "RISK_ENVELOPES",
      await bus.envelope({ fund_id: G, version: 1, capital: "1000000", allowed_brokers: ["paper"] }),
    );
    expect(await check({ fund_id: G, symbol: "ALA", quantity: "1" })).toBe("static/ORDER_TYPE_NOT_ALLOWED");
    const H = "rts-allow3";
    await setup(H, { allowed_brokers: [], allowed_asset_classes: ["equity"] });
    expect(await check({ fund_id: H, symbol: "ALA", quantity: "1" })).toBe("static/BROKER_NOT_ALLOWED");
    const I = "rts-allow4";
    await setup(I, { allowed_asset_classes: ["equity"] });
    expect(await check({ fund_id: I, symbol: "ALUNK", quantity: "1" })).toBe(
      "static/ASSET_CLASS_NOT_ALLOWED",
    );
    expect(await check({ fund_id: I, symbol: "ALUNK", quantity: "1", asset_class: "equity" })).toBe(
      "approved",
    );
    await instrument({ symbol: "ALCR", asset_class: "crypto" });
    expect(await check({ fund_id: I, symbol: "ALCR", quantity: "1" })).toBe("static/ASSET_CLASS_NOT_ALLOWED");
    // the order cannot say otherwise: the refdata wins, as SCHEMA_INVALID
    const d = await bus.check(order({ fund_id: I, symbol: "ALCR", quantity: "1", asset_class: "equity" }));
    expect(outcome(d)).toBe("schema/SCHEMA_INVALID");
    expect(d.details["path"]).toBe("asset_class");
    // allowed_asset_classes: [] allows nothing
    const J = "rts-allow5";
    await setup(J, { allowed_asset_classes: [] });
    expect(await check({ fund_id: J, symbol: "ALUNK", quantity: "1", asset_class: "equity" })).toBe(
      "static/ASSET_CLASS_NOT_ALLOWED",
    );
  });

  it("restricted symbols: fund-level and per strategy", async () => {
    const F = "rts-restr1";
    await setup(F, { restricted_symbols: ["RSA"], strategies: { s1: { restricted_symbols: ["RSB"] } } });
    expect(await check({ fund_id: F, symbol: "RSA", quantity: "1" })).toBe("static/SYMBOL_RESTRICTED");
    expect(await check({ fund_id: F, symbol: "RSB", quantity: "1", strategy_id: "s1" })).toBe(
      "static/SYMBOL_RESTRICTED",
    );
    // a SELL that reduces a long is still subject to the static gate
    await fill({ fund_id: F, symbol: "RSA", quantity: "10", price: "100" });
    expect(await check({ fund_id: F, symbol: "RSA", quantity: "1", side: "SELL" })).toBe(
      "static/SYMBOL_RESTRICTED",
    );
  });

  it("max_order_qty: exact passes, one smallest unit above fails; JSON integer quantity counts the same", async () => {
    const F = "rts-qty1";
    await setup(F, { max_order_qty: "100" });
    expect(await check({ fund_id: F, symbol: "QTA", quantity: "100" })).toBe("approved");
    expect(await check({ fund_id: F, symbol: "QTA", quantity: 100 })).toBe("approved");
    expect(await check({ fund_id: F, symbol: "QTA", quantity: "100.000000000000000001" })).toBe(
      "static/MAX_ORDER_QTY_EXCEEDED",
    );
    expect(await check({ fund_id: F, symbol: "QTA", quantity: 101 })).toBe("static/MAX_ORDER_QTY_EXCEEDED");
  });

  it("another currency: notional converted at the fresh FX mark; a stale, missing or future FX rate is STALE_MARKET_DATA", async () => {
    const F = "rts-fx1";
    await setup(F, { max_order_notional: "1100" });
    await instrument({ symbol: "EURSTK", asset_class: "equity", currency: "EUR" });
    const b = { fund_id: F, symbol: "EURSTK", limit_price: "100" };
    expect(await check({ ...b, quantity: "10" })).toBe("static/STALE_MARKET_DATA"); // no EUR-USD yet
    await quote("EUR-USD", "1.0999", "1.1001"); // mid 1.1
    expect(await check({ ...b, quantity: "10" })).toBe("approved"); // 1000 EUR = 1100 USD
    expect(await check({ ...b, quantity: "10.000000000000000001" })).toBe(
      "static/MAX_ORDER_NOTIONAL_EXCEEDED",
    );
    clock.advance(5001);
    expect(await check({ ...b, quantity: "1" })).toBe("static/STALE_MARKET_DATA");
    await quote("EUR-USD", "1.0999", "1.1001", -60_000); // stamped a minute ahead
    expect(await check({ ...b, quantity: "1" })).toBe("static/STALE_MARKET_DATA");
    clock.advance(-5001);
  });

  it("collar 0: only the mid itself passes; STOP_LIMIT needs no fresh mark without a collar", async () => {
    const F = "rts-collar0";
    await setup(F, { price_collar_pct: "0" });
    await quote("CZA", "99", "101");
    expect(await check({ fund_id: F, symbol: "CZA", quantity: "1", limit_price: "100" })).toBe("approved");
    expect(
      await check({ fund_id: F, symbol: "CZA", quantity: "1", limit_price: "100.000000000000000001" }),
    ).toBe("static/PRICE_COLLAR_BREACHED");
    const G = "rts-stoplimit";
    await setup(G, {});
    expect(
      await check({
        fund_id: G,
        symbol: "SLNQ",
        order_type: "STOP_LIMIT",
        stop_price: "10",
        limit_price: "11",
        quantity: "1",
      }),
    ).toBe("approved");
  });

  it("a strategy's tighter max_order_notional applies to its orders only", async () => {
    const F = "rts-strat1";
    await setup(F, { max_order_notional: "50000", strategies: { "mom-1": { max_order_notional: "20000" } } });
    const b = { fund_id: F, symbol: "STN", limit_price: "100" };
    expect(await check({ ...b, quantity: "200", strategy_id: "mom-1" })).toBe("approved");
    expect(await check({ ...b, quantity: "200.01", strategy_id: "mom-1" })).toBe(
      "static/MAX_ORDER_NOTIONAL_EXCEEDED",
    );
    expect(await check({ ...b, quantity: "500" })).toBe("approved");
    expect(await check({ ...b, quantity: "500.01" })).toBe("static/MAX_ORDER_NOTIONAL_EXCEEDED");
  });
});
