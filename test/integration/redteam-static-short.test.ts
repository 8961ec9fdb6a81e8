/**
 * Red-team pass on the short-side gate (CONTRACT.md gate 6 and "Semantics": "a SELL is a short sale
 * when it exceeds the long position the fund holds at the order's broker (less that broker's
 * pending sells); the short-side gate judges it so, whatever the fund holds elsewhere"), its codes
 * in order (SHORTING_DISABLED, BORROW_FEE_TOO_HIGH, LOCATE_REQUIRED), and racing sells. One
 * nats-server, one engine on a manual clock; each case its own fund and symbol.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

type D = {
  approved: boolean;
  rejecting_gate: string;
  rejection_code: string;
  details: Record<string, string>;
};
const outcome = (d: D) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);

describe("red-team short side", () => {
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
  const instrument = async (i: Record<string, unknown>) => until("REFDATA", await bus.instrument(i));
  const fill = async (f: Record<string, unknown>) =>
    until("FILLS", await bus.fill({ timestamp: now(), ...f }));
  const ev = async (e: string, fund: string, id: unknown, extra: Record<string, unknown> = {}) =>
    until("OMS_ORDERS", await bus.orderEvent(e, fund, String(id), now(), extra));
  const sell = (
    fund: string,
    symbol: string,
    broker: string,
    quantity: string,
    over: Record<string, unknown> = {},
  ) => order({ fund_id: fund, symbol, side: "SELL", broker, quantity, limit_price: "10", ...over });
  const check = async (o: Record<string, unknown>) => outcome(await bus.check(o));

  it("codes in order: SHORTING_DISABLED before BORROW_FEE_TOO_HIGH before LOCATE_REQUIRED", async () => {
    await instrument({ symbol: "SHA", asset_class: "equity", borrow_fee_bps: "500" });
    const F = "rtsh-codes1";
    await setup(F, { enable_shorting: false, max_borrow_fee_bps: "300" });
    expect(await check(sell(F, "SHA", "paper", "1"))).toBe("short_side/SHORTING_DISABLED");
    const G = "rtsh-codes2";
    await setup(G, { enable_shorting: true, max_borrow_fee_bps: "300" });
    expect(await check(sell(G, "SHA", "paper", "1"))).toBe("short_side/BORROW_FEE_TOO_HIGH");
    expect(await check(sell(G, "SHA", "paper", "1", { locate_id: "loc-1" }))).toBe(
      "short_side/BORROW_FEE_TOO_HIGH",
    );
    const H = "rtsh-codes3";
    await setup(H, { enable_shorting: true, max_borrow_fee_bps: "500" }); // fee exactly at the limit passes
    expect(await check(sell(H, "SHA", "paper", "1"))).toBe("short_side/LOCATE_REQUIRED");
    expect(await check(sell(H, "SHA", "paper", "1", { locate_id: "loc-1" }))).toBe("approved");
    // one smallest unit above the ceiling
    await instrument({
      symbol: "SHB",
      asset_class: "equity",
      borrow_fee_bps: "500.000000000000000001",
      shortable: true,
    });
    expect(await check(sell(H, "SHB", "paper", "1"))).toBe("short_side/BORROW_FEE_TOO_HIGH");
    // unknown fee while a ceiling is set: fail closed
    await instrument({ symbol: "SHC", asset_class: "equity", shortable: true });
    expect(await check(sell(H, "SHC", "paper", "1"))).toBe("short_side/BORROW_FEE_TOO_HIGH");
    // no refdata at all: a locate is needed
    const I = "rtsh-codes4";
    await setup(I, { enable_shorting: true });
    expect(await check(sell(I, "SHNOREF", "paper", "1"))).toBe("short_side/LOCATE_REQUIRED");
    expect(await check(sell(I, "SHC", "paper", "1"))).toBe("approved"); // shortable, no ceiling
  });

  it("judged per broker: a long held elsewhere does not cover a sale at this broker", async () => {
    const F = "rtsh-broker1";
    await setup(F, { enable_shorting: false });
    await fill({ fund_id: F, symbol: "SBA", broker: "ibkr", quantity: "100", price: "10" });
    await fill({ fund_id: F, symbol: "SBA", broker: "paper", quantity: "30", price: "10" });
    expect(await check(sell(F, "SBA", "paper", "31"))).toBe("short_side/SHORTING_DISABLED");
    expect(await check(sell(F, "SBA", "paper", "30"))).toBe("approved");
    expect(await check(sell(F, "SBA", "paper", "0.000000000000000001"))).toBe("short_side/SHORTING_DISABLED");
    // ibkr's long is untouched by paper's pending sell
    expect(await check(sell(F, "SBA", "ibkr", "100"))).toBe("approved");
    expect(await check(sell(F, "SBA", "ibkr", "1"))).toBe("short_side/SHORTING_DISABLED");
  });

  it("a fund short at one broker and long at another: a sale at the short broker is a short sale", async () => {
    const F = "rtsh-broker2";
    await setup(F, { enable_shorting: true });
    await instrument({ symbol: "SBB", asset_class: "equity", shortable: true });
    await fill({ fund_id: F, symbol: "SBB", broker: "ibkr", quantity: "200", price: "10" });
    await fill({ fund_id: F, symbol: "SBB", broker: "paper", side: "SELL", quantity: "50", price: "10" });
    await setup(F, { version: 2, enable_shorting: false });
    // fund +150, paper −50: any sale at paper is short
    expect(await check(sell(F, "SBB", "paper", "1"))).toBe("short_side/SHORTING_DISABLED");
    expect(await check(sell(F, "SBB", "ibkr", "150"))).toBe("approved");
  });

  it("pending sells at the broker count, released when the OMS ends them, consumed by fills", async () => {
    const F = "rtsh-pend1";
    await setup(F, { enable_shorting: false });
    await fill({ fund_id: F, symbol: "SPA", broker: "paper", quantity: "100", price: "10" });
    const a = sell(F, "SPA", "paper", "60");
    expect(await check(a)).toBe("approved");
    expect(await check(sell(F, "SPA", "paper", "41"))).toBe("short_side/SHORTING_DISABLED");
    // the OMS cancels the 60: headroom comes back
    await ev("cancelled", F, a["order_id"]);
    const b = sell(F, "SPA", "paper", "100");
    expect(await check(b)).toBe("approved");
    expect(await check(sell(F, "SPA", "paper", "1"))).toBe("short_side/SHORTING_DISABLED");
    // b fills 40: long 60, pending 60: still nothing to sell
    await ev("accepted", F, b["order_id"]);
    await fill({
      fund_id: F,
      symbol: "SPA",
      broker: "paper",
      side: "SELL",
      quantity: "40",
      price: "10",
      order_id: b["order_id"],
    });
    expect(await check(sell(F, "SPA", "paper", "1"))).toBe("short_side/SHORTING_DISABLED");
    // b ends with 40 filled: 60 free again
    await ev("done", F, b["order_id"], { filled_quantity: "40" });
    expect(await check(sell(F, "SPA", "paper", "60"))).toBe("approved");
    expect(await check(sell(F, "SPA", "paper", "1"))).toBe("short_side/SHORTING_DISABLED");
  });

  it("pending BUYs at the broker are no long to sell against", async () => {
    const F = "rtsh-pend2";
    await setup(F, { enable_shorting: false });
    expect(
      await check(order({ fund_id: F, symbol: "SPB", broker: "paper", quantity: "100", limit_price: "10" })),
    ).toBe("approved");
    expect(await check(sell(F, "SPB", "paper", "50"))).toBe("short_side/SHORTING_DISABLED");
  });

  it("racing sells at one broker: exactly the long is approved", async () => {
    const F = "rtsh-race1";
    await setup(F, { enable_shorting: false });
    await fill({ fund_id: F, symbol: "SRA", broker: "paper", quantity: "100", price: "10" });
    await fill({ fund_id: F, symbol: "SRA", broker: "ibkr", quantity: "1000", price: "10" });
    const ds = await Promise.all(Array.from({ length: 40 }, () => bus.check(sell(F, "SRA", "paper", "10"))));
    expect(ds.filter((d) => d.approved).length).toBe(10);
    expect(ds.filter((d) => d.rejection_code === "SHORTING_DISABLED").length).toBe(30);
  });

  it("a sale that crosses a long into a short needs everything a short needs", async () => {
    const F = "rtsh-cross1";
    await setup(F, { enable_shorting: true, max_borrow_fee_bps: "100" });
    await instrument({ symbol: "SCA", asset_class: "equity", borrow_fee_bps: "150", shortable: true });
    await fill({ fund_id: F, symbol: "SCA", broker: "paper", quantity: "100", price: "10" });
    expect(await check(sell(F, "SCA", "paper", "100"))).toBe("approved");
    const G = "rtsh-cross2";
    await setup(G, { enable_shorting: true, max_borrow_fee_bps: "100" });
    await fill({ fund_id: G, symbol: "SCA", broker: "paper", quantity: "100", price: "10" });
    expect(await check(sell(G, "SCA", "paper", "101"))).toBe("short_side/BORROW_FEE_TOO_HIGH");
  });

  it("a strategy may enable shorting for its orders only", async () => {
    const F = "rtsh-strat1";
    await setup(F, { enable_shorting: false, strategies: { ls: { enable_shorting: true } } });
    await instrument({ symbol: "SSA", asset_class: "equity", shortable: true });
    expect(await check(sell(F, "SSA", "paper", "5"))).toBe("short_side/SHORTING_DISABLED");
    expect(await check(sell(F, "SSA", "paper", "5", { strategy_id: "ls" }))).toBe("approved");
    expect(await check(sell(F, "SSA", "paper", "5", { strategy_id: "other" }))).toBe(
      "short_side/SHORTING_DISABLED",
    );
  });

  it("a MARKET/STOP sell is judged the same way", async () => {
    const F = "rtsh-mkt1";
    await setup(F, { enable_shorting: false });
    await until("QUOTES", await bus.quote("SMA", "9.9", "10.1", now()));
    await fill({ fund_id: F, symbol: "SMA", broker: "ibkr", quantity: "100", price: "10" });
    expect(await check(sell(F, "SMA", "paper", "10", { order_type: "MARKET", limit_price: undefined }))).toBe(
      "short_side/SHORTING_DISABLED",
    );
    expect(
      await check(
        sell(F, "SMA", "paper", "10", { order_type: "STOP", stop_price: "9", limit_price: undefined }),
      ),
    ).toBe("short_side/SHORTING_DISABLED");
    expect(
      await check(
        sell(F, "SMA", "ibkr", "100", { order_type: "STOP", stop_price: "9", limit_price: undefined }),
      ),
    ).toBe("approved");
    expect(await check(sell(F, "SMA", "ibkr", "1", { order_type: "MARKET", limit_price: undefined }))).toBe(
      "short_side/SHORTING_DISABLED",
    );
  });
});
