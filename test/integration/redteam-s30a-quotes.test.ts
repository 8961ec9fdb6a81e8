/**
 * Red-team pass (stop 30a) on refused quotes superseding the mark (src/state/projections/market.ts
 * refuseQuote, src/gates/context.ts markFresh). CONTRACT.md "Messages", Quote: "The mark of a
 * symbol is the mid of its latest quote by `timestamp`: a quote older than the mark in force is
 * kept out of the mark (feeds reorder)"; "Gates": "Anything the engine cannot establish (… no fresh
 * mark when one is needed …) is a rejection, never an approval"; a MARKET order needs a fresh mark.
 * The engine's documented rule (README, stop 29): a refused quote at least as recent as the mark
 * supersedes it; no order is priced on a mark until "the next valid quote newer than the refused
 * one". One nats-server, one engine on a manual clock.
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

describe("red-team s30a: refused quotes and the mark", () => {
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
  /** A quote stamped `offsetMs` from the engine clock's now (negative: in the past). */
  const quote = async (symbol: string, bid: string, ask: string, offsetMs: number) =>
    until("QUOTES", await bus.quote(symbol, bid, ask, iso(clock.now() + offsetMs)));
  const market = async (F: string, symbol: string) =>
    outcome(
      await bus.check(
        order({ fund_id: F, symbol, order_type: "MARKET", quantity: "1", limit_price: undefined }),
      ),
    );

  beforeAll(async () => {
    for (const F of ["s30q-a", "s30q-b", "s30q-c", "s30q-d"])
      await until("RISK_ENVELOPES", await bus.envelope(envelope(F)));
  });

  // ---------------------------------------------------------------- regression guards (pass)

  it("mark in force, newer refused quote, then an older valid quote: still not fresh", async () => {
    clock.advance(60_000);
    await quote("QRA", "99", "101", -3000);
    expect(await market("s30q-a", "QRA")).toBe("approved");
    await quote("QRA", "51", "49", -1000); // crossed, newer: supersedes the mark
    expect(await market("s30q-a", "QRA")).toBe("static/STALE_MARKET_DATA");
    await quote("QRA", "98", "100", -2000); // valid but older than the refused one
    expect(await market("s30q-a", "QRA")).toBe("static/STALE_MARKET_DATA");
    await quote("QRA", "50", "52", -500); // valid and newer: the mark again
    expect(await market("s30q-a", "QRA")).toBe("approved");
  });

  it("a refused quote older than the mark in force leaves the mark fresh", async () => {
    clock.advance(60_000);
    await quote("QRB", "99", "101", -1000);
    await quote("QRB", "51", "49", -2000); // crossed, but older: feeds reorder
    expect(await market("s30q-b", "QRB")).toBe("approved");
    await quote("QRB", "0", "0", -3000); // no price on either side, older still
    expect(await market("s30q-b", "QRB")).toBe("approved");
  });

  it("a one-sided quote (bid 0) newer than a refused one makes the mark fresh again", async () => {
    clock.advance(60_000);
    await quote("QRC", "99", "101", -3000);
    await quote("QRC", "51", "49", -2000);
    expect(await market("s30q-c", "QRC")).toBe("static/STALE_MARKET_DATA");
    await quote("QRC", "0", "101", -1000);
    expect(await market("s30q-c", "QRC")).toBe("approved");
  });

  // ---------------------------------------------------------------- defect (fails now)

  /**
   * The same feed as the first guard, without the earlier mark: the newest quote of the symbol is
   * crossed (refused), then a valid quote stamped 1 s BEFORE it arrives (feeds reorder). The latest
   * quote by timestamp is the refused one, so the market cannot be established (fail closed; the
   * engine's own rule: fresh only with a valid quote newer than the refused one). refuseQuote()
   * returns early when there is no mark yet (`if (!cur) return;`), so the refusal is forgotten and
   * the older quote becomes a fresh mark: the MARKET order is approved. With a mark already in
   * force (first guard) the same two quotes leave the symbol STALE_MARKET_DATA.
   */
  it("no mark yet: a refused quote, then an older valid quote, does not make a fresh mark", async () => {
    clock.advance(60_000);
    await quote("QRD", "51", "49", -1000); // crossed, the newest quote of the symbol
    expect(await market("s30q-d", "QRD")).toBe("static/STALE_MARKET_DATA");
    await quote("QRD", "99", "101", -2000); // valid, older than the refused one
    expect(await market("s30q-d", "QRD")).toBe("static/STALE_MARKET_DATA");
  });
});
