/**
 * Red team (operations): the OMS client against a real engine: an engine that is down when the
 * check starts and comes up within the deadline, an engine restarted under concurrent checks (no
 * order ever gets two decisions, retries after the restart replay), many concurrent check() of one
 * order, racing orders against headroom, JSON then protobuf under one key, protobuf carrying
 * every field a gate reads, and the named errors of getEnvelope/status.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import {
  type OrderRequest,
  type RiskDecision,
  RiskClientError,
  createRiskClient,
} from "../../src/client/index.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";

const ord = (over: Record<string, unknown> = {}) => order(over) as OrderRequest;
const clock = { now: () => Date.parse(NOW) + 100 };

interface Rec {
  decision: RiskDecision;
  replayed: boolean;
}

describe("red team: OMS client", () => {
  let server: NatsServerHandle;
  let engine: Engine | undefined;
  let nc: NatsConnection;
  let bus: Bus;
  const stateDir = mkdtempSync(join(tmpdir(), "mts-redteam-ops-client-"));
  const start = async () => {
    engine = await startTestEngine(server.url, { clock, stateDir });
    await waitFor(() => engine!.readiness().ready, { message: "engine ready" });
  };
  /** Decision records (batches unrolled) of an order id, in journal order. */
  const records = async (orderId: string): Promise<Rec[]> => {
    const all = await readStream<Rec | Rec[]>(nc, "RISK_DECISIONS");
    return all
      .flatMap((m) => (Array.isArray(m.data) ? m.data : [m.data]))
      .filter((r) => r.decision.order_id === orderId);
  };

  beforeAll(async () => {
    server = await startTestNats();
    await start();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await bus.instrument({ symbol: "AAPL", asset_class: "equity", sector: "tech" });
    await bus.instrument({ symbol: "NOSH", asset_class: "equity" });
    await bus.quote("AAPL", "99.99", "100.01");
    await bus.quote("NOSH", "99.99", "100.01");
    await bus.envelope(envelope("alpha"));
    await bus.envelope(envelope("head", { max_gross_exposure_pct: "0.05" })); // 50 000: 5 orders of 10 000
    await bus.envelope(envelope("shorty", { enable_shorting: true }));
    const s = await bus.envelope(
      envelope("strat", {
        allowed_brokers: ["paper"],
        strategies: { wide: { allowed_brokers: ["paper", "ibkr"] } },
      }),
    );
    await waitFor(() => applied(engine!, "RISK_ENVELOPES", s));
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await engine?.close().catch(() => undefined);
    await server?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("an engine that comes up within the deadline answers the check (no responders is retried)", async () => {
    await engine!.close();
    engine = undefined;
    const c = createRiskClient(nc, { timeoutMs: 3000, retries: 3 });
    const o = ord();
    const pending = c.check(o);
    await start();
    let d = await pending;
    // the starting engine may answer STATE_NOT_READY while it catches up (documented: returned as
    // is, not recorded); the OMS's retry under the same key is then decided afresh
    if (!d.approved) {
      expect(d.rejection_code, JSON.stringify(d)).toBe("STATE_NOT_READY");
      d = await c.check(o);
    }
    expect(d, JSON.stringify(d)).toMatchObject({ approved: true, order_id: o.order_id });
    const recs = await waitFor(async () => {
      const r = await records(o.order_id);
      return r.some((x) => x.decision.approved) ? r : undefined;
    });
    expect(recs!.filter((r) => !r.replayed && r.decision.approved)).toHaveLength(1);
  }, 60_000);

  it("an engine restarted under concurrent checks: no order gets two approvals; retries replay", async () => {
    const c = createRiskClient(nc, { timeoutMs: 1000, retries: 8 });
    const orders = Array.from({ length: 30 }, () => ord());
    const pending = orders.map((o) => c.check(o));
    await engine!.close();
    await start();
    const first = await Promise.all(pending);
    for (const [i, d] of first.entries()) {
      expect(d.order_id).toBe(orders[i]!.order_id);
      // an approval, or the closing engine's STATE_NOT_READY (documented: returned as is, not recorded)
      if (!d.approved) expect(d.rejection_code, JSON.stringify(d)).toBe("STATE_NOT_READY");
    }
    // asking again with the same keys: an approval is replayed, a STATE_NOT_READY decided afresh
    const again = await Promise.all(orders.map((o) => c.check(o)));
    for (const [i, d] of again.entries()) {
      expect(d.approved, JSON.stringify(d)).toBe(true);
      if (first[i]!.approved) expect(d.details.replayed).toBe("true");
    }
    for (const o of orders) {
      const made = (await records(o.order_id)).filter((r) => !r.replayed && r.decision.approved);
      expect(made, o.order_id).toHaveLength(1);
    }
  }, 90_000);

  it("many concurrent check() of one order: one decision, every answer the same", async () => {
    const c = createRiskClient(nc, { timeoutMs: 3000, retries: 1 });
    const o = ord();
    const ds = await Promise.all(Array.from({ length: 40 }, () => c.check(o)));
    for (const d of ds)
      expect(d).toMatchObject({ approved: true, order_id: o.order_id, envelope_id: "alpha@v1" });
    expect(ds.filter((d) => d.details.replayed !== "true")).toHaveLength(1);
    const made = await waitFor(async () => {
      const r = await records(o.order_id);
      return r.length === 40 ? r : undefined;
    });
    expect(made!.filter((r) => !r.replayed)).toHaveLength(1);
  }, 60_000);

  it("racing orders against headroom for 5, JSON and protobuf mixed: exactly 5 approvals", async () => {
    const j = createRiskClient(nc, { timeoutMs: 3000 });
    const p = createRiskClient(nc, { timeoutMs: 3000, encoding: "protobuf" });
    const orders = Array.from({ length: 40 }, () => ord({ fund_id: "head" }));
    const ds = await Promise.all(orders.map((o, i) => (i % 2 ? p : j).check(o)));
    expect(ds.filter((d) => d.approved)).toHaveLength(5);
    expect(new Set(ds.filter((d) => !d.approved).map((d) => d.rejection_code))).toEqual(
      new Set(["GROSS_EXPOSURE_EXCEEDED"]),
    );
  });

  it("an order sent in JSON and retried in protobuf under its key is a replay, not a conflict", async () => {
    const j = createRiskClient(nc, { timeoutMs: 3000 });
    for (const over of [
      {},
      { strategy_id: "s1", time_in_force: "DAY", created_at: NOW, asset_class: "equity" },
      { reduce_only: false, limit_price: "100.10" },
      { order_type: "MARKET", limit_price: null },
    ]) {
      const o = ord(over);
      const a = await j.check(o);
      const b = await j.check(o, { encoding: "protobuf" });
      expect(b, JSON.stringify(over)).toMatchObject({
        approved: a.approved,
        rejection_code: a.rejection_code,
        details: { replayed: "true" },
      });
    }
  });

  it("protobuf carries what the gates read: locate_id, strategy_id", async () => {
    const p = createRiskClient(nc, { timeoutMs: 3000, encoding: "protobuf" });
    const j = createRiskClient(nc, { timeoutMs: 3000 });
    const short = (enc: typeof p, locate?: string) =>
      enc.check(
        ord({ fund_id: "shorty", side: "SELL", symbol: "NOSH", ...(locate ? { locate_id: locate } : {}) }),
      );
    expect((await short(j)).rejection_code).toBe("LOCATE_REQUIRED");
    expect((await short(p)).rejection_code).toBe("LOCATE_REQUIRED");
    expect((await short(j, "LOC-1")).approved).toBe(true);
    expect((await short(p, "LOC-2")).approved).toBe(true);
    const viaIbkr = (enc: typeof p, strategy?: string) =>
      enc.check(ord({ fund_id: "strat", broker: "ibkr", ...(strategy ? { strategy_id: strategy } : {}) }));
    expect((await viaIbkr(p)).rejection_code).toBe("BROKER_NOT_ALLOWED");
    expect((await viaIbkr(j, "wide")).approved).toBe(true);
    expect((await viaIbkr(p, "wide")).approved).toBe(true);
  });

  it("getEnvelope/status fail with RiskClientError and a code (no engine, and a reply that is not an object)", async () => {
    const c = createRiskClient(nc, { timeoutMs: 300, retries: 0 });
    expect(await c.getEnvelope("nobody")).toBeUndefined();
    expect((await c.getEnvelope("alpha"))?.fund_id).toBe("alpha");
    await engine!.close();
    engine = undefined;
    try {
      for (const call of [() => c.getEnvelope("alpha"), () => c.status("alpha"), () => c.status()]) {
        const err = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(RiskClientError);
        expect((err as RiskClientError).code).toBe("ENGINE_UNAVAILABLE");
      }
      // a responder that answers `null`: a named error, not a TypeError from reading it
      const fake = nc.subscribe(Subjects.envelopeGet, {
        callback: (_e, m: Msg) => {
          m.respond(new TextEncoder().encode("null"));
        },
      });
      try {
        await nc.flush();
        const err = await c.getEnvelope("alpha").then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(RiskClientError);
      } finally {
        fake.unsubscribe();
      }
    } finally {
      await start();
    }
  });

  it("status() answered by something that is not an EngineStatus is a RiskClientError, not returned", async () => {
    await engine!.close();
    engine = undefined;
    const fake = nc.subscribe(Subjects.status, {
      callback: (_e, m: Msg) => {
        m.respond(new TextEncoder().encode("null"));
      },
    });
    try {
      await nc.flush();
      const c = createRiskClient(nc, { timeoutMs: 300, retries: 0 });
      const got = await c.status().then(
        (v) => ({ v }),
        (e: unknown) => ({ e }),
      );
      expect("e" in got ? got.e : got.v).toBeInstanceOf(RiskClientError);
    } finally {
      fake.unsubscribe();
      await start();
    }
  });
});
