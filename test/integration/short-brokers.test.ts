/**
 * Issue 8 case 7, through a real nats-server: a SELL is a short sale when it exceeds the long held
 * at the order's broker (less that broker's pending sells), whatever the fund holds elsewhere; the
 * per-broker pending sells survive a restart from the snapshot.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

describe("short sales across brokers (issue 8 case 7)", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const stateDir = mkdtempSync(join(tmpdir(), "mts-short-"));
  const FUND = "sx";

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock, stateDir });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    const e = await bus.envelope(envelope(FUND, {})); // enable_shorting absent: false
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
    const f = await bus.fill({ fund_id: FUND, symbol: "AAA", broker: "ibkr", quantity: "100", price: "10" });
    await waitFor(() => applied(engine, "FILLS", f));
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const sell = (broker: string, quantity: string) =>
    bus.check(order({ fund_id: FUND, symbol: "AAA", side: "SELL", broker, quantity, limit_price: "10" }));
  const outcome = (d: { approved: boolean; rejecting_gate: string; rejection_code: string }) =>
    `${d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`}`;

  it("given long 100 at ibkr only and shorting disabled, when selling 100 at paper, then it is SHORTING_DISABLED", async () => {
    const d = await sell("paper", "100");
    expect(outcome(d)).toBe("short_side/SHORTING_DISABLED");
    expect(d.details).toMatchObject({
      broker: "paper",
      position: "0",
      pending_sells: "0",
      fund_position: "100",
    });
  });

  it("given the same fund, when selling 100 at ibkr, then it is approved; one more at either broker is a short sale", async () => {
    expect(outcome(await sell("ibkr", "100"))).toBe("approved");
    expect(outcome(await sell("ibkr", "1"))).toBe("short_side/SHORTING_DISABLED");
    expect(outcome(await sell("paper", "1"))).toBe("short_side/SHORTING_DISABLED");
  });

  it("given a restart from the snapshot, then ibkr's pending sell still counts at ibkr, and the digest is the same", async () => {
    const before = engine.observe.digest();
    await engine.close();
    engine = await startTestEngine(server.url, { clock, stateDir });
    expect(engine.observe.digest()).toBe(before);
    expect(engine.observe.book(FUND, "AAA")?.pend_sell_by_broker["ibkr"]).toBe("100");
    expect(outcome(await sell("ibkr", "1"))).toBe("short_side/SHORTING_DISABLED");
  });
});
