/**
 * Multi-currency: money in the fund's base currency at the FX mark `<CCY>-<BASE>`, positions,
 * cost, realized P&L and fees in the instrument's currency; a missing or stale FX rate is
 * STALE_MARKET_DATA; an FX move revalues like a price move; the digest does not depend on FX.
 */
import { describe, it, expect } from "vitest";
import { canon, dec } from "../../src/decimal/index.js";
import { EnvelopeSchema, InstrumentSchema } from "../../src/contract/schemas.js";
import { decodeEnvelopeProto, encodeEnvelopeProto } from "../../src/contract/codec.js";
import { toWire } from "../../src/contract/wire.js";
import { positionGate, staticGate } from "../../src/gates/index.js";
import { nav, stateDigest } from "../../src/state/index.js";
import { fundReport } from "../../src/service/fund-report.js";
import { lookupEnvelope } from "../../src/service/envelope.js";
import { FUND, Feed, NOW, codeOf, envelope, runGate } from "./fixtures.js";

const UNIT = "0.000000000000000001";
const up = (s: string): string => canon(dec(s).plus(UNIT));
const down = (s: string): string => canon(dec(s).minus(UNIT));
const SAP = { symbol: "SAP", asset_class: "equity", currency: "EUR", sector: "tech" };

describe("order notional in the base currency", () => {
  it("given EUR-USD 1.1, when a LIMIT order is 100 × 100 EUR, then its notional is 11 000 USD: a limit of exactly 11 000 passes, one unit less fails", () => {
    const f = new Feed()
      .envelope({ max_order_notional: "11000" })
      .instrument(SAP)
      .quote("EUR-USD", "1.1", "1.1");
    const ok = runGate(f.state, staticGate, { symbol: "SAP" });
    expect(codeOf(ok)).toBe("");
    expect(canon(ok.ctx.notional!)).toBe("11000");
    const tight = new Feed()
      .envelope({ max_order_notional: down("11000") })
      .instrument(SAP)
      .quote("EUR-USD", "1.1", "1.1");
    expect(codeOf(runGate(tight.state, staticGate, { symbol: "SAP" }))).toBe("MAX_ORDER_NOTIONAL_EXCEEDED");
  });

  it("given an order in EUR and no EUR-USD rate, when it is checked, then it is STALE_MARKET_DATA naming the FX symbol", () => {
    const f = new Feed().envelope().instrument(SAP);
    const r = runGate(f.state, staticGate, { symbol: "SAP" });
    expect(codeOf(r)).toBe("STALE_MARKET_DATA");
    expect(r.result?.details).toMatchObject({ symbol: "EUR-USD", currency: "EUR" });
  });

  it("given max_quote_age_ms 2000, when the EUR-USD rate is exactly 2000 ms old it passes, and 2001 ms old it is STALE_MARKET_DATA", () => {
    const f = new Feed()
      .envelope({ max_quote_age_ms: 2000 })
      .instrument(SAP)
      .quote("EUR-USD", "1.1", "1.1", NOW - 2000);
    expect(codeOf(runGate(f.state, staticGate, { symbol: "SAP" }))).toBe("");
    expect(codeOf(runGate(f.state, staticGate, { symbol: "SAP" }, NOW + 1))).toBe("STALE_MARKET_DATA");
  });

  it("given an instrument without currency, when the fund's base is EUR, then it is priced in EUR and needs no FX", () => {
    const f = new Feed()
      .envelope({ base_currency: "EUR", max_order_notional: "10000" })
      .instrument({ symbol: "AAPL", asset_class: "equity" });
    const r = runGate(f.state, staticGate);
    expect(codeOf(r)).toBe("");
    expect(r.ctx.fxSymbol).toBeUndefined();
    // a USD instrument in a EUR fund converts through USD-EUR
    f.instrument({ symbol: "AAPL", asset_class: "equity", currency: "USD" });
    expect(runGate(f.state, staticGate).result?.details).toMatchObject({ symbol: "USD-EUR" });
  });
});

