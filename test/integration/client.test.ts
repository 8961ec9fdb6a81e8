/**
 * The OMS client (mts1b-riskengine/client) against a real engine on a real nats-server: a decision
 * in JSON and in protobuf, local schema validation, a retry with the same idempotency_key after a
 * dropped reply, fail-closed ENGINE_UNAVAILABLE with no engine (no responders, and a responder that
 * never answers), getEnvelope, status, and typed watches.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { type OrderRequest, type RiskClient, createRiskClient } from "../../src/client/index.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";

const ord = (over: Record<string, unknown> = {}) => order(over) as OrderRequest;

describe("risk client", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  let risk: RiskClient;

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url);
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    const seq = await bus.envelope(envelope("alpha", { max_order_notional: "50000" }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
    risk = createRiskClient(nc, { timeoutMs: 2000, retries: 1 });
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("is exported as mts1b-riskengine/client (package exports, built dist)", async () => {
    const spec = "mts1b-riskengine/client";
    const mod = (await import(spec)) as { createRiskClient?: unknown };
    expect(typeof mod.createRiskClient).toBe("function");
  });

  it("returns the engine's decision (JSON)", async () => {
    const ok = await risk.check(ord());
    expect(ok).toMatchObject({ approved: true, rejecting_gate: "", envelope_id: "alpha@v1" });
    const no = await risk.check(ord({ quantity: "1000" })); // 100 000 > 50 000
    expect(no).toMatchObject({
      approved: false,
      rejecting_gate: "static",
      rejection_code: "MAX_ORDER_NOTIONAL_EXCEEDED",
    });
  });

  it("speaks protobuf, with the same decision as JSON", async () => {
    const p = createRiskClient(nc, { timeoutMs: 2000, encoding: "protobuf" });
    const no = await p.check(ord({ quantity: "1000" }));
    expect(no).toMatchObject({
      approved: false,
      rejecting_gate: "static",
      rejection_code: "MAX_ORDER_NOTIONAL_EXCEEDED",
    });
    expect(no.details.limit ?? no.details.limit_notional ?? Object.keys(no.details).length).toBeTruthy();
    const ok = await risk.check(ord(), { encoding: "protobuf" });
    expect(ok).toMatchObject({ approved: true, rejection_code: "", envelope_id: "alpha@v1" });
  });

  it("validates locally with the engine's schema and never sends an invalid order", async () => {
    const bad = ord({ quantity: "-5" });
    const d = await risk.check(bad);
    expect(d).toMatchObject({
      approved: false,
      rejecting_gate: "schema",
      rejection_code: "SCHEMA_INVALID",
      details: { path: "quantity", checked_by: "client" },
    });
    const missingKey: Record<string, unknown> = ord();
    delete missingKey.idempotency_key;
    expect((await risk.check(missingKey as OrderRequest)).details).toMatchObject({ path: "idempotency_key" });
    const journal = await readStream<{ decision: { order_id: string } }>(nc, "RISK_DECISIONS");
    expect(journal.some((m) => m.data.decision?.order_id === bad.order_id)).toBe(false);
  });

  it("retries a dropped reply with the same idempotency_key and gets the one decision", async () => {
    // a proxy in front of the engine that loses the first reply
    const seen: string[] = [];
    const proxy = nc.subscribe("test.proxy.check", {
      callback: (_err, m: Msg) => {
        seen.push(new TextDecoder().decode(m.data));
        const first = seen.length === 1;
        nc.request("mts.v1.risk.check", m.data, { timeout: 5000 })
          .then((r) => {
            if (!first) m.respond(r.data);
          })
          .catch(() => undefined);
      },
    });
    try {
      const c = createRiskClient(nc, { timeoutMs: 400, retries: 2, subject: "test.proxy.check" });
      const o = ord();
      const d = await c.check(o);
      expect(d).toMatchObject({ approved: true, order_id: o.order_id });
      expect(d.details.replayed).toBe("true");
      expect(seen.length).toBe(2);
      expect(seen[1]).toBe(seen[0]);
      expect((JSON.parse(seen[0]!) as { idempotency_key: string }).idempotency_key).toBe(o.idempotency_key);
      const journal = await waitFor(async () => {
        const all = await readStream<{ decision: { order_id: string }; replayed: boolean }>(
          nc,
          "RISK_DECISIONS",
        );
        const mine = all.filter((m) => m.data.decision.order_id === o.order_id);
        return mine.length === 2 ? mine : undefined;
      });
      expect(journal!.map((m) => m.data.replayed)).toEqual([false, true]);
    } finally {
      proxy.unsubscribe();
    }
  });

  it("fails closed with ENGINE_UNAVAILABLE when no engine subscribes, without throwing", async () => {
    const c = createRiskClient(nc, { timeoutMs: 150, retries: 1, subject: "test.nobody.check" });
    const t0 = performance.now();
    const o = ord();
    const d = await c.check(o);
    const ms = performance.now() - t0;
    expect(d).toMatchObject({
      order_id: o.order_id,
      approved: false,
      rejecting_gate: "client",
      rejection_code: "ENGINE_UNAVAILABLE",
    });
    expect(ms).toBeGreaterThanOrEqual(250); // retried until its deadline (2 × 150 ms)
    expect(ms).toBeLessThan(2000);
  });

  it("fails closed after its retries when the engine never answers", async () => {
    const swallowed: number[] = [];
    const sink = nc.subscribe("test.sink.check", {
      callback: () => {
        swallowed.push(1);
      },
    });
    try {
      const c = createRiskClient(nc, { timeoutMs: 100, retries: 2, subject: "test.sink.check" });
      const d = await c.check(ord());
      expect(d).toMatchObject({ rejecting_gate: "client", rejection_code: "ENGINE_UNAVAILABLE" });
      expect(d.details.attempts).toBe("3");
      expect(swallowed.length).toBe(3);
    } finally {
      sink.unsubscribe();
    }
  });

  it("fails closed on a closed connection too", async () => {
    const other = await connectTest(server.url);
    const c = createRiskClient(other, { timeoutMs: 100, retries: 0 });
    await other.close();
    const d = await c.check(ord());
    expect(d).toMatchObject({ rejecting_gate: "client", rejection_code: "ENGINE_UNAVAILABLE" });
  });

  it("gets the envelope and the status", async () => {
    expect(await risk.getEnvelope("alpha")).toMatchObject({
      fund_id: "alpha",
      version: 1,
      capital: "1000000",
    });
    expect(await risk.getEnvelope("nobody")).toBeUndefined();
    const s = await risk.status();
    expect(s).toMatchObject({ instance: engine.instance, ready: true });
    const f = await risk.status("alpha");
    expect(f.fund).toMatchObject({ fund_id: "alpha" });
  });

  it("watches a fund's decisions and alerts", async () => {
    const decisions = risk.watchDecisions("alpha");
    const alerts = risk.watchAlerts("alpha");
    await Promise.all([decisions.ready, alerts.ready]);
    const o = ord();
    await risk.check(o);
    engine.alerter.alert("breach", "alpha", "test alert", { measure: "gross" });
    for await (const r of decisions) {
      if (r.decision.order_id !== o.order_id) continue;
      expect(r).toMatchObject({ fund_id: "alpha", replayed: false, decision: { approved: true } });
      expect(r.order).toMatchObject({ order_id: o.order_id });
      break;
    }
    for await (const a of alerts) {
      expect(a).toMatchObject({ kind: "breach", fund_id: "alpha", details: { measure: "gross" } });
      break;
    }
    await decisions.stop();
    await alerts.stop();
  });

  it("a watch stops while its iterator is paused mid-stream, and the iterator then ends", async () => {
    const decisions = risk.watchDecisions("alpha");
    await decisions.ready;
    await risk.check(ord());
    await risk.check(ord());
    const it = decisions[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false); // one read, the next one waiting: paused
    const t0 = Date.now();
    await decisions.stop();
    expect(Date.now() - t0).toBeLessThan(5_000);
    // whatever was already buffered may still come out, then the iteration ends
    for (let i = 0; i < 10; i++) if ((await it.next()).done) return;
    throw new Error("the iterator did not end after stop()");
  });

  it("the example OMS (examples/oms.mjs) routes what the engine approves", async () => {
    const r = await promisify(execFile)(process.execPath, ["examples/oms.mjs", "alpha", "2"], {
      env: { ...process.env, NATS_URL: server.url },
      timeout: 30_000,
    });
    expect(r.stdout).toContain("envelope alpha@v1");
    expect(r.stdout.match(/^ROUTE /gm)?.length).toBe(2);
  });
});
