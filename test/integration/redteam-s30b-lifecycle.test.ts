/**
 * Red-team s30b: an approved order's reservation through order events and fills in unusual orders
 * (fill before accepted, fill after cancelled, a fill over the order's quantity, a fill id sent
 * twice, events and fills naming another fund's order id), max_open_orders across envelope
 * versions, and restarts (same state dir, fresh state dir) in the middle. After each step the
 * headroom is probed exactly: the amount that reaches the limit approves, one unit more is refused.
 * A probe that approves is cancelled right after, so that it reserves nothing afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { type Engine, rebuild } from "../../src/engine/index.js";
import { silentLogger } from "../../src/obs/log.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import {
  Bus,
  NOW,
  applied,
  envelope,
  order,
  settled,
  startTestEngine,
  testConfig,
} from "../support/engine.js";

const ALL = ["RISK_CONTROL", "FILLS", "RISK_ENVELOPES", "RISK_DECISIONS", "OMS_ORDERS", "QUOTES"];

describe("red-team s30b: reservations through odd event orders, envelope versions and restarts", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine | undefined;
  const clock = manualClock(NOW);
  const now = () => iso(clock.now());
  let stateDir = mkdtempSync(join(tmpdir(), "mts-s30b-life-"));
  const FLAGS = {
    "synthetic_stop.enabled": false,
    "broker_exit_reconciler.enabled": false,
    "reservations.ttl_s": 30,
  };
  const e = () => engine!;

  async function start(): Promise<Engine> {
    engine = await startTestEngine(server.url, { clock, stateDir, flags: FLAGS });
    await waitFor(() => engine!.ready(), { message: "engine not ready", timeoutMs: 20_000 });
    return engine;
  }
  /** Close and start again: on the same state dir, or on a fresh one (a rebuild from the streams). */
  async function restart(fresh: boolean): Promise<void> {
    await settled(e(), ALL);
    await e().close();
    engine = undefined;
    if (fresh) stateDir = mkdtempSync(join(tmpdir(), "mts-s30b-life-fresh-"));
    await start();
    await settled(e(), ALL);
    // sweep at the clock's now before the first check: a restarted engine counts lapsed
    // reservations until its first sweep (redteam-s30b-ttl-sweep.test.ts shows that separately)
    e().status();
  }
  async function rebuilt(): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), "mts-s30b-life-rb-"));
    const r = await rebuild({
      config: testConfig(server.url, FLAGS, dir),
      out: join(dir, "snapshot.sqlite"),
      clock,
      log: silentLogger,
    });
    return r.state_digest;
  }
  const until = (stream: string, seq: number) => waitFor(() => applied(e(), stream, seq));
  const outcome = (d: RiskDecision) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);
  const setup = async (fund: string, env: Record<string, unknown>) =>
    until("RISK_ENVELOPES", await bus.envelope(envelope(fund, env)));
  const fill = async (f: Record<string, unknown>) =>
    until("FILLS", await bus.fill({ timestamp: now(), ...f }));
  const ev = async (event: string, fund: string, id: unknown, extra: Record<string, unknown> = {}) =>
    until("OMS_ORDERS", await bus.orderEvent(event, fund, String(id), now(), extra));
  const approve = async (o: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const x = order(o);
    expect(outcome(await bus.check(x)), `approve ${JSON.stringify(o)}`).toBe("approved");
    return x;
  };
  /**
   * Exactly `qty` more of `symbol` at `price` fits: qty + 0.01 is refused with `code`, qty is
   * approved (then cancelled by the OMS, so that it reserves nothing afterwards).
   */
  async function headroom(fund: string, symbol: string, qty: string, code: string, price = "100") {
    const over = (Number(qty) + 0.01).toFixed(2);
    const o1 = order({ fund_id: fund, symbol, quantity: over, limit_price: price });
    expect(outcome(await bus.check(o1)), `${over} ${symbol} refused`).toBe(code);
    if (Number(qty) > 0) {
      const o2 = order({ fund_id: fund, symbol, quantity: qty, limit_price: price });
      expect(outcome(await bus.check(o2)), `${qty} ${symbol} approved`).toBe("approved");
      await ev("cancelled", fund, o2["order_id"]);
    }
  }

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await start();
  }, 30_000);
  afterAll(async () => {
    await nc?.close();
    await engine?.close().catch(() => undefined);
    await server?.stop();
  });

  const POS = "position/MAX_POSITION_EXCEEDED";
  const GROSS = "position/GROSS_EXPOSURE_EXCEEDED";

  it("events and fills naming another fund's order id leave this fund's reservation alone", async () => {
    const A = "s30b-own-a";
    const B = "s30b-own-b";
    await setup(A, { max_position_pct: "0.1" }); // 100 000
    await setup(B, { max_position_pct: "0.1" });
    const a = await approve({ fund_id: A, symbol: "OWN1", quantity: "600", limit_price: "100" });
    await ev("accepted", A, a["order_id"]);
    // fund B's OMS reports an order of the same id cancelled, and a fill of it
    await ev("cancelled", B, a["order_id"]);
    await fill({ fund_id: B, order_id: a["order_id"], symbol: "OWN1", quantity: "600", price: "100" });
    await headroom(A, "OWN1", "400", POS);
    // B holds 600 of its own (a fill of an order B never had: a position all the same)
    await headroom(B, "OWN1", "400", POS);
    await ev("cancelled", A, a["order_id"]);
    await headroom(A, "OWN1", "1000", POS);
  });

  it("fill before accepted, then accepted, then done with filled_quantity: exact at each step", async () => {
    const F = "s30b-fba";
    await setup(F, { max_position_pct: "0.1" });
    const a = await approve({ fund_id: F, symbol: "FBA1", quantity: "800", limit_price: "100" });
    await fill({ fund_id: F, order_id: a["order_id"], symbol: "FBA1", quantity: "300", price: "90" });
    // position 300 at cost 27 000 (no quote); reservation 500 × 100 = 50 000: 23 000 left
    await headroom(F, "FBA1", "230", POS);
    await ev("accepted", F, a["order_id"]);
    await headroom(F, "FBA1", "230", POS);
    // the TTL (30 s) passes: the order was acknowledged by its fill, it keeps reserving
    clock.advance(31_000);
    e().status();
    await headroom(F, "FBA1", "230", POS);
    await ev("done", F, a["order_id"], { filled_quantity: "500" });
    // 200 more reported filled and not yet seen keep reserving; the other 300 are released
    await headroom(F, "FBA1", "530", POS);
    await fill({ fund_id: F, order_id: a["order_id"], symbol: "FBA1", quantity: "200", price: "100" });
    // position 500 at cost 47 000
    await headroom(F, "FBA1", "530", POS);
  });

  it("a fill after cancelled moves the position and reserves nothing more", async () => {
    const F = "s30b-fac";
    await setup(F, { max_position_pct: "0.1" });
    const a = await approve({ fund_id: F, symbol: "FAC1", quantity: "1000", limit_price: "100" });
    await ev("accepted", F, a["order_id"]);
    await headroom(F, "FAC1", "0", POS);
    await ev("cancelled", F, a["order_id"]);
    await headroom(F, "FAC1", "1000", POS);
    await fill({ fund_id: F, order_id: a["order_id"], symbol: "FAC1", quantity: "300", price: "100" });
    await headroom(F, "FAC1", "700", POS);
    // a second late fill of it (the cancel raced two fills)
    await fill({ fund_id: F, order_id: a["order_id"], symbol: "FAC1", quantity: "100", price: "100" });
    await headroom(F, "FAC1", "600", POS);
  });

  it("a fill over the order's quantity: the whole fill is position, nothing is reserved", async () => {
    const F = "s30b-over";
    await setup(F, { max_gross_exposure_pct: "0.2" }); // 200 000
    const a = await approve({ fund_id: F, symbol: "OVR1", quantity: "1000", limit_price: "100" });
    await ev("accepted", F, a["order_id"]);
    await fill({ fund_id: F, order_id: a["order_id"], symbol: "OVR1", quantity: "1200", price: "100" });
    await headroom(F, "OVR2", "800", GROSS);
    // a later `done` reporting the order's quantity changes nothing
    await ev("done", F, a["order_id"], { filled_quantity: "1000" });
    await headroom(F, "OVR2", "800", GROSS);
  });

  it("the same fill id twice (no Nats-Msg-Id, so JetStream does not drop it) counts once, live and rebuilt", async () => {
    const F = "s30b-dupfill";
    await setup(F, { max_position_pct: "0.1" });
    const a = await approve({ fund_id: F, symbol: "DPF1", quantity: "1000", limit_price: "100" });
    await ev("accepted", F, a["order_id"]);
    const body = {
      fill_id: "s30b-dupfill-1",
      order_id: a["order_id"],
      fund_id: F,
      broker: "paper",
      symbol: "DPF1",
      side: "BUY",
      quantity: "400",
      price: "100",
      fees: "0",
      timestamp: now(),
    };
    for (let i = 0; i < 2; i++) {
      const ack = await bus.js.publish(Subjects.fill(F, "DPF1"), JSON.stringify(body));
      await until("FILLS", ack.seq);
    }
    // position 400, reservation 600: full; were it counted twice the order would be "filled" 800
    await headroom(F, "DPF1", "0", POS);
    await ev("cancelled", F, a["order_id"]);
    await headroom(F, "DPF1", "600", POS);
    await restart(true);
    await headroom(F, "DPF1", "600", POS);
  });

  it("max_open_orders lowered, then raised, then removed by new versions, with cancels between", async () => {
    const F = "s30b-open";
    await setup(F, { max_open_orders: 3 });
    const o = [];
    for (let i = 0; i < 3; i++) o.push(await approve({ fund_id: F, symbol: `OPN${i}`, quantity: "1" }));
    const next = () => bus.check(order({ fund_id: F, symbol: "OPNX", quantity: "1" })).then(outcome);
    expect(await next()).toBe("velocity/MAX_OPEN_ORDERS_EXCEEDED");
    await setup(F, { version: 2, max_open_orders: 2 });
    await ev("cancelled", F, o[0]!["order_id"]);
    expect(await next()).toBe("velocity/MAX_OPEN_ORDERS_EXCEEDED"); // 2 open + 1 > 2
    await ev("rejected", F, o[1]!["order_id"]);
    const x = order({ fund_id: F, symbol: "OPNX", quantity: "1" });
    expect(outcome(await bus.check(x))).toBe("approved"); // 1 + 1 ≤ 2: now 2 open
    expect(await next()).toBe("velocity/MAX_OPEN_ORDERS_EXCEEDED");
    await restart(false);
    expect(await next()).toBe("velocity/MAX_OPEN_ORDERS_EXCEEDED");
    await setup(F, { version: 3, max_open_orders: 3 });
    expect(await next()).toBe("approved"); // 3 open now
    expect(await next()).toBe("velocity/MAX_OPEN_ORDERS_EXCEEDED");
    await restart(true);
    expect(await next()).toBe("velocity/MAX_OPEN_ORDERS_EXCEEDED");
    await setup(F, { version: 4 });
    expect(await next()).toBe("approved");
  });

  it("a mixed book across a restart on the same dir and on a fresh dir: same headroom, same digest as a rebuild", async () => {
    const F = "s30b-mix";
    await setup(F, { max_gross_exposure_pct: "0.5" }); // 500 000
    // a: accepted, partly filled (300 of 1000) → 300 position + 700 reserving
    const a = await approve({ fund_id: F, symbol: "MIX1", quantity: "1000", limit_price: "100" });
    await ev("accepted", F, a["order_id"]);
    await fill({ fund_id: F, order_id: a["order_id"], symbol: "MIX1", quantity: "300", price: "100" });
    // b: cancelled after a fill of 200 reported but not yet seen → 200 reserving
    const b = await approve({ fund_id: F, symbol: "MIX2", quantity: "1000", limit_price: "100" });
    await ev("cancelled", F, b["order_id"], { filled_quantity: "200" });
    // c: filled before accepted (500 of 500), then accepted late → 500 position
    const c = await approve({ fund_id: F, symbol: "MIX3", quantity: "500", limit_price: "100" });
    await fill({ fund_id: F, order_id: c["order_id"], symbol: "MIX3", quantity: "500", price: "100" });
    await ev("accepted", F, c["order_id"]);
    // d: never acknowledged: reserves 1000 until the TTL
    const d = await approve({ fund_id: F, symbol: "MIX4", quantity: "1000", limit_price: "100" });
    // 300 + 700 + 200 + 500 + 1000 = 2700 × 100 = 270 000 of 500 000
    await headroom(F, "MIX5", "2300", GROSS);
    await restart(false);
    await headroom(F, "MIX5", "2300", GROSS);
    await restart(true);
    await headroom(F, "MIX5", "2300", GROSS);
    // the TTL passes: d (never acknowledged) is released, a (accepted) keeps reserving; b's
    // reported fill that never came is released one TTL after its end event (the engine's
    // documented rule, test/integration/terminal-filled-quantity.test.ts)
    clock.advance(31_000);
    e().status();
    await waitFor(() => {
      e().status();
      return e().observe.order(F, String(d["order_id"]))?.reserved !== "1000";
    });
    expect(e().observe.order(F, String(a["order_id"]))?.reserved).toBe("700");
    await headroom(F, "MIX5", "3500", GROSS);
    await settled(e(), ALL);
    const live = e().status().state_digest;
    expect(await rebuilt()).toBe(live);
    await restart(true);
    await headroom(F, "MIX5", "3500", GROSS);
    await restart(false);
    await headroom(F, "MIX5", "3500", GROSS);
    // b's reported fill arrives late: position 200, nothing reserved for b
    await fill({ fund_id: F, order_id: b["order_id"], symbol: "MIX2", quantity: "200", price: "100" });
    await headroom(F, "MIX5", "3300", GROSS);
    // a's rest fills: 700 moves from reservation to position
    await fill({ fund_id: F, order_id: a["order_id"], symbol: "MIX1", quantity: "700", price: "100" });
    await headroom(F, "MIX5", "3300", GROSS);
    expect(e().observe.order(F, String(a["order_id"]))?.reserved ?? "0").toBe("0");
  });
});
