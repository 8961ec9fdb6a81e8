/**
 * A quote that takes a fund past its loss halt halts it before any check reads the new mark
 * (stop 27, red team: the drawdown monitor evaluated a quote's funds one turn of the event loop
 * after the burst, so a check read in the same socket read as the quote was approved at a mark
 * that had already breached: 29–40 of 200 checks sent right after the quote's acknowledgement on
 * a busy feed). Every approval here is classified by the QUOTES cursor its journal record was
 * decided at: decided with the crash quote folded, it must not exist; decided before the quote
 * reached the engine (the bus's own race between two clients' messages), it is counted and bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, decidedAt, envelope, order, startTestEngine } from "../support/engine.js";

describe("a quote that breaches a loss halt, then a check", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url);
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("rejects FUND_HALTED every check decided after the crash quote was folded, on a busy feed", async () => {
    const rounds = 40;
    const folded: string[] = []; // approvals decided with the crash quote already folded: defects
    const early: string[] = []; // decided before the quote reached the engine: the bus's race
    for (let i = 0; i < rounds; i++) {
      const fund = `dqb${i}`;
      const sym = `DQB${i}`;
      // capital 1 000 000, 3 % daily halt; long 1 000 @ 100, then marked at 60: a 4 % loss
      const env = await bus.envelope(envelope(fund, { daily_loss_halt_pct: "0.03" }));
      await waitFor(() => applied(engine, "RISK_ENVELOPES", env));
      const at0 = new Date().toISOString();
      await bus.quote(sym, "99.99", "100.01", at0);
      const fill = await bus.fill({
        fund_id: fund,
        symbol: sym,
        quantity: "1000",
        price: "100",
        timestamp: at0,
      });
      await waitFor(() => applied(engine, "FILLS", fill));
      const at = new Date().toISOString();
      // the crash quote among twenty others, all acknowledged before the check is sent
      const others = Array.from({ length: 20 }, (_, k) => bus.quote(`DQBX${k}`, "1", "1.1", at));
      const [crash] = await Promise.all([bus.quote(sym, "59.99", "60.01", at), ...others]);
      const o = order({ fund_id: fund, symbol: "OTHER", quantity: "1", limit_price: "10" });
      const d: RiskDecision = await bus.check(o);
      if (d.rejection_code === "FUND_HALTED") continue;
      const cursor = await decidedAt(nc, fund, o["order_id"], "QUOTES");
      const line = `${i}: ${d.approved ? "approved" : d.rejection_code} at QUOTES ${cursor}, crash quote ${crash}`;
      if (cursor === undefined || cursor >= crash) folded.push(line);
      else early.push(line);
    }
    expect(folded, folded.join("\n")).toEqual([]);
    expect(early.length, early.join("\n")).toBeLessThanOrEqual(rounds / 10);
  });
});
