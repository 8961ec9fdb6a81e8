/**
 * Issue 8, through the real bus: an order id names one order of its fund for ever (also across a
 * restart and a rebuild), a re-stamped retry is the same order and a conflict names its field,
 * velocity counts orders decided before its limit, fund `_` is reserved, the TTL releases only
 * orders the OMS never acknowledged, and refdata says what asset class an instrument is.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { type Engine, rebuild } from "../../src/engine/index.js";
import { silentLogger } from "../../src/obs/log.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine, testConfig } from "../support/engine.js";

const TTL_S = 60;

describe("order identity, velocity history, reserved fund, acknowledged reservations, refdata class", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const stateDir = mkdtempSync(join(tmpdir(), "mts-identity-"));
  const flags = { "reservations.ttl_s": TTL_S };

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock, stateDir, flags });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  async function settled(e: Engine = engine) {
    const jsm = await e.js.jetstreamManager();
    for (const s of ["RISK_DECISIONS", "FILLS", "OMS_ORDERS", "RISK_ENVELOPES", "REFDATA"]) {
      const last = (await jsm.streams.info(s)).state.last_seq;
      await waitFor(() => applied(e, s, last), { message: `${s} not applied up to ${last}` });
    }
  }
  async function setup(fund: string, env: Record<string, unknown>) {
    const seq = await bus.envelope(envelope(fund, env));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
  }
  /** The engine restarted from its snapshot (same state dir), or rebuilt from the streams alone. */
  async function restart(from: "snapshot" | "streams") {
    await engine.close();
    const dir = from === "snapshot" ? stateDir : mkdtempSync(join(tmpdir(), "mts-identity-rb-"));
    engine = await startTestEngine(server.url, { clock, stateDir: dir, flags });
    await settled();
  }
  const outcome = (d: RiskDecision) => ({
    approved: d.approved,
    gate: d.rejecting_gate,
    code: d.rejection_code,
  });
  const approved = { approved: true, gate: "", code: "" };
  const rejected = (gate: string, code: string) => ({ approved: false, gate, code });
  const pending = (fund: string, symbol: string) => {
    const b = engine.observe.book(fund, symbol);
    return { buy: b?.pend_buy ?? "0", sell: b?.pend_sell ?? "0" };
  };

  describe("case 1: an order id used again under a new key", () => {
    it("is DUPLICATE_ORDER_ID after the first is cancelled, so the fund cannot double its position", async () => {
      await setup("dup", { max_position_pct: "0.10" });
      const x = order({ fund_id: "dup", symbol: "AAA", quantity: "1000", limit_price: "100" });
      expect(outcome(await bus.check(x))).toEqual(approved);
      await settled();
      await bus.orderEvent("cancelled", "dup", String(x["order_id"]));
      await settled();
      const again = await bus.check({ ...x, idempotency_key: "dup-k2" });
      expect(outcome(again)).toEqual(rejected("idempotency", "DUPLICATE_ORDER_ID"));
      expect(again.order_id).toBe(x["order_id"]);
      expect(pending("dup", "AAA")).toEqual({ buy: "0", sell: "0" });
      // its own retry replays the rejection; the original key still replays the approval
      const retry = await bus.check({ ...x, idempotency_key: "dup-k2" });
      expect({ ...outcome(retry), replayed: retry.details["replayed"] }).toEqual({
        ...rejected("idempotency", "DUPLICATE_ORDER_ID"),
        replayed: "true",
      });
      expect((await bus.check(x)).details["replayed"]).toBe("true");
    });

    it("reserves nothing for a reused order id on another symbol and side", async () => {
      await setup("dup-side", { max_position_pct: "0.50", enable_shorting: true });
      const z = order({ fund_id: "dup-side", symbol: "AAA", quantity: "100", limit_price: "100" });
      expect(outcome(await bus.check(z))).toEqual(approved);
      const reused = { ...z, idempotency_key: "dup-side-k2", symbol: "BBB", side: "SELL", quantity: "7" };
      expect(outcome(await bus.check(reused))).toEqual(rejected("idempotency", "DUPLICATE_ORDER_ID"));
      await settled();
      expect(pending("dup-side", "AAA")).toEqual({ buy: "100", sell: "0" });
      expect(pending("dup-side", "BBB")).toEqual({ buy: "0", sell: "0" });
    });

    it("a rejected order's id is used too; the same id in another fund is another order", async () => {
      await setup("dup-rej", { max_order_qty: "10" });
      await setup("dup-other", {});
      const y = order({ fund_id: "dup-rej", quantity: "11" });
      expect(outcome(await bus.check(y))).toEqual(rejected("static", "MAX_ORDER_QTY_EXCEEDED"));
      const smaller = { ...y, idempotency_key: "dup-rej-k2", quantity: "10" };
      expect(outcome(await bus.check(smaller))).toEqual(rejected("idempotency", "DUPLICATE_ORDER_ID"));
      const elsewhere = { ...y, fund_id: "dup-other", quantity: "10" };
      expect(outcome(await bus.check(elsewhere))).toEqual(approved);
    });
  });

  describe("case 12: a retry re-stamped with a new created_at", () => {
    it("is the same order (replayed); a conflict names the first differing field", async () => {
      await setup("stamp", {});
      const o = order({ fund_id: "stamp", created_at: "2026-11-21T14:29:59.000Z" });
      const first = await bus.check(o);
      expect(first.approved).toBe(true);
      const restamped = await bus.check({ ...o, created_at: "2026-11-21T14:30:05.250Z" });
      expect(restamped).toEqual({ ...first, details: { ...first.details, replayed: "true" } });
      const other = await bus.check({ ...o, created_at: NOW, limit_price: "101", quantity: "7" });
      expect(outcome(other)).toEqual(rejected("idempotency", "IDEMPOTENCY_CONFLICT"));
      expect(other.details["field"]).toBe("quantity");
      const side = await bus.check({ ...o, side: "SELL" });
      expect(side.details["field"]).toBe("side");
    });
  });

  describe("case 12b: reduce_only false and reduce_only absent are the same order", () => {
    it("a retry that states reduce_only false where the first left it out (or the reverse) is replayed", async () => {
      await setup("ro", {});
      const absent = order({ fund_id: "ro" });
      const first = await bus.check(absent);
      expect(first.approved).toBe(true);
      const stated = await bus.check({ ...absent, reduce_only: false });
      expect({ ...outcome(stated), replayed: stated.details["replayed"] }).toEqual({
        ...approved,
        replayed: "true",
      });
      const stating = order({ fund_id: "ro", symbol: "MSFT", reduce_only: false });
      expect(outcome(await bus.check(stating))).toEqual(approved);
      const { reduce_only: _, ...left } = stating;
      expect((await bus.check(left)).details["replayed"]).toBe("true");
      // true is another order
      const other = await bus.check({ ...absent, reduce_only: true });
      expect(outcome(other)).toEqual(rejected("idempotency", "IDEMPOTENCY_CONFLICT"));
      expect(other.details["field"]).toBe("reduce_only");
      // and a conflict on a later field is named for that field, whichever form reduce_only takes
      const located = await bus.check({ ...absent, reduce_only: false, locate_id: "loc-1" });
      expect(located.details["field"]).toBe("locate_id");
      await settled();
      expect(pending("ro", "AAPL").buy).toBe("100");
    });
  });

  describe("case 3: velocity counts orders decided before its limit existed", () => {
    it("a limit set after five orders rejects the sixth", async () => {
      await setup("vel-set", {});
      for (let i = 0; i < 5; i++) {
        expect(outcome(await bus.check(order({ fund_id: "vel-set", quantity: "1" })))).toEqual(approved);
      }
      await setup("vel-set", { version: 2, velocity: { window_s: 60, max_orders: 5 } });
      const sixth = await bus.check(order({ fund_id: "vel-set", quantity: "1" }));
      expect(outcome(sixth)).toEqual(rejected("velocity", "VELOCITY_EXCEEDED"));
      expect(sixth.details["orders"]).toBe("6");
    });

    it("a widened window counts the orders its narrower version had already let go", async () => {
      await setup("vel-wide", { velocity: { window_s: 1, max_orders: 5 } });
      for (let i = 0; i < 5; i++) {
        expect(outcome(await bus.check(order({ fund_id: "vel-wide", quantity: "1" })))).toEqual(approved);
      }
      clock.advance(2000);
      // the next decision prunes whatever the 1 s window no longer needs
      expect(outcome(await bus.check(order({ fund_id: "vel-wide", quantity: "1" })))).toEqual(approved);
      await setup("vel-wide", { version: 2, velocity: { window_s: 60, max_orders: 6 } });
      const seventh = await bus.check(order({ fund_id: "vel-wide", quantity: "1" }));
      expect(outcome(seventh)).toEqual(rejected("velocity", "VELOCITY_EXCEEDED"));
    });
  });

  describe("case 4: fund id `_` is reserved", () => {
    it("an order for `_` is SCHEMA_INVALID, and an envelope for `_` is not applied", async () => {
      const seq = await bus.envelope(envelope("_", {}));
      await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
      expect(engine.observe.fund("_")?.envelope_id).toBeUndefined();
      const d = await bus.check(order({ fund_id: "_" }));
      expect(outcome(d)).toEqual(rejected("schema", "SCHEMA_INVALID"));
      expect(d.details["path"]).toBe("fund_id");
      // and a retry is evaluated afresh, not replayed
      expect(
        (await bus.check(order({ fund_id: "_", order_id: "u1", idempotency_key: "u" }))).details,
      ).toEqual(d.details);
    });
  });

  describe("case 6: refdata says what asset class an instrument is", () => {
    it("a crypto instrument sent as equity is SCHEMA_INVALID (details.path asset_class)", async () => {
      const seq = await bus.instrument({ symbol: "BTC-USD", asset_class: "crypto" });
      await waitFor(() => applied(engine, "REFDATA", seq));
      await setup("cls", { allowed_asset_classes: ["equity"], max_asset_class_pct: { crypto: "0.2" } });
      const lying = await bus.check(order({ fund_id: "cls", symbol: "BTC-USD", asset_class: "equity" }));
      expect(outcome(lying)).toEqual(rejected("schema", "SCHEMA_INVALID"));
      expect(lying.details["path"]).toBe("asset_class");
      const honest = await bus.check(order({ fund_id: "cls", symbol: "BTC-USD", asset_class: "crypto" }));
      expect(outcome(honest)).toEqual(rejected("static", "ASSET_CLASS_NOT_ALLOWED"));
      const silent = await bus.check(order({ fund_id: "cls", symbol: "BTC-USD" }));
      expect(outcome(silent)).toEqual(rejected("static", "ASSET_CLASS_NOT_ALLOWED"));
    });
  });

  describe("across a restart and a rebuild (cases 1, 3, 12)", () => {
    it("keeps used order ids, velocity history and conflict fields", async () => {
      await setup("keep", {});
      const x = order({ fund_id: "keep", quantity: "3" });
      expect(outcome(await bus.check(x))).toEqual(approved);
      for (let i = 0; i < 3; i++) await bus.check(order({ fund_id: "keep", quantity: "1" }));
      await settled();
      for (const from of ["snapshot", "streams"] as const) {
        await restart(from);
        const dup = await bus.check({ ...x, idempotency_key: `keep-${from}`, symbol: "MSFT", side: "SELL" });
        expect(outcome(dup), from).toEqual(rejected("idempotency", "DUPLICATE_ORDER_ID"));
        const conflict = await bus.check({ ...x, broker: "ibkr" });
        expect(conflict.details["field"], from).toBe("broker");
        expect(pending("keep", "MSFT"), from).toEqual({ buy: "0", sell: "0" });
      }
      // 4 orders + 2 duplicates + 2 conflicts decided: a limit of 8 set now rejects the next one
      await setup("keep", { version: 2, velocity: { window_s: 3600, max_orders: 8 } });
      // from the snapshot, whose velocity rows are read on first use; then from the streams alone
      // (the first rejection is a decision counted too: the second sees 10)
      for (const [from, orders] of [
        ["snapshot", "9"],
        ["streams", "10"],
      ] as const) {
        await restart(from);
        const next = await bus.check(order({ fund_id: "keep", quantity: "1" }));
        expect(outcome(next), from).toEqual(rejected("velocity", "VELOCITY_EXCEEDED"));
        expect(next.details["orders"], from).toBe(orders);
      }
    });
  });

  describe("case 5: the TTL releases only orders the OMS never acknowledged", () => {
    it("an accepted, partly filled order keeps reserving its rest after the TTL", async () => {
      await setup("gtc", { max_position_pct: "0.10" });
      const a = order({ fund_id: "gtc", symbol: "GTC", quantity: "1000", limit_price: "100" });
      const b = order({ fund_id: "gtc", symbol: "NEVER", quantity: "10", limit_price: "100" });
      expect(outcome(await bus.check(a))).toEqual(approved);
      expect(outcome(await bus.check(b))).toEqual(approved);
      await bus.orderEvent("accepted", "gtc", String(a["order_id"]));
      await bus.fill({
        fund_id: "gtc",
        order_id: a["order_id"],
        symbol: "GTC",
        quantity: "100",
        price: "100",
      });
      await settled();
      expect(pending("gtc", "GTC").buy).toBe("900");
      clock.advance(TTL_S * 1000 + 1);
      engine.status(); // sweeps with the clock
      expect(pending("gtc", "NEVER").buy).toBe("0"); // never acknowledged: released by the TTL
      expect(pending("gtc", "GTC").buy).toBe("900");
      const more = await bus.check(
        order({ fund_id: "gtc", symbol: "GTC", quantity: "1", limit_price: "100" }),
      );
      expect(outcome(more)).toEqual(rejected("position", "MAX_POSITION_EXCEEDED"));
      // and so does a rebuild, until the order's end
      await settled();
      const rebuilt = await rebuild({
        config: testConfig(server.url, flags, mkdtempSync(join(tmpdir(), "mts-identity-rb-"))),
        out: join(mkdtempSync(join(tmpdir(), "mts-identity-rb-out-")), "rebuilt.sqlite"),
        clock,
        log: silentLogger,
      });
      expect(rebuilt.state_digest).toBe(engine.status().state_digest);
      await bus.orderEvent("cancelled", "gtc", String(a["order_id"]));
      await settled();
      expect(pending("gtc", "GTC").buy).toBe("0");
      expect(engine.observe.reserved("gtc", String(a["order_id"]))).toBe("0");
    });
  });
});
