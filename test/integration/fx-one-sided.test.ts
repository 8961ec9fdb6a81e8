/**
 * An FX quote with no bid (`EUR-USD` bid 0, ask 1.2) gives no exchange rate: its mid (ask / 2, the
 * contract's mid taken literally for an instrument worth between 0 and its ask) would value every
 * EUR notional at half, so an order twice its limit passed, and EUR positions counted half in the
 * fund's exposure. Such a rate is not established: an order on the currency is
 * STALE_MARKET_DATA, and while the fund holds that currency every order of the fund is (its NAV
 * and exposure cannot be established), until a quote with a bid comes. (A bid with no ask, ask 0,
 * keeps its mark, the bid: a rate someone pays.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

describe("multi-currency: a one-sided FX quote", () => {
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
  const outcome = (d: { approved: boolean; rejecting_gate: string; rejection_code: string }) =>
    d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`;

  it("an FX quote with a bid of 0 is no rate: orders on the currency are STALE_MARKET_DATA, not valued at ask / 2", async () => {
    const F = "fx-nobid";
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { max_order_notional: "60000" })));
    await until("REFDATA", await bus.instrument({ symbol: "SAP", asset_class: "equity", currency: "EUR" }));
    await until("QUOTES", await bus.quote("EUR-USD", "1.2", "1.2", now()));
    // 900 × 100 EUR = 108 000 USD at 1.2: over 60 000
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "SAP", quantity: "900" })))).toBe(
      "static/MAX_ORDER_NOTIONAL_EXCEEDED",
    );
    await until("QUOTES", await bus.quote("EUR-USD", "0", "1.2", now()));
    const d = await bus.check(order({ fund_id: F, symbol: "SAP", quantity: "900" }));
    expect(outcome(d)).toBe("static/STALE_MARKET_DATA");
    expect(d.details).toMatchObject({ symbol: "EUR-USD", currency: "EUR" });
    // a bid-only quote (no offer) is a rate: its bid
    await until("QUOTES", await bus.quote("EUR-USD", "1.2", "0", now()));
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "SAP", quantity: "900" })))).toBe(
      "static/MAX_ORDER_NOTIONAL_EXCEEDED",
    );
    expect(outcome(await bus.check(order({ fund_id: F, symbol: "SAP", quantity: "400" })))).toBe("approved");
  });

  it("a fund holding the currency: its EUR position is not counted at half while the FX quote has no bid", async () => {
    const F = "fx-nobid-held";
    await until(
      "RISK_ENVELOPES",
      await bus.envelope(envelope(F, { max_gross_exposure_pct: "0.2" })), // 200 000 USD of 1 000 000
    );
    await until("REFDATA", await bus.instrument({ symbol: "BMW", asset_class: "equity", currency: "EUR" }));
    await bus.quote("EUR-USD", "1.2", "1.2", now());
    await until("QUOTES", await bus.quote("BMW", "100", "100", now()));
    // 1 500 × 100 EUR = 180 000 USD of a 200 000 gross limit
    await until("FILLS", await bus.fill({ fund_id: F, symbol: "BMW", quantity: "1500", price: "100" }));
    // 30 000 USD more in a USD stock: 210 000 > 200 000
    const usd = order({ fund_id: F, symbol: "AAPL", quantity: "300", limit_price: "100" });
    expect(outcome(await bus.check(usd))).toBe("position/GROSS_EXPOSURE_EXCEEDED");
    await until("QUOTES", await bus.quote("EUR-USD", "0", "1.2", now()));
    const again = await bus.check(order({ fund_id: F, symbol: "AAPL", quantity: "300", limit_price: "100" }));
    expect(again.approved).toBe(false);
    expect(outcome(again)).toBe("static/STALE_MARKET_DATA");
    expect(again.details).toMatchObject({ currency: "EUR" });
  });
});
