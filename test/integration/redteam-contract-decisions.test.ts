/**
 * Red team (wire contract, CONTRACT.md "Encoding", "Messages", "Gates and rejection codes"):
 * every RiskDecision the engine answers, one per gate and code (approvals, replays), checked
 * black-box on the bus: exactly the eight fields with their types, the gate/code pairs of the
 * table, flat string details, canonical decimals, RFC 3339 UTC `decided_at`, `envelope_id` =
 * `<fund_id>@v<version>`, the same decision journaled on mts.v1.risk.decision.<fund_id> (single
 * records and `Mts-Batch` arrays) conforming to subjects/decision-record.schema.json, and the
 * protobuf replies (both content types) decoded with subjects/riskengine.proto alone.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type protobufT from "protobufjs";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

const require = createRequire(import.meta.url);
const protobuf = require("protobufjs") as typeof protobufT;
const Ajv = require("ajv") as new (o?: Record<string, unknown>) => {
  compile(s: unknown): ((d: unknown) => boolean) & { errors?: unknown };
};

const root = new protobuf.Root().loadSync(
  new URL("../../subjects/riskengine.proto", import.meta.url).pathname,
  {
    keepCase: true,
  },
);
const PbOrder = root.lookupType("mts.risk.v1.Order");
const PbDecision = root.lookupType("mts.risk.v1.RiskDecision");

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

/** The gate table of CONTRACT.md: gate -> its codes. */
const GATES: Record<string, string[]> = {
  idempotency: ["IDEMPOTENCY_CONFLICT", "DUPLICATE_ORDER_ID"],
  schema: ["SCHEMA_INVALID"],
  engine: ["NO_ENVELOPE", "STATE_NOT_READY"],
  static: [
    "BROKER_NOT_ALLOWED",
    "ORDER_TYPE_NOT_ALLOWED",
    "ASSET_CLASS_NOT_ALLOWED",
    "SYMBOL_RESTRICTED",
    "MAX_ORDER_QTY_EXCEEDED",
    "MAX_ADV_PCT_EXCEEDED",
    "MAX_ORDER_NOTIONAL_EXCEEDED",
    "PRICE_COLLAR_BREACHED",
    "STALE_MARKET_DATA",
  ],
  velocity: ["DUPLICATE_ORDER", "MAX_OPEN_ORDERS_EXCEEDED", "VELOCITY_EXCEEDED"],
  position: [
    "MAX_POSITION_EXCEEDED",
    "GROSS_EXPOSURE_EXCEEDED",
    "NET_EXPOSURE_EXCEEDED",
    "SECTOR_CONCENTRATION_EXCEEDED",
    "ASSET_CLASS_CONCENTRATION_EXCEEDED",
  ],
  drawdown: ["FUND_HALTED"],
  reconciliation: ["RECONCILIATION_LOCK"],
  short_side: ["SHORTING_DISABLED", "BORROW_FEE_TOO_HIGH", "LOCATE_REQUIRED"],
  cro_veto: ["CRO_VETO"],
};

