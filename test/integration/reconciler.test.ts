import { afterEach, describe, expect, it } from "vitest";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { PREFIX, Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";
import { type SteppableTimers, steppableTimers } from "../support/timers.js";

interface AlertBody {
  kind: string;
  fund_id: string;
  message: string;
  details?: Record<string, string>;
}

/** One server, engine and client per test: every test starts from empty streams. */
interface Setup {
  server: NatsServerHandle;
  engine: Engine;
  nc: NatsConnection;
  bus: Bus;
  jsm: JetStreamManager;
  timers: SteppableTimers;
}

let current: Setup | undefined;
const subs: Subscription[] = [];

afterEach(async () => {
  for (const s of subs.splice(0)) s.unsubscribe();
  const s = current;
  current = undefined;
  await s?.nc.close();
  await s?.engine.close();
  await s?.server.stop();
});

async function setup(flags: Record<string, unknown>): Promise<Setup> {
  const server = await startTestNats();
  const timers = steppableTimers();
  const engine = await startTestEngine(server.url, {
    timers,
    flags: { "broker_exit_reconciler.interval_s": 3600, ...flags },
  });
  const nc = await connectTest(server.url);
  current = { server, engine, nc, bus: new Bus(nc), jsm: await jetstreamManager(nc), timers };
  return current;
}

/** A broker adapter: answers with whatever `positions[fund]` holds at the time of the request. */
async function broker(
  nc: NatsConnection,
  name: string,
  positions: Record<string, Record<string, string>>,
): Promise<void> {
  subs.push(
    nc.subscribe(Subjects.brokerPositions(name), {
      callback: (_err, m) => {
        const { fund_id } = m.json<{ fund_id: string }>();
        const held = positions[fund_id] ?? {};
        m.respond(
          JSON.stringify({
            positions: Object.entries(held).map(([symbol, quantity]) => ({ symbol, quantity })),
          }),
        );
      },
    }),
  );
  await nc.flush(); // the server has the subscription before anyone asks
}

/** A broker adapter that takes requests and never answers. */
async function silentBroker(nc: NatsConnection, name: string): Promise<void> {
  subs.push(nc.subscribe(Subjects.brokerPositions(name), { callback: () => undefined }));
  await nc.flush(); // the server has the subscription before anyone asks
}

async function alertCount(s: Setup, kind: string, fund: string): Promise<number> {
  const subject = Subjects.alert(kind, fund);
  const info = await s.jsm.streams.info("RISK_CONTROL", { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

/** Every alert on RISK_CONTROL, of any kind and fund. */
async function allAlerts(s: Setup): Promise<number> {
  const info = await s.jsm.streams.info("RISK_CONTROL", { subjects_filter: `${PREFIX}.risk.alert.>` });
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}

/**
 * The reconciler's tick, run now (its timer is an hour): resolves once the pass ended and what it
 * published (alerts, lock, adjustments) is on the streams; then what the pass found for the fund.
 */
async function reconcile(s: Setup, fund: string) {
  await s.timers.tick("reconciler");
  return s.engine.observe.reconciliation(fund)!;
}

/** Waits for the `n`-th alert of this kind for the fund, and returns the last one. */
async function alertAt(s: Setup, kind: string, fund: string, n = 1): Promise<AlertBody> {
  await waitFor(async () => (await alertCount(s, kind, fund)) >= n, { message: `${kind} alert #${n}` });
  const m = await s.jsm.streams.getMessage("RISK_CONTROL", { last_by_subj: Subjects.alert(kind, fund) });
  return m!.json<AlertBody>();
}

async function seed(s: Setup, fund: string, fills: Record<string, unknown>[], allowed = ["paper"]) {
  const env = await s.bus.envelope(envelope(fund, { allowed_brokers: allowed }));
  let seq = 0;
  for (const f of fills) seq = await s.bus.fill({ fund_id: fund, ...f });
  // Two streams, two consumers: wait for both, or a pass may see the fills without the envelope.
  await waitFor(() => applied(s.engine, "RISK_ENVELOPES", env) && applied(s.engine, "FILLS", seq));
}

const book = (s: Setup, fund: string, symbol: string) => s.engine.observe.book(fund, symbol);
const fund = (s: Setup, id: string) => s.engine.observe.fund(id);

describe("broker-exit reconciler", () => {
  it("a matching broker: clean pass, no alert, no action", async () => {
    const s = await setup({ "broker_exit_reconciler.on_drift": "lock" });
    await seed(s, "m1", [
      { symbol: "AAPL", quantity: "100" },
      { symbol: "MSFT", side: "SELL", quantity: "5" },
    ]);
    await broker(s.nc, "paper", { m1: { AAPL: "100", MSFT: "-5.000", TSLA: "0" } });
    const before = await allAlerts(s);
    const { at, ...r } = await reconcile(s, "m1");
    expect(at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(r).toEqual({
      brokers: [{ broker: "paper", answered: true, differences: [] }],
      action: "none",
      clean: true,
    });
    expect(await allAlerts(s)).toBe(before);
  });

  it("alert: publishes a drift alert with both quantities, changes nothing", async () => {
    const s = await setup({ "broker_exit_reconciler.on_drift": "alert" });
    await seed(s, "a1", [{ symbol: "AAPL", quantity: "100" }]);
    await broker(s.nc, "paper", { a1: { AAPL: "90", MSFT: "5" } });
    const r = await reconcile(s, "a1");
    expect(r).toMatchObject({
      action: "alert",
      clean: false,
      brokers: [
        {
          broker: "paper",
          answered: true,
          differences: [
            { symbol: "AAPL", engine: "100", broker: "90" },
            { symbol: "MSFT", engine: "0", broker: "5" },
          ],
        },
      ],
    });
    const a = await alertAt(s, "drift", "a1");
    expect(a.details).toEqual({
      broker: "paper",
      symbols: "AAPL,MSFT",
      "AAPL.engine": "100",
      "AAPL.broker": "90",
      "MSFT.engine": "0",
      "MSFT.broker": "5",
    });
    expect(book(s, "a1", "AAPL")!.qty).toBe("100");
    expect(fund(s, "a1")?.lock).toBeUndefined();
  });

  it("alert_threshold: fewer differing symbols than the threshold raise no drift alert", async () => {
    const s = await setup({ "broker_exit_reconciler.alert_threshold": 2 });
    await seed(s, "t1", [{ symbol: "AAPL", quantity: "100" }]);
    const positions = { t1: { AAPL: "90" } as Record<string, string> };
    await broker(s.nc, "paper", positions);
    const before = await allAlerts(s);
    const r = await reconcile(s, "t1");
    expect(r).toMatchObject({ action: "none", clean: false });
    expect(await allAlerts(s)).toBe(before);
    positions.t1 = { AAPL: "90", MSFT: "1" };
    expect((await reconcile(s, "t1")).action).toBe("alert");
    expect((await alertAt(s, "drift", "t1")).details?.["symbols"]).toBe("AAPL,MSFT");
  });

  it("lock: drift locks risk-increasing orders until a clean pass unlocks", async () => {
    const s = await setup({ "broker_exit_reconciler.on_drift": "lock" });
    await seed(s, "l1", [{ symbol: "AAPL", quantity: "100" }]);
    const positions = { l1: { AAPL: "90" } };
    await broker(s.nc, "paper", positions);

    const controls = async (ev: "lock" | "unlock") => {
      const subject = Subjects.reconcile(ev, "l1");
      const info = await s.jsm.streams.info("RISK_CONTROL", { subjects_filter: subject });
      return info.state.subjects?.[subject] ?? 0;
    };
    expect((await reconcile(s, "l1")).action).toBe("lock");
    expect(await controls("lock")).toBe(1); // on RISK_CONTROL once the tick has ended
    await waitFor(() => fund(s, "l1")?.lock, { message: "lock applied" });
    const denied = await s.bus.check(order({ fund_id: "l1" }));
    expect(denied).toMatchObject({ approved: false, rejection_code: "RECONCILIATION_LOCK" });
    // A reducing order still passes.
    expect(await s.bus.check(order({ fund_id: "l1", side: "SELL", quantity: "10" }))).toMatchObject({
      approved: true,
    });

    // Still drifting while locked: alerted again, not locked twice.
    expect((await reconcile(s, "l1")).action).toBe("lock");
    expect(await alertCount(s, "drift", "l1")).toBe(2);
    expect(await controls("lock")).toBe(1);

    positions.l1.AAPL = "100";
    const r = await reconcile(s, "l1");
    expect(r).toMatchObject({ action: "unlock", clean: true });
    expect(await controls("unlock")).toBe(1);
    await waitFor(() => !fund(s, "l1")?.lock, { message: "unlock applied" });
    expect(await s.bus.check(order({ fund_id: "l1" }))).toMatchObject({ approved: true });
  });

  it("adopt: adjustment fills make the engine's quantity the broker's, at average cost", async () => {
    const s = await setup({ "broker_exit_reconciler.on_drift": "adopt" });
    await seed(s, "d1", [
      { symbol: "AAPL", quantity: "100", price: "100" },
      { symbol: "AAPL", quantity: "100", price: "110" },
      { symbol: "AAPL", side: "SELL", quantity: "50", price: "120" }, // realizes P&L; avg cost 105
      { symbol: "NVDA", quantity: "3", price: "10" },
      { symbol: "NVDA", quantity: "1", price: "11" }, // avg cost 10.25
    ]);
    const q = await s.bus.quote("MSFT", "200", "201");
    await waitFor(() => applied(s.engine, "QUOTES", q));
    const realized = book(s, "d1", "AAPL")!.realized;
    expect(realized).not.toBe("0");
    await broker(s.nc, "paper", { d1: { AAPL: "120", NVDA: "6", MSFT: "-7", TSLA: "5" } });

    // first sighting: alerted, not adopted (confirm_passes: 2)
    const first = await reconcile(s, "d1");
    expect(first.action).toBe("alert");
    const r = await reconcile(s, "d1");
    expect(r.action).toBe("adopt");
    await waitFor(() => book(s, "d1", "AAPL")?.qty === "120" && book(s, "d1", "MSFT")?.qty === "-7", {
      message: "adjustments applied",
    });
    await waitFor(() => book(s, "d1", "NVDA")?.qty === "6", { message: "NVDA adjusted" });
    const aapl = book(s, "d1", "AAPL")!;
    expect(aapl.realized).toBe(realized);
    expect(aapl.cost).toBe("12600"); // 120 × 105: the average is unchanged
    expect(book(s, "d1", "NVDA")!.cost).toBe("61.5");
    expect(book(s, "d1", "MSFT")!.cost).toBe("1403.5"); // 7 × mid 200.5
    expect(fund(s, "d1")!.realized).toBe(realized);
    expect(aapl.brokers["paper"]).toBe("120");

    const adopt = await alertAt(s, "adopt", "d1");
    expect(adopt.details).toMatchObject({
      broker: "paper",
      symbols: "AAPL,MSFT,NVDA",
      "AAPL.side": "SELL",
      "AAPL.quantity": "30",
      "AAPL.price": "105",
      "MSFT.side": "SELL",
      "MSFT.price": "200.5",
      "NVDA.side": "BUY",
      "NVDA.quantity": "2",
      "NVDA.price": "10.25",
    });
    expect(adopt.details?.["AAPL.fill_id"]).toMatch(/^adj:d1:paper:AAPL:\d+$/);
    // TSLA has no position and no mark: not adopted, and said so.
    const unpriced = await alertAt(s, "drift", "d1", 3);
    expect(unpriced.details).toMatchObject({ broker: "paper", symbols: "TSLA" });
    expect(book(s, "d1", "TSLA")?.qty ?? "0").toBe("0");

    const again = await reconcile(s, "d1");
    expect(again.brokers[0]?.differences).toEqual([{ symbol: "TSLA", engine: "0", broker: "5" }]);
  });

  it("a broker that never answers: stale alert, nothing adopted, not clean", async () => {
    const s = await setup({
      "broker_exit_reconciler.on_drift": "adopt",
      "broker_exit_reconciler.timeout_s": 0.3,
    });
    await seed(
      s,
      "s1",
      [
        { symbol: "AAPL", quantity: "100", broker: "paper" },
        { symbol: "AAPL", quantity: "50", broker: "ibkr" },
      ],
      ["paper"], // ibkr is asked because the fund's fills name it
    );
    await broker(s.nc, "paper", { s1: { AAPL: "100" } });
    await silentBroker(s.nc, "ibkr");
    const fills = (await s.jsm.streams.info("FILLS")).state.messages;

    const r = await reconcile(s, "s1");
    expect(r).toMatchObject({ action: "none", clean: false });
    expect(r.brokers).toEqual([
      { broker: "ibkr", answered: false, differences: [] },
      { broker: "paper", answered: true, differences: [] },
    ]);
    expect((await alertAt(s, "stale", "s1")).details).toMatchObject({ broker: "ibkr" });
    expect((await s.jsm.streams.info("FILLS")).state.messages).toBe(fills);
    expect(book(s, "s1", "AAPL")!.brokers["ibkr"]).toBe("50");
  });

  it("a locked fund stays locked while a broker does not answer", async () => {
    const s = await setup({
      "broker_exit_reconciler.on_drift": "lock",
      "broker_exit_reconciler.timeout_s": 0.3,
    });
    await seed(s, "s2", [{ symbol: "AAPL", quantity: "100" }], ["paper", "ibkr"]);
    const positions = { s2: { AAPL: "1" } };
    await broker(s.nc, "paper", positions);
    await silentBroker(s.nc, "ibkr");

    expect((await reconcile(s, "s2")).action).toBe("lock");
    await waitFor(() => fund(s, "s2")?.lock, { message: "lock applied" });
    positions.s2.AAPL = "100";
    const r = await reconcile(s, "s2");
    expect(r).toMatchObject({ action: "none", clean: false });
    await alertAt(s, "stale", "s2", 2);
    const unlock = Subjects.reconcile("unlock", "s2");
    const info = await s.jsm.streams.info("RISK_CONTROL", { subjects_filter: unlock });
    expect(info.state.subjects?.[unlock] ?? 0).toBe(0);
    expect(fund(s, "s2")?.lock).toBeDefined();
    expect(await s.bus.check(order({ fund_id: "s2" }))).toMatchObject({
      rejection_code: "RECONCILIATION_LOCK",
    });
  });

  it("a malformed reply counts as not answering; concurrent passes share one run", async () => {
    const s = await setup({ "broker_exit_reconciler.timeout_s": 0.3 });
    await seed(s, "x1", [{ symbol: "AAPL", quantity: "100" }]);
    subs.push(
      s.nc.subscribe(Subjects.brokerPositions("paper"), {
        callback: (_e, m) => {
          m.respond(JSON.stringify({ positions: [{ symbol: "AAPL", quantity: "1e2" }] }));
        },
      }),
    );
    await s.nc.flush();
    // two ticks at once: one pass, so one stale alert (a stale alert has no message id to dedupe it)
    await Promise.all([s.timers.tick("reconciler"), s.timers.tick("reconciler")]);
    expect(s.engine.observe.reconciliation("x1")).toMatchObject({
      clean: false,
      brokers: [{ broker: "paper", answered: false }],
    });
    expect(await alertCount(s, "stale", "x1")).toBe(1);
    expect((await alertAt(s, "stale", "x1")).message).toMatch(/malformed/);
  });
});
