/**
 * Red-team pass on market-data integrity behind STALE_MARKET_DATA. Spec silent on a newer quote the
 * engine refuses (crossed: bid > ask); seed 003 ("Design model: fail closed by default"): "If any
 * required input is stale, unavailable, or internally inconsistent, the engine rejects the order";
 * CONTRACT.md "Anything the engine cannot establish (… no fresh mark when one is needed …) is a
 * rejection, never an approval". One nats-server, one engine on a manual clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

type D = { approved: boolean; rejecting_gate: string; rejection_code: string };
const outcome = (d: D) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);

describe("red-team: a newer quote the engine refuses leaves the older mark in force", () => {
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

  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));

  /**
   * The market drops from 100 to 50; the feed's newest quote for the symbol is crossed (51 / 49,
   * as happens across venues in a fast market). The engine dead-letters it and keeps the mark of
   * 1 s earlier (mid 100) as the fresh mark, so a BUY LIMIT at 104, twice the market, passes a 5 %
   * collar, and a MARKET BUY is valued at the old ask 101 (max_order_notional judged on it).
   * Risk expectation (seed 003, fail closed): the latest market data for the symbol is internally
   * inconsistent, so an order needing a fresh mark is STALE_MARKET_DATA until a sound quote comes.
   * Expected: static/STALE_MARKET_DATA. Before the fix: approved on the superseded mark.
   */
  it("a crossed newer quote: an order needing a fresh mark is not approved on the superseded one", async () => {
    const F = "rtx-crossed";
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { price_collar_pct: "0.05" })));
    await until("QUOTES", await bus.quote("XCR", "99", "101", iso(clock.now())));
    clock.advance(1000);
    // the newer, crossed quote: stored on QUOTES, refused by the engine (dead-lettered)
    const jsm = await bus.js.jetstreamManager();
    const seq = await bus.quote("XCR", "51", "49", iso(clock.now()));
    await until("QUOTES", seq);
    expect((await jsm.streams.info("QUOTES")).state.last_seq).toBe(seq);
    const d = await bus.check(order({ fund_id: F, symbol: "XCR", quantity: "10", limit_price: "104" }));
    expect(outcome(d)).toBe("static/STALE_MARKET_DATA");
  });
});