describe("positions in the instrument's currency, valued in the base", () => {
  it("given a long 100 SAP @ 100 EUR marked at 110 and EUR-USD 1.2, when NAV is computed, then unrealized is 1 200 USD", () => {
    const f = new Feed()
      .envelope()
      .instrument(SAP)
      .quote("EUR-USD", "1.2", "1.2")
      .fill("SAP", "100", "100")
      .quote("SAP", "110", "110");
    expect(canon(nav(f.fund)!)).toBe("1001200");
    expect(canon(f.fund.agg.gross)).toBe("13200");
    const b = f.fund.books.get("SAP")!;
    expect(canon(b.pos.cost)).toBe("10000"); // EUR
  });

  it("given realized P&L and fees in EUR, when EUR-USD moves, then NAV converts them at the new rate and the position row keeps EUR", () => {
    const f = new Feed()
      .envelope()
      .instrument(SAP)
      .quote("EUR-USD", "1", "1")
      .fill("SAP", "100", "100", { fees: "10" })
      .fill("SAP", "-100", "110", { fees: "10" });
    expect(canon(nav(f.fund)!)).toBe("1000980"); // 1000 − 20 EUR at 1
    f.quote("EUR-USD", "1.5", "1.5");
    expect(canon(nav(f.fund)!)).toBe("1001470");
    expect(canon(f.fund.books.get("SAP")!.pos.realized)).toBe("1000");
    expect(canon(f.fund.books.get("SAP")!.pos.fees)).toBe("20");
  });

  it("given a position just under its limit, when EUR-USD rises, then the position is over it and a further buy is MAX_POSITION_EXCEEDED", () => {
    // NAV 1 000 000 (no unrealized: mark = cost); limit 10% = 100 000 USD; position 900 × 100 EUR
    const f = new Feed()
      .envelope({ max_position_pct: "0.10" })
      .instrument(SAP)
      .quote("EUR-USD", "1", "1")
      .fill("SAP", "900", "100")
      .quote("SAP", "100", "100");
    // at 1.0: 90 000 used, 10 000 USD = 100 × 100 EUR of headroom, exactly
    expect(
      codeOf(runGate(f.state, positionGate, { symbol: "SAP", quantity: "100", limit_price: "100" })),
    ).toBe("");
    expect(
      codeOf(runGate(f.state, positionGate, { symbol: "SAP", quantity: "100", limit_price: up("100") })),
    ).toBe("MAX_POSITION_EXCEEDED");
    f.quote("EUR-USD", "1.2", "1.2");
    // the position is now 108 000 USD; NAV stays 1 000 000 (no local P&L to convert)
    expect(canon(f.fund.books.get("SAP")!.contrib.exposure)).toBe("108000");
    expect(codeOf(runGate(f.state, positionGate, { symbol: "SAP", quantity: "1", limit_price: "100" }))).toBe(
      "MAX_POSITION_EXCEEDED",
    );
  });

  it("given a fund holding EUR with no EUR-USD rate ever seen, when any order arrives, then it is STALE_MARKET_DATA until a rate is seen", () => {
    const f = new Feed().envelope().instrument(SAP).fill("SAP", "10", "100");
    const r = runGate(f.state, staticGate); // a USD order
    expect(codeOf(r)).toBe("STALE_MARKET_DATA");
    expect(r.result?.details).toMatchObject({ currency: "EUR" });
    f.quote("EUR-USD", "1.1", "1.1", NOW - 60_000); // old, but a rate: NAV can be established
    expect(codeOf(runGate(f.state, staticGate))).toBe("");
  });

  it("given the same fills, when the FX quotes differ, then the state digest is the same", () => {
    const a = new Feed()
      .envelope()
      .instrument(SAP)
      .quote("EUR-USD", "1.1", "1.1")
      .fill("SAP", "10", "100")
      .fill("SAP", "-4", "120");
    const b = new Feed()
      .envelope()
      .instrument(SAP)
      .quote("EUR-USD", "1.7", "1.7")
      .fill("SAP", "10", "100")
      .fill("SAP", "-4", "120");
    expect(canon(nav(a.fund)!)).not.toBe(canon(nav(b.fund)!));
    expect(stateDigest(a.state)).toBe(stateDigest(b.state));
  });

  it("given a new envelope version with another base currency, when published, then the books are revalued in it", () => {
    const f = new Feed().envelope().instrument(SAP).quote("EUR-USD", "1.2", "1.2").fill("SAP", "100", "100");
    expect(canon(f.fund.agg.gross)).toBe("12000");
    f.envelope({ version: 2, base_currency: "EUR" });
    expect(canon(f.fund.agg.gross)).toBe("10000");
    expect(f.state.fxHolders.get("EUR-USD")?.size ?? 0).toBe(0);
  });

  it("given positions in USD and EUR, when the fund report is read, then it shows exposure by currency with the rate", () => {
    const f = new Feed()
      .envelope()
      .instrument(SAP)
      .quote("EUR-USD", "1.25", "1.25")
      .fill("SAP", "8", "100")
      .fill("AAPL", "10", "50");
    const r = fundReport(f.state, FUND, NOW)!;
    expect(r.base_currency).toBe("USD");
    expect(r.currencies).toEqual([
      {
        currency: "EUR",
        exposure: "1000",
        fx_symbol: "EUR-USD",
        fx_rate: "1.25",
        fx_quote_at: new Date(NOW).toISOString(),
      },
      { currency: "USD", exposure: "500", fx_symbol: null, fx_rate: null, fx_quote_at: null },
    ]);
  });
});

