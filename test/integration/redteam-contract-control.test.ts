/**
 * Red team (wire contract, CONTRACT.md "Subjects", "Messages"): what the engine publishes on
 * RISK_CONTROL (Halt, Alert, Stop, pnl.baseline) and OMS_INTENTS (closing orders, cancel_all), and
 * what it answers on mts.v1.risk.status and mts.v1.risk.envelope.get — subjects, fields, types,
 * canonical decimals ("0" never "-0") and RFC 3339 UTC timestamps, black-box on the bus.
 */
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import type protobufT from "protobufjs";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, Feeder, NOW, envelope, order, readStream, startTestEngine } from "../support/engine.js";

const protobuf = createRequire(import.meta.url)("protobufjs") as typeof protobufT;
const root = new protobuf.Root().loadSync(
  new URL("../../subjects/riskengine.proto", import.meta.url).pathname,
  {
    keepCase: true,
  },
);
const PbEnvReq = root.lookupType("mts.risk.v1.EnvelopeRequest");
const PbEnvelope = root.lookupType("mts.risk.v1.RiskEnvelope");

const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const CANONICAL = /^-?(0|[1-9]\d*)(\.\d*[1-9])?$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const TIME_KEYS = new Set(["at", "since", "starts_at", "created_at", "timestamp", "decided_at"]);

/** Every non-canonical decimal string and non-RFC 3339 UTC timestamp anywhere in `x`. */
function formatProblems(x: unknown, path = ""): string[] {
  if (typeof x === "string") {
    const key = path.split(".").pop() ?? "";
    if (TIME_KEYS.has(key)) return RFC3339_UTC.test(x) ? [] : [`${path} = ${x} (not RFC 3339 UTC)`];
    if (NUMERIC.test(x) && (!CANONICAL.test(x) || x === "-0"))
      return [`${path} = ${JSON.stringify(x)} (not canonical)`];
    return [];
  }
  if (Array.isArray(x)) return x.flatMap((v, i) => formatProblems(v, `${path}[${i}]`));
  if (x && typeof x === "object")
    return Object.entries(x).flatMap(([k, v]) => formatProblems(v, path ? `${path}.${k}` : k));
  return [];
}

