/**
 * Red team (wire contract, CONTRACT.md "Encoding"): "Protobuf and JSON are one contract: enum
 * values in `riskengine.proto` are named so that the proto3 JSON mapping of a message (and
 * protobufjs `fromObject`/`toObject` with string enums) is exactly the JSON form on this page
 * (`"side": "BUY"`, `"order_type": "LIMIT"`, `"asset_class": "equity"`). A client may build an
 * Order from its JSON form with the `.proto` alone." Checked with subjects/riskengine.proto alone
 * (protobufjs, no project code): the contract's example Order, the RiskDecision, and the
 * RiskEnvelope that mts.v1.risk.envelope.get answers in protobuf.
 */
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import type protobufT from "protobufjs";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, startTestEngine } from "../support/engine.js";

const protobuf = createRequire(import.meta.url)("protobufjs") as typeof protobufT;
const root = new protobuf.Root().loadSync(
  new URL("../../subjects/riskengine.proto", import.meta.url).pathname,
  {
    keepCase: true,
  },
);
const PbOrder = root.lookupType("mts.risk.v1.Order");
const PbDecision = root.lookupType("mts.risk.v1.RiskDecision");

/** The contract's RiskEnvelope example, verbatim (decimals already canonical but "0.10" & co.). */
const CONTRACT_ENVELOPE = {
  fund_id: "pjx",
  version: 3,
  capital: "1000000",
  allowed_brokers: ["paper", "ibkr"],
  allowed_order_types: ["MARKET", "LIMIT"],
  allowed_asset_classes: ["equity", "crypto"],
  max_order_notional: "50000",
  max_order_qty: "10000",
  max_position_pct: "0.1",
  max_gross_exposure_pct: "1.5",
  max_net_exposure_pct: "1",
  max_sector_pct: "0.3",
  max_asset_class_pct: { crypto: "0.2" },
  daily_loss_halt_pct: "0.03",
  weekly_loss_halt_pct: "0.06",
  monthly_loss_halt_pct: "0.1",
  enable_shorting: false,
  max_borrow_fee_bps: "300",
  synthetic_stop_pct: "0.1",
  price_collar_pct: "0.05",
  max_quote_age_ms: 5000,
  restricted_symbols: [],
  velocity: { window_s: 1, max_orders: 50, max_notional: "500000" },
  strategies: { "mom-1": { max_order_notional: "20000" } },
};

/** JSON with object keys sorted, for comparison. */
const canon = (x: unknown): string =>
  JSON.stringify(x, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );

describe("red team contract: protobuf and JSON are one contract", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = { now: () => Date.parse(NOW) };

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await bus.instrument({ symbol: "AAPL", asset_class: "equity", sector: "tech" });
    await bus.quote("AAPL", "190.10", "190.14", NOW);
    const s = await bus.envelope({ ...CONTRACT_ENVELOPE, fund_id: "pjx", version: 3 });
    const a = await bus.envelope({ ...CONTRACT_ENVELOPE, fund_id: "alpha", version: 3 });
    await waitFor(() => applied(engine, "RISK_ENVELOPES", Math.max(s, a)));
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("the contract's example Order built with fromObject from its JSON form is decided like the JSON order", async () => {
    const example = {
      order_id: "ord-1",
      idempotency_key: "oms-ord-1",
      fund_id: "alpha",
      strategy_id: "mom-1",
      broker: "paper",
      symbol: "AAPL",
      asset_class: "equity",
      side: "BUY",
      order_type: "LIMIT",
      quantity: "100",
      limit_price: "190.12",
      stop_price: null,
      time_in_force: "DAY",
      reduce_only: false,
      created_at: "2026-11-21T14:30:00Z",
    };
    const h = natsHeaders();
    h.set("Content-Type", "application/x-protobuf");
    const pb = await nc.request("mts.v1.risk.check", PbOrder.encode(PbOrder.fromObject(example)).finish(), {
      timeout: 5000,
      headers: h,
    });
    const d = PbDecision.toObject(PbDecision.decode(pb.data), { defaults: true }) as Record<string, unknown>;
    // the same order in JSON is the same order (a replay of the protobuf one)
    const j = await bus.check(example);
    expect(j.details.replayed, JSON.stringify(j)).toBe("true");
    const { replayed: _r, ...jd } = j.details;
    expect(canon({ ...d })).toBe(canon({ ...j, details: jd }));
    // 100 × 190.12 = 19012 ≤ mom-1's 20000: approved under alpha@v3
    expect(d).toMatchObject({
      approved: true,
      envelope_id: "alpha@v3",
      rejecting_gate: "",
      rejection_code: "",
    });
  });

  it("RiskDecision: toObject with string enums of the protobuf reply is exactly the JSON reply", async () => {
    const o = {
      order_id: "pj-rej",
      idempotency_key: "pj-rej",
      fund_id: "pjx",
      broker: "paper",
      symbol: "AAPL",
      side: "BUY",
      order_type: "LIMIT",
      quantity: "1000",
      limit_price: "190.12",
    };
    const j = await bus.check(o);
    expect(j.rejection_code).not.toBe("");
    const h = natsHeaders();
    h.set("Content-Type", "application/protobuf");
    const pb = await nc.request("mts.v1.risk.check", PbOrder.encode(PbOrder.fromObject(o)).finish(), {
      timeout: 5000,
      headers: h,
    });
    const d = PbDecision.toObject(PbDecision.decode(pb.data), { defaults: true, enums: String }) as {
      details: Record<string, string>;
    };
    // the protobuf request is a replay of the JSON one (same key, same order)
    expect(d.details.replayed).toBe("true");
    const { replayed: _r, ...details } = d.details;
    expect(canon({ ...d, details })).toBe(canon(j));
  });
});
