/**
 * Red team (operations): `mts-risk explain` for a rejection of every deterministic gate and code
 * (static, velocity, position, drawdown, short side, idempotency, engine/NO_ENVELOPE), decided
 * concurrently (group-committed batches), then a restart and more decisions, and a fund with many
 * decisions. Every explanation must name the journaled decision and replay to the same one.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";
import { run } from "../support/cli.js";

interface Explained {
  record: { fund_id: string; decision: RiskDecision };
  replay: { same: boolean; differences: { field: string; journaled: string; replayed: string }[] };
}

describe("red team: explain for every gate, batches, restart", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = { now: () => Date.parse(NOW) + 250 };
  const stateDir = mkdtempSync(join(tmpdir(), "mts-redteam-ops-explain-"));
  /** order_id -> [fund, journaled decision as answered] */
  const decided = new Map<string, [string, RiskDecision]>();
  let dupFirst = "";

  const check = async (o: Record<string, unknown>) => {
    const d = await bus.check(o);
    decided.set(String(o.order_id), [String(o.fund_id), d]);
    return d;
  };

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock, stateDir });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await bus.instrument({ symbol: "AAPL", asset_class: "equity", sector: "tech", adv: "10000" });
    await bus.instrument({ symbol: "MSFT", asset_class: "equity", sector: "tech", adv: "10000" });
    await bus.instrument({ symbol: "BTC", asset_class: "crypto" });
    await bus.instrument({ symbol: "HTB", asset_class: "equity", borrow_fee_bps: "500", shortable: true });
    await bus.instrument({ symbol: "NOSH", asset_class: "equity" });
    await bus.instrument({ symbol: "NOQ", asset_class: "equity", adv: "10000" }); // never quoted
    for (const s of ["AAPL", "MSFT", "BTC", "HTB", "NOSH"]) await bus.quote(s, "99.99", "100.01");
    const envs: Record<string, unknown>[] = [
      envelope("exstatic", {
        allowed_brokers: ["paper"],
        allowed_order_types: ["LIMIT", "MARKET"],
        allowed_asset_classes: ["equity"],
        restricted_symbols: ["MSFT"],
        max_order_qty: "1000",
        max_adv_pct: "0.05",
        max_order_notional: "30000",
        price_collar_pct: "0.05",
      }),
      envelope("exvelo", { velocity: { window_s: 60, max_orders: 2 } }),
      envelope("exdup", { duplicate_window_ms: 60000 }),
      envelope("exopen", { max_open_orders: 1 }),
      envelope("expos", { max_position_pct: "0.05" }),
      envelope("exgross", { max_position_pct: "0.5", max_gross_exposure_pct: "0.1" }),
      envelope("exnet", { max_gross_exposure_pct: "0.9", max_net_exposure_pct: "0.1" }),
      envelope("exsector", { max_sector_pct: "0.1" }),
      envelope("exclass", { max_asset_class_pct: { equity: "0.1" } }),
      envelope("exshort", {}),
      envelope("exfee", { enable_shorting: true, max_borrow_fee_bps: "100" }),
      envelope("exlocate", { enable_shorting: true }),
      envelope("exidem", {}),
      envelope("exhalt", {}),
      envelope("exmany", { velocity: { window_s: 3600, max_orders: 30 }, max_gross_exposure_pct: "0.2" }),
    ];
    let last = 0;
    for (const e of envs) last = await bus.envelope(e);
    const h = await bus.control(Subjects.halt("exhalt"), {
      fund_id: "exhalt",
      severity: "MANUAL",
      reason: "red team",
      at: NOW,
      by: "ops",
    });
    await waitFor(() => applied(engine, "RISK_ENVELOPES", last) && applied(engine, "RISK_CONTROL", h));

    // sequential pairs first (the second of each depends on the first)
    const dupA = order({ fund_id: "exdup" });
    await check(dupA);
    await check(order({ fund_id: "exdup" })); // same shape, other key: DUPLICATE_ORDER
    dupFirst = String(dupA.order_id);
    for (let i = 0; i < 3; i++) expect((await bus.check(dupA)).details.replayed).toBe("true");
    await check(order({ fund_id: "exopen" }));
    await check(order({ fund_id: "exopen", quantity: "7" })); // MAX_OPEN_ORDERS_EXCEEDED
    for (let i = 0; i < 3; i++) await check(order({ fund_id: "exvelo", quantity: String(i + 1) }));
    const idemA = order({ fund_id: "exidem" });
    await check(idemA);
    await check({ ...order({ fund_id: "exidem" }), idempotency_key: idemA.idempotency_key }); // CONFLICT
    await check({ ...order({ fund_id: "exidem", quantity: "3" }), order_id: "exidem-reuse-other" });
    await check({ ...order({ fund_id: "exidem", quantity: "4" }), order_id: "exidem-reuse-other" }); // DUPLICATE_ORDER_ID
    // the rest concurrently: group-committed batches
    const batch = [
      order({ fund_id: "exstatic", broker: "ibkr" }),
      order({ fund_id: "exstatic", order_type: "STOP", stop_price: "101", limit_price: null }),
      order({ fund_id: "exstatic", symbol: "BTC", quantity: "1" }),
      order({ fund_id: "exstatic", symbol: "MSFT" }),
      order({ fund_id: "exstatic", quantity: "2000" }),
      order({ fund_id: "exstatic", quantity: "600" }),
      order({ fund_id: "exstatic", quantity: "400" }),
      order({ fund_id: "exstatic", limit_price: "120" }),
      order({ fund_id: "exstatic", symbol: "NOQ", quantity: "10" }),
      order({ fund_id: "exstatic", quantity: "10" }), // approved
      order({ fund_id: "expos", quantity: "600" }),
      order({ fund_id: "exgross", quantity: "1100" }),
      order({ fund_id: "exnet", quantity: "1100" }),
      order({ fund_id: "exsector", quantity: "1100" }),
      order({ fund_id: "exclass", quantity: "1100" }),
      order({ fund_id: "exshort", side: "SELL" }),
      order({ fund_id: "exfee", side: "SELL", symbol: "HTB" }),
      order({ fund_id: "exlocate", side: "SELL", symbol: "NOSH" }),
      order({ fund_id: "exhalt" }),
      order({ fund_id: "exnone" }), // NO_ENVELOPE
    ];
    await Promise.all(batch.map((o) => check(o)));
    await waitFor(async () => (await readStream(nc, "RISK_DECISIONS")).length > 0);
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await engine?.close().catch(() => undefined);
    await server?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const explain = (id: string, fund: string) =>
    run(["--nats-url", server.url, "explain", id, "--fund", fund, "--json"]);

  const explainAll = async (ids: string[]) => {
    const bad: string[] = [];
    for (const id of ids) {
      const [fund, d] = decided.get(id)!;
      const r = await explain(id, fund);
      let x: Explained | undefined;
      try {
        x = JSON.parse(r.out) as Explained;
      } catch {
        bad.push(`${id} (${fund}, ${d.rejection_code || "APPROVED"}): exit ${r.code} ${r.err.trim()}`);
        continue;
      }
      const j = x.record.decision;
      if (
        r.code !== 0 ||
        !x.replay.same ||
        j.approved !== d.approved ||
        j.rejection_code !== d.rejection_code ||
        j.rejecting_gate !== d.rejecting_gate
      )
        bad.push(
          `${id} (${fund}, answered ${d.rejection_code || "APPROVED"}, journaled ${j.rejection_code || "APPROVED"}): exit ${r.code} ` +
            JSON.stringify(x.replay.differences),
        );
    }
    return bad;
  };

  it("every gate's code was produced (the book is right)", () => {
    const codes = new Set([...decided.values()].map(([, d]) => d.rejection_code || "APPROVED"));
    for (const c of [
      "APPROVED",
      "DUPLICATE_ORDER",
      "MAX_OPEN_ORDERS_EXCEEDED",
      "VELOCITY_EXCEEDED",
      "IDEMPOTENCY_CONFLICT",
      "DUPLICATE_ORDER_ID",
      "BROKER_NOT_ALLOWED",
      "ORDER_TYPE_NOT_ALLOWED",
      "ASSET_CLASS_NOT_ALLOWED",
      "SYMBOL_RESTRICTED",
      "MAX_ORDER_QTY_EXCEEDED",
      "MAX_ADV_PCT_EXCEEDED",
      "MAX_ORDER_NOTIONAL_EXCEEDED",
      "PRICE_COLLAR_BREACHED",
      "STALE_MARKET_DATA",
      "MAX_POSITION_EXCEEDED",
      "GROSS_EXPOSURE_EXCEEDED",
      "NET_EXPOSURE_EXCEEDED",
      "SECTOR_CONCENTRATION_EXCEEDED",
      "ASSET_CLASS_CONCENTRATION_EXCEEDED",
      "SHORTING_DISABLED",
      "BORROW_FEE_TOO_HIGH",
      "LOCATE_REQUIRED",
      "FUND_HALTED",
      "NO_ENVELOPE",
    ])
      expect(codes, c).toContain(c);
  });

  it("explains every decision (live engine) and each replays to the same decision", async () => {
    const bad = await explainAll([...decided.keys()].filter((id) => id !== "exidem-reuse-other"));
    expect(bad).toEqual([]);
  }, 120_000);

  it("counts the replays of an order and lists a later decision on its id (DUPLICATE_ORDER_ID)", async () => {
    const r = await explain(dupFirst, "exdup");
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out) as { replays: number }).replays).toBe(3);
    const o = await explain("exidem-reuse-other", "exidem");
    expect(o.code).toBe(0);
    const x = JSON.parse(o.out) as Explained & { others: { decision: RiskDecision }[] };
    expect(x.record.decision.approved).toBe(true);
    expect(x.others.map((d) => d.decision.rejection_code)).toEqual(["DUPLICATE_ORDER_ID"]);
  });

  it("after a restart, more decisions of a fund with many: all explained, old and new", async () => {
    await engine.close();
    engine = await startTestEngine(server.url, { clock, stateDir });
    await waitFor(() => engine.readiness().ready, { message: "engine ready after restart" });
    for (let i = 0; i < 40; i++) {
      await check(order({ fund_id: "exmany", quantity: String(10 + i), symbol: i % 2 ? "AAPL" : "MSFT" }));
    }
    const many = [...decided.entries()].filter(([, [f]]) => f === "exmany").map(([id]) => id);
    const codes = new Set(many.map((id) => decided.get(id)![1].rejection_code || "APPROVED"));
    expect(codes).toContain("APPROVED");
    expect(codes).toContain("VELOCITY_EXCEEDED");
    await engine.close(); // from the streams alone
    const bad = await explainAll([
      ...many,
      ...[...decided.keys()].filter((id) => decided.get(id)![0] === "exopen"),
    ]);
    expect(bad).toEqual([]);
  }, 180_000);
});