describe("red team contract: control messages, intents, status, envelope.get", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  let feed: Feeder;
  const clock = manualClock(NOW);
  const F = "ctl";
  let closingDecision: Record<string, unknown> = {};

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    feed = new Feeder(bus, () => engine, clock);
    await bus.instrument({ symbol: "AAPL", asset_class: "equity", sector: "tech" });
    await feed.envelope(
      envelope(F, {
        capital: "1000000.00",
        daily_loss_halt_pct: "0.030",
        weekly_loss_halt_pct: "0.50",
        monthly_loss_halt_pct: "0.50",
        synthetic_stop_pct: "0.10",
        max_position_pct: "0.120",
        warn_at_pct: "0.80",
      }),
    );
    await feed.quote("AAPL", "100.49", "100.51");
    // a position: 1000 @ 100.50, fee 1.50 -> a limit_warning (position share ~0.84 of 0.12 NAV)
    await feed.fill(F, "AAPL", "BUY", "1000", "100.50", { fees: "1.50" });
    await waitFor(
      async () => (await readStream(nc, "RISK_CONTROL", `mts.v1.risk.stop.armed.${F}`)).length > 0,
      {
        message: "stop armed",
      },
    );
    // the price falls: a daily-loss halt, a breach alert, the stop triggers a closing order
    clock.advance(1000);
    await feed.quote("AAPL", "59.99", "60.01");
    await waitFor(
      async () => (await readStream(nc, "OMS_INTENTS", `mts.v1.oms.order.submit.${F}`)).length > 0,
      {
        message: "closing order",
      },
    );
    await waitFor(async () => (await readStream(nc, "RISK_CONTROL", `mts.v1.risk.halt.${F}`)).length > 0, {
      message: "engine halt",
    });
    // the closing order fills: flat, the stop clears
    const [closing] = (
      await readStream<Record<string, string>>(nc, "OMS_INTENTS", `mts.v1.oms.order.submit.${F}`)
    ).map((m) => m.data);
    // the OMS checks the closing order on mts.v1.risk.check like any other order
    closingDecision = (await bus.check(closing!)) as unknown as Record<string, unknown>;
    clock.advance(1000);
    await feed.fill(F, "AAPL", "SELL", "1000", "59.99", { order_id: closing!.order_id, fees: "0" });
    await waitFor(
      async () => (await readStream(nc, "RISK_CONTROL", `mts.v1.risk.stop.cleared.${F}`)).length > 0,
      {
        message: "stop cleared",
      },
    ).catch(() => undefined);
    // an operator presses the kill switch
    clock.advance(1000);
    await bus.control(`mts.v1.risk.halt.${F}`, {
      fund_id: F,
      severity: "KILL_SWITCH",
      reason: "red team",
      at: iso(clock.now()),
      by: "ops",
    });
    await waitFor(
      async () => (await readStream(nc, "OMS_INTENTS", `mts.v1.oms.cancel_all.${F}`)).length > 0,
      {
        message: "cancel_all",
      },
    );
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("an engine Halt is on mts.v1.risk.halt.<fund_id> with exactly fund_id, severity, reason, at, by", async () => {
    const halts = await readStream<Record<string, unknown>>(nc, "RISK_CONTROL", `mts.v1.risk.halt.${F}`);
    const engineHalt = halts.find((h) => h.data.severity === "DAILY_LOSS");
    expect(engineHalt, JSON.stringify(halts)).toBeDefined();
    expect(Object.keys(engineHalt!.data).sort()).toEqual(["at", "by", "fund_id", "reason", "severity"]);
    expect(engineHalt!.data.fund_id).toBe(F);
    for (const k of ["reason", "by"]) expect(typeof engineHalt!.data[k], k).toBe("string");
    expect(formatProblems(engineHalt!.data)).toEqual([]);
  });

  it("every message the engine put on RISK_CONTROL: subject names its kind and fund, canonical decimals, UTC timestamps", async () => {
    const msgs = await readStream<Record<string, unknown>>(nc, "RISK_CONTROL");
    const bad: string[] = [];
    for (const m of msgs) {
      const t = m.subject.split(".");
      const fund = t[t.length - 1];
      if (m.data.fund_id !== undefined && m.data.fund_id !== fund)
        bad.push(`${m.subject}: fund_id ${JSON.stringify(m.data.fund_id)}`);
      for (const p of formatProblems(m.data)) bad.push(`${m.subject}: ${p}`);
      if (t[3] === "alert" && m.data.kind !== t[4]) bad.push(`${m.subject}: kind ${String(m.data.kind)}`);
      if (t[3] === "stop" && !["armed", "triggered", "cleared"].includes(t[4]!))
        bad.push(`${m.subject}: stop event`);
      if (t[3] === "resume") bad.push(`${m.subject}: a Resume published by the engine (operator only)`);
    }
    expect(bad).toEqual([]);
    const kinds = new Set(msgs.map((m) => m.subject.split(".").slice(3, -1).join(".")));
    for (const k of [
      "halt",
      "pnl.baseline",
      "alert.breach",
      "alert.limit_warning",
      "stop.armed",
      "stop.triggered",
    ])
      expect(kinds, k).toContain(k);
  });

  it("pnl.baseline is { fund_id, period, starts_at, equity } for day, week and month starts", async () => {
    const b = await readStream<Record<string, string>>(nc, "RISK_CONTROL", `mts.v1.risk.pnl.baseline.${F}`);
    const periods = b.map((m) => m.data.period).sort();
    expect(periods).toEqual(["day", "month", "week"]);
    for (const m of b) {
      for (const k of ["fund_id", "period", "starts_at", "equity"])
        expect(typeof m.data[k], k).toBe("string");
      expect(m.data.equity).toBe("1000000");
    }
    const starts = Object.fromEntries(
      b.map((m) => [String(m.data.period), String(m.data.starts_at)]),
    ) as Record<string, string>;
    expect(Date.parse(starts["day"]!)).toBe(Date.parse("2026-11-21T00:00:00Z"));
    expect(Date.parse(starts["week"]!)).toBe(Date.parse("2026-11-16T00:00:00Z"));
    expect(Date.parse(starts["month"]!)).toBe(Date.parse("2026-11-01T00:00:00Z"));
  });

  it("limit_warning alert details: measure, value, limit, share", async () => {
    const w = await readStream<{ details: Record<string, string> }>(
      nc,
      "RISK_CONTROL",
      `mts.v1.risk.alert.limit_warning.${F}`,
    );
    expect(w.length).toBeGreaterThan(0);
    for (const k of ["measure", "value", "limit", "share"])
      expect(typeof w[0]!.data.details[k], k).toBe("string");
  });

  it("closing orders on mts.v1.oms.order.submit.<fund_id> are contract Orders the engine itself approves", async () => {
    const closing = await readStream<Record<string, unknown>>(
      nc,
      "OMS_INTENTS",
      `mts.v1.oms.order.submit.${F}`,
    );
    expect(closing.length).toBeGreaterThan(0);
    for (const { data: o } of closing) {
      for (const k of [
        "order_id",
        "idempotency_key",
        "fund_id",
        "broker",
        "symbol",
        "side",
        "order_type",
        "quantity",
      ])
        expect(typeof o[k], k).toBe("string");
      expect(o.fund_id).toBe(F);
      expect(["BUY", "SELL"]).toContain(o.side);
      expect(["MARKET", "LIMIT", "STOP", "STOP_LIMIT"]).toContain(o.order_type);
      for (const k of ["order_id", "idempotency_key", "fund_id", "broker", "symbol"])
        expect(String(o[k]), k).toMatch(
          k === "order_id" || k === "idempotency_key" ? /./ : /^[A-Za-z0-9_-]{1,64}$/,
        );
      expect(formatProblems(o)).toEqual([]);
    }
  });

  it("the closing order, checked by the OMS on mts.v1.risk.check, is approved (a halted fund still closes)", () => {
    expect(closingDecision).toMatchObject({ approved: true, rejecting_gate: "", rejection_code: "" });
  });

  it("cancel_all is exactly { fund_id, reason, at } on mts.v1.oms.cancel_all.<fund_id>", async () => {
    const c = await readStream<Record<string, unknown>>(nc, "OMS_INTENTS", `mts.v1.oms.cancel_all.${F}`);
    expect(c.length).toBeGreaterThan(0);
    expect(Object.keys(c[0]!.data).sort()).toEqual(["at", "fund_id", "reason"]);
    expect(c[0]!.data.fund_id).toBe(F);
    expect(typeof c[0]!.data.reason).toBe("string");
    expect(formatProblems(c[0]!.data)).toEqual([]);
  });

  it("EngineStatus: instance, ready, halted_funds [{fund_id, severity, since}], cursors, state_digest, uptime_s, owned", async () => {
    const m = await nc.request("mts.v1.risk.status", "{}", { timeout: 5000 });
    expect(m.headers?.get("Content-Type")).toBe("application/json");
    const s = m.json<Record<string, unknown>>();
    expect(typeof s.instance).toBe("string");
    expect(s.ready).toBe(true);
    expect(typeof s.state_digest).toBe("string");
    expect((s.state_digest as string).length).toBeGreaterThan(0);
    expect(typeof s.uptime_s).toBe("number");
    expect(typeof s.owned).toBe("number");
    expect(s.owned as number).toBeGreaterThan(0);
    const halted = s.halted_funds as Record<string, unknown>[];
    const h = halted.find((x) => x.fund_id === F);
    expect(h).toBeDefined();
    expect(Object.keys(h!).sort()).toEqual(["fund_id", "severity", "since"]);
    expect([
      "DAILY_LOSS",
      "WEEKLY_LOSS",
      "MONTHLY_LOSS",
      "MANUAL",
      "RECONCILIATION",
      "KILL_SWITCH",
    ]).toContain(h!.severity);
    expect(h!.since).toMatch(RFC3339_UTC);
    // cursors: the last applied stream sequence of each followed stream
    const cursors = s.cursors as Record<string, number>;
    const jsm = await jetstreamManager(nc);
    for (const st of ["RISK_ENVELOPES", "REFDATA", "FILLS"]) {
      const last = (await jsm.streams.info(st)).state.last_seq;
      expect(cursors[st], st).toBe(last);
    }
    for (const v of Object.values(cursors)) expect(Number.isInteger(v)).toBe(true);
  });

  it("envelope.get: the envelope in JSON (canonical decimals), a version, and the { error: { code, message } } form", async () => {
    const get = async (body: unknown) => {
      const m = await nc.request("mts.v1.risk.envelope.get", JSON.stringify(body), { timeout: 5000 });
      return { ct: m.headers?.get("Content-Type"), body: m.json<Record<string, unknown>>() };
    };
    const cur = await get({ fund_id: F });
    expect(cur.ct).toBe("application/json");
    expect(cur.body).toMatchObject({
      fund_id: F,
      version: 1,
      capital: "1000000",
      daily_loss_halt_pct: "0.03",
    });
    expect(formatProblems(cur.body)).toEqual([]);
    expect((await get({ fund_id: F, version: 1 })).body.version).toBe(1);
    const bad: string[] = [];
    for (const req of [{ fund_id: "nobody" }, { fund_id: F, version: 7 }, {}, { fund_id: "_" }]) {
      const r = await get(req);
      const e = r.body.error as Record<string, unknown> | undefined;
      if (
        !e ||
        Object.keys(r.body).length !== 1 ||
        typeof e.code !== "string" ||
        typeof e.message !== "string" ||
        e.code === ""
      )
        bad.push(`${JSON.stringify(req)} -> ${JSON.stringify(r.body)}`);
    }
    expect(bad).toEqual([]);
  });

  it("envelope.get in protobuf (both content types): a RiskEnvelope with the protobuf Content-Type", async () => {
    for (const ct of ["application/x-protobuf", "application/protobuf"]) {
      const h = natsHeaders();
      h.set("Content-Type", ct);
      const m = await nc.request(
        "mts.v1.risk.envelope.get",
        PbEnvReq.encode(PbEnvReq.fromObject({ fund_id: F })).finish(),
        {
          timeout: 5000,
          headers: h,
        },
      );
      expect(["application/x-protobuf", "application/protobuf"], ct).toContain(
        m.headers?.get("Content-Type"),
      );
      const env = PbEnvelope.toObject(PbEnvelope.decode(m.data), { longs: Number, enums: String }) as Record<
        string,
        unknown
      >;
      expect(env.fund_id).toBe(F);
      expect(Number(env.version)).toBe(1);
      expect(env.capital).toBe("1000000");
    }
  });

  it("an order after the kill switch is FUND_HALTED with details.severity KILL_SWITCH", async () => {
    const d = await bus.check(order({ fund_id: F, quantity: "1" }));
    expect(d).toMatchObject({ approved: false, rejecting_gate: "drawdown", rejection_code: "FUND_HALTED" });
    expect(d.details.severity).toBe("KILL_SWITCH");
  });
});
