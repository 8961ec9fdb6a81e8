/**
 * Issue 13's checks through the real bus (one nats-server, one engine on a manual clock; each case
 * its own fund): MAX_OPEN_ORDERS_EXCEEDED and a cancel freeing a slot, DUPLICATE_ORDER and a
 * duplicate after its window, MAX_ADV_PCT_EXCEEDED, require_fresh_mark, multi-currency (a missing
 * and a stale FX rate, an FX move taking a position over its limit and halting on drawdown,
 * exposure by currency in the status), and the limit_warning alert.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rebuild } from "../../src/engine/index.js";
import { silentLogger } from "../../src/obs/log.js";
import {
  Bus,
  NOW,
  applied,
  envelope,
  order,
  readStream,
  startTestEngine,
  testConfig,
} from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

describe("issue 13 checks through the bus", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const now = () => iso(clock.now());
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

  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  async function setup(fund: string, env: Record<string, unknown>) {
    await until("RISK_ENVELOPES", await bus.envelope(envelope(fund, env)));
  }
  const outcome = (d: { approved: boolean; rejecting_gate: string; rejection_code: string }) =>
    d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`;

  it("max_open_orders: the third open order is rejected, and a cancel frees its slot", async () => {
    const F = "open-orders";
    await setup(F, { max_open_orders: 2 });
    const a = order({ fund_id: F });
    expect(outcome(await bus.check(a))).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, quantity: "2" })))).toBe("approved");
    const third = await bus.check(order({ fund_id: F, quantity: "3" }));
    expect(outcome(third)).toBe("velocity/MAX_OPEN_ORDERS_EXCEEDED");
    expect(third.details).toMatchObject({ open_orders: "3", limit: "2" });
    await until("OMS_ORDERS", await bus.orderEvent("cancelled", F, String(a["order_id"]), now()));
    expect(outcome(await bus.check(order({ fund_id: F, quantity: "4" })))).toBe("approved");
  });

  it("duplicate_window_ms: the same order under another key is DUPLICATE_ORDER, and passes once the window has passed", async () => {
    const F = "dups";
    await setup(F, { duplicate_window_ms: 1000 });
    const same = { fund_id: F, symbol: "MSFT", quantity: "10", limit_price: "50" };
    expect(outcome(await bus.check(order(same)))).toBe("approved");
    clock.advance(999);
    const dup = await bus.check(order(same));
    expect(outcome(dup)).toBe("velocity/DUPLICATE_ORDER");
    expect(dup.details).toMatchObject({ elapsed_ms: "999", window_ms: "1000" });
    clock.advance(1);
    expect(outcome(await bus.check(order(same)))).toBe("approved");
  });

  it("max_adv_pct: exactly pct × adv passes, one unit more and no adv at all are MAX_ADV_PCT_EXCEEDED", async () => {
    const F = "adv";
    await setup(F, { max_adv_pct: "0.1" });
    await bus.instrument({ symbol: "ADV1", asset_class: "equity", adv: "1000" });
    await until("REFDATA", await bus.instrument({ symbol: "NOADV", asset_class: "equity" }));
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "ADV1", quantity: "100" })))).toBe("approved");
    const over = await bus.check(order({ fund_id: F, symbol: "ADV1", quantity: "100.000000000000000001" }));
    expect(outcome(over)).toBe("static/MAX_ADV_PCT_EXCEEDED");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "NOADV", quantity: "1" })))).toBe(
      "static/MAX_ADV_PCT_EXCEEDED",
    );
  });

  it("require_fresh_mark: a LIMIT order without a fresh mark is STALE_MARKET_DATA, with one it passes", async () => {
    const F = "fresh";
    await setup(F, { require_fresh_mark: true });
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "FRSH" })))).toBe("static/STALE_MARKET_DATA");
    await until("QUOTES", await bus.quote("FRSH", "99", "101", now()));
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "FRSH" })))).toBe("approved");
  });

  it("multi-currency: no FX rate and a stale one are STALE_MARKET_DATA; an FX move takes a position over its limit", async () => {
    const F = "fx";
    await setup(F, { max_position_pct: "0.1", max_quote_age_ms: 5000 });
    await until("REFDATA", await bus.instrument({ symbol: "SAP", asset_class: "equity", currency: "EUR" }));
    const noRate = await bus.check(order({ fund_id: F, symbol: "SAP" }));
    expect(outcome(noRate)).toBe("static/STALE_MARKET_DATA");
    expect(noRate.details).toMatchObject({ symbol: "EUR-USD", currency: "EUR" });

    await bus.quote("EUR-USD", "1", "1", now());
    await bus.quote("SAP", "100", "100", now());
    await until("FILLS", await bus.fill({ fund_id: F, symbol: "SAP", quantity: "900", price: "100" }));
    // 90 000 USD of a 100 000 limit: 50 × 100 EUR more passes
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "SAP", quantity: "50" })))).toBe("approved");
    await until("QUOTES", await bus.quote("EUR-USD", "1.2", "1.2", now()));
    // 950 × 100 EUR at 1.2 = 114 000 USD: over 10 % of NAV (1 000 000: no local P&L to convert)
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "SAP", quantity: "1" })))).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    const status = (
      await nc.request(Subjects.status, JSON.stringify({ fund_id: F }), { timeout: 5000 })
    ).json<{ fund: { base_currency: string; currencies: { currency: string; exposure: string }[] } }>();
    expect(status.fund.base_currency).toBe("USD");
    expect(status.fund.currencies).toMatchObject([{ currency: "EUR", exposure: "114000", fx_rate: "1.2" }]);

    clock.advance(5001); // the rate goes stale
    const stale = await bus.check(order({ fund_id: F, symbol: "SAP", side: "SELL", quantity: "1" }));
    expect(outcome(stale)).toBe("static/STALE_MARKET_DATA");
    expect(stale.details).toMatchObject({ symbol: "EUR-USD", quote_age_ms: "5001" });
  });

  it("multi-currency: an FX move alone takes a fund's (local) loss to its daily halt", async () => {
    const F = "fx-halt";
    await setup(F, { daily_loss_halt_pct: "0.03" });
    await bus.instrument({ symbol: "BMW", asset_class: "equity", currency: "EUR" });
    await bus.quote("EUR-USD", "1", "1", now());
    await until("QUOTES", await bus.quote("BMW", "100", "100", now()));
    await until("FILLS", await bus.fill({ fund_id: F, symbol: "BMW", quantity: "10000", price: "100" }));
    await waitFor(() => engine.observe.fund(F)?.baselines["day"]);
    // a loss of 25 000 EUR in the price (2.5 % at EUR-USD 1): no halt
    await until("QUOTES", await bus.quote("BMW", "97.5", "97.5", now()));
    await until("QUOTES", await bus.quote("EUR-USD", "1.19", "1.19", now())); // −29 750 USD: 2.975 %
    await timers.tick("drawdown"); // evaluated now: what it halts is on RISK_CONTROL when this resolves
    expect(await readStream(nc, "RISK_CONTROL", Subjects.halt(F))).toEqual([]);
    await until("QUOTES", await bus.quote("EUR-USD", "1.2", "1.2", now())); // −30 000 USD: 3 %
    await waitFor(() => engine.observe.fund(F)!.halts["DAILY_LOSS"]);
    const halts = await readStream<{ severity: string }>(nc, "RISK_CONTROL", Subjects.halt(F));
    expect(halts.map((h) => h.data.severity)).toEqual(["DAILY_LOSS"]);
  });

  it("warn_at_pct: a fill taking gross above 80 % of its limit publishes one limit_warning with the figures", async () => {
    const F = "warn";
    await setup(F, { warn_at_pct: "0.8", max_gross_exposure_pct: "1" });
    await until("FILLS", await bus.fill({ fund_id: F, symbol: "WRN", quantity: "8000", price: "100" }));
    await until("FILLS", await bus.fill({ fund_id: F, symbol: "WRN", quantity: "1", price: "100" }));
    await until("FILLS", await bus.fill({ fund_id: F, symbol: "WRN", quantity: "1", price: "100" }));
    const subject = Subjects.alert("limit_warning", F);
    const alerts = await waitFor(async () => {
      const a = await readStream<{ details: Record<string, string> }>(nc, "RISK_CONTROL", subject);
      return a.length > 0 ? a : undefined;
    });
    expect(alerts!.map((a) => a.data.details)).toEqual([
      {
        measure: "gross",
        scope: "fund",
        value: "800100",
        limit: "1000000",
        share: "0.8001",
        warn_at_pct: "0.8",
      },
    ]);
    // an approved decision crossing the position measure warns too
    await setup(F, { version: 2, warn_at_pct: "0.8", max_gross_exposure_pct: "1", max_position_pct: "0.9" });
    expect(
      outcome(await bus.check(order({ fund_id: F, symbol: "WRN", quantity: "1", limit_price: "100" }))),
    ).toBe("approved");
    const more = await waitFor(async () => {
      const a = await readStream<{ details: Record<string, string> }>(nc, "RISK_CONTROL", subject);
      return a.length > 1 ? a : undefined;
    });
    expect(more!.map((a) => `${a.data.details["measure"]}:${a.data.details["scope"]}`)).toEqual([
      "gross:fund",
      "position:WRN",
    ]);
  });

  it("replay: with multi-currency fills and decisions in the streams, the live digest equals a rebuild's", async () => {
    const F = "fx-replay";
    await setup(F, {
      base_currency: "EUR",
      max_position_pct: "0.5",
      duplicate_window_ms: 500,
      max_open_orders: 5,
    });
    await bus.instrument({ symbol: "IBM", asset_class: "equity", currency: "USD" });
    await bus.instrument({ symbol: "SIE", asset_class: "equity" }); // priced in the fund's base (EUR)
    await until("QUOTES", await bus.quote("USD-EUR", "0.9", "0.9", now()));
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "IBM", quantity: "10" })))).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "SIE", quantity: "10" })))).toBe("approved");
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "SIE", quantity: "10" })))).toBe(
      "velocity/DUPLICATE_ORDER",
    );
    await bus.fill({ fund_id: F, symbol: "IBM", quantity: "7", price: "101.5", fees: "1.25" });
    await bus.fill({ fund_id: F, symbol: "IBM", side: "SELL", quantity: "3", price: "103", fees: "0.5" });
    await bus.fill({ fund_id: F, symbol: "SIE", quantity: "10", price: "99" });
    await until("QUOTES", await bus.quote("USD-EUR", "0.95", "0.95", now()));
    const jsm = await engine.js.jetstreamManager();
    for (const st of ["RISK_DECISIONS", "FILLS", "OMS_ORDERS", "RISK_CONTROL", "RISK_ENVELOPES", "QUOTES"]) {
      const last = (await jsm.streams.info(st)).state.last_seq;
      await until(st, last);
    }
    const live = engine.status().state_digest;
    const rebuilt = await rebuild({
      config: testConfig(server.url, {}, mkdtempSync(join(tmpdir(), "mts-rb-"))),
      out: join(mkdtempSync(join(tmpdir(), "mts-rb-out-")), "rebuilt.sqlite"),
      clock,
      log: silentLogger,
    });
    expect(rebuilt.state_digest).toBe(live);
    expect(engine.observe.book(F, "IBM")!.realized).toBe("4.5"); // USD, the instrument's currency
  });
});