/** JSON with object keys sorted, for deep comparison. */
const canon = (x: unknown): string =>
  JSON.stringify(x, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const CANONICAL = /^-?(0|[1-9]\d*)(\.\d*[1-9])?$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
/** Why a string that looks like a decimal is not canonical, or undefined. */
const nonCanonical = (v: string): string | undefined =>
  NUMERIC.test(v) && (!CANONICAL.test(v) || v === "-0") ? v : undefined;

/** Every contract-level defect of one decision, as readable strings. */
function shapeProblems(d: D, fund: string | undefined): string[] {
  const p: string[] = [];
  const keys = Object.keys(d).sort();
  const want = [
    "approved",
    "decided_at",
    "details",
    "envelope_id",
    "order_id",
    "reason",
    "rejecting_gate",
    "rejection_code",
  ];
  if (JSON.stringify(keys) !== JSON.stringify(want)) p.push(`keys ${keys.join(",")}`);
  if (typeof d.order_id !== "string") p.push("order_id not a string");
  if (typeof d.approved !== "boolean") p.push("approved not a boolean");
  if (typeof d.reason !== "string") p.push("reason not a string");
  if (d.approved && (d.rejecting_gate !== "" || d.rejection_code !== ""))
    p.push(`approved with gate/code ${d.rejecting_gate}/${d.rejection_code}`);
  if (!d.approved && !(GATES[d.rejecting_gate] ?? []).includes(d.rejection_code))
    p.push(`gate/code ${d.rejecting_gate}/${d.rejection_code} not in the table`);
  if (d.details === null || typeof d.details !== "object" || Array.isArray(d.details))
    p.push("details not a map");
  else
    for (const [k, v] of Object.entries(d.details)) {
      if (typeof v !== "string") p.push(`details.${k} is ${typeof v}`);
      else if (nonCanonical(v)) p.push(`details.${k} = ${JSON.stringify(v)} not canonical`);
    }
  if (!RFC3339_UTC.test(d.decided_at) || Number.isNaN(Date.parse(d.decided_at)))
    p.push(`decided_at ${d.decided_at}`);
  if (fund !== undefined && d.envelope_id !== "" && !new RegExp(`^${fund}@v[1-9]\\d*$`).test(d.envelope_id))
    p.push(`envelope_id ${d.envelope_id}`);
  return p;
}

describe("red team contract: RiskDecision on the wire, journal, protobuf", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  let advisor: Subscription;
  const clock = { now: () => Date.parse(NOW) + 250 };
  /** label -> [order sent, decision answered, expected "gate/code" or "approved"] */
  const decided = new Map<string, [Record<string, unknown>, D, string]>();

  const check = async (label: string, o: Record<string, unknown>, want: string) => {
    const d = await bus.check(o);
    decided.set(label, [o, d, want]);
    return d;
  };
  const outcome = (d: D) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, {
      clock,
      flags: { "cro_veto.enabled": true, "cro_veto.timeout_s": 2, "cro_veto.confidence_threshold": 0.85 },
    });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    advisor = nc.subscribe("mts.v1.llm.cro.veto", {
      callback: (_e, m) => {
        const req = m.json<{ order?: { fund_id?: string } }>();
        const veto = req.order?.fund_id === "ctcro";
        m.respond(JSON.stringify({ veto, confidence: "0.950", reason: veto ? "news" : "fine" }));
      },
    });
    await nc.flush();
    await bus.instrument({ symbol: "AAPL", asset_class: "equity", sector: "tech", adv: "10000" });
    await bus.instrument({ symbol: "MSFT", asset_class: "equity", sector: "tech", adv: "10000" });
    await bus.instrument({ symbol: "BTC", asset_class: "crypto" });
    await bus.instrument({ symbol: "HTB", asset_class: "equity", borrow_fee_bps: "500", shortable: true });
    await bus.instrument({ symbol: "NOSH", asset_class: "equity" });
    await bus.instrument({ symbol: "NOQ", asset_class: "equity", adv: "10000" });
    await bus.instrument({ symbol: "NOADV", asset_class: "equity" });
    for (const s of ["AAPL", "MSFT", "BTC", "HTB", "NOSH", "NOADV"]) await bus.quote(s, "99.99", "100.01");
    const envs: Record<string, unknown>[] = [
      envelope("ctstatic", {
        allowed_brokers: ["paper"],
        allowed_order_types: ["LIMIT", "MARKET"],
        allowed_asset_classes: ["equity"],
        restricted_symbols: ["MSFT"],
        max_order_qty: "1000.0",
        max_adv_pct: "0.050",
        max_order_notional: "30000.00",
        price_collar_pct: "0.050",
      }),
      envelope("ctvelo", { velocity: { window_s: 60, max_orders: 2 } }),
      envelope("ctvelon", { velocity: { window_s: 60, max_orders: 100, max_notional: "15000.50" } }),
      envelope("ctdup", { duplicate_window_ms: 60000 }),
      envelope("ctopen", { max_open_orders: 1 }),
      envelope("ctpos", { max_position_pct: "0.050" }),
      envelope("ctgross", { max_position_pct: "0.5", max_gross_exposure_pct: "0.10" }),
      envelope("ctnet", { max_gross_exposure_pct: "0.9", max_net_exposure_pct: "0.10" }),
      envelope("ctsector", { max_sector_pct: "0.10" }),
      envelope("ctclass", { max_asset_class_pct: { equity: "0.10" } }),
      envelope("ctshort", {}),
      envelope("ctfee", { enable_shorting: true, max_borrow_fee_bps: "100.0" }),
      envelope("ctlocate", { enable_shorting: true }),
      envelope("ctidem", {}),
      envelope("cthalt", {}),
      envelope("ctrecon", {}),
      envelope("ctcro", {}),
      envelope("ctok", { version: 3, capital: "1000000.00" }),
    ];
    let last = 0;
    for (const e of envs) last = await bus.envelope(e);
    await bus.control("mts.v1.risk.halt.cthalt", {
      fund_id: "cthalt",
      severity: "MANUAL",
      reason: "red team",
      at: NOW,
      by: "ops",
    });
    const r = await bus.control("mts.v1.risk.reconcile.lock.ctrecon", {
      fund_id: "ctrecon",
      locked: true,
      reason: "red team",
      at: NOW,
    });
    await waitFor(() => applied(engine, "RISK_ENVELOPES", last) && applied(engine, "RISK_CONTROL", r));

    // sequential: each second order depends on the first
    const dupA = order({ fund_id: "ctdup", quantity: "10.50" });
    await check("dup-first", dupA, "approved");
    await check("dup", order({ fund_id: "ctdup", quantity: "10.50" }), "velocity/DUPLICATE_ORDER");
    await check("open-first", order({ fund_id: "ctopen" }), "approved");
    await check("open", order({ fund_id: "ctopen", quantity: "7" }), "velocity/MAX_OPEN_ORDERS_EXCEEDED");
    for (let i = 0; i < 2; i++)
      await check(`velo-${i}`, order({ fund_id: "ctvelo", quantity: `${i + 1}` }), "approved");
    await check("velo", order({ fund_id: "ctvelo", quantity: "3" }), "velocity/VELOCITY_EXCEEDED");
    await check(
      "velon-first",
      order({ fund_id: "ctvelon", quantity: "100", limit_price: "100.005" }),
      "approved",
    );
    await check(
      "velon",
      order({ fund_id: "ctvelon", quantity: "60", limit_price: "100.10" }),
      "velocity/VELOCITY_EXCEEDED",
    );
    const idemA = order({ fund_id: "ctidem" });
    await check("idem-first", idemA, "approved");
    await check(
      "idem-conflict",
      {
        ...order({ fund_id: "ctidem", quantity: "101" }),
        idempotency_key: idemA.idempotency_key,
        order_id: idemA.order_id,
      },
      "idempotency/IDEMPOTENCY_CONFLICT",
    );
    await check(
      "dup-order-id",
      { ...order({ fund_id: "ctidem", quantity: "4" }), order_id: idemA.order_id },
      "idempotency/DUPLICATE_ORDER_ID",
    );
    // the rest concurrently: several land in group-committed batches
    const batch: [string, Record<string, unknown>, string][] = [
      ["broker", order({ fund_id: "ctstatic", broker: "ibkr" }), "static/BROKER_NOT_ALLOWED"],
      [
        "type",
        order({ fund_id: "ctstatic", order_type: "STOP", stop_price: "101", limit_price: null }),
        "static/ORDER_TYPE_NOT_ALLOWED",
      ],
      [
        "class",
        order({ fund_id: "ctstatic", symbol: "BTC", quantity: "1" }),
        "static/ASSET_CLASS_NOT_ALLOWED",
      ],
      ["restricted", order({ fund_id: "ctstatic", symbol: "MSFT" }), "static/SYMBOL_RESTRICTED"],
      ["qty", order({ fund_id: "ctstatic", quantity: "2000.50" }), "static/MAX_ORDER_QTY_EXCEEDED"],
      ["adv", order({ fund_id: "ctstatic", quantity: "600.5" }), "static/MAX_ADV_PCT_EXCEEDED"],
      [
        "adv-none",
        order({ fund_id: "ctstatic", symbol: "NOADV", quantity: "1" }),
        "static/MAX_ADV_PCT_EXCEEDED",
      ],
      [
        "notional",
        order({ fund_id: "ctstatic", quantity: "400.5", limit_price: "100.50" }),
        "static/MAX_ORDER_NOTIONAL_EXCEEDED",
      ],
      ["collar", order({ fund_id: "ctstatic", limit_price: "120.50" }), "static/PRICE_COLLAR_BREACHED"],
      ["stale", order({ fund_id: "ctstatic", symbol: "NOQ", quantity: "10" }), "static/STALE_MARKET_DATA"],
      ["static-ok", order({ fund_id: "ctstatic", quantity: "10.0", limit_price: "100.500" }), "approved"],
      [
        "market-ok",
        order({ fund_id: "ctok", order_type: "MARKET", quantity: "3.25", limit_price: undefined }),
        "approved",
      ],
      [
        "pos",
        order({ fund_id: "ctpos", quantity: "600.5", limit_price: "100.25" }),
        "position/MAX_POSITION_EXCEEDED",
      ],
      ["gross", order({ fund_id: "ctgross", quantity: "1100.5" }), "position/GROSS_EXPOSURE_EXCEEDED"],
      ["net", order({ fund_id: "ctnet", quantity: "1100.5" }), "position/NET_EXPOSURE_EXCEEDED"],
      [
        "sector",
        order({ fund_id: "ctsector", quantity: "1100.5" }),
        "position/SECTOR_CONCENTRATION_EXCEEDED",
      ],
      [
        "assetclass",
        order({ fund_id: "ctclass", quantity: "1100.5" }),
        "position/ASSET_CLASS_CONCENTRATION_EXCEEDED",
      ],
      ["halted", order({ fund_id: "cthalt" }), "drawdown/FUND_HALTED"],
      ["recon", order({ fund_id: "ctrecon" }), "reconciliation/RECONCILIATION_LOCK"],
      ["short", order({ fund_id: "ctshort", side: "SELL" }), "short_side/SHORTING_DISABLED"],
      ["fee", order({ fund_id: "ctfee", side: "SELL", symbol: "HTB" }), "short_side/BORROW_FEE_TOO_HIGH"],
      ["locate", order({ fund_id: "ctlocate", side: "SELL", symbol: "NOSH" }), "short_side/LOCATE_REQUIRED"],
      ["cro", order({ fund_id: "ctcro" }), "cro_veto/CRO_VETO"],
      ["noenv", order({ fund_id: "ctnone" }), "engine/NO_ENVELOPE"],
      ["schema", order({ fund_id: "ctok", quantity: "-1" }), "schema/SCHEMA_INVALID"],
      ["schema-nofund", order({ fund_id: undefined }), "schema/SCHEMA_INVALID"],
    ];
    await Promise.all(batch.map(([l, o, w]) => check(l, o, w)));
  }, 60_000);
  afterAll(async () => {
    await advisor?.drain().catch(() => undefined);
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("every gate and code of the table is answered with the contract's gate/code pair", () => {
    const wrong = [...decided.entries()]
      .filter(([, [, d, want]]) => outcome(d) !== want)
      .map(([l, [, d, want]]) => `${l}: want ${want}, got ${outcome(d)} (${d.reason})`);
    expect(wrong).toEqual([]);
  });

  it("every decision has exactly the RiskDecision fields, types and formats (details flat strings, canonical decimals)", () => {
    // CONTRACT.md: "`rejecting_gate` and `rejection_code` are empty strings when approved.
    // `details` is a flat map of strings. `envelope_id` is `<fund_id>@v<version>`." and "Decimal
    // strings the engine emits are canonical" and "Timestamps are RFC 3339 strings in UTC".
    const bad = [...decided.entries()].flatMap(([l, [o, d]]) =>
      shapeProblems(d, o.fund_id as string | undefined).map((p) => `${l}: ${p}`),
    );
    expect(bad).toEqual([]);
  });

  it("contract details: FUND_HALTED carries details.severity, IDEMPOTENCY_CONFLICT details.field, SCHEMA_INVALID details.path", () => {
    expect(decided.get("halted")![1].details.severity).toBe("MANUAL");
    expect(decided.get("idem-conflict")![1].details.field).toBe("quantity");
    expect(decided.get("schema")![1].details.path).toBe("quantity");
    expect(decided.get("schema-nofund")![1].details.path).toBe("fund_id");
    for (const l of ["halted", "short", "pos", "static-ok", "market-ok"])
      expect(decided.get(l)![1].envelope_id, l).toBe(
        `${String(decided.get(l)![0].fund_id)}@v${l === "market-ok" ? 3 : 1}`,
      );
  });

  it('a replay answers the original decision again with details.replayed = "true", same shape', async () => {
    const bad: string[] = [];
    for (const [l, [o, d]] of decided) {
      if (["idem-conflict", "dup-order-id", "noenv", "schema", "schema-nofund"].includes(l)) continue;
      const r = await bus.check(o);
      const p = shapeProblems(r, String(o.fund_id));
      if (p.length) bad.push(`${l}: ${p.join("; ")}`);
      if (JSON.stringify({ ...r, details: { ...r.details, replayed: undefined } }) !== JSON.stringify(d))
        bad.push(`${l}: replay differs ${JSON.stringify(r)} vs ${JSON.stringify(d)}`);
      if (r.details.replayed !== "true") bad.push(`${l}: replayed=${r.details.replayed}`);
    }
    expect(bad).toEqual([]);
  });

  it("protobuf: both content types answer protobuf with a protobuf Content-Type, decodable with the .proto, equal to the JSON answer", async () => {
    // CONTRACT.md: "`Content-Type` `application/x-protobuf` and `application/protobuf` both mean
    // protobuf, and a reply carries the `Content-Type` of its encoding."
    const bad: string[] = [];
    for (const ct of ["application/x-protobuf", "application/protobuf"]) {
      for (const l of ["static-ok", "pos", "halted", "cro", "dup"]) {
        const [o] = decided.get(l)!;
        const json = await bus.check(o);
        const h = natsHeaders();
        h.set("Content-Type", ct);
        const pbo = PbOrder.fromObject(Object.fromEntries(Object.entries(o).filter(([, v]) => v != null)));
        const m = await nc.request("mts.v1.risk.check", PbOrder.encode(pbo).finish(), {
          timeout: 5000,
          headers: h,
        });
        const rct = m.headers?.get("Content-Type") ?? "";
        if (!["application/x-protobuf", "application/protobuf"].includes(rct))
          bad.push(`${ct} ${l}: reply Content-Type ${rct}`);
        const dec = PbDecision.toObject(PbDecision.decode(m.data), { defaults: true, enums: String }) as D;
        if (
          JSON.stringify(Object.keys(dec).sort()) !== JSON.stringify(Object.keys(json).sort()) ||
          JSON.stringify(Object.entries(dec).sort()) !== JSON.stringify(Object.entries(json).sort())
        )
          for (const k of Object.keys(json) as (keyof D)[])
            if (JSON.stringify(dec[k]) !== JSON.stringify(json[k]) && k !== "details")
              bad.push(`${ct} ${l}: ${k} pb ${JSON.stringify(dec[k])} json ${JSON.stringify(json[k])}`);
        const sortObj = (x: Record<string, string>) => JSON.stringify(Object.entries(x).sort());
        if (sortObj(dec.details) !== sortObj(json.details)) bad.push(`${ct} ${l}: details differ`);
      }
    }
    // a JSON request's reply says JSON
    const m = await nc.request("mts.v1.risk.check", JSON.stringify(decided.get("pos")![0]), {
      timeout: 5000,
    });
    expect(m.headers?.get("Content-Type")).toBe("application/json");
    expect(bad).toEqual([]);
  });

  it("the journal holds each decision on mts.v1.risk.decision.<fund_id> (or `_`), records conform to the project's schema", async () => {
    const jsm = await jetstreamManager(nc);
    const schema = JSON.parse(
      readFileSync(new URL("../../subjects/decision-record.schema.json", import.meta.url), "utf8"),
    ) as Record<string, unknown>;
    delete schema["$schema"];
    delete schema["$id"];
    const validate = new Ajv({ allErrors: true }).compile(schema);
    type Rec = {
      fund_id: string;
      decision: D;
      order?: Record<string, unknown>;
      notional?: string;
      cursors?: Record<string, number>;
      reservation?: Record<string, unknown>;
    };
    const recs: { subject: string; rec: Rec }[] = [];
    const bad: string[] = [];
    await waitFor(async () => (await jsm.streams.info("RISK_DECISIONS")).state.messages >= decided.size);
    const info = await jsm.streams.info("RISK_DECISIONS");
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = (await jsm.streams.getMessage("RISK_DECISIONS", { seq }))!;
      const body = m.json<Rec | Rec[]>();
      const n = m.header?.get("Mts-Batch");
      if (Array.isArray(body)) {
        if (String(body.length) !== n) bad.push(`seq ${seq}: array of ${body.length} with Mts-Batch ${n}`);
        for (const r of body) recs.push({ subject: m.subject, rec: r });
      } else {
        if (n) bad.push(`seq ${seq}: single record with Mts-Batch ${n}`);
        recs.push({ subject: m.subject, rec: body });
      }
    }
    for (const { subject, rec } of recs) {
      if (!validate(rec)) bad.push(`${rec.decision?.order_id}: schema ${JSON.stringify(validate.errors)}`);
      if (subject !== `mts.v1.risk.decision.${rec.fund_id}`)
        bad.push(`${rec.decision.order_id}: on ${subject} for ${rec.fund_id}`);
      for (const p of shapeProblems(rec.decision, undefined))
        bad.push(`${rec.decision.order_id} journaled: ${p}`);
      for (const k of ["notional"] as const)
        if (rec[k] !== undefined && nonCanonical(rec[k]))
          bad.push(`${rec.decision.order_id}: ${k} ${rec[k]}`);
      for (const [k, v] of Object.entries(rec.reservation ?? {}))
        if (typeof v === "string" && nonCanonical(v))
          bad.push(`${rec.decision.order_id}: reservation.${k} ${v}`);
    }
    for (const [l, [o, d]] of decided) {
      const fund = typeof o.fund_id === "string" ? o.fund_id : "_";
      const r = recs.find(
        (x) =>
          x.rec.decision.order_id === d.order_id &&
          x.rec.decision.decided_at === d.decided_at &&
          x.rec.decision.rejection_code === d.rejection_code,
      );
      if (!r) {
        bad.push(`${l}: not journaled`);
        continue;
      }
      if (r.subject !== `mts.v1.risk.decision.${fund}`) bad.push(`${l}: journaled on ${r.subject}`);
      if (canon(r.rec.decision) !== canon(d)) bad.push(`${l}: journaled decision differs from the reply`);
    }
    expect(bad).toEqual([]);
  });

  it("a journal record carries the order as received, for every decision (contract: 'at least the RiskDecision, the order as received, ...')", async () => {
    // CONTRACT.md "Decision record": "at least the RiskDecision, the order as received, the
    // envelope version, the notional, the reservation it made and the stream cursors the decision
    // was made at." Expected: `order` (the request as received) on every record of a fresh
    // decision, including a SCHEMA_INVALID one (the audit must see what was refused).
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("RISK_DECISIONS");
    const missing: string[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = (await jsm.streams.getMessage("RISK_DECISIONS", { seq }))!;
      const body = m.json<unknown>();
      for (const r of (Array.isArray(body) ? body : [body]) as {
        replayed: boolean;
        order?: unknown;
        cursors?: unknown;
        decision: D;
      }[]) {
        if (r.replayed) continue;
        if (r.order === undefined)
          missing.push(`${r.decision.order_id} ${r.decision.rejection_code || "APPROVED"}: no order`);
        if (r.cursors === undefined)
          missing.push(`${r.decision.order_id} ${r.decision.rejection_code || "APPROVED"}: no cursors`);
      }
    }
    expect(missing).toEqual([]);
  });
});
