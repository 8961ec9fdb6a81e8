/**
 * Red-team pass on the pre-trade gates (regression tests; every case passed when written): the
 * newer checks (max_open_orders, duplicate_window_ms, max_adv_pct, require_fresh_mark, the price
 * collar, multi-currency) and how they meet the older ones: risk-reducing orders, per-strategy
 * overrides, exact boundaries (many decimals, 1e15 and 1e-9 notionals, FX products that float
 * gets wrong), the precedence of codes when several gates fail, idempotency, and racing orders.
 * One nats-server and one engine on a manual clock; each case uses its own fund.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { Subjects } from "../../src/contract/subjects.js";
import { decodeDecisionProto, encodeOrderProto } from "../../src/contract/codec.js";

describe("red-team gates: regression", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const now = () => iso(clock.now());
  const timers = steppableTimers();

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock, timers, flags: { "reservations.ttl_s": 30 } });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  async function setup(fund: string, env: Record<string, unknown>) {
    await until("RISK_ENVELOPES", await bus.envelope(envelope(fund, env)));
  }
  const outcome = (d: { approved: boolean; rejecting_gate: string; rejection_code: string }) =>
    d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`;
  const quote = async (s: string, b: string, a: string, ageMs = 0) =>
    until("QUOTES", await bus.quote(s, b, a, iso(clock.now() - ageMs)));
  const fill = async (f: Record<string, unknown>) =>
    until("FILLS", await bus.fill({ timestamp: now(), ...f }));
  const ev = async (e: string, fund: string, id: unknown) =>
    until("OMS_ORDERS", await bus.orderEvent(e, fund, String(id), now()));

  it("dup: equal decimals under other spellings are duplicates", async () => {
    const F = "rt-dup1";
    await setup(F, { duplicate_window_ms: 60000 });
    const b = { fund_id: F, symbol: "DUPA", quantity: "10", limit_price: "50" };
    expect(outcome(await bus.check(order(b)))).toBe("approved");
    expect(outcome(await bus.check(order({ ...b, quantity: "10.0" })))).toBe("velocity/DUPLICATE_ORDER");
    expect(outcome(await bus.check(order({ ...b, quantity: "10.000", limit_price: "50.00" })))).toBe(
      "velocity/DUPLICATE_ORDER",
    );
    // JSON numbers (exact integers) are the same values
    expect(outcome(await bus.check(order({ ...b, quantity: 10, limit_price: 50 })))).toBe(
      "velocity/DUPLICATE_ORDER",
    );
    // different values are not
    expect(outcome(await bus.check(order({ ...b, quantity: "10.000000000000000001" })))).toBe("approved");
    expect(outcome(await bus.check(order({ ...b, side: "SELL" })))).not.toBe("velocity/DUPLICATE_ORDER");
  });

  it("dup: same key same order is a replay (approved), not a duplicate; retry re-stamped too", async () => {
    const F = "rt-dup2";
    await setup(F, { duplicate_window_ms: 60000 });
    const o = order({ fund_id: F, symbol: "DUPB", created_at: now() });
    const first = await bus.check(o);
    expect(outcome(first)).toBe("approved");
    clock.advance(10);
    const again = await bus.check({ ...o, created_at: now() });
    expect(outcome(again)).toBe("approved");
    expect(again.details["replayed"]).toBe("true");
    // a duplicate decided, then retried under its own key: the DUPLICATE decision replays
    const d = order({ fund_id: F, symbol: "DUPB" });
    expect(outcome(await bus.check(d))).toBe("velocity/DUPLICATE_ORDER");
    const d2 = await bus.check(d);
    expect(outcome(d2)).toBe("velocity/DUPLICATE_ORDER");
    expect(d2.details["replayed"]).toBe("true");
  });

  it("dup: a MARKET and a LIMIT, or different stop prices, are not duplicates", async () => {
    const F = "rt-dup3";
    await setup(F, { duplicate_window_ms: 60000 });
    await quote("DUPC", "99", "101");
    const b = { fund_id: F, symbol: "DUPC", quantity: "5" };
    expect(
      outcome(await bus.check(order({ ...b, order_type: "STOP", stop_price: "90", limit_price: undefined }))),
    ).toBe("approved");
    expect(
      outcome(
        await bus.check(order({ ...b, order_type: "STOP", stop_price: "90.5", limit_price: undefined })),
      ),
    ).toBe("approved");
    expect(
      outcome(
        await bus.check(order({ ...b, order_type: "STOP_LIMIT", stop_price: "90", limit_price: "89" })),
      ),
    ).toBe("approved");
    expect(outcome(await bus.check(order({ ...b, order_type: "MARKET", limit_price: undefined })))).toBe(
      "approved",
    );
    expect(outcome(await bus.check(order({ ...b, order_type: "MARKET", limit_price: undefined })))).toBe(
      "velocity/DUPLICATE_ORDER",
    );
  });

  it("dup: strategy window; duplicates looked up among all the fund's orders", async () => {
    const F = "rt-dup4";
    await setup(F, { strategies: { s1: { duplicate_window_ms: 60000 } } });
    const b = { fund_id: F, symbol: "DUPD", quantity: "7" };
    expect(outcome(await bus.check(order({ ...b, strategy_id: "s2" })))).toBe("approved");
    expect(outcome(await bus.check(order({ ...b, strategy_id: "s2" })))).toBe("approved"); // no window for s2
    expect(outcome(await bus.check(order({ ...b, strategy_id: "s1" })))).toBe("velocity/DUPLICATE_ORDER");
    expect(outcome(await bus.check(order({ ...b })))).toBe("approved");
  });

  it("dup: concurrent identical orders under different keys: exactly one passes", async () => {
    const F = "rt-dup5";
    await setup(F, { duplicate_window_ms: 60000 });
    const ds = await Promise.all(
      Array.from({ length: 20 }, () => bus.check(order({ fund_id: F, symbol: "DUPE", quantity: "3" }))),
    );
    expect(ds.filter((d) => d.approved).length).toBe(1);
    expect(ds.filter((d) => d.rejection_code === "DUPLICATE_ORDER").length).toBe(19);
  });

  it("reducing: duplicate reducing sells pass while they reduce; the one that would cross is DUPLICATE", async () => {
    const F = "rt-red1";
    await setup(F, { duplicate_window_ms: 60000, enable_shorting: false });
    await fill({ fund_id: F, symbol: "REDA", quantity: "100", price: "10" });
    const s = { fund_id: F, symbol: "REDA", side: "SELL", quantity: "40", limit_price: "10" };
    expect(outcome(await bus.check(order(s)))).toBe("approved");
    expect(outcome(await bus.check(order(s)))).toBe("approved");
    expect(outcome(await bus.check(order(s)))).toBe("velocity/DUPLICATE_ORDER");
  });

  it("max_open_orders: reducing order passes, rejections do not count, fills/events free", async () => {
    const F = "rt-open1";
    await setup(F, { max_open_orders: 1, max_order_qty: "1000" });
    await fill({ fund_id: F, symbol: "OPA", quantity: "100", price: "10" });
    const a = order({ fund_id: F, symbol: "OPB", quantity: "10" });
    expect(outcome(await bus.check(a))).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPB", quantity: "2000" })))).toBe(
      "static/MAX_ORDER_QTY_EXCEEDED",
    );
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPB", quantity: "11" })))).toBe(
      "velocity/MAX_OPEN_ORDERS_EXCEEDED",
    );
    // reducing passes
    const r = order({ fund_id: F, symbol: "OPA", side: "SELL", quantity: "50", limit_price: "10" });
    expect(outcome(await bus.check(r))).toBe("approved");
    // partial fill keeps open
    await fill({ fund_id: F, symbol: "OPB", quantity: "5", price: "100", order_id: a["order_id"] });
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPB", quantity: "12" })))).toBe(
      "velocity/MAX_OPEN_ORDERS_EXCEEDED",
    );
    await fill({ fund_id: F, symbol: "OPB", quantity: "5", price: "100", order_id: a["order_id"] });
    // a still open (reducing r): 1 open → still exceeded
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPB", quantity: "13" })))).toBe(
      "velocity/MAX_OPEN_ORDERS_EXCEEDED",
    );
    await ev("expired", F, r["order_id"]);
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPB", quantity: "14" })))).toBe("approved");
  });

  it("max_open_orders: TTL frees an unacknowledged order but not an accepted one", async () => {
    const F = "rt-open2";
    await setup(F, { max_open_orders: 2 });
    const a = order({ fund_id: F, symbol: "OPC", quantity: "1" });
    const b = order({ fund_id: F, symbol: "OPC", quantity: "2" });
    expect(outcome(await bus.check(a))).toBe("approved");
    expect(outcome(await bus.check(b))).toBe("approved");
    await ev("accepted", F, a["order_id"]);
    clock.advance(31_000);
    await timers.fire("sweep");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPC", quantity: "3" })))).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPC", quantity: "4" })))).toBe(
      "velocity/MAX_OPEN_ORDERS_EXCEEDED",
    );
  });

  it("max_open_orders: concurrent orders cannot both take the last slot", async () => {
    const F = "rt-open3";
    await setup(F, { max_open_orders: 3 });
    const ds = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        bus.check(order({ fund_id: F, symbol: "OPD", quantity: String(i + 1) })),
      ),
    );
    expect(ds.filter((d) => d.approved).length).toBe(3);
  });

  it("max_open_orders: strategy override counts the fund's orders", async () => {
    const F = "rt-open4";
    await setup(F, { max_open_orders: 10, strategies: { s1: { max_open_orders: 2 } } });
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPE", quantity: "1" })))).toBe("approved");
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "OPE", quantity: "2", strategy_id: "s2" }))),
    ).toBe("approved");
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "OPE", quantity: "3", strategy_id: "s1" }))),
    ).toBe("velocity/MAX_OPEN_ORDERS_EXCEEDED");
  });

  it("precedence in static: qty > adv > notional > collar > stale", async () => {
    const F = "rt-prec1";
    await setup(F, {
      max_order_qty: "100",
      max_adv_pct: "0.01",
      max_order_notional: "1000",
      price_collar_pct: "0.05",
    });
    await until("REFDATA", await bus.instrument({ symbol: "PRA", asset_class: "equity", adv: "5000" }));
    await quote("PRA", "9.99", "10.01");
    const b = { fund_id: F, symbol: "PRA" };
    expect(outcome(await bus.check(order({ ...b, quantity: "101", limit_price: "20" })))).toBe(
      "static/MAX_ORDER_QTY_EXCEEDED",
    );
    expect(outcome(await bus.check(order({ ...b, quantity: "51", limit_price: "20" })))).toBe(
      "static/MAX_ADV_PCT_EXCEEDED",
    );
    expect(outcome(await bus.check(order({ ...b, quantity: "50", limit_price: "20.01" })))).toBe(
      "static/MAX_ORDER_NOTIONAL_EXCEEDED",
    );
    expect(outcome(await bus.check(order({ ...b, quantity: "50", limit_price: "20" })))).toBe(
      "static/PRICE_COLLAR_BREACHED",
    );
    expect(outcome(await bus.check(order({ ...b, quantity: "50", limit_price: "10.5" })))).toBe("approved");
    clock.advance(5001);
    expect(outcome(await bus.check(order({ ...b, quantity: "50", limit_price: "10.5" })))).toBe(
      "static/STALE_MARKET_DATA",
    );
  });

  it("precedence in velocity: DUPLICATE > MAX_OPEN > VELOCITY; velocity before position", async () => {
    const F = "rt-prec2";
    await setup(F, {
      duplicate_window_ms: 60000,
      max_open_orders: 1,
      velocity: { window_s: 60, max_orders: 1 },
      max_position_pct: "0.000001",
    });
    const b = { fund_id: F, symbol: "PRB", quantity: "1", limit_price: "1" };
    expect(outcome(await bus.check(order(b)))).toBe("approved");
    expect(outcome(await bus.check(order({ ...b, quantity: "1000" })))).toBe(
      "velocity/MAX_OPEN_ORDERS_EXCEEDED",
    );
    expect(outcome(await bus.check(order(b)))).toBe("velocity/DUPLICATE_ORDER");
  });

  it("collar: both edges with many decimals, smallest unit outside fails", async () => {
    const F = "rt-coll";
    await setup(F, { price_collar_pct: "0.2" });
    await quote("COLA", "0.1", "0.2"); // mid 0.15, band 0.03
    const b = { fund_id: F, symbol: "COLA", quantity: "1" };
    expect(outcome(await bus.check(order({ ...b, limit_price: "0.18" })))).toBe("approved");
    expect(outcome(await bus.check(order({ ...b, limit_price: "0.12" })))).toBe("approved");
    expect(outcome(await bus.check(order({ ...b, limit_price: "0.180000000000000001" })))).toBe(
      "static/PRICE_COLLAR_BREACHED",
    );
    expect(outcome(await bus.check(order({ ...b, limit_price: "0.119999999999999999" })))).toBe(
      "static/PRICE_COLLAR_BREACHED",
    );
  });

  it("FX: max_order_notional exactly at the limit after conversion (float 100*1.1 != 110)", async () => {
    const F = "rt-fx1";
    await setup(F, { max_order_notional: "110", capital: "1000", max_position_pct: "0.11" });
    await until("REFDATA", await bus.instrument({ symbol: "FXA", asset_class: "equity", currency: "EUR" }));
    await quote("EUR-USD", "1.1", "1.1");
    const b = { fund_id: F, symbol: "FXA", quantity: "1" };
    expect(outcome(await bus.check(order({ ...b, limit_price: "100" })))).toBe("approved");
    expect(outcome(await bus.check(order({ ...b, limit_price: "100.000000000000000001" })))).toBe(
      "static/MAX_ORDER_NOTIONAL_EXCEEDED",
    );
  });

  it("FX: position limit exactly at the limit after conversion", async () => {
    const F = "rt-fx2";
    await setup(F, { capital: "1000", max_position_pct: "0.11" });
    await until("REFDATA", await bus.instrument({ symbol: "FXB", asset_class: "equity", currency: "EUR" }));
    await quote("EUR-USD", "1.1", "1.1");
    await quote("FXB", "99", "101");
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "FXB", quantity: "1", limit_price: "100" }))),
    ).toBe("approved");
    expect(
      outcome(
        await bus.check(
          order({ fund_id: F, symbol: "FXB", quantity: "0.000000000000000001", limit_price: "1" }),
        ),
      ),
    ).toBe("position/MAX_POSITION_EXCEEDED");
  });

  it("FX: stale FX rejects a reducing order too; a fresh order mark does not help", async () => {
    const F = "rt-fx3";
    await setup(F, {});
    await until("REFDATA", await bus.instrument({ symbol: "FXC", asset_class: "equity", currency: "GBP" }));
    await quote("GBP-USD", "1.25", "1.25");
    await fill({ fund_id: F, symbol: "FXC", quantity: "10", price: "10" });
    clock.advance(6000);
    await quote("FXC", "10", "10");
    expect(
      outcome(
        await bus.check(order({ fund_id: F, symbol: "FXC", side: "SELL", quantity: "5", limit_price: "10" })),
      ),
    ).toBe("static/STALE_MARKET_DATA");
  });

  it("FX: a foreign instrument in a EUR fund; USD-EUR needed", async () => {
    const F = "rt-fx4";
    await setup(F, { base_currency: "EUR", max_order_notional: "90" });
    await until("REFDATA", await bus.instrument({ symbol: "FXD", asset_class: "equity" })); // default currency: the fund's base
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "FXD", quantity: "1", limit_price: "90" }))),
    ).toBe("approved");
    await until("REFDATA", await bus.instrument({ symbol: "FXE", asset_class: "equity", currency: "USD" }));
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "FXE", quantity: "1", limit_price: "100" }))),
    ).toBe("static/STALE_MARKET_DATA");
    await quote("USD-EUR", "0.9", "0.9");
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "FXE", quantity: "1", limit_price: "100" }))),
    ).toBe("approved");
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "FXE", quantity: "1", limit_price: "100.01" }))),
    ).toBe("static/MAX_ORDER_NOTIONAL_EXCEEDED");
  });

  it("require_fresh_mark: strategy turns it off / on; reducing still needs it", async () => {
    const F = "rt-fresh";
    await setup(F, { require_fresh_mark: true, strategies: { off: { require_fresh_mark: false } } });
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "FRA", strategy_id: "off" })))).toBe(
      "approved",
    );
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "FRA" })))).toBe("static/STALE_MARKET_DATA");
    await fill({ fund_id: F, symbol: "FRA", quantity: "100", price: "10" });
    expect(
      outcome(
        await bus.check(order({ fund_id: F, symbol: "FRA", side: "SELL", quantity: "1", limit_price: "10" })),
      ),
    ).toBe("static/STALE_MARKET_DATA");
    await quote("FRA", "10", "10", 5000);
    expect(
      outcome(
        await bus.check(order({ fund_id: F, symbol: "FRA", side: "SELL", quantity: "1", limit_price: "10" })),
      ),
    ).toBe("approved");
    clock.advance(1);
    expect(
      outcome(
        await bus.check(order({ fund_id: F, symbol: "FRA", side: "SELL", quantity: "1", limit_price: "10" })),
      ),
    ).toBe("static/STALE_MARKET_DATA");
  });

  it("adv: reducing order still subject; adv 0 refuses everything; strategy override", async () => {
    const F = "rt-adv";
    await setup(F, { max_adv_pct: "0.1", strategies: { big: { max_adv_pct: "1" } } });
    await until(
      "REFDATA",
      await bus.instrument({ symbol: "ADVA", asset_class: "equity", adv: "0.000000003" }),
    );
    await bus.instrument({ symbol: "ADVZ", asset_class: "equity", adv: "0" });
    await fill({ fund_id: F, symbol: "ADVA", quantity: "100", price: "10" });
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "ADVA", quantity: "0.0000000003" })))).toBe(
      "approved",
    );
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "ADVA", quantity: "0.000000000300000001" }))),
    ).toBe("static/MAX_ADV_PCT_EXCEEDED");
    expect(
      outcome(
        await bus.check(
          order({ fund_id: F, symbol: "ADVA", side: "SELL", quantity: "1", limit_price: "10" }),
        ),
      ),
    ).toBe("static/MAX_ADV_PCT_EXCEEDED");
    expect(
      outcome(
        await bus.check(order({ fund_id: F, symbol: "ADVA", quantity: "0.000000003", strategy_id: "big" })),
      ),
    ).toBe("approved");
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "ADVZ", quantity: "0.000000000000000001" }))),
    ).toBe("static/MAX_ADV_PCT_EXCEEDED");
  });

  it("velocity notional: 0.1 + 0.2 = 0.3 exactly", async () => {
    const F = "rt-vel";
    await setup(F, { velocity: { window_s: 60, max_notional: "0.3" } });
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "VA", quantity: "1", limit_price: "0.1" }))),
    ).toBe("approved");
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "VA", quantity: "1", limit_price: "0.2" }))),
    ).toBe("approved");
    expect(
      outcome(
        await bus.check(
          order({ fund_id: F, symbol: "VA", quantity: "0.000000000000000001", limit_price: "1" }),
        ),
      ),
    ).toBe("velocity/VELOCITY_EXCEEDED");
  });

  it("large and tiny notionals", async () => {
    const F = "rt-big";
    await setup(F, { capital: "100000000000000000000", max_order_notional: "1000000000000000" });
    expect(
      outcome(
        await bus.check(order({ fund_id: F, symbol: "BIG", quantity: "1000000000000000", limit_price: "1" })),
      ),
    ).toBe("approved");
    expect(
      outcome(
        await bus.check(
          order({
            fund_id: F,
            symbol: "BIG",
            quantity: "1000000000000000",
            limit_price: "1.000000000000000001",
          }),
        ),
      ),
    ).toBe("static/MAX_ORDER_NOTIONAL_EXCEEDED");
    const T = "rt-tiny";
    await setup(T, { capital: "1", max_order_notional: "0.000000001", max_position_pct: "0.000000002" });
    expect(
      outcome(
        await bus.check(order({ fund_id: T, symbol: "TINY", quantity: "0.000000001", limit_price: "1" })),
      ),
    ).toBe("approved");
    expect(
      outcome(
        await bus.check(order({ fund_id: T, symbol: "TINY", quantity: "0.000000001", limit_price: "1" })),
      ),
    ).toBe("approved");
    expect(
      outcome(
        await bus.check(
          order({ fund_id: T, symbol: "TINY", quantity: "0.000000000000000001", limit_price: "1" }),
        ),
      ),
    ).toBe("position/MAX_POSITION_EXCEEDED");
  });

  it("position headroom race: exactly N approvals", async () => {
    const F = "rt-race";
    await setup(F, { max_position_pct: "0.01" }); // 10 000
    const ds = await Promise.all(
      Array.from({ length: 40 }, () =>
        bus.check(order({ fund_id: F, symbol: "RACE", quantity: "10", limit_price: "100" })),
      ),
    );
    expect(ds.filter((d) => d.approved).length).toBe(10);
  });

  it("idempotency: 10 vs 10.0 under the same key", async () => {
    const F = "rt-idem";
    await setup(F, {});
    const o = order({ fund_id: F, symbol: "IDA", quantity: "10" });
    expect(outcome(await bus.check(o))).toBe("approved");
    // the same values: the same order (a replay), not a conflict
    const r = await bus.check({ ...o, quantity: "10.0" });
    expect(outcome(r)).toBe("approved");
    expect(r.details["replayed"]).toBe("true");
  });

  it("velocity counts reducing orders and duplicate rejections", async () => {
    const F = "rt-velc";
    await setup(F, { velocity: { window_s: 60, max_orders: 3 } });
    await fill({ fund_id: F, symbol: "VC", quantity: "100", price: "10" });
    const s = { fund_id: F, symbol: "VC", side: "SELL", limit_price: "10" };
    expect(outcome(await bus.check(order({ ...s, quantity: "1" })))).toBe("approved");
    expect(outcome(await bus.check(order({ ...s, quantity: "2" })))).toBe("approved");
    expect(outcome(await bus.check(order({ ...s, quantity: "3" })))).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "VC2", quantity: "1" })))).toBe(
      "velocity/VELOCITY_EXCEEDED",
    );
    const G = "rt-velc2";
    await setup(G, { velocity: { window_s: 60, max_orders: 3 }, duplicate_window_ms: 60000 });
    const b = { fund_id: G, symbol: "VD", quantity: "1" };
    expect(outcome(await bus.check(order(b)))).toBe("approved");
    expect(outcome(await bus.check(order(b)))).toBe("velocity/DUPLICATE_ORDER");
    expect(outcome(await bus.check(order(b)))).toBe("velocity/DUPLICATE_ORDER");
    expect(outcome(await bus.check(order({ ...b, quantity: "2" })))).toBe("velocity/VELOCITY_EXCEEDED");
  });

  it("max_open_orders: a late accepted after cancelled does not reopen; replay at the limit replays", async () => {
    const F = "rt-open5";
    await setup(F, { max_open_orders: 1 });
    const a = order({ fund_id: F, symbol: "OPF", quantity: "1" });
    expect(outcome(await bus.check(a))).toBe("approved");
    expect(outcome(await bus.check(a))).toBe("approved");
    await ev("cancelled", F, a["order_id"]);
    await ev("accepted", F, a["order_id"]);
    const b = order({ fund_id: F, symbol: "OPF", quantity: "2" });
    expect(outcome(await bus.check(b))).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPF", quantity: "3" })))).toBe(
      "velocity/MAX_OPEN_ORDERS_EXCEEDED",
    );
    // an OMS rejected and a done with full fills
    await ev("rejected", F, b["order_id"]);
    const c = order({ fund_id: F, symbol: "OPF", quantity: "4" });
    expect(outcome(await bus.check(c))).toBe("approved");
    await fill({ fund_id: F, symbol: "OPF", quantity: "4", price: "100", order_id: c["order_id"] });
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPF", quantity: "5" })))).toBe("approved");
  });

  it("max_open_orders: fills of a reducing order; fill in two currencies", async () => {
    const F = "rt-open6";
    await setup(F, { max_open_orders: 1 });
    await until("REFDATA", await bus.instrument({ symbol: "OPG", asset_class: "equity", currency: "EUR" }));
    await quote("EUR-USD", "1.1", "1.1");
    const a = order({ fund_id: F, symbol: "OPG", quantity: "1" });
    expect(outcome(await bus.check(a))).toBe("approved");
    await fill({ fund_id: F, symbol: "OPG", quantity: "1", price: "100", order_id: a["order_id"] });
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPG", quantity: "2" })))).toBe("approved");
  });

  it("precedence: position before drawdown before short_side", async () => {
    const F = "rt-prec3";
    await setup(F, { max_position_pct: "0.0001", enable_shorting: false });
    await until(
      "RISK_CONTROL",
      await bus.control(`mts.v1.risk.halt.${F}`, {
        fund_id: F,
        severity: "MANUAL",
        reason: "t",
        at: now(),
        by: "op",
      }),
    );
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "PRC", side: "SELL", quantity: "1000" }))),
    ).toBe("position/MAX_POSITION_EXCEEDED");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "PRC", side: "SELL", quantity: "1" })))).toBe(
      "drawdown/FUND_HALTED",
    );
  });

  it("FX: a reservation revalued when the FX rate moves", async () => {
    const F = "rt-fx5";
    await setup(F, { capital: "1000", max_position_pct: "0.11" });
    await until("REFDATA", await bus.instrument({ symbol: "FXF", asset_class: "equity", currency: "EUR" }));
    await quote("EUR-USD", "1", "1");
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "FXF", quantity: "1", limit_price: "100" }))),
    ).toBe("approved");
    await quote("EUR-USD", "1.1", "1.1");
    expect(
      outcome(
        await bus.check(
          order({ fund_id: F, symbol: "FXF", quantity: "0.000000000000000001", limit_price: "1" }),
        ),
      ),
    ).toBe("position/MAX_POSITION_EXCEEDED");
  });

  it("FX: refdata giving a currency after the position exists revalues it", async () => {
    const F = "rt-fx6";
    await setup(F, { capital: "1000", max_position_pct: "0.5" });
    await quote("EUR-USD", "2", "2");
    await fill({ fund_id: F, symbol: "FXG", quantity: "3", price: "100" });
    expect(
      outcome(
        await bus.check(
          order({ fund_id: F, symbol: "FXG", quantity: "0.000000000000000001", limit_price: "1" }),
        ),
      ),
    ).toBe("approved");
    await until("REFDATA", await bus.instrument({ symbol: "FXG", asset_class: "equity", currency: "EUR" }));
    expect(
      outcome(
        await bus.check(
          order({ fund_id: F, symbol: "FXG", quantity: "0.000000000000000001", limit_price: "1" }),
        ),
      ),
    ).toBe("position/MAX_POSITION_EXCEEDED");
  });

  it("sector: refdata giving a sector after the position exists moves the sector sum", async () => {
    const F = "rt-sec";
    await setup(F, { capital: "1000", max_sector_pct: "0.5" });
    await until("REFDATA", await bus.instrument({ symbol: "SCA", asset_class: "equity", sector: "tech" }));
    await until("REFDATA", await bus.instrument({ symbol: "SCB", asset_class: "equity", sector: "energy" }));
    await fill({ fund_id: F, symbol: "SCA", quantity: "4", price: "100" });
    await fill({ fund_id: F, symbol: "SCB", quantity: "4", price: "100" });
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "SCA", quantity: "1", limit_price: "100" }))),
    ).toBe("approved");
    await until("REFDATA", await bus.instrument({ symbol: "SCB", asset_class: "equity", sector: "tech" }));
    expect(
      outcome(
        await bus.check(
          order({ fund_id: F, symbol: "SCA", quantity: "0.000000000000000001", limit_price: "1" }),
        ),
      ),
    ).toBe("position/SECTOR_CONCENTRATION_EXCEEDED");
  });

  it("idempotency: first differing field, unknown fields and created_at ignored, order id reuse before duplicates", async () => {
    const F = "rt-idf";
    await setup(F, { velocity: { window_s: 60, max_orders: 2 }, duplicate_window_ms: 60000 });
    const o = order({ fund_id: F, symbol: "IDF", strategy_id: "s1", created_at: now() });
    expect(outcome(await bus.check(o))).toBe("approved");
    const replayed = async (x: Record<string, unknown>) => {
      const d = await bus.check(x);
      return `${outcome(d)}${d.details["replayed"] === "true" ? " (replayed)" : ""}`;
    };
    const conflict = async (x: Record<string, unknown>) => {
      const d = await bus.check(x);
      return `${outcome(d)} ${d.details["field"]}`;
    };
    expect(await replayed({ ...o, foo: "bar" })).toBe("approved (replayed)"); // unknown fields are ignored
    expect(await replayed({ ...o, stop_price: null })).toBe("approved (replayed)");
    clock.advance(5);
    expect(await replayed({ ...o, created_at: now() })).toBe("approved (replayed)");
    expect(await conflict({ ...o, quantity: "1", limit_price: "2" })).toBe(
      "idempotency/IDEMPOTENCY_CONFLICT quantity",
    );
    expect(await conflict({ ...o, symbol: "X", broker: "ibkr", strategy_id: "s2" })).toBe(
      "idempotency/IDEMPOTENCY_CONFLICT strategy_id",
    );
    expect(await conflict({ ...o, side: "SELL", order_type: "MARKET", limit_price: undefined })).toBe(
      "idempotency/IDEMPOTENCY_CONFLICT side",
    );
    expect(await conflict({ ...o, order_id: "other-id" })).toBe("idempotency/IDEMPOTENCY_CONFLICT order_id");
    // the same order under another key: its order id was decided (gate 1 comes before the duplicate check)
    expect(outcome(await bus.check({ ...o, idempotency_key: "k-other" }))).toBe(
      "idempotency/DUPLICATE_ORDER_ID",
    );
  });

  it("max_open_orders: a partly filled order is acknowledged (TTL does not free it); done with pending fills keeps it open", async () => {
    const F = "rt-open7";
    await setup(F, { max_open_orders: 2 });
    const a = order({ fund_id: F, symbol: "OPH", quantity: "10" });
    const b = order({ fund_id: F, symbol: "OPH", quantity: "11" });
    expect(outcome(await bus.check(a))).toBe("approved");
    expect(outcome(await bus.check(b))).toBe("approved");
    await fill({ fund_id: F, symbol: "OPH", quantity: "4", price: "100", order_id: a["order_id"] });
    clock.advance(31_000);
    await timers.fire("sweep");
    // b lapsed (never acknowledged), a still works
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPH", quantity: "12" })))).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPH", quantity: "13" })))).toBe(
      "velocity/MAX_OPEN_ORDERS_EXCEEDED",
    );
  });

  it("replays are not counted by velocity", async () => {
    const F = "rt-velr";
    await setup(F, { velocity: { window_s: 60, max_orders: 2 } });
    const o = order({ fund_id: F, symbol: "VR" });
    expect(outcome(await bus.check(o))).toBe("approved");
    for (let i = 0; i < 3; i++) expect(outcome(await bus.check(o))).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "VR2" })))).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "VR3" })))).toBe("velocity/VELOCITY_EXCEEDED");
  });

  it("boundaries: velocity window, FX age, max_open_orders 0", async () => {
    const F = "rt-bnd";
    await setup(F, { velocity: { window_s: 1, max_orders: 1 } });
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "BA", quantity: "1" })))).toBe("approved");
    clock.advance(999);
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "BA", quantity: "2" })))).toBe(
      "velocity/VELOCITY_EXCEEDED",
    );
    clock.advance(1000);
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "BA", quantity: "3" })))).toBe("approved");
    const G = "rt-bnd2";
    await setup(G, { max_quote_age_ms: 2000 });
    await until("REFDATA", await bus.instrument({ symbol: "BB", asset_class: "equity", currency: "CHF" }));
    await quote("CHF-USD", "1.1", "1.1", 2000);
    expect(outcome(await bus.check(order({ fund_id: G, symbol: "BB", quantity: "1" })))).toBe("approved");
    clock.advance(1);
    expect(outcome(await bus.check(order({ fund_id: G, symbol: "BB", quantity: "2" })))).toBe(
      "static/STALE_MARKET_DATA",
    );
    const H = "rt-bnd3";
    await setup(H, { max_open_orders: 0 });
    expect(outcome(await bus.check(order({ fund_id: H, symbol: "BC", quantity: "1" })))).toBe(
      "velocity/MAX_OPEN_ORDERS_EXCEEDED",
    );
  });

  it("max_open_orders: replay after cancel does not reopen; accepted for a rejected order opens nothing", async () => {
    const F = "rt-open8";
    await setup(F, { max_open_orders: 1, max_order_qty: "100" });
    const a = order({ fund_id: F, symbol: "OPI", quantity: "1" });
    expect(outcome(await bus.check(a))).toBe("approved");
    await ev("cancelled", F, a["order_id"]);
    expect(outcome(await bus.check(a))).toBe("approved");
    const r = order({ fund_id: F, symbol: "OPI", quantity: "1000" });
    expect(outcome(await bus.check(r))).toBe("static/MAX_ORDER_QTY_EXCEEDED");
    await ev("accepted", F, r["order_id"]);
    await fill({ fund_id: F, symbol: "OPI", quantity: "3", price: "100", order_id: r["order_id"] });
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "OPI", quantity: "2" })))).toBe("approved");
  });

  it("racing reducing orders on a halted fund: only what the position covers passes", async () => {
    const F = "rt-redrace";
    await setup(F, { enable_shorting: true, max_open_orders: 1 });
    await fill({ fund_id: F, symbol: "RR", quantity: "100", price: "10" });
    await until(
      "RISK_CONTROL",
      await bus.control(`mts.v1.risk.halt.${F}`, {
        fund_id: F,
        severity: "MANUAL",
        reason: "t",
        at: now(),
        by: "op",
      }),
    );
    const ds = await Promise.all(
      Array.from({ length: 12 }, () =>
        bus.check(order({ fund_id: F, symbol: "RR", side: "SELL", quantity: "30", limit_price: "10" })),
      ),
    );
    const c: Record<string, number> = {};
    for (const d of ds) c[outcome(d)] = (c[outcome(d)] ?? 0) + 1;
    // three sells of 30 reduce 100 (they pass the halt and the open-order limit); the fourth would
    // not (counting the pending ones), so it meets the velocity gate: 3 open, limit 1
    expect(c).toEqual({ approved: 3, "velocity/MAX_OPEN_ORDERS_EXCEEDED": 9 });
  });

  it("gross and velocity-notional headroom races across symbols: exactly N approvals", async () => {
    const F = "rt-grace";
    await setup(F, { max_gross_exposure_pct: "0.01" }); // 10 000
    const ds = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        bus.check(order({ fund_id: F, symbol: `GR${i % 4}`, quantity: "10", limit_price: "100" })),
      ),
    );
    expect(ds.filter((d) => d.approved).length).toBe(10);
    const G = "rt-vrace";
    await setup(G, { velocity: { window_s: 60, max_notional: "10000" }, enable_shorting: true });
    const es = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        bus.check(order({ fund_id: G, symbol: `VN${i % 4}`, quantity: "10", limit_price: "100" })),
      ),
    );
    expect(es.filter((d) => d.approved).length).toBe(10);
  });
  const tiny = { quantity: "0.000000000000000001", limit_price: "1" };

  it("FX index follows a currency given by refdata later; reservation revalued too", async () => {
    const F = "s2-fx1";
    await setup(F, { capital: "1000", max_position_pct: "0.5" });
    await quote("JPY-USD", "2", "2");
    await fill({ fund_id: F, symbol: "JP1", quantity: "1", price: "100" });
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "JP1", quantity: "1", limit_price: "100" }))),
    ).toBe("approved");
    // position 100 + reservation 100 = 200 (USD); refdata: JPY at 2 → 400 of a 500 limit
    await until("REFDATA", await bus.instrument({ symbol: "JP1", asset_class: "equity", currency: "JPY" }));
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "JP1", quantity: "0.5", limit_price: "100" }))),
    ).toBe("approved");
    // 500 now: at the limit
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "JP1", ...tiny })))).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    await quote("JPY-USD", "1", "1"); // 250 now
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "JP1", quantity: "2.5", limit_price: "100" }))),
    ).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "JP1", ...tiny })))).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
  });

  it("base_currency change revalues positions and reservations", async () => {
    const F = "s2-fx2";
    await setup(F, { capital: "1000", max_gross_exposure_pct: "0.5" });
    await until("REFDATA", await bus.instrument({ symbol: "US1", asset_class: "equity", currency: "USD" }));
    await quote("USD-EUR", "0.5", "0.5");
    await fill({ fund_id: F, symbol: "US1", quantity: "1", price: "100" });
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "US1", quantity: "1", limit_price: "100" }))),
    ).toBe("approved");
    await setup(F, { version: 2, capital: "1000", max_gross_exposure_pct: "0.5", base_currency: "EUR" });
    // 200 USD = 100 EUR of 500 EUR
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "US1", quantity: "8", limit_price: "100" }))),
    ).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "US1", ...tiny })))).toBe(
      "position/GROSS_EXPOSURE_EXCEEDED",
    );
  });

  it("foreign instrument: the velocity notional is in the base currency (330 of 330 used)", async () => {
    const F = "s2-fx3";
    await setup(F, {
      capital: "1000",
      max_sector_pct: "0.33",
      velocity: { window_s: 60, max_notional: "330" },
    });
    await until(
      "REFDATA",
      await bus.instrument({ symbol: "GB1", asset_class: "equity", currency: "GBP", sector: "s" }),
    );
    await quote("GBP-USD", "1.1", "1.1");
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "GB1", quantity: "3", limit_price: "100" }))),
    ).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "GB1", ...tiny })))).toBe(
      "velocity/VELOCITY_EXCEEDED",
    );
  });

  it("precedence across gates: static > velocity > position > drawdown > reconciliation > short_side", async () => {
    const F = "rt-prec4";
    await setup(F, {
      require_fresh_mark: true,
      duplicate_window_ms: 60000,
      max_open_orders: 1,
      max_position_pct: "0.0001", // 100
      enable_shorting: false,
    });
    await quote("PRD", "9.99", "10.01");
    const b = { fund_id: F, symbol: "PRD", quantity: "1", limit_price: "10" };
    expect(outcome(await bus.check(order(b)))).toBe("approved");
    await until(
      "RISK_CONTROL",
      await bus.control(`mts.v1.risk.halt.${F}`, {
        fund_id: F,
        severity: "MANUAL",
        reason: "t",
        at: now(),
        by: "op",
      }),
    );
    await until(
      "RISK_CONTROL",
      await bus.control(`mts.v1.risk.reconcile.lock.${F}`, {
        fund_id: F,
        locked: true,
        reason: "t",
        at: now(),
      }),
    );
    // every later gate would refuse these too; the first failing gate answers
    clock.advance(5001); // the mark goes stale
    expect(outcome(await bus.check(order(b)))).toBe("static/STALE_MARKET_DATA");
    await quote("PRD", "9.99", "10.01");
    expect(outcome(await bus.check(order(b)))).toBe("velocity/DUPLICATE_ORDER");
    expect(outcome(await bus.check(order({ ...b, quantity: "2" })))).toBe(
      "velocity/MAX_OPEN_ORDERS_EXCEEDED",
    );
    const G = "rt-prec5";
    await setup(G, { max_position_pct: "0.0001", enable_shorting: false });
    await until(
      "RISK_CONTROL",
      await bus.control(`mts.v1.risk.reconcile.lock.${G}`, {
        fund_id: G,
        locked: true,
        reason: "t",
        at: now(),
      }),
    );
    const sell = { fund_id: G, symbol: "PRE", side: "SELL", limit_price: "10" };
    expect(outcome(await bus.check(order({ ...sell, quantity: "11" })))).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    expect(outcome(await bus.check(order({ ...sell, quantity: "1" })))).toBe(
      "reconciliation/RECONCILIATION_LOCK",
    );
    await until(
      "RISK_CONTROL",
      await bus.control(`mts.v1.risk.halt.${G}`, {
        fund_id: G,
        severity: "MANUAL",
        reason: "t",
        at: now(),
        by: "op",
      }),
    );
    expect(outcome(await bus.check(order({ ...sell, quantity: "2" })))).toBe("drawdown/FUND_HALTED");
  });

  it("reducing, counting pending reducing orders net of their fills, on a halted fund", async () => {
    const F = "rt-red2";
    await setup(F, { enable_shorting: true });
    await fill({ fund_id: F, symbol: "RD", quantity: "100", price: "10" });
    await until(
      "RISK_CONTROL",
      await bus.control(`mts.v1.risk.halt.${F}`, {
        fund_id: F,
        severity: "MANUAL",
        reason: "t",
        at: now(),
        by: "op",
      }),
    );
    const sell = { fund_id: F, symbol: "RD", side: "SELL", limit_price: "10" };
    const a = order({ ...sell, quantity: "60" });
    expect(outcome(await bus.check(a))).toBe("approved");
    await fill({
      fund_id: F,
      symbol: "RD",
      side: "SELL",
      quantity: "30",
      price: "10",
      order_id: a["order_id"],
    });
    // position 70, 30 of a still pending: 40 more reduces exactly to zero, 40.000000000000000001 crosses it
    expect(outcome(await bus.check(order({ ...sell, quantity: "40.000000000000000001" })))).toBe(
      "drawdown/FUND_HALTED",
    );
    expect(outcome(await bus.check(order({ ...sell, quantity: "40" })))).toBe("approved");
    expect(outcome(await bus.check(order({ ...sell, quantity: "0.000000000000000001" })))).toBe(
      "drawdown/FUND_HALTED",
    );
    // the OMS cancels a: its 30 no longer pending
    await ev("cancelled", F, a["order_id"]);
    expect(outcome(await bus.check(order({ ...sell, quantity: "30" })))).toBe("approved");
    expect(outcome(await bus.check(order({ ...sell, quantity: "0.000000000000000001" })))).toBe(
      "drawdown/FUND_HALTED",
    );
  });

  it("duplicates and idempotency keys are per fund", async () => {
    await setup("rt-pf1", { duplicate_window_ms: 60000 });
    await setup("rt-pf2", { duplicate_window_ms: 60000 });
    const o = order({ fund_id: "rt-pf1", symbol: "PF" });
    expect(outcome(await bus.check(o))).toBe("approved");
    const other = await bus.check({ ...o, fund_id: "rt-pf2" }); // same key and order id, another fund
    expect(outcome(other)).toBe("approved");
    expect(other.details["replayed"]).toBeUndefined();
  });

  it("protobuf and JSON are one order: a protobuf retry replays, a protobuf copy under a new key is a duplicate", async () => {
    const F = "rt-pb";
    await setup(F, { duplicate_window_ms: 60000, max_open_orders: 5 });
    const pb = async (o: Record<string, unknown>) => {
      const h = natsHeaders();
      h.set("Content-Type", "application/x-protobuf");
      const m = await nc.request(Subjects.check, encodeOrderProto(o), { timeout: 5000, headers: h });
      return decodeDecisionProto(m.data);
    };
    const o = order({
      fund_id: F,
      symbol: "PB",
      quantity: "10.50",
      limit_price: "7.0",
      time_in_force: "DAY",
    });
    expect(outcome(await bus.check(o))).toBe("approved");
    const again = await pb(o);
    expect(outcome(again)).toBe("approved");
    expect(again.details["replayed"]).toBe("true");
    expect(
      outcome(
        await pb({ ...o, order_id: "pb-2", idempotency_key: "pb-2", quantity: "10.5", limit_price: "7" }),
      ),
    ).toBe("velocity/DUPLICATE_ORDER");
  });
});
