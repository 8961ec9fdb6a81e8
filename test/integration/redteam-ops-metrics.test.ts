/**
 * Red team (operations): /metrics counts what happened (approvals, rejections by gate and code,
 * replays in the latency histogram only, schema-invalid and undecodable requests), label values
 * never come from user input (fund ids without an envelope, symbols, order ids, bad bodies), and
 * after a restart the state gauges equal the ones before while the counters start afresh (the
 * journal read back at start-up is not counted as new decisions).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { DEFAULTS } from "../../src/config/index.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { type HttpHandle, startHttp } from "../../src/http/server.js";
import { silentLogger } from "../../src/obs/log.js";
import { systemClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, settled, startTestEngine } from "../support/engine.js";
import { type Exposition, find, parseExposition, value } from "../support/prom.js";

const clock = { now: () => Date.parse(NOW) + 100 };

async function scrape(web: HttpHandle): Promise<Exposition> {
  const r = await fetch(`${web.url}/metrics`);
  expect(r.status).toBe(200);
  return parseExposition(await r.text());
}

describe("red team: /metrics", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let web: HttpHandle;
  let nc: NatsConnection;
  let bus: Bus;
  const stateDir = mkdtempSync(join(tmpdir(), "mts-redteam-ops-metrics-"));
  const start = async () => {
    engine = await startTestEngine(server.url, { clock, stateDir });
    web = (await startHttp({
      engine,
      config: { ...DEFAULTS.http, port: 0 },
      clock,
      log: silentLogger,
      startedAt: systemClock.now(),
    }))!;
  };
  const userValues = new Set<string>();

  beforeAll(async () => {
    server = await startTestNats();
    await start();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await bus.instrument({ symbol: "AAPL", asset_class: "equity", sector: "tech" });
    await bus.quote("AAPL", "99.99", "100.01");
    await bus.envelope(envelope("alpha", { max_order_notional: "50000", max_gross_exposure_pct: "0.5" }));
    const s = await bus.envelope(envelope("beta"));
    const h = await bus.control(Subjects.halt("beta"), {
      fund_id: "beta",
      severity: "MANUAL",
      reason: "desk",
      at: NOW,
      by: "ops",
    });
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s) && applied(engine, "RISK_CONTROL", h));
  });
  afterAll(async () => {
    await web?.close();
    await nc?.close();
    await engine?.close().catch(() => undefined);
    await server?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("counts every decision by gate and code, replays only in the latency histogram", async () => {
    const approvals = [];
    for (let i = 0; i < 7; i++) approvals.push(order({ quantity: "10" }));
    for (const o of approvals) expect((await bus.check(o)).approved).toBe(true);
    // 3 replays of the first approval, 2 of a rejection
    for (let i = 0; i < 3; i++) expect((await bus.check(approvals[0])).details.replayed).toBe("true");
    const big = order({ quantity: "1000" });
    expect((await bus.check(big)).rejection_code).toBe("MAX_ORDER_NOTIONAL_EXCEEDED");
    for (let i = 0; i < 2; i++) expect((await bus.check(big)).details.replayed).toBe("true");
    for (let i = 0; i < 4; i++)
      expect((await bus.check(order({ quantity: "900" }))).rejection_code).toBe(
        "MAX_ORDER_NOTIONAL_EXCEEDED",
      );
    for (let i = 0; i < 3; i++)
      expect((await bus.check(order({ fund_id: "beta" }))).rejection_code).toBe("FUND_HALTED");
    // conflict: same key, another order
    const conflict = { ...order({ quantity: "11" }), idempotency_key: approvals[1]!.idempotency_key };
    expect((await bus.check(conflict)).rejection_code).toBe("IDEMPOTENCY_CONFLICT");
    // user-chosen values that must never become label values
    for (let i = 0; i < 25; i++) {
      const fund = `ghost-${process.pid}-${i}`;
      const symbol = `SYM${process.pid}X${i}`;
      const o = order({ fund_id: fund, symbol, order_id: `oid-${process.pid}-${i}` });
      userValues.add(fund).add(symbol).add(String(o.order_id)).add(String(o.idempotency_key));
      expect((await bus.check(o)).rejection_code).toBe("NO_ENVELOPE");
      const bad = order({ fund_id: `bad-${process.pid}-${i}`, quantity: `x${i}` });
      userValues.add(String(bad.fund_id)).add(String(bad.order_id));
      expect((await bus.check(bad)).rejection_code).toBe("SCHEMA_INVALID");
    }
    expect((await bus.check("{not json")).rejection_code).toBe("SCHEMA_INVALID");

    const m = await scrape(web);
    const dec = (gate: string, code: string) => find(m, "riskengine_decisions_total", { gate, code });
    const one = (gate: string, code: string) => dec(gate, code).reduce((a, s) => a + s.value, 0);
    expect(one("none", "APPROVED")).toBe(7);
    expect(one("static", "MAX_ORDER_NOTIONAL_EXCEEDED")).toBe(5);
    expect(one("drawdown", "FUND_HALTED")).toBe(3);
    expect(one("idempotency", "IDEMPOTENCY_CONFLICT")).toBe(1);
    expect(one("engine", "NO_ENVELOPE")).toBe(25);
    expect(one("schema", "SCHEMA_INVALID")).toBe(26);
    const total = find(m, "riskengine_decisions_total").reduce((a, s) => a + s.value, 0);
    expect(total).toBe(7 + 5 + 3 + 1 + 25 + 26);
    const count = (outcome: string) => value(m, "riskengine_check_latency_seconds_count", { outcome });
    expect(count("approved")).toBe(7);
    expect(count("replayed")).toBe(5);
    expect(count("rejected")).toBe(5 + 3 + 1 + 25 + 26);
    expect(count("unavailable")).toBe(0);
    const inf = (outcome: string) =>
      value(m, "riskengine_check_latency_seconds_bucket", { outcome, le: "+Inf" });
    expect(inf("approved")).toBe(7);

    // bounded labels: no user value anywhere, fund_id only for funds with an envelope
    const labelValues = new Set(m.samples.flatMap((s) => Object.values(s.labels)));
    const leaked = [...userValues].filter((v) => [...labelValues].some((l) => l.includes(v)));
    expect(leaked).toEqual([]);
    const fundLabels = new Set(
      m.samples
        .filter((s) => s.name.startsWith("riskengine_") && s.labels.fund_id)
        .map((s) => s.labels.fund_id),
    );
    expect([...fundLabels].sort()).toEqual(["alpha", "beta"]);
    expect(value(m, "riskengine_funds_known")).toBe(2);
    expect(value(m, "riskengine_funds_halted")).toBe(1);
    expect(value(m, "riskengine_fund_halted", { fund_id: "beta", severity: "MANUAL" })).toBe(1);
  }, 60_000);

  it("after a restart: same state gauges, counters from zero (the rebuilt journal is not re-counted)", async () => {
    await settled(engine);
    const before = await scrape(web);
    const gross = value(before, "riskengine_limit_usage_ratio", { fund_id: "alpha", measure: "gross" });
    expect(gross).toBeGreaterThan(0); // 7 approvals of 1 000 reserve 7 000 of 500 000
    await web.close();
    await engine.close();
    await start();
    await waitFor(() => engine.readiness().ready, { message: "ready after restart" });
    const after = await scrape(web);
    expect(value(after, "riskengine_limit_usage_ratio", { fund_id: "alpha", measure: "gross" })).toBe(gross);
    expect(value(after, "riskengine_funds_halted")).toBe(1);
    expect(value(after, "riskengine_funds_known")).toBe(2);
    expect(value(after, "riskengine_fund_halted", { fund_id: "beta", severity: "MANUAL" })).toBe(1);
    const total = find(after, "riskengine_decisions_total").reduce((a, s) => a + s.value, 0);
    expect(total).toBe(0);
    // a retry after the restart is a replay, not a decision
    const o = order({ quantity: "12" });
    expect((await bus.check(o)).approved).toBe(true);
    expect((await bus.check(o)).details.replayed).toBe("true");
    const m = await scrape(web);
    expect(find(m, "riskengine_decisions_total").reduce((a, s) => a + s.value, 0)).toBe(1);
    expect(value(m, "riskengine_check_latency_seconds_count", { outcome: "replayed" })).toBe(1);
  }, 60_000);
});
