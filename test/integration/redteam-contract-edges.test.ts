/**
 * Red team (wire contract, CONTRACT.md "Encoding", "Subjects"): edge inputs whose answers and
 * journal records must still follow the contract — JSON numbers (exactly representable integers
 * only), extreme decimals echoed canonically, requests with no usable fund_id journaled on
 * mts.v1.risk.decision._ (never on a subject built from a bad id), non-JSON bodies, protobuf
 * errors, envelope.get of a full envelope with canonical decimals in every nested field.
 */
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import type protobufT from "protobufjs";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

const protobuf = createRequire(import.meta.url)("protobufjs") as typeof protobufT;
const root = new protobuf.Root().loadSync(
  new URL("../../subjects/riskengine.proto", import.meta.url).pathname,
  {
    keepCase: true,
  },
);
const PbDecision = root.lookupType("mts.risk.v1.RiskDecision");
const PbEnvReq = root.lookupType("mts.risk.v1.EnvelopeRequest");

const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const CANONICAL = /^-?(0|[1-9]\d*)(\.\d*[1-9])?$/;
function nonCanonical(x: unknown, path = ""): string[] {
  if (typeof x === "string")
    return NUMERIC.test(x) && (!CANONICAL.test(x) || x === "-0") ? [`${path}=${JSON.stringify(x)}`] : [];
  if (Array.isArray(x)) return x.flatMap((v, i) => nonCanonical(v, `${path}[${i}]`));
  if (x && typeof x === "object")
    return Object.entries(x).flatMap(([k, v]) => nonCanonical(v, path ? `${path}.${k}` : k));
  return [];
}
type D = {
  order_id: string;
  approved: boolean;
  rejecting_gate: string;
  rejection_code: string;
  reason: string;
  details: Record<string, string>;
  envelope_id: string;
  decided_at: string;
};
const outcome = (d: D) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);

