/**
 * Red-team pass on exposure over an order's life: the reservation TTL of an unacknowledged order,
 * a late acknowledgement, warn_at_pct crossings, an envelope version that changes capital or
 * limits while orders are open, a restart from the snapshot (marks, reservations, FX), and a
 * fund whose base currency is not USD. One nats-server; engines on a manual clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { Subjects } from "../../src/contract/subjects.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";
import { steppableTimers } from "../support/timers.js";

describe("red-team exposure: reservations, warnings, envelopes and restarts", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const now = () => iso(clock.now());
  const timers = steppableTimers();
  const dir = mkdtempSync(join(tmpdir(), "mts-rx-life-"));
  const engines: Engine[] = [];

  async function start(): Promise<Engine> {
    const e = await startTestEngine(server.url, {
      clock,
      timers,
      stateDir: dir,
      flags: { "synthetic_stop.enabled": false, "reservations.ttl_s": 30 },
    });
    engines.push(e);
    await waitFor(() => e.ready(), { message: "engine not ready" });
    return e;
  }

  beforeAll(async () => {
    server = await startTestNats();
    engine = await start();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    for (const e of engines) await e.close().catch(() => undefined);
    await server?.stop();
  });

  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  const setup = async (fund: string, env: Record<string, unknown>) =>
    until("RISK_ENVELOPES", await bus.envelope(envelope(fund, env)));
  const outcome = (d: { approved: boolean; rejecting_gate: string; rejection_code: string }) =>
    d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`;
  const quote = async (s: string, b: string, a: string) => until("QUOTES", await bus.quote(s, b, a, now()));
  const fill = async (f: Record<string, unknown>) =>
    until("FILLS", await bus.fill({ timestamp: now(), ...f }));
  const inst = async (i: Record<string, unknown>) => until("REFDATA", await bus.instrument(i));
  const ev = async (e: string, fund: string, id: unknown, extra: Record<string, unknown> = {}) =>
    until("OMS_ORDERS", await bus.orderEvent(e, fund, String(id), now(), extra));
  const check = async (o: Record<string, unknown>) => outcome(await bus.check(order(o)));
  const warnings = async (F: string) =>
    (
      await readStream<{ details: Record<string, string> }>(
        nc,
        "RISK_CONTROL",
        Subjects.alert("limit_warning", F),
      )
    ).map((a) => `${a.data.details["measure"]}|${a.data.details["scope"]}:${a.data.details["value"]}`);

  it("TTL releases an unacknowledged order; a late accepted reserves it again", async () => {
    const F = "rx-ttl1";
    await setup(F, { max_position_pct: "0.1" });
    const a = order({ fund_id: F, symbol: "RXT1", quantity: "1000", limit_price: "100" });
    expect(outcome(await bus.check(a))).toBe("approved");
    clock.advance(29_000);
    engine.status();
    expect(await check({ fund_id: F, symbol: "RXT1", quantity: "1", limit_price: "1" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    clock.advance(2_000);
    await waitFor(() => {
      engine.status(); // sweeps with the clock
      return engine.observe.order(F, String(a["order_id"]))?.reserved === "0";
    });
    // quotes are not needed: LIMIT orders; the TTL passed, so a whole new order fits
    const b = order({ fund_id: F, symbol: "RXT1", quantity: "1000", limit_price: "100" });
    expect(outcome(await bus.check(b))).toBe("approved");
    await ev("accepted", F, b["order_id"]);
    // a is acknowledged late: working at a broker, reserves again (over the limit now)
    await ev("accepted", F, a["order_id"]);
    expect(await check({ fund_id: F, symbol: "RXT1", quantity: "1", limit_price: "1" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    // an acknowledged order keeps reserving long after the TTL
    clock.advance(120_000);
    engine.status();
    expect(await check({ fund_id: F, symbol: "RXT1", quantity: "1", limit_price: "1" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
  });

  it("warn_at_pct: one warning per upward crossing, by decisions and fills", async () => {
    const F = "rx-warn1";
    await setup(F, { max_position_pct: "0.1", warn_at_pct: "0.5" }); // warn above 50 000
    const a = order({ fund_id: F, symbol: "RXW1", quantity: "500", limit_price: "100" }); // 50 000: at, not above
    expect(outcome(await bus.check(a))).toBe("approved");
    const b = order({ fund_id: F, symbol: "RXW1", quantity: "1", limit_price: "100" }); // 50 100: above
    expect(outcome(await bus.check(b))).toBe("approved");
    await waitFor(async () => (await warnings(F)).length === 1);
    const c = order({ fund_id: F, symbol: "RXW1", quantity: "1", limit_price: "100" });
    expect(outcome(await bus.check(c))).toBe("approved"); // still above: no new warning
    await ev("cancelled", F, b["order_id"]);
    await ev("cancelled", F, c["order_id"]); // back to 50 000: re-armed
    await fill({ fund_id: F, symbol: "RXW1", quantity: "10", price: "100" }); // 51 000 (a still reserving 500)
    await waitFor(async () => (await warnings(F)).length === 2, { message: "no second warning" });
    expect(await warnings(F)).toEqual(["position|RXW1:50100", "position|RXW1:51000"]);
  });

  it("a new envelope version lowering capital applies at once to open reservations", async () => {
    const F = "rx-env1";
    await setup(F, { max_gross_exposure_pct: "1" });
    expect(await check({ fund_id: F, symbol: "RXE1", quantity: "5000", limit_price: "100" })).toBe(
      "approved",
    );
    await until(
      "RISK_ENVELOPES",
      await bus.envelope(envelope(F, { version: 2, capital: "600000", max_gross_exposure_pct: "1" })),
    );
    expect(await check({ fund_id: F, symbol: "RXE2", quantity: "1000", limit_price: "100" })).toBe(
      "approved",
    );
    expect(await check({ fund_id: F, symbol: "RXE2", quantity: "1", limit_price: "0.01" })).toBe(
      "position/GROSS_EXPOSURE_EXCEEDED",
    );
    // an older version arriving late is ignored
    await bus.envelope(envelope(F, { version: 1, capital: "10000000", max_gross_exposure_pct: "1" }));
    await until("RISK_ENVELOPES", await bus.envelope(envelope("rx-env1-other", {})));
    expect(await check({ fund_id: F, symbol: "RXE2", quantity: "1", limit_price: "0.01" })).toBe(
      "position/GROSS_EXPOSURE_EXCEEDED",
    );
  });

  it("a EUR fund: USD instruments convert at USD-EUR; EUR-USD alone is no rate", async () => {
    const F = "rx-eur1";
    await setup(F, { base_currency: "EUR", max_position_pct: "0.1" }); // 100 000 EUR
    await inst({ symbol: "RXU1", asset_class: "equity", currency: "USD" });
    await quote("EUR-USD", "1.25", "1.25");
    expect(await check({ fund_id: F, symbol: "RXU1", quantity: "1", limit_price: "1" })).toBe(
      "static/STALE_MARKET_DATA",
    );
    await quote("USD-EUR", "0.8", "0.8");
    // 1250 × 100 USD × 0.8 = 100 000 EUR
    expect(await check({ fund_id: F, symbol: "RXU1", quantity: "1250", limit_price: "100" })).toBe(
      "approved",
    );
    expect(await check({ fund_id: F, symbol: "RXU1", quantity: "0.01", limit_price: "1" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    // an instrument with no currency is in the fund's base
    expect(await check({ fund_id: F, symbol: "RXU2", quantity: "1000", limit_price: "100" })).toBe(
      "approved",
    );
  });

  it("restart from the snapshot keeps marks, reservations and FX: same boundary after", async () => {
    const F = "rx-rst1";
    await setup(F, { max_gross_exposure_pct: "0.5" });
    await inst({ symbol: "RXS1", asset_class: "equity", currency: "EUR" });
    await quote("EUR-USD", "2", "2");
    await fill({ fund_id: F, symbol: "RXS1", quantity: "1000", price: "50" }); // cost 100 000 USD
    await quote("RXS1", "99", "101"); // mid 100 EUR: mv 200 000 USD; NAV 1 100 000; limit 550 000
    const r = order({
      fund_id: F,
      symbol: "RXS2",
      order_type: "LIMIT",
      quantity: "1000",
      limit_price: "150",
    });
    expect(outcome(await bus.check(r))).toBe("approved"); // 150 000
    await ev("accepted", F, r["order_id"]);
    clock.advance(1000);
    await engine.close();
    engine = await start();
    // 200 000 + 150 000 + 200 000 = 550 000
    await quote("EUR-USD", "2", "2"); // fresh again for orders in EUR
    expect(await check({ fund_id: F, symbol: "RXS3", quantity: "2000", limit_price: "100" })).toBe(
      "approved",
    );
    expect(await check({ fund_id: F, symbol: "RXS3", quantity: "1", limit_price: "0.01" })).toBe(
      "position/GROSS_EXPOSURE_EXCEEDED",
    );
  });

  it("a new envelope version changing base_currency revalues positions and reservations", async () => {
    const F = "rx-rebase";
    await setup(F, { max_position_pct: "0.1" });
    await inst({ symbol: "RXRB", asset_class: "equity", currency: "SEK" });
    await inst({ symbol: "RXRU", asset_class: "equity", currency: "USD" });
    await quote("SEK-USD", "0.1", "0.1");
    await fill({ fund_id: F, symbol: "RXRB", quantity: "100", price: "100" }); // 10 000 SEK = 1 000 USD
    expect(await check({ fund_id: F, symbol: "RXRU", quantity: "100", limit_price: "100" })).toBe("approved");
    await until(
      "RISK_ENVELOPES",
      await bus.envelope(envelope(F, { version: 2, base_currency: "SEK", max_position_pct: "0.1" })),
    );
    // the USD reservation has no USD-SEK rate: NAV and exposure cannot be established
    expect(await check({ fund_id: F, symbol: "RXRB", quantity: "1", limit_price: "1" })).toBe(
      "static/STALE_MARKET_DATA",
    );
    await quote("USD-SEK", "10", "10");
    // RXRB is in the base now: 10 000 SEK held of 100 000
    expect(await check({ fund_id: F, symbol: "RXRB", quantity: "900.01", limit_price: "100" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
    expect(await check({ fund_id: F, symbol: "RXRB", quantity: "900", limit_price: "100" })).toBe("approved");
    // RXRU's reservation: 10 000 USD × 10 = 100 000 SEK, the whole limit
    expect(await check({ fund_id: F, symbol: "RXRU", quantity: "0.01", limit_price: "1" })).toBe(
      "position/MAX_POSITION_EXCEEDED",
    );
  });
});
