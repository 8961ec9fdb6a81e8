/**
 * Publications whose effect on a check is derived: a halt the drawdown monitor decides from a
 * quote, a fill or an envelope; an exposure moved by a mark; a fund's first envelope. Publish,
 * await the acknowledgement, check at once; the decision reflects the publication in all but a
 * few rounds (the bus's race between two clients' messages; bound rounds / 10). The busy-feed
 * variant of the crash quote is test/integration/drawdown-quote-breach.test.ts, which also tells
 * the race from a defect. (Stop 27, from a helper's red-team pass.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine, decidedAt } from "../support/engine.js";

const ROUNDS = Number(process.env["PUBLISH_CHECK_ROUNDS"] ?? 60);
const BOUND = ROUNDS / 10;

const brief = (d: RiskDecision): string =>
  `${d.approved ? "APPROVED" : `${d.rejection_code}`} ${d.envelope_id} ${d.reason}`;

/** Says which rounds missed (the bus's race: a few at most), nothing when none did. */
function report(name: string, misses: string[], extra = ""): void {
  if (misses.length === 0) return;
  console.log(`${name}: ${misses.length} of ${ROUNDS} rounds missed ${extra}`);
  console.log(misses.slice(0, 10).join("\n"));
}

describe("derived effects: publish, await the ack, then check", () => {
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

  const now = () => new Date().toISOString();

  async function setup(fund: string, over: Record<string, unknown> = {}): Promise<void> {
    const seq = await bus.envelope(envelope(fund, over));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
  }
  async function fillApplied(f: Record<string, unknown>): Promise<void> {
    const seq = await bus.fill(f);
    await waitFor(() => applied(engine, "FILLS", seq));
  }

  it("a fund's first envelope, then a check (valid flow: not NO_ENVELOPE)", async () => {
    const refused: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const fund = `nf${i}`;
      await bus.envelope(envelope(fund));
      const d = await bus.check(order({ fund_id: fund, quantity: "1" }));
      if (!d.approved) refused.push(`${i}: ${brief(d)}`);
    }
    report("first envelope→check", refused);
    expect(refused.length, refused.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("a quote that takes a held position over max_position_pct, then a buy", async () => {
    // 900 @ 100 = 90 000 of a 100 000 limit; a mark of 120 makes it 108 000: any buy is over
    // (a fund a round: the gains of earlier rounds would raise the NAV and so the limit)
    const approved: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const fund = `dq${i}`;
      const sym = `Q${i}`;
      await setup(fund, { max_position_pct: "0.10" });
      await bus.quote(sym, "99.99", "100.01", now());
      await fillApplied({ fund_id: fund, symbol: sym, quantity: "900", price: "100", timestamp: now() });
      await bus.quote(sym, "119.99", "120.01", now());
      const d = await bus.check(order({ fund_id: fund, symbol: sym, quantity: "1", limit_price: "120" }));
      if (d.approved || d.rejection_code !== "MAX_POSITION_EXCEEDED") approved.push(`${i}: ${brief(d)}`);
    }
    report("quote(mark up)→position check", approved);
    expect(approved.length, approved.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("a quote that crashes a held position past the daily loss halt, then a buy: FUND_HALTED", async () => {
    // capital 1 000 000, 3 % daily halt; 1 000 @ 100, marked at 60: a loss of 40 000 (4 %)
    const approved: string[] = [];
    let markFolded = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const fund = `dd${i}`;
      const sym = `DD${i}`;
      await setup(fund, { daily_loss_halt_pct: "0.03" });
      await bus.quote(sym, "99.99", "100.01", now());
      await fillApplied({ fund_id: fund, symbol: sym, quantity: "1000", price: "100", timestamp: now() });
      const qseq = await bus.quote(sym, "59.99", "60.01", now());
      const o = order({ fund_id: fund, symbol: "OTHER", quantity: "1", limit_price: "10" });
      const d = await bus.check(o);
      if (d.approved || d.rejection_code !== "FUND_HALTED") {
        // the same check again at once: a halt decided a moment later rejects it
        const again = await bus.check(
          order({ fund_id: fund, symbol: "OTHER", quantity: "1", limit_price: "10" }),
        );
        // the QUOTES cursor the approval was decided at (its journal record): was the crash folded?
        const qc = await decidedAt(nc, fund, o["order_id"], "QUOTES");
        if (qc !== undefined && qc >= qseq) markFolded++;
        approved.push(
          `${i}: ${brief(d)} | crash quote seq ${qseq}, decided at QUOTES cursor ${qc ?? "?"}` +
            ` | next check: ${brief(again)}`,
        );
      }
    }
    report(
      "quote(crash)→check",
      approved,
      `approvals decided with the crash quote already folded=${markFolded}`,
    );
    expect(approved.length, approved.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("busy feed baseline: the same burst, then a collar check on the new mark", async () => {
    await setup("bq", { price_collar_pct: "0.01" });
    const stale: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const px = 100 + (i % 2) * 50;
      const at = now();
      const others = Array.from({ length: 20 }, (_, k) => bus.quote(`BUSY${k}`, "1", "1.1", at));
      await Promise.all([...others, bus.quote("BQ", String(px - 0.01), String(px + 0.01), at)]);
      const d = await bus.check(
        order({ fund_id: "bq", symbol: "BQ", limit_price: String(px), quantity: "1" }),
      );
      if (!d.approved) stale.push(`${i}: ${brief(d)}`);
    }
    report("busy feed quote→collar check (baseline)", stale);
    expect(stale.length, stale.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("a losing fill past the daily loss halt, then a buy: FUND_HALTED", async () => {
    const approved: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const fund = `df${i}`;
      const sym = `DF${i}`;
      await setup(fund, { daily_loss_halt_pct: "0.03" });
      await fillApplied({ fund_id: fund, symbol: sym, quantity: "1000", price: "100", timestamp: now() });
      // sold at 60: a realized loss of 40 000 (4 %)
      await bus.fill({
        fund_id: fund,
        symbol: sym,
        side: "SELL",
        quantity: "1000",
        price: "60",
        timestamp: now(),
      });
      const d = await bus.check(order({ fund_id: fund, symbol: "OTHER", quantity: "1", limit_price: "10" }));
      if (d.approved || d.rejection_code !== "FUND_HALTED") approved.push(`${i}: ${brief(d)}`);
    }
    report("fill(loss)→check", approved);
    expect(approved.length, approved.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("an envelope lowering daily_loss_halt_pct below the current loss, then a buy: FUND_HALTED", async () => {
    // 2 % loss; the halt lowered from 3 % to 1 %
    const approved: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const fund = `de${i}`;
      const sym = `DE${i}`;
      await setup(fund, { daily_loss_halt_pct: "0.03" });
      await fillApplied({ fund_id: fund, symbol: sym, quantity: "1000", price: "100", timestamp: now() });
      await fillApplied({
        fund_id: fund,
        symbol: sym,
        side: "SELL",
        quantity: "1000",
        price: "80",
        timestamp: now(),
      });
      await bus.envelope(envelope(fund, { version: 2, daily_loss_halt_pct: "0.01" }));
      const d = await bus.check(order({ fund_id: fund, symbol: "OTHER", quantity: "1", limit_price: "10" }));
      if (d.approved || d.rejection_code !== "FUND_HALTED") approved.push(`${i}: ${brief(d)}`);
    }
    report("envelope(lower loss halt)→check", approved);
    expect(approved.length, approved.join("\n")).toBeLessThanOrEqual(BOUND);
  });
});
