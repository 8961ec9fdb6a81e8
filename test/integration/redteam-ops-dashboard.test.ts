/**
 * Red team (operations): /api/dashboard's figures against what the engine did: rejections of the
 * last 15 minutes by code for a fund with many of them, halted funds, replays not counted as
 * rejections, and the halts after a restart (recent rejections are the answering process's own).
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
import type { DashboardData } from "../../src/http/dashboard-data.js";
import { type HttpHandle, startHttp } from "../../src/http/server.js";
import { silentLogger } from "../../src/obs/log.js";
import { systemClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, settled, startTestEngine } from "../support/engine.js";

const clock = { now: () => Date.parse(NOW) + 100 };

describe("red team: /api/dashboard figures", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let web: HttpHandle;
  let nc: NatsConnection;
  let bus: Bus;
  const stateDir = mkdtempSync(join(tmpdir(), "mts-redteam-ops-dash-"));
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
  const dash = async (): Promise<DashboardData> => {
    const r = await fetch(`${web.url}/api/dashboard`);
    expect(r.status).toBe(200);
    return (await r.json()) as DashboardData;
  };
  const fundOf = (d: DashboardData, id: string) => d.funds.find((f) => f.report.fund_id === id);
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, n) => a + n, 0);

  const MANY = 260;
  const HALTED = 3;

  beforeAll(async () => {
    server = await startTestNats();
    await start();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await bus.envelope(envelope("alpha", { max_order_notional: "50000" }));
    const s = await bus.envelope(envelope("beta"));
    const h = await bus.control(Subjects.halt("beta"), {
      fund_id: "beta",
      severity: "MANUAL",
      reason: "desk",
      at: NOW,
      by: "ops",
    });
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s) && applied(engine, "RISK_CONTROL", h));
    const big = order({ quantity: "1000" });
    for (let i = 0; i < MANY; i += 20) {
      const chunk = Array.from({ length: Math.min(20, MANY - i) }, (_, k) =>
        k === 0 && i === 0 ? big : order({ quantity: "1000" }),
      );
      const ds = await Promise.all(chunk.map((o) => bus.check(o)));
      for (const d of ds) expect(d.rejection_code).toBe("MAX_ORDER_NOTIONAL_EXCEEDED");
    }
    // replays of a rejection are not new rejections
    for (let i = 0; i < 5; i++) expect((await bus.check(big)).details.replayed).toBe("true");
    for (let i = 0; i < HALTED; i++)
      expect((await bus.check(order({ fund_id: "beta" }))).rejection_code).toBe("FUND_HALTED");
    await settled(engine);
  }, 60_000);
  afterAll(async () => {
    await web?.close();
    await nc?.close();
    await engine?.close().catch(() => undefined);
    await server?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("halted funds and rejection counts equal the engine's", async () => {
    const d = await dash();
    expect(d.engine.funds).toBe(2);
    const beta = fundOf(d, "beta")!;
    expect(beta.report.halts.map((x) => x.severity)).toEqual(["MANUAL"]);
    expect(beta.rejections.by_code).toEqual({ FUND_HALTED: HALTED });
    expect(fundOf(d, "alpha")!.report.halts).toEqual([]);
  });

  it("a fund with more rejections than the list keeps: by_code still counts every one of the last 15 min", async () => {
    const alpha = fundOf(await dash(), "alpha")!;
    expect(alpha.rejections.last.length).toBe(5);
    expect(sum(alpha.rejections.by_code)).toBe(MANY);
    expect(alpha.rejections.by_code).toEqual({ MAX_ORDER_NOTIONAL_EXCEEDED: MANY });
  });

  it("after a restart the halts are still shown (recent rejections are this process's: README)", async () => {
    await web.close();
    await engine.close();
    await start();
    await waitFor(() => engine.readiness().ready, { message: "ready after restart" });
    const d = await dash();
    expect(fundOf(d, "beta")!.report.halts.map((x) => x.severity)).toEqual(["MANUAL"]);
  });
});
