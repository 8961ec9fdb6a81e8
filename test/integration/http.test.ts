/**
 * The operations HTTP listener against a real engine on a real nats-server: /metrics parsed after
 * real checks (counts by code equal to the decisions made), /healthz, /readyz following NATS
 * going away and coming back, /api/dashboard, and two listeners on one port.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { DEFAULTS } from "../../src/config/index.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { type HttpHandle, HttpListenError, startHttp } from "../../src/http/server.js";
import { silentLogger } from "../../src/obs/log.js";
import { systemClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";
import { find, parseExposition, value } from "../support/prom.js";

const httpConfig = (port = 0) => ({ ...DEFAULTS.http, port });
const clock = { now: () => Date.parse(NOW) };
const http = (engine: Engine, port = 0, required = false) =>
  startHttp({
    engine,
    config: { ...httpConfig(port), required },
    clock,
    log: silentLogger,
    startedAt: systemClock.now(),
  });

async function get(url: string): Promise<{ status: number; text: string; type: string }> {
  const r = await fetch(url);
  return { status: r.status, text: await r.text(), type: r.headers.get("content-type") ?? "" };
}

describe("operations HTTP", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  let web: HttpHandle;

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock });
    web = (await http(engine))!;
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await bus.instrument({ symbol: "AAPL", asset_class: "equity", sector: "tech" });
    const seq = await bus.envelope(
      envelope("alpha", {
        max_position_pct: "0.10",
        max_gross_exposure_pct: "1.0",
        daily_loss_halt_pct: "0.03",
      }),
    );
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
  });
  afterAll(async () => {
    await web?.close();
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("listens on a free port when asked for port 0, and says where", () => {
    expect(web.port).toBeGreaterThan(0);
    expect(web.url).toBe(`http://127.0.0.1:${web.port}`);
  });

  it("/healthz and /readyz answer 200 on a ready engine", async () => {
    const h = await get(`${web.url}/healthz`);
    expect(h.status).toBe(200);
    const r = await get(`${web.url}/readyz`);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toMatchObject({ ready: true });
  });

  it("/metrics counts every decision by gate and code, latency by outcome, usage per fund", async () => {
    const before = parseExposition((await get(`${web.url}/metrics`)).text);
    const count = (code: string, gate: string) =>
      find(before, "riskengine_decisions_total", { code, gate }).reduce((n, s) => n + s.value, 0);
    const base = {
      approved: count("APPROVED", "none"),
      position: count("MAX_POSITION_EXCEEDED", "position"),
      schema: count("SCHEMA_INVALID", "schema"),
    };
    // 3 approvals of 30 000 each (3 % of NAV each), 2 position rejections (15 % > 10 %), 1 schema, 1 replay
    const first = order({ quantity: "300", limit_price: "100" });
    const sent = [first, order({ quantity: "300" }), order({ quantity: "300" })];
    for (const o of sent) expect((await bus.check(o)).approved).toBe(true);
    for (let i = 0; i < 2; i++)
      expect((await bus.check(order({ quantity: "1500" }))).rejection_code).toBe("MAX_POSITION_EXCEEDED");
    expect((await bus.check(order({ quantity: "-1" }))).rejection_code).toBe("SCHEMA_INVALID");
    expect((await bus.check(first)).details.replayed).toBe("true");

    const res = await get(`${web.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.type).toContain("text/plain");
    const m = parseExposition(res.text);
    expect(value(m, "riskengine_decisions_total", { gate: "none", code: "APPROVED" }) - base.approved).toBe(
      3,
    );
    expect(
      value(m, "riskengine_decisions_total", { gate: "position", code: "MAX_POSITION_EXCEEDED" }) -
        base.position,
    ).toBe(2);
    expect(
      value(m, "riskengine_decisions_total", { gate: "schema", code: "SCHEMA_INVALID" }) - base.schema,
    ).toBe(1);
    expect(value(m, "riskengine_check_latency_seconds_count", { outcome: "replayed" })).toBe(1);
    expect(
      value(m, "riskengine_check_latency_seconds_count", { outcome: "approved" }),
    ).toBeGreaterThanOrEqual(3);
    expect(m.types.get("riskengine_check_latency_seconds")).toBe("histogram");
    // a sub-millisecond bucket exists
    expect(
      find(m, "riskengine_check_latency_seconds_bucket", { outcome: "approved", le: "0.0005" }),
    ).toHaveLength(1);
    expect(value(m, "riskengine_journal_write_seconds_count")).toBeGreaterThanOrEqual(3);
    // 90 000 of a 100 000 position limit
    expect(value(m, "riskengine_limit_usage_ratio", { fund_id: "alpha", measure: "position" })).toBeCloseTo(
      0.9,
      6,
    );
    expect(value(m, "riskengine_limit_usage_ratio", { fund_id: "alpha", measure: "gross" })).toBeCloseTo(
      0.09,
      6,
    );
    expect(value(m, "riskengine_funds_owned")).toBe(1);
    expect(value(m, "riskengine_funds_halted")).toBe(0);
    expect(value(m, "riskengine_ready")).toBe(1);
    for (const s of ["FILLS", "QUOTES", "RISK_DECISIONS"])
      expect(value(m, "riskengine_stream_lag_messages", { stream: s })).toBeGreaterThanOrEqual(0);
    expect(find(m, "process_cpu_seconds_total").length).toBe(1);
    // bounded labels: never an order id
    for (const s of m.samples) expect(Object.keys(s.labels)).not.toContain("order_id");
    for (const s of m.samples) if (s.name.startsWith("riskengine_")) expect(s.name).toMatch(/^[a-z_]+$/);
  });

  it("/metrics shows a halt and an alert, and the dashboard data shows the fund", async () => {
    const seq = await bus.control(Subjects.halt("alpha"), {
      fund_id: "alpha",
      severity: "MANUAL",
      reason: "test",
      at: NOW,
      by: "ops",
    });
    await waitFor(() => applied(engine, "RISK_CONTROL", seq));
    engine.alerter.alert("drift", "alpha", "test alert");
    const m = parseExposition((await get(`${web.url}/metrics`)).text);
    expect(value(m, "riskengine_funds_halted")).toBe(1);
    expect(value(m, "riskengine_fund_halted", { fund_id: "alpha", severity: "MANUAL" })).toBe(1);
    expect(value(m, "riskengine_alerts_total", { kind: "drift" })).toBeGreaterThanOrEqual(1);
    const d = JSON.parse((await get(`${web.url}/api/dashboard`)).text) as {
      engine: { ready: boolean; latency_1m: { count: number; p99_ms: number } };
      funds: {
        report: { fund_id: string; halts: { severity: string }[] };
        rejections: { by_code: Record<string, number> };
      }[];
    };
    expect(d.engine.ready).toBe(true);
    expect(d.engine.latency_1m.count).toBeGreaterThanOrEqual(7);
    expect(d.engine.latency_1m.p99_ms).toBeGreaterThan(0);
    const alpha = d.funds.find((f) => f.report.fund_id === "alpha");
    expect(alpha?.report.halts.map((h) => h.severity)).toEqual(["MANUAL"]);
    expect(alpha?.rejections.by_code.MAX_POSITION_EXCEEDED).toBe(2);
    const page = await get(`${web.url}/`);
    expect(page.status).toBe(200);
    expect(page.type).toContain("text/html");
  });

  it("a second listener on a taken port: the engine goes on without HTTP, or fails when required", async () => {
    expect(await http(engine, web.port)).toBeUndefined();
    await expect(http(engine, web.port, true)).rejects.toBeInstanceOf(HttpListenError);
    expect((await get(`${web.url}/healthz`)).status).toBe(200);
  });

  it("unknown paths are 404 and writes are refused", async () => {
    expect((await get(`${web.url}/nope`)).status).toBe(404);
    expect((await fetch(`${web.url}/metrics`, { method: "POST" })).status).toBe(405);
  });

  it("/readyz is 503 with the reason while NATS is down, 200 once it is back and caught up", async () => {
    await server.kill();
    const down = await waitFor(
      async () => {
        const r = await get(`${web.url}/readyz`);
        return r.status === 503 ? r : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(JSON.parse(down!.text)).toMatchObject({ ready: false, reason: "nats_disconnected" });
    expect((await get(`${web.url}/healthz`)).status).toBe(200);
    await server.restart();
    await waitFor(async () => (await get(`${web.url}/readyz`)).status === 200, { timeoutMs: 20_000 });
    expect(engine.ready()).toBe(true);
  });
});

describe("/readyz during catch-up", () => {
  let server: NatsServerHandle;
  let engine: Engine | undefined;
  let web: HttpHandle | undefined;
  let nc: NatsConnection;
  afterAll(async () => {
    await web?.close();
    await engine?.close();
    await nc?.close();
    await server?.stop();
  });

  it("is 503 catching_up while the engine folds a backlog, then 200", async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    const bus = new Bus(nc);
    const first = await startTestEngine(server.url);
    await first.close(); // streams provisioned; now a backlog no engine has applied
    // FILLS keeps every message (QUOTES keeps 10 per symbol)
    const N = 20_000;
    for (let i = 0; i < N; i += 1000) {
      await Promise.all(
        Array.from({ length: 1000 }, (_, k) =>
          bus.fill({ symbol: `S${(i + k) % 500}`, quantity: "1", price: "10" }),
        ),
      );
    }
    const target = (await (await jetstream(nc).jetstreamManager()).streams.info("FILLS")).state.last_seq;
    engine = await startTestEngine(server.url, { waitReady: false });
    // Hold the catch-up: the server is frozen (SIGSTOP) as soon as the engine has measured the
    // streams and opened its consumers. It can then fold only what it had already received: at most
    // one pull batch (1 000, refilled at half) beyond what it had folded, so it is still behind.
    // A frozen server is a timeout, not a disconnect, for the client's first pings (~6 s).
    server.pause();
    try {
      const folded = engine.observe.cursor("FILLS");
      expect(target - folded).toBeGreaterThan(2000); // the engine cannot catch up while the server is frozen
      web = (await http(engine))!;
      const early = await get(`${web.url}/readyz`);
      expect(early.status).toBe(503);
      expect(JSON.parse(early.text)).toMatchObject({ ready: false, reason: "catching_up" });
    } finally {
      server.resume();
    }
    await engine.whenReady();
    expect(engine.observe.cursor("FILLS")).toBeGreaterThanOrEqual(target);
    const late = await get(`${web.url}/readyz`);
    expect(late.status).toBe(200);
  }, 120_000);
});
