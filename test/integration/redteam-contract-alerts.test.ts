/**
 * Red team (wire contract, CONTRACT.md "Subjects": `mts.v1.risk.alert.<kind>.<fund_id>`, kinds
 * `drift`, `stale`, `cro`; "Encoding": decimals the engine emits are canonical): alerts the
 * reconciler and the CRO gate publish, with broker answers written the way adapters write them
 * ("150.50", "-0", JSON numbers). Whatever the broker wrote, what the engine emits is canonical.
 */
import { afterEach, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";
import { steppableTimers, type SteppableTimers } from "../support/timers.js";

const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const CANONICAL = /^-?(0|[1-9]\d*)(\.\d*[1-9])?$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
function problems(x: unknown, path = ""): string[] {
  if (typeof x === "string") {
    if (["at", "since"].includes(path.split(".").pop()!) && !RFC3339_UTC.test(x)) return [`${path}=${x}`];
    return NUMERIC.test(x) && (!CANONICAL.test(x) || x === "-0") ? [`${path}=${JSON.stringify(x)}`] : [];
  }
  if (Array.isArray(x)) return x.flatMap((v, i) => problems(v, `${path}[${i}]`));
  if (x && typeof x === "object")
    return Object.entries(x).flatMap(([k, v]) => problems(v, path ? `${path}.${k}` : k));
  return [];
}

interface Rig {
  server: NatsServerHandle;
  engine: Engine;
  nc: NatsConnection;
  bus: Bus;
  timers: SteppableTimers;
  subs: Subscription[];
}
let rig: Rig | undefined;
afterEach(async () => {
  const r = rig;
  rig = undefined;
  for (const s of r?.subs ?? []) s.unsubscribe();
  await r?.nc.close();
  await r?.engine.close();
  await r?.server.stop();
});

async function setup(flags: Record<string, unknown>): Promise<Rig> {
  const server = await startTestNats();
  const timers = steppableTimers();
  const engine = await startTestEngine(server.url, {
    timers,
    flags: { "broker_exit_reconciler.interval_s": 3600, ...flags },
  });
  const nc = await connectTest(server.url);
  rig = { server, engine, nc, bus: new Bus(nc), timers, subs: [] };
  return rig;
}

describe("red team contract: alerts on RISK_CONTROL", () => {
  it("drift alert from broker quantities written non-canonically: subject, kind, fund, canonical details", async () => {
    const s = await setup({ "broker_exit_reconciler.on_drift": "lock" });
    const F = "drf";
    const e = await s.bus.envelope(envelope(F, { allowed_brokers: ["paper"] }));
    let f = 0;
    for (const [symbol, side, quantity] of [
      ["AAPL", "BUY", "100"],
      ["MSFT", "BUY", "5"],
      ["TSLA", "BUY", "7"],
    ] as const)
      f = await s.bus.fill({ fund_id: F, symbol, side, quantity });
    await waitFor(() => applied(s.engine, "RISK_ENVELOPES", e) && applied(s.engine, "FILLS", f));
    s.subs.push(
      s.nc.subscribe("mts.v1.broker.positions.paper", {
        callback: (_e, m) =>
          void m.respond(
            JSON.stringify({
              positions: [
                { symbol: "AAPL", quantity: "150.50" },
                { symbol: "MSFT", quantity: "-0" },
                { symbol: "TSLA", quantity: "7.000" },
                { symbol: "NVDA", quantity: 3 },
              ],
            }),
          ),
      }),
    );
    await s.nc.flush();
    await s.timers.tick("reconciler");
    const alerts = await waitFor(
      async () => {
        const a = await readStream<Record<string, unknown>>(
          s.nc,
          "RISK_CONTROL",
          `mts.v1.risk.alert.drift.${F}`,
        );
        return a.length ? a : undefined;
      },
      { message: "drift alert" },
    );
    const bad: string[] = [];
    for (const a of alerts!) {
      if (a.data.kind !== "drift") bad.push(`kind ${String(a.data.kind)}`);
      if (a.data.fund_id !== F) bad.push(`fund ${String(a.data.fund_id)}`);
      bad.push(...problems(a.data));
    }
    const locks = await readStream<Record<string, unknown>>(
      s.nc,
      "RISK_CONTROL",
      `mts.v1.risk.reconcile.lock.${F}`,
    );
    for (const l of locks) bad.push(...problems(l.data).map((p) => `lock: ${p}`));
    expect(bad, JSON.stringify(alerts!.map((a) => a.data))).toEqual([]);
  });

  it("stale alert when a broker does not answer: mts.v1.risk.alert.stale.<fund_id>", async () => {
    const s = await setup({ "broker_exit_reconciler.timeout_s": 0.2 });
    const F = "stl";
    const e = await s.bus.envelope(envelope(F, { allowed_brokers: ["paper"] }));
    const f = await s.bus.fill({ fund_id: F, symbol: "AAPL", quantity: "10" });
    await waitFor(() => applied(s.engine, "RISK_ENVELOPES", e) && applied(s.engine, "FILLS", f));
    s.subs.push(s.nc.subscribe("mts.v1.broker.positions.paper", { callback: () => undefined }));
    await s.nc.flush();
    await s.timers.tick("reconciler");
    const a = await waitFor(
      async () =>
        (await readStream<Record<string, unknown>>(s.nc, "RISK_CONTROL", `mts.v1.risk.alert.stale.${F}`))[0],
      { message: "stale alert" },
    );
    expect(a!.data).toMatchObject({ kind: "stale", fund_id: F });
    expect(problems(a!.data)).toEqual([]);
  });

  it("cro alert when the advisor does not answer: the order passes (fail-open), alert on mts.v1.risk.alert.cro.<fund_id>", async () => {
    const s = await setup({ "cro_veto.enabled": true, "cro_veto.timeout_s": 0.2 });
    const F = "cro";
    const e = await s.bus.envelope(envelope(F));
    await waitFor(() => applied(s.engine, "RISK_ENVELOPES", e));
    const d = await s.bus.check(order({ fund_id: F }));
    expect(d).toMatchObject({ approved: true, rejecting_gate: "", rejection_code: "" });
    const a = await waitFor(
      async () =>
        (await readStream<Record<string, unknown>>(s.nc, "RISK_CONTROL", `mts.v1.risk.alert.cro.${F}`))[0],
      { message: "cro alert" },
    );
    expect(a!.data).toMatchObject({ kind: "cro", fund_id: F });
    expect(problems(a!.data)).toEqual([]);
    const jsm = await jetstreamManager(s.nc);
    expect((await jsm.streams.info("RISK_CONTROL")).state.messages).toBeGreaterThan(0);
  });

  it("a CRO veto with a confidence written as a JSON number or with trailing zeros: details canonical", async () => {
    const s = await setup({
      "cro_veto.enabled": true,
      "cro_veto.timeout_s": 2,
      "cro_veto.confidence_threshold": 0.85,
    });
    const F = "crv";
    const e = await s.bus.envelope(envelope(F));
    await waitFor(() => applied(s.engine, "RISK_ENVELOPES", e));
    const answers: unknown[] = [
      { veto: true, confidence: 0.9, reason: "number" },
      { veto: true, confidence: "0.900", reason: "trailing zeros" },
      { veto: true, confidence: "1", reason: "one" },
    ];
    let i = 0;
    s.subs.push(
      s.nc.subscribe("mts.v1.llm.cro.veto", {
        callback: (_e, m) => void m.respond(JSON.stringify(answers[i++ % answers.length])),
      }),
    );
    await s.nc.flush();
    const bad: string[] = [];
    for (let k = 0; k < answers.length; k++) {
      const d = await s.bus.check(order({ fund_id: F }));
      bad.push(...problems(d.details).map((p) => `${d.reason}: ${p}`));
      if (d.approved === false && d.rejection_code !== "CRO_VETO")
        bad.push(`${d.reason}: ${d.rejection_code}`);
    }
    expect(bad).toEqual([]);
  });

  it("adopt: the ADJUSTMENT fill the engine publishes is a contract Fill on mts.v1.fill.<fund_id>.<symbol>, Nats-Msg-Id = fill_id", async () => {
    const s = await setup({
      "broker_exit_reconciler.on_drift": "adopt",
      "broker_exit_reconciler.confirm_passes": 1,
    });
    const F = "adp";
    const e = await s.bus.envelope(envelope(F, { allowed_brokers: ["paper"] }));
    const f = await s.bus.fill({ fund_id: F, symbol: "AAPL", side: "BUY", quantity: "100", price: "100.25" });
    await waitFor(() => applied(s.engine, "RISK_ENVELOPES", e) && applied(s.engine, "FILLS", f));
    s.subs.push(
      s.nc.subscribe("mts.v1.broker.positions.paper", {
        callback: (_e, m) =>
          void m.respond(JSON.stringify({ positions: [{ symbol: "AAPL", quantity: "150.50" }] })),
      }),
    );
    await s.nc.flush();
    await s.timers.tick("reconciler");
    const jsm = await jetstreamManager(s.nc);
    await waitFor(async () => (await jsm.streams.info("FILLS")).state.last_seq > f, {
      message: "adjustment fill",
    });
    const m = (await jsm.streams.getMessage("FILLS", { seq: f + 1 }))!;
    const fill = m.json<Record<string, unknown>>();
    expect(m.subject).toBe(`mts.v1.fill.${F}.AAPL`);
    expect(m.header?.get("Nats-Msg-Id")).toBe(fill.fill_id);
    for (const k of [
      "fill_id",
      "order_id",
      "fund_id",
      "broker",
      "symbol",
      "side",
      "quantity",
      "price",
      "fees",
      "timestamp",
    ])
      expect(typeof fill[k], k).toBe("string");
    expect(fill).toMatchObject({
      fund_id: F,
      broker: "paper",
      symbol: "AAPL",
      side: "BUY",
      quantity: "50.5",
    });
    expect(String(fill.timestamp)).toMatch(RFC3339_UTC);
    expect(problems(fill)).toEqual([]);
  });
});
