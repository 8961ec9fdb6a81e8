/**
 * An OMS end event that says how much was filled (`filled_quantity`) before the fills themselves
 * arrive on FILLS (two streams, no order between them): the filled part keeps reserving until its
 * fills are seen, so the headroom it used is not approved twice meanwhile (a red-team pass: `done`
 * or `cancelled` released the whole order at once, and an order approved in that gap used the same
 * headroom as the fills that followed). Also across a restart and a rebuild.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { Subjects } from "../../src/contract/subjects.js";
import { type Engine, rebuild } from "../../src/engine/index.js";
import { silentLogger } from "../../src/obs/log.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine, testConfig } from "../support/engine.js";

describe("an OMS end event with filled_quantity before its fills", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const stateDir = mkdtempSync(join(tmpdir(), "mts-end-filled-"));
  const flags = { "reservations.ttl_s": 60 };

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock, stateDir, flags });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  async function settled() {
    const jsm = await engine.js.jetstreamManager();
    for (const s of ["RISK_DECISIONS", "FILLS", "OMS_ORDERS", "RISK_ENVELOPES"]) {
      const last = (await jsm.streams.info(s)).state.last_seq;
      await waitFor(() => applied(engine, s, last), { message: `${s} not applied up to ${last}` });
    }
  }
  async function ended(event: string, fund: string, orderId: string, filled: string) {
    const body = { order_id: orderId, fund_id: fund, event, filled_quantity: filled, at: NOW };
    await bus.js.publish(Subjects.orderEvent(event, fund), JSON.stringify(body));
    await settled();
  }
  const outcome = (d: RiskDecision) => `${d.approved}:${d.rejection_code}`;
  const pendingBuy = (fund: string, symbol: string) => engine.observe.book(fund, symbol)?.pend_buy ?? "0";

  // capital 1 000 000, 10 %: 100 000 of AAPL at 100, i.e. 1 000 shares
  async function fund(id: string) {
    const seq = await bus.envelope(envelope(id, { max_position_pct: "0.10" }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
    const first = order({ fund_id: id, quantity: "1000", limit_price: "100" });
    expect(outcome(await bus.check(first))).toBe("true:");
    return String(first["order_id"]);
  }

  it("done, filled 1000, fills not yet seen: the next order is refused until the fills, which then hold it", async () => {
    const id = await fund("end-done");
    await ended("done", "end-done", id, "1000");
    expect(pendingBuy("end-done", "AAPL")).toBe("1000");
    const more = order({ fund_id: "end-done", quantity: "1", limit_price: "100" });
    expect(outcome(await bus.check(more))).toBe("false:MAX_POSITION_EXCEEDED");
    await bus.fill({ fund_id: "end-done", order_id: id, quantity: "600", price: "100" });
    await settled();
    expect(pendingBuy("end-done", "AAPL")).toBe("400");
    await bus.fill({ fund_id: "end-done", order_id: id, quantity: "400", price: "100" });
    await settled();
    expect(pendingBuy("end-done", "AAPL")).toBe("0");
    expect(engine.observe.book("end-done", "AAPL")?.qty).toBe("1000");
    expect(outcome(await bus.check({ ...more, idempotency_key: "end-done-2", order_id: "end-done-2" }))).toBe(
      "false:MAX_POSITION_EXCEEDED",
    );
  });

  it("cancelled after a partial fill of 400 not yet seen: 400 reserved, the rest released; kept across restart and rebuild", async () => {
    const id = await fund("end-cxl");
    await ended("cancelled", "end-cxl", id, "400");
    expect(pendingBuy("end-cxl", "AAPL")).toBe("400");
    expect(outcome(await bus.check(order({ fund_id: "end-cxl", quantity: "601", limit_price: "100" })))).toBe(
      "false:MAX_POSITION_EXCEEDED",
    );
    expect(outcome(await bus.check(order({ fund_id: "end-cxl", quantity: "600", limit_price: "100" })))).toBe(
      "true:",
    );
    await settled();
    await engine.close();
    engine = await startTestEngine(server.url, { clock, stateDir, flags });
    await settled();
    expect(pendingBuy("end-cxl", "AAPL")).toBe("1000");
    const rebuilt = await rebuild({
      config: testConfig(server.url, flags, mkdtempSync(join(tmpdir(), "mts-end-filled-rb-"))),
      out: join(mkdtempSync(join(tmpdir(), "mts-end-filled-out-")), "rebuilt.sqlite"),
      clock,
      log: silentLogger,
    });
    expect(rebuilt.state_digest).toBe(engine.status().state_digest);
    await bus.fill({ fund_id: "end-cxl", order_id: id, quantity: "400", price: "100" });
    await settled();
    expect(pendingBuy("end-cxl", "AAPL")).toBe("600");
  });

  it("an end event without filled_quantity (or 0) releases the whole order, as before", async () => {
    const id = await fund("end-plain");
    await ended("cancelled", "end-plain", id, "0");
    expect(pendingBuy("end-plain", "AAPL")).toBe("0");
    await bus.orderEvent("expired", "end-plain", "never-approved");
    expect(
      outcome(await bus.check(order({ fund_id: "end-plain", quantity: "1000", limit_price: "100" }))),
    ).toBe("true:");
  });
  it("fills the OMS reported that never arrive are released one TTL after the end event", async () => {
    const id = await fund("end-lost");
    await ended("done", "end-lost", id, "500");
    expect(pendingBuy("end-lost", "AAPL")).toBe("500");
    clock.advance(60_000 + 1);
    engine.status(); // sweeps with the clock
    expect(pendingBuy("end-lost", "AAPL")).toBe("0");
    expect(engine.observe.reserved("end-lost", id) ?? "0").toBe("0");
  });
});