describe("validation", () => {
  it("given every new envelope field, when the envelope goes through protobuf and back, then it is the same envelope", () => {
    const e = EnvelopeSchema.parse(
      envelope({
        max_open_orders: 20,
        duplicate_window_ms: 1500,
        max_adv_pct: "0.05",
        require_fresh_mark: true,
        warn_at_pct: "0.8",
        base_currency: "EUR",
        strategies: {
          s1: { max_open_orders: 3, duplicate_window_ms: 10, max_adv_pct: "0.01", require_fresh_mark: false },
        },
      }),
    );
    const wire = toWire(e) as Record<string, unknown>;
    const back = EnvelopeSchema.parse(decodeEnvelopeProto(encodeEnvelopeProto(wire)));
    expect(toWire(back)).toEqual(wire);
  });

  it("given the new fields in an envelope, when envelope.get answers (mts-risk envelope get), then they are shown", () => {
    const f = new Feed().envelope({
      max_open_orders: 20,
      duplicate_window_ms: 1500,
      max_adv_pct: "0.050",
      require_fresh_mark: true,
      warn_at_pct: "0.8",
      base_currency: "EUR",
    });
    const r = lookupEnvelope(f.state, { fund_id: FUND });
    expect(r).toMatchObject({
      ok: true,
      envelope: {
        max_open_orders: 20,
        duplicate_window_ms: 1500,
        max_adv_pct: "0.05",
        require_fresh_mark: true,
        warn_at_pct: "0.8",
        base_currency: "EUR",
      },
    });
  });

  it("given currencies and the new envelope fields, when validated, then ISO codes and ranges are enforced", () => {
    expect(InstrumentSchema.safeParse({ ...SAP, adv: "1000" }).success).toBe(true);
    expect(InstrumentSchema.safeParse({ ...SAP, currency: "eur" }).success).toBe(false);
    expect(InstrumentSchema.safeParse({ ...SAP, adv: "-1" }).success).toBe(false);
    expect(EnvelopeSchema.safeParse(envelope({ base_currency: "EURO" })).success).toBe(false);
    expect(EnvelopeSchema.safeParse(envelope({ warn_at_pct: "1" })).success).toBe(true);
    expect(EnvelopeSchema.safeParse(envelope({ warn_at_pct: up("1") })).success).toBe(false);
    expect(EnvelopeSchema.safeParse(envelope({ warn_at_pct: "0" })).success).toBe(false);
    expect(EnvelopeSchema.safeParse(envelope({ max_adv_pct: "-0.1" })).success).toBe(false);
    expect(EnvelopeSchema.safeParse(envelope({ require_fresh_mark: "yes" })).success).toBe(false);
    // fund-level only: a strategy cannot change the base currency or the warning share
    const s = EnvelopeSchema.parse(
      envelope({ strategies: { s1: { base_currency: "EUR", warn_at_pct: "0.5" } } }),
    );
    expect(s.strategies?.["s1"]).toEqual({});
  });
});
