/**
 * State rebuilt from streams: the live digest equals `rebuild`'s for the same streams; replaying
 * twice changes nothing; a restart from the snapshot gives the same state; while catching up the
 * engine answers STATE_NOT_READY.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import { type Engine, rebuild } from "../../src/engine/index.js";
import { silentLogger } from "../../src/obs/log.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine, testConfig } from "../support/engine.js";

describe("state from streams", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;
  const clock = manualClock(NOW);
  const stateDir = mkdtempSync(join(tmpdir(), "mts-digest-"));

  async function settled(e: Engine) {
    // every stream fully applied, including the engine's own decisions
    const jsm = await e.js.jetstreamManager();
    for (const s of ["RISK_DECISIONS", "FILLS", "OMS_ORDERS", "RISK_CONTROL", "RISK_ENVELOPES"]) {
      const last = (await jsm.streams.info(s)).state.last_seq;
      await waitFor(() => applied(e, s, last), { message: `${s} not applied up to ${last}` });
    }
  }
  const rebuildDigest = async () =>
    (
      await rebuild({
        config: testConfig(server.url, {}, mkdtempSync(join(tmpdir(), "mts-rb-"))),
        out: join(mkdtempSync(join(tmpdir(), "mts-rb-out-")), "rebuilt.sqlite"),
        clock,
        log: silentLogger,
      })
    ).state_digest;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, { clock, stateDir });
    await bus.envelope(
      envelope("alpha", { max_position_pct: "0.5", enable_shorting: true, max_borrow_fee_bps: "500" }),
    );
    await bus.envelope(envelope("alpha", { version: 2, max_position_pct: "0.4", enable_shorting: true }));
    await bus.envelope(envelope("alpha", { version: 1 })); // stale: ignored
    await bus.envelope(envelope("beta", { max_position_pct: "0.2" }));
    await bus.instrument({
      symbol: "AAPL",
      asset_class: "equity",
      sector: "tech",
      shortable: true,
      borrow_fee_bps: "20",
    });
    await bus.instrument({ symbol: "ES", asset_class: "future", multiplier: "50" });
    await bus.quote("AAPL", "99.5", "100.5");
    await bus.fill({
      fund_id: "alpha",
      symbol: "AAPL",
      side: "BUY",
      quantity: "300",
      price: "101.25",
      fees: "1.5",
      fill_id: "f1",
    });
    await bus.fill({
      fund_id: "alpha",
      symbol: "AAPL",
      side: "SELL",
      quantity: "100",
      price: "103",
      fees: "1",
      fill_id: "f2",
    });
    await bus.fill({
      fund_id: "alpha",
      symbol: "AAPL",
      side: "SELL",
      quantity: "100",
      price: "103",
      fees: "1",
      fill_id: "f2",
    }); // dup
    await bus.fill({
      fund_id: "beta",
      symbol: "ES",
      side: "SELL",
      quantity: "2",
      price: "5000.25",
      fill_id: "f3",
    });
    await bus.control(Subjects.halt("beta"), {
      fund_id: "beta",
      severity: "DAILY_LOSS",
      reason: "t",
      at: NOW,
      by: "engine",
    });
    await settled(engine);
    // decisions: approvals (reservations), rejections, replays; one filled, one cancelled
    const o1 = order({ fund_id: "alpha", order_id: "o1", quantity: "50" });
    const o2 = order({ fund_id: "alpha", order_id: "o2", quantity: "70", side: "SELL" });
    const o3 = order({ fund_id: "alpha", order_id: "o3", quantity: "5000" });
    for (const o of [o1, o2, o3, o1]) await bus.check(o);
    await bus.check(order({ fund_id: "beta", symbol: "ES", quantity: "1" }));
    await bus.check("garbage");
    await bus.fill({
      fund_id: "alpha",
      symbol: "AAPL",
      order_id: "o1",
      side: "BUY",
      quantity: "20",
      price: "100",
      fill_id: "f4",
    });
    await bus.orderEvent("cancelled", "alpha", "o2");
    await settled(engine);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("has the state the streams describe", () => {
    const alpha = engine.observe.fund("alpha")!;
    expect(alpha.envelope_id).toBe("alpha@v2");
    const book = alpha.books["AAPL"]!;
    expect(book.qty).toBe("220"); // 300 − 100 (the duplicate f2 ignored) + 20
    expect(book.pend_buy).toBe("30"); // o1: 50 approved, 20 filled
    expect(book.pend_sell).toBe("0"); // o2 cancelled
    expect(Object.keys(engine.observe.fund("beta")!.halts)).toContain("DAILY_LOSS");
  });

  it("live digest equals a rebuild's, and a second rebuild gives the same", async () => {
    const live = engine.status().state_digest;
    expect(live).toMatch(/^[0-9a-f]{64}$/);
    expect(await rebuildDigest()).toBe(live);
    expect(await rebuildDigest()).toBe(live);
  });

  it("over the bus: the digest by default, none when asked without it (status --all)", async () => {
    const ask = async (body: string) =>
      (await nc.request(Subjects.status, body, { timeout: 5000 })).json<{
        state_digest: string;
        cursors: Record<string, number>;
      }>();
    const full = await ask("{}");
    expect(full.state_digest).toBe(engine.status().state_digest);
    const light = await ask('{"digest":false}');
    expect(light.state_digest).toBe("");
    expect(light.cursors).toEqual(full.cursors);
    expect((await ask('{"digest":true}')).state_digest).toBe(full.state_digest);
  });

  it("a restart from the snapshot gives the same digest and replays only the tail", async () => {
    const before = engine.status();
    await engine.close();
    await bus.quote("AAPL", "99", "101", NOW); // a tail message while down
    engine = await startTestEngine(server.url, { clock, stateDir });
    await settled(engine);
    const after = engine.status();
    expect(after.state_digest).toBe(before.state_digest);
    expect(after.cursors["QUOTES"]).toBe(before.cursors["QUOTES"]! + 1);
    expect(after.ready).toBe(true);
  });

  it("answers STATE_NOT_READY while catching up with a long tail", async () => {
    await engine.close();
    const pubs: Promise<unknown>[] = [];
    for (let i = 0; i < 30000; i++) {
      pubs.push(bus.fill({ fund_id: "gamma", symbol: "X", quantity: "1", price: "1", fill_id: `tail-${i}` }));
      if (pubs.length >= 1000) await Promise.all(pubs.splice(0));
    }
    await Promise.all(pubs);
    engine = await startTestEngine(server.url, { clock, stateDir, waitReady: false });
    const d = await bus.check(order({ fund_id: "alpha", quantity: "1" }));
    expect({ gate: d.rejecting_gate, code: d.rejection_code }).toEqual({
      gate: "engine",
      code: "STATE_NOT_READY",
    });
    await engine.whenReady();
    expect((await bus.check(order({ fund_id: "alpha", quantity: "1" }))).approved).toBe(true);
    await settled(engine);
    expect(engine.status().state_digest).toBe(await rebuildDigest());
  });
});
