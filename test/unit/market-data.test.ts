/**
 * Boundaries of issue 8 cases 8-10 in the projections and the order price: zero-price fills,
 * one-sided quotes, and the mark as the latest quote by timestamp.
 */
import { describe, expect, it } from "vitest";
import { FillSchema, QuoteSchema } from "../../src/contract/schemas.js";
import { canon, dec } from "../../src/decimal/index.js";
import { marketPrice } from "../../src/gates/context.js";
import { staticGate } from "../../src/gates/index.js";
import { nav } from "../../src/state/book.js";
import { midOf, toMark } from "../../src/state/projections/market.js";
import { FUND, Feed, NOW, codeOf, runGate } from "./fixtures.js";

const q = (bid: string, ask: string) => ({ symbol: "X", bid, ask, timestamp: "2026-11-21T14:30:00Z" });
const fill = (price: string) => ({
  fill_id: "f",
  order_id: "o",
  fund_id: "alpha",
  broker: "paper",
  symbol: "X",
  side: "BUY",
  quantity: "1",
  price,
  timestamp: "2026-11-21T14:30:00Z",
});

describe("schemas at 0", () => {
  it("given a fill at price 0, then it is valid; below 0 it is not", () => {
    expect(FillSchema.safeParse(fill("0")).success).toBe(true);
    expect(FillSchema.safeParse(fill("0.000")).success).toBe(true);
    expect(FillSchema.safeParse(fill("-0.000000000000000001")).success).toBe(false);
  });
  it("given one-sided quotes, then bid 0 and ask 0 are valid, 0/0 is not, and only a two-sided quote can be crossed", () => {
    expect(QuoteSchema.safeParse(q("0", "0.05")).success).toBe(true);
    expect(QuoteSchema.safeParse(q("1.5", "0")).success).toBe(true);
    const none = QuoteSchema.safeParse(q("0", "0"));
    expect(none.success ? "" : none.error.issues[0]!.path.join(".")).toBe("ask");
    const crossed = QuoteSchema.safeParse(q("1.000000000000000001", "1"));
    expect(crossed.success ? "" : crossed.error.issues[0]!.path.join(".")).toBe("bid");
    expect(QuoteSchema.safeParse(q("1", "1")).success).toBe(true);
    expect(QuoteSchema.safeParse(q("-0.01", "1")).success).toBe(false);
  });
});

describe("mark and order price of a one-sided quote", () => {
  it("given bid 0, then the mid is ask / 2; given ask 0, the mark is the bid", () => {
    expect(canon(midOf(dec("0"), dec("0.05")))).toBe("0.025");
    expect(canon(midOf(dec("1.5"), dec("0")))).toBe("1.5");
    expect(canon(midOf(dec("99"), dec("101")))).toBe("100");
  });
  it("given a side at 0, then a MARKET order on that side is priced at the mark, never at 0", () => {
    const bid0 = toMark(dec("0"), dec("0.05"), NOW);
    expect(canon(marketPrice(bid0, false))).toBe("0.025"); // SELL into a 0 bid
    expect(canon(marketPrice(bid0, true))).toBe("0.05"); // BUY at the ask
    const ask0 = toMark(dec("1.5"), dec("0"), NOW);
    expect(canon(marketPrice(ask0, true))).toBe("1.5"); // BUY with no offer
    expect(canon(marketPrice(ask0, false))).toBe("1.5");
  });
  it("given a collar and a bid-0 quote, then the collar is around the mid (ask / 2), both edges passing", () => {
    const f = new Feed().envelope({ price_collar_pct: "1" }).quote("AAPL", "0", "0.05");
    expect(codeOf(runGate(f.state, staticGate, { limit_price: "0.05" }))).toBe(""); // |0.05 − 0.025| = 0.025
    expect(codeOf(runGate(f.state, staticGate, { limit_price: "0.050000000000000001" }))).toBe(
      "PRICE_COLLAR_BREACHED",
    );
  });
});

describe("zero-price fills in the position", () => {
  it("given a transfer in of 100 at 0 then a buy of 100 at 10, then the average cost is 5, and selling 100 at 10 realizes 500", () => {
    const f = new Feed().envelope().fill("AAPL", "100", "0").fill("AAPL", "100", "10");
    const pos = () => f.state.funds.get(FUND)!.books.get("AAPL")!.pos;
    expect([canon(pos().qty), canon(pos().cost)]).toEqual(["200", "1000"]);
    f.fill("AAPL", "-100", "10");
    expect([canon(pos().qty), canon(pos().cost), canon(pos().realized)]).toEqual(["100", "500", "500"]);
  });
  it("given a long 100 at cost 10, when 100 leave at price 0 (a worthless corporate action), then the whole cost is a realized loss", () => {
    const f = new Feed().envelope().fill("AAPL", "100", "10").fill("AAPL", "-100", "0");
    const pos = f.state.funds.get(FUND)!.books.get("AAPL")!.pos;
    expect([canon(pos.qty), canon(pos.cost), canon(pos.realized)]).toEqual(["0", "0", "-1000"]);
  });
});

describe("the mark is the latest quote by timestamp", () => {
  it("given a newer quote then an older one, then the newer stays the mark, whatever the stream order", () => {
    const a = new Feed()
      .envelope()
      .quote("AAPL", "99", "101", NOW)
      .quote("AAPL", "49", "51", NOW - 1);
    const b = new Feed()
      .envelope()
      .quote("AAPL", "49", "51", NOW - 1)
      .quote("AAPL", "99", "101", NOW);
    expect(canon(a.state.marks.get("AAPL")!.mid)).toBe("100");
    expect(canon(b.state.marks.get("AAPL")!.mid)).toBe("100");
  });
  it("given a position, when a late older quote arrives, then NAV still values it at the newer mark", () => {
    const f = new Feed().envelope().fill("AAPL", "100", "100").quote("AAPL", "109", "111", NOW);
    const mv = () => {
      const fund = f.state.funds.get(FUND)!;
      nav(fund); // a reader settles the fund's conflated quotes first
      return canon(fund.agg.mv);
    };
    expect(mv()).toBe("11000");
    f.quote("AAPL", "49", "51", NOW - 10);
    expect(mv()).toBe("11000");
  });
});
