/**
 * Red team (replay): an engine restarted on its state directory (snapshot + tail) must decide as
 * the engine before it, and its state_digest must equal a rebuild's at quiet points (ENGINE.md
 * "State rebuilt from streams"; README "Memory and restart"). Odd but valid data: a refused
 * (crossed) quote that makes the mark not fresh, a valid quote older than the refused one, a TTL
 * passing while the engine is down, `done` with filled_quantity before the fills, fills of an order
 * the engine never decided, a halt, a resume after the restart, envelope versions out of order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { type Engine, rebuild } from "../../src/engine/index.js";
import { silentLogger } from "../../src/obs/log.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import {
  Bus,
  NOW,
  applied,
  envelope,
  order,
  settled,
  startTestEngine,
  testConfig,
} from "../support/engine.js";

describe("red-team replay: restart on the state directory decides as before", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine | undefined;
  const clock = manualClock(NOW);
  const now = (d = 0) => iso(clock.now() + d);
  const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-replay-restart-"));
  const FLAGS = {
    "synthetic_stop.enabled": false,
    "broker_exit_reconciler.enabled": false,
    "reservations.ttl_s": 30,
  };
  const F = "rt-rs";
  const e = () => engine!;

  async function start(): Promise<Engine> {
    engine = await startTestEngine(server.url, { clock, stateDir, flags: FLAGS });
    await waitFor(() => engine!.ready(), { message: "engine not ready", timeoutMs: 20_000 });
    return engine;
  }
  async function restart(): Promise<void> {
    await settled(e(), ["RISK_CONTROL", "FILLS", "RISK_ENVELOPES", "RISK_DECISIONS", "OMS_ORDERS", "QUOTES"]);
    await e().close();
    engine = undefined;
    await start();
  }
  async function rebuilt(): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), "mts-rt-replay-restart-rb-"));
    const r = await rebuild({
      config: testConfig(server.url, FLAGS, dir),
      out: join(dir, "snapshot.sqlite"),
      clock,
      log: silentLogger,
    });
    return r.state_digest;
  }
  async function quiet(): Promise<string> {
    await settled(e(), ["RISK_CONTROL", "FILLS", "RISK_ENVELOPES", "RISK_DECISIONS", "OMS_ORDERS", "QUOTES"]);
    return e().status().state_digest;
  }
  const until = (stream: string, seq: number) => waitFor(() => applied(e(), stream, seq));
  const outcome = (d: RiskDecision) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);
  const check = async (o: Record<string, unknown>) => outcome(await bus.check(order({ fund_id: F, ...o })));

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await start();
    // envelope versions out of order: v2 first, then a late v1 (ignored)
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { version: 2, max_position_pct: "0.1" })));
    await until("RISK_ENVELOPES", await bus.envelope(envelope(F, { version: 1, max_position_pct: "0.5" })));
  }, 30_000);
  afterAll(async () => {
    await nc?.close();
    await engine?.close().catch(() => undefined);
    await server?.stop();
  });

  it("a refused (crossed) quote keeps the mark not fresh across a restart, also against an older valid quote", async () => {
    await until("QUOTES", await bus.quote("RSQ", "99", "101", now()));
    expect(await check({ symbol: "RSQ", order_type: "MARKET", limit_price: undefined, quantity: "1" })).toBe(
      "approved",
    );
    await until("QUOTES", await bus.quote("RSQ", "102", "100", now(1))); // crossed: refused
    await until("QUOTES", await bus.quote("RSQ", "99", "101", now(-500))); // valid, older than the refused one
    const before = await check({
      symbol: "RSQ",
      order_type: "MARKET",
      limit_price: undefined,
      quantity: "1",
    });
    expect(before).toBe("static/STALE_MARKET_DATA");
    const digest = await quiet();
    expect(await rebuilt(), "rebuild vs live").toBe(digest);
    await restart();
    expect(e().status().state_digest, "restart vs before").toBe(digest);
    // Expected: the restarted engine still finds the mark not fresh (the refused quote supersedes it)
    expect(await check({ symbol: "RSQ", order_type: "MARKET", limit_price: undefined, quantity: "1" })).toBe(
      before,
    );
    await until("QUOTES", await bus.quote("RSQ", "99", "101", now(2)));
    expect(await check({ symbol: "RSQ", order_type: "MARKET", limit_price: undefined, quantity: "1" })).toBe(
      "approved",
    );
  });

  it("a TTL that passes while the engine is down releases the headroom as it would live; a late accepted reserves again", async () => {
    // headroom 100 000 in RST (v2: 10 %), no mark: orders at their limit
    const t = order({ fund_id: F, symbol: "RST", quantity: "500", limit_price: "100" });
    expect(outcome(await bus.check(t))).toBe("approved");
    expect(await check({ symbol: "RST", quantity: "600", limit_price: "100" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    await quiet();
    await e().close();
    engine = undefined;
    clock.advance(31_000); // the TTL (30 s) passes while the engine is down, never acknowledged
    await start();
    await waitFor(
      () => {
        e().status();
        return e().observe.reserved(F, String(t["order_id"])) === "0";
      },
      { message: "the unacknowledged approval released after its TTL" },
    );
    const digest = await quiet();
    expect(await rebuilt(), "rebuild vs live after the TTL").toBe(digest);
    expect(await check({ symbol: "RST", quantity: "600", limit_price: "100" })).toBe("approved");
    // the OMS acknowledges t late: it works at a broker after all and reserves again
    await until("OMS_ORDERS", await bus.orderEvent("accepted", F, String(t["order_id"]), now()));
    expect(e().observe.reserved(F, String(t["order_id"]))).toBe("500");
    const d2 = await quiet();
    expect(await rebuilt(), "rebuild vs live after a late accepted").toBe(d2);
    await restart();
    expect(e().status().state_digest, "restart vs before").toBe(d2);
    expect(e().observe.reserved(F, String(t["order_id"]))).toBe("500");
    // 500 + 600 reserved = 110 000 > 100 000: nothing more in RST
    expect(await check({ symbol: "RST", quantity: "1", limit_price: "100" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
  });

  it("`done` with filled_quantity before the fills, a restart between, then the fills", async () => {
    const v = order({ fund_id: F, symbol: "RSD", quantity: "300", limit_price: "100" });
    expect(outcome(await bus.check(v))).toBe("approved");
    await until("OMS_ORDERS", await bus.orderEvent("accepted", F, String(v["order_id"]), now()));
    await until(
      "OMS_ORDERS",
      await bus.orderEvent("done", F, String(v["order_id"]), now(), { filled_quantity: "300" }),
    );
    expect(e().observe.reserved(F, String(v["order_id"]))).toBe("300");
    const digest = await quiet();
    expect(await rebuilt()).toBe(digest);
    await restart();
    expect(e().status().state_digest).toBe(digest);
    expect(await check({ symbol: "RSD", quantity: "701", limit_price: "100" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    // the fills come (split, and one duplicated under another stream message id)
    await until(
      "FILLS",
      await bus.fill({
        fund_id: F,
        symbol: "RSD",
        order_id: v["order_id"],
        fill_id: "rsd-f1",
        quantity: "100",
        timestamp: now(),
      }),
    );
    await until(
      "FILLS",
      (
        await bus.js.publish(
          Subjects.fill(F, "RSD"),
          JSON.stringify({
            fill_id: "rsd-f1",
            order_id: v["order_id"],
            fund_id: F,
            broker: "paper",
            symbol: "RSD",
            side: "BUY",
            quantity: "100",
            price: "100",
            fees: "0",
            timestamp: now(),
          }),
          { msgID: "rsd-f1-again" },
        )
      ).seq,
    );
    await until(
      "FILLS",
      await bus.fill({
        fund_id: F,
        symbol: "RSD",
        order_id: v["order_id"],
        fill_id: "rsd-f2",
        quantity: "200",
        timestamp: now(),
      }),
    );
    expect(e().observe.reserved(F, String(v["order_id"]))).toBe("0");
    const d2 = await quiet();
    expect(await rebuilt()).toBe(d2);
    await restart();
    expect(e().status().state_digest).toBe(d2);
    // position 300 @ 100 = 30 000: 700 more is exactly the limit
    expect(await check({ symbol: "RSD", quantity: "701", limit_price: "100" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    // the first fill delivered once more after the restart (another message id): still a duplicate
    const dup = await bus.js.publish(
      Subjects.fill(F, "RSD"),
      JSON.stringify({
        fill_id: "rsd-f1",
        order_id: v["order_id"],
        fund_id: F,
        broker: "paper",
        symbol: "RSD",
        side: "BUY",
        quantity: "100",
        price: "100",
        fees: "0",
        timestamp: now(),
      }),
      { msgID: "rsd-f1-after-restart" },
    );
    await until("FILLS", dup.seq);
    // the position is still 300 (30 000): 701 more is over the limit, 700 exactly at it
    expect(await check({ symbol: "RSD", quantity: "701", limit_price: "100" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    const d3 = await quiet();
    expect(await rebuilt()).toBe(d3);
    expect(await check({ symbol: "RSD", quantity: "700", limit_price: "100" })).toBe("approved");
  });

  it("fills of an order the engine never decided; then that order id is checked, before and after a restart", async () => {
    await until(
      "FILLS",
      await bus.fill({ fund_id: F, symbol: "RSG", order_id: "rs-ghost-1", quantity: "10", timestamp: now() }),
    );
    await until(
      "FILLS",
      await bus.fill({ fund_id: F, symbol: "RSG", order_id: "rs-ghost-2", quantity: "10", timestamp: now() }),
    );
    const a = await check({ symbol: "RSG", order_id: "rs-ghost-1", quantity: "1", limit_price: "100" });
    const digest = await quiet();
    expect(await rebuilt()).toBe(digest);
    await restart();
    expect(e().status().state_digest).toBe(digest);
    const b = await check({ symbol: "RSG", order_id: "rs-ghost-2", quantity: "1", limit_price: "100" });
    expect(b, "the same situation after a restart").toBe(a);
  });

  it("a halt across a restart, lifted by a resume published after it", async () => {
    await until(
      "RISK_CONTROL",
      await bus.control(Subjects.halt(F), {
        fund_id: F,
        severity: "MANUAL",
        reason: "drill",
        at: now(),
        by: "ops",
      }),
    );
    expect(await check({ symbol: "RSH", quantity: "1" })).toBe("drawdown/FUND_HALTED");
    const digest = await quiet();
    expect(await rebuilt()).toBe(digest);
    await restart();
    expect(e().status().state_digest).toBe(digest);
    expect(await check({ symbol: "RSH", quantity: "1" })).toBe("drawdown/FUND_HALTED");
    await until(
      "RISK_CONTROL",
      await bus.control(Subjects.resume(F), { fund_id: F, operator: "ops", reason: "ok", at: now() }),
    );
    expect(await check({ symbol: "RSH", quantity: "1" })).toBe("approved");
    const d2 = await quiet();
    expect(await rebuilt()).toBe(d2);
  });
});