describe("red team contract: edge inputs, still on contract", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = { now: () => Date.parse(NOW) };
  const F = "edg";

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await bus.instrument({ symbol: "AAPL", asset_class: "equity", sector: "tech" });
    await bus.quote("AAPL", "99.99", "100.01", NOW);
    const s = await bus.envelope(
      envelope(F, {
        capital: "1000000.000",
        allowed_asset_classes: ["equity", "crypto"],
        max_order_notional: "50000.0",
        max_order_qty: "10000.00",
        max_position_pct: "0.10",
        max_gross_exposure_pct: "1.50",
        max_net_exposure_pct: "1.00",
        max_sector_pct: "0.30",
        max_asset_class_pct: { crypto: "0.20" },
        daily_loss_halt_pct: "0.03",
        weekly_loss_halt_pct: "0.06",
        monthly_loss_halt_pct: "0.10",
        enable_shorting: false,
        max_borrow_fee_bps: "300.0",
        synthetic_stop_pct: "0.10",
        max_quote_age_ms: 5000,
        restricted_symbols: [],
        velocity: { window_s: 60, max_orders: 500, max_notional: "500000.00" },
        strategies: { "mom-1": { max_order_notional: "20000.0" } },
      }),
    );
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("JSON numbers: exact integers accepted and echoed as canonical decimal strings; others SCHEMA_INVALID", async () => {
    // CONTRACT.md: "Numbers given as JSON numbers are accepted only where they are exactly
    // representable integers; anything else is SCHEMA_INVALID" and "Decimal strings the engine
    // emits are canonical: no exponent".
    const okNum = await bus.check(order({ fund_id: F, quantity: 100, limit_price: 190 }));
    expect(outcome(okNum)).toBe("approved");
    const big = await bus.check(order({ fund_id: F, quantity: 20000, limit_price: 1 }));
    expect(outcome(big)).toBe("static/MAX_ORDER_QTY_EXCEEDED");
    expect(big.details.quantity).toBe("20000");
    const frac = await bus.check(order({ fund_id: F, quantity: 1.5 }));
    expect(outcome(frac)).toBe("schema/SCHEMA_INVALID");
    // 1e21 is an integer a double holds exactly; if accepted, it must be echoed without exponent
    const huge = await bus.check(order({ fund_id: F, quantity: 1e21 }));
    expect(nonCanonical(huge.details)).toEqual([]);
    expect(huge.reason).not.toMatch(/e\+21/);
  });

  it("extreme decimals are echoed canonically in details and journal records", async () => {
    const cases = [
      order({ fund_id: F, quantity: "0.000000000000000001", limit_price: "0.000000000000000001" }),
      order({ fund_id: F, quantity: "99999999999.999999", limit_price: "1.000000" }),
      order({ fund_id: F, quantity: "00100", limit_price: "100.10" }),
      order({ fund_id: F, quantity: "100", limit_price: "0100.100" }),
      order({ fund_id: F, order_type: "MARKET", limit_price: undefined, quantity: "600.000" }),
    ];
    const bad: string[] = [];
    for (const o of cases) {
      const d = await bus.check(o);
      for (const p of nonCanonical(d.details))
        bad.push(`${String(o.quantity)}@${String(o.limit_price)} ${outcome(d)}: ${p}`);
    }
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("RISK_DECISIONS");
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const body = (await jsm.streams.getMessage("RISK_DECISIONS", { seq }))!.json<unknown>();
      for (const r of (Array.isArray(body) ? body : [body]) as Record<string, unknown>[]) {
        const { order: _o, ...rest } = r; // the order is kept as received
        for (const p of nonCanonical(rest)) bad.push(`record ${seq}: ${p}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("a request with no usable fund_id is journaled on mts.v1.risk.decision._, never on a subject made of the bad id", async () => {
    // CONTRACT.md: "A decision on a request with no usable `fund_id` is journaled on
    // `mts.v1.risk.decision._`."
    const jsm = await jetstreamManager(nc);
    const before = (await jsm.streams.info("RISK_DECISIONS")).state.last_seq;
    const bodies: (string | Uint8Array)[] = [
      JSON.stringify(order({ fund_id: "a.b" })),
      JSON.stringify(order({ fund_id: "*" })),
      JSON.stringify(order({ fund_id: ">" })),
      JSON.stringify(order({ fund_id: "_" })),
      JSON.stringify(order({ fund_id: "" })),
      JSON.stringify(order({ fund_id: "f".repeat(65) })),
      JSON.stringify(order({ fund_id: 42 })),
      "not json at all",
      "",
      "[1,2,3]",
      "null",
    ];
    const bad: string[] = [];
    for (const b of bodies) {
      const m = await nc.request("mts.v1.risk.check", b, { timeout: 5000 });
      const d = m.json<D>();
      if (outcome(d) !== "schema/SCHEMA_INVALID") bad.push(`${String(b).slice(0, 40)}: ${outcome(d)}`);
      if (
        typeof d.order_id !== "string" ||
        typeof d.details !== "object" ||
        typeof d.envelope_id !== "string"
      )
        bad.push(`${String(b).slice(0, 40)}: shape ${JSON.stringify(d)}`);
    }
    await waitFor(async () => (await jsm.streams.info("RISK_DECISIONS")).state.last_seq >= before + 1);
    await waitFor(
      async () => {
        const info = await jsm.streams.info("RISK_DECISIONS");
        let n = 0;
        for (let seq = before + 1; seq <= info.state.last_seq; seq++) {
          const body = (await jsm.streams.getMessage("RISK_DECISIONS", { seq }))!.json<unknown>();
          n += Array.isArray(body) ? body.length : 1;
        }
        return n >= bodies.length;
      },
      { message: "every decision journaled" },
    );
    const info = await jsm.streams.info("RISK_DECISIONS");
    for (let seq = before + 1; seq <= info.state.last_seq; seq++) {
      const m = (await jsm.streams.getMessage("RISK_DECISIONS", { seq }))!;
      if (m.subject !== "mts.v1.risk.decision._") bad.push(`seq ${seq} on ${m.subject}`);
    }
    expect(bad).toEqual([]);
  });

  it("a garbage protobuf request answers a protobuf SCHEMA_INVALID decision with a protobuf Content-Type", async () => {
    for (const ct of ["application/x-protobuf", "application/protobuf"]) {
      const h = natsHeaders();
      h.set("Content-Type", ct);
      const m = await nc.request("mts.v1.risk.check", new Uint8Array([0xff, 0xff, 0xff, 0x01, 0x02]), {
        timeout: 5000,
        headers: h,
      });
      expect(["application/x-protobuf", "application/protobuf"], ct).toContain(
        m.headers?.get("Content-Type"),
      );
      const d = PbDecision.toObject(PbDecision.decode(m.data), { defaults: true }) as D;
      expect(outcome(d)).toBe("schema/SCHEMA_INVALID");
      expect(d.decided_at).toMatch(/Z$/);
    }
  });

  it("envelope.get of a full envelope: every decimal canonical, nested maps included; protobuf reply the same values", async () => {
    const m = await nc.request("mts.v1.risk.envelope.get", JSON.stringify({ fund_id: F }), { timeout: 5000 });
    const env = m.json<Record<string, unknown>>();
    expect(env).toMatchObject({
      fund_id: F,
      version: 1,
      capital: "1000000",
      max_order_notional: "50000",
      max_order_qty: "10000",
      max_asset_class_pct: { crypto: "0.2" },
      velocity: { window_s: 60, max_orders: 500, max_notional: "500000" },
      strategies: { "mom-1": { max_order_notional: "20000" } },
      max_quote_age_ms: 5000,
      enable_shorting: false,
      restricted_symbols: [],
    });
    expect(nonCanonical(env)).toEqual([]);
    expect(typeof env.version).toBe("number");
  });

  it("envelope.get errors: { error: { code, message } } for a malformed request, a missing fund and a bad version type", async () => {
    const bad: string[] = [];
    for (const body of [
      "not json",
      "[]",
      JSON.stringify({ fund_id: F, version: "x" }),
      JSON.stringify({ fund_id: F, version: 0 }),
      JSON.stringify({ fund_id: "a.b" }),
    ]) {
      const m = await nc.request("mts.v1.risk.envelope.get", body, { timeout: 5000 });
      let r: Record<string, unknown> = {};
      try {
        r = m.json<Record<string, unknown>>();
      } catch {
        bad.push(`${body}: not JSON`);
        continue;
      }
      const e = r.error as Record<string, unknown> | undefined;
      if (!e || typeof e.code !== "string" || typeof e.message !== "string" || Object.keys(r).length !== 1)
        bad.push(`${body}: ${JSON.stringify(r)}`);
    }
    expect(bad).toEqual([]);
  });

  it("envelope.get for an unknown fund over protobuf: an error reply an OMS can tell from an envelope", async () => {
    const h = natsHeaders();
    h.set("Content-Type", "application/x-protobuf");
    const m = await nc.request(
      "mts.v1.risk.envelope.get",
      PbEnvReq.encode(PbEnvReq.fromObject({ fund_id: "nobody" })).finish(),
      {
        timeout: 5000,
        headers: h,
      },
    );
    const ct = m.headers?.get("Content-Type");
    // documented in subjects/riskengine.proto: the error is JSON with Content-Type application/json
    expect(ct).toBe("application/json");
    const e = m.json<{ error: { code: string; message: string } }>();
    expect(typeof e.error.code).toBe("string");
    expect(typeof e.error.message).toBe("string");
  });

  it("mts.v1.risk.check and its fund-partitioned form are served in queue group `riskengine`", async () => {
    // A member of our own in queue group `riskengine` shares the requests with the engine: it gets
    // some, not all (the engine is in the same group) and not none.
    for (const subject of ["mts.v1.risk.check", `mts.v1.risk.check.${F}`]) {
      let ours = 0;
      let answered = 0;
      const member = nc.subscribe(subject, { queue: "riskengine", callback: () => void ours++ });
      const inbox = `_INBOX.rtq.${Math.random().toString(36).slice(2)}`;
      const replies = nc.subscribe(inbox, { callback: () => void answered++ });
      await nc.flush();
      const n = 60;
      for (let k = 0; k < n; k++)
        nc.publish(subject, JSON.stringify(order({ fund_id: F, quantity: "1" })), { reply: inbox });
      await waitFor(() => ours + answered >= n, { message: `${subject}: ${ours} + ${answered} of ${n}` });
      member.unsubscribe();
      replies.unsubscribe();
      expect(ours, subject).toBeGreaterThan(0);
      expect(ours, subject).toBeLessThan(n);
      expect(ours + answered, subject).toBe(n);
    }
  });

  it("an older or equal envelope version is ignored, alerted, and not kept: envelope.get answers the error form for it", async () => {
    const G = "edgv";
    const v3 = await bus.envelope(envelope(G, { version: 3, capital: "300" }));
    const v2 = await bus.envelope(envelope(G, { version: 2, capital: "200" }));
    const v3b = await bus.envelope(envelope(G, { version: 3, capital: "333" }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", Math.max(v3, v2, v3b)));
    const get = async (body: unknown) =>
      (await nc.request("mts.v1.risk.envelope.get", JSON.stringify(body), { timeout: 5000 })).json<
        Record<string, unknown>
      >();
    expect(await get({ fund_id: G })).toMatchObject({ version: 3, capital: "300" });
    expect(await get({ fund_id: G, version: 3 })).toMatchObject({ version: 3, capital: "300" });
    const old = await get({ fund_id: G, version: 2 });
    expect(old.error, JSON.stringify(old)).toBeDefined();
    const jsm = await jetstreamManager(nc);
    const alerts = async () => {
      const info = await jsm.streams.info("RISK_CONTROL", { subjects_filter: `mts.v1.risk.alert.*.${G}` });
      return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    };
    await waitFor(async () => (await alerts()) >= 2, { message: "two ignored-version alerts" });
  });

  it("EngineStatus.cursors names every stream the engine follows, 0 for one it has applied nothing of", async () => {
    // CONTRACT.md EngineStatus: "cursors": { "<STREAM>": <last applied stream sequence> }. Expected:
    // a key for each followed stream (FILLS and OMS_ORDERS are empty here: 0). Actual: streams
    // with nothing applied are left out, so `status.cursors.FILLS` is undefined, not a sequence.
    const s = (await nc.request("mts.v1.risk.status", "{}", { timeout: 5000 })).json<{
      cursors: Record<string, unknown>;
    }>();
    const missing = [
      "RISK_ENVELOPES",
      "REFDATA",
      "QUOTES",
      "FILLS",
      "OMS_ORDERS",
      "RISK_CONTROL",
      "RISK_DECISIONS",
    ].filter((st) => typeof s.cursors[st] !== "number");
    expect(missing, JSON.stringify(s.cursors)).toEqual([]);
  });

  it("a Halt stamped with an offset (valid RFC 3339) is reported in UTC: status since, FUND_HALTED details.since", async () => {
    // CONTRACT.md: "Timestamps are RFC 3339 strings in UTC" — what the engine emits, whatever the
    // operator's tool wrote.
    const H = "edgh";
    const e = await bus.envelope(envelope(H));
    const h = await bus.control(`mts.v1.risk.halt.${H}`, {
      fund_id: H,
      severity: "MANUAL",
      reason: "offset",
      at: "2026-11-21T15:29:59.5+01:00",
      by: "ops",
    });
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e) && applied(engine, "RISK_CONTROL", h));
    const s = (await nc.request("mts.v1.risk.status", "{}", { timeout: 5000 })).json<{
      halted_funds: { fund_id: string; since: string }[];
    }>();
    const since = s.halted_funds.find((x) => x.fund_id === H)?.since;
    const d = await bus.check(order({ fund_id: H }));
    expect(outcome(d)).toBe("drawdown/FUND_HALTED");
    const utc = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
    expect(since).toMatch(utc);
    expect(d.details.since).toMatch(utc);
    expect(Date.parse(since!)).toBe(Date.parse("2026-11-21T14:29:59.500Z"));
  });

  it('every request with an unusable fund_id ("_", a dot, a wildcard) is SCHEMA_INVALID with details.path = fund_id', async () => {
    const bad: string[] = [];
    for (const f of ["_", "a.b", "*", ">", "", "f".repeat(65)]) {
      const d = await bus.check(order({ fund_id: f }));
      if (outcome(d) !== "schema/SCHEMA_INVALID" || d.details.path !== "fund_id")
        bad.push(`${f}: ${outcome(d)} ${d.details.path}`);
    }
    expect(bad).toEqual([]);
  });

  it("fills, quotes and OMS events stamped with an offset: everything the engine then emits is in UTC", async () => {
    const P = "edgp";
    const e = await bus.envelope(
      envelope(P, {
        daily_loss_halt_pct: "0.03",
        synthetic_stop_pct: "0.10",
        warn_at_pct: "0.5",
        max_position_pct: "0.2",
      }),
    );
    const q = await bus.quote("AAPL", "99.99", "100.01", "2026-11-21T15:30:00+01:00");
    const f1 = await bus.fill({
      fund_id: P,
      side: "BUY",
      quantity: "1000",
      price: "100",
      timestamp: "2026-11-21T15:29:59.250+01:00",
    });
    await waitFor(
      () =>
        applied(engine, "RISK_ENVELOPES", e) && applied(engine, "QUOTES", q) && applied(engine, "FILLS", f1),
    );
    const o = order({ fund_id: P, quantity: "1" });
    await bus.check(o);
    await bus.orderEvent("accepted", P, String(o.order_id), "2026-11-21T15:30:00+01:00");
    const f2 = await bus.fill({
      fund_id: P,
      side: "SELL",
      quantity: "500",
      price: "20",
      timestamp: "2026-11-21T15:29:59.750+01:00",
    });
    await waitFor(() => applied(engine, "FILLS", f2));
    await waitFor(
      async () => {
        const jsm = await jetstreamManager(nc);
        const info = await jsm.streams.info("RISK_CONTROL", { subjects_filter: `mts.v1.risk.halt.${P}` });
        return (info.state.messages ?? 0) > 0;
      },
      { message: "loss halt" },
    );
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("RISK_CONTROL");
    const bad: string[] = [];
    const utc = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
    const scan = (x: unknown, path: string): void => {
      if (typeof x === "string") {
        if (/\d{4}-\d{2}-\d{2}T/.test(x) && /^\d{4}-/.test(x) && !utc.test(x)) bad.push(`${path}=${x}`);
      } else if (x && typeof x === "object") for (const [k, v] of Object.entries(x)) scan(v, `${path}.${k}`);
    };
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = (await jsm.streams.getMessage("RISK_CONTROL", { seq }))!;
      if (!m.subject.endsWith(`.${P}`)) continue;
      scan(m.json<unknown>(), m.subject);
    }
    const st = (
      await nc.request("mts.v1.risk.status", JSON.stringify({ fund_id: P }), { timeout: 5000 })
    ).json<{
      halted_funds: { fund_id: string }[];
      fund: unknown;
    }>();
    scan(
      st.halted_funds.filter((h) => h.fund_id === P),
      "status.halted_funds",
    );
    scan(st.fund, "status.fund");
    const d = await bus.check(order({ fund_id: P, quantity: "1" }));
    scan(d, "decision");
    expect(bad).toEqual([]);
  });
});
