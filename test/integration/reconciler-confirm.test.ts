/**
 * `adopt` acts only on a drift seen with the same quantities in `confirm_passes` (default 2)
 * consecutive passes (issue 9 case 10): one empty-but-valid broker answer does not flatten a
 * position, a fill in flight at the pass is not counted twice, a change of quantities restarts the
 * count; `lock` still acts at once.
 */
import { afterEach, describe, expect, it } from "vitest";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, startTestEngine } from "../support/engine.js";
import { type SteppableTimers, steppableTimers } from "../support/timers.js";

interface Setup {
  server: NatsServerHandle;
  engine: Engine;
  nc: NatsConnection;
  bus: Bus;
  jsm: JetStreamManager;
  timers: SteppableTimers;
}
let current: Setup | undefined;
let sub: Subscription | undefined;

afterEach(async () => {
  sub?.unsubscribe();
  const s = current;
  current = undefined;
  await s?.nc.close();
  await s?.engine.close();
  await s?.server.stop();
});

/** Engine with on_drift adopt; the broker `paper` answers whatever `held` holds at the time. */
async function setup(held: { positions: Record<string, string> }, flags: Record<string, unknown> = {}) {
  const server = await startTestNats();
  const timers = steppableTimers();
  const engine = await startTestEngine(server.url, {
    timers,
    flags: {
      "broker_exit_reconciler.interval_s": 3600,
      "broker_exit_reconciler.on_drift": "adopt",
      ...flags,
    },
  });
  const nc = await connectTest(server.url);
  current = { server, engine, nc, bus: new Bus(nc), jsm: await jetstreamManager(nc), timers };
  sub = nc.subscribe(Subjects.brokerPositions("paper"), {
    callback: (_err, m) => {
      const positions = Object.entries(held.positions).map(([symbol, quantity]) => ({ symbol, quantity }));
      m.respond(JSON.stringify({ positions }));
    },
  });
  await nc.flush();
  const env = await current.bus.envelope(envelope("r1", { allowed_brokers: ["paper"] }));
  const f = await current.bus.fill({ fund_id: "r1", symbol: "AAPL", quantity: "100", price: "100" });
  await waitFor(() => applied(engine, "RISK_ENVELOPES", env) && applied(engine, "FILLS", f));
  return current;
}

const qty = (s: Setup) => s.engine.observe.book("r1", "AAPL")!.qty;
const adjustments = async (s: Setup) =>
  (await s.jsm.streams.info("FILLS", { subjects_filter: Subjects.fill("r1", "AAPL") })).state.messages;
/** Every fill published so far applied (an adjustment included). */
async function settled(s: Setup) {
  const last = (await s.jsm.streams.info("FILLS")).state.last_seq;
  await waitFor(() => applied(s.engine, "FILLS", last));
}

/**
 * The reconciler's tick, run now (its timer is an hour): resolves once the pass ended and what it
 * published (alerts, adjustments, a lock) is on the streams; then what the pass found for r1.
 */
async function reconcile(s: Setup) {
  await s.timers.tick("reconciler");
  return s.engine.observe.reconciliation("r1")!;
}
const alerts = async (s: Setup, kind: string) => {
  const subject = Subjects.alert(kind, "r1");
  return (
    (await s.jsm.streams.info("RISK_CONTROL", { subjects_filter: subject })).state.subjects?.[subject] ?? 0
  );
};

describe("reconciler adopt: confirm_passes", () => {
  it("one empty (valid) broker answer does not flatten the position", async () => {
    const held = { positions: {} as Record<string, string> }; // the broker glitches: nothing held
    const s = await setup(held);
    const pass = await reconcile(s);
    await settled(s);
    expect(qty(s)).toBe("100");
    expect(await adjustments(s)).toBe(1); // the seed fill only
    expect(pass).toMatchObject({
      action: "alert",
      brokers: [{ broker: "paper", differences: [{ symbol: "AAPL", engine: "100", broker: "0" }] }],
    });
    expect(await alerts(s, "drift")).toBe(1);

    held.positions = { AAPL: "100" }; // the next answer is right again: the count starts over
    expect(await reconcile(s)).toMatchObject({
      clean: true,
      action: "none",
    });
    expect(await alerts(s, "drift")).toBe(1); // the clean pass alerted nothing
    held.positions = {};
    expect((await reconcile(s)).action).toBe("alert");
    await settled(s);
    expect(qty(s)).toBe("100");
    expect({ drift: await alerts(s, "drift"), fills: await adjustments(s) }).toEqual({ drift: 2, fills: 1 });

    // seen alike twice in a row: a real exit at the broker, adopted
    expect((await reconcile(s)).action).toBe("adopt");
    expect({ adopt: await alerts(s, "adopt"), fills: await adjustments(s) }).toEqual({ adopt: 1, fills: 2 });
    await waitFor(() => qty(s) === "0", { message: "flattened after confirmation" });
  });

  it("a fill in flight at the pass is not counted twice", async () => {
    const held = { positions: { AAPL: "110" } }; // the broker has executed a BUY 10 the engine has not seen
    const s = await setup(held);
    const first = await reconcile(s);
    const f = await s.bus.fill({ fund_id: "r1", symbol: "AAPL", quantity: "10", price: "101" });
    await waitFor(() => applied(s.engine, "FILLS", f));
    const second = await reconcile(s);
    await settled(s);
    expect(qty(s)).toBe("110");
    expect(await adjustments(s)).toBe(2); // the seed and the real fill: no adjustment
    expect(first.action).toBe("alert");
    expect(second).toMatchObject({ clean: true, action: "none" });
  });

  it("a change of quantities between passes restarts the count", async () => {
    const held = { positions: { AAPL: "90" } };
    const s = await setup(held);
    expect((await reconcile(s)).action).toBe("alert");
    held.positions = { AAPL: "80" };
    expect((await reconcile(s)).action).toBe("alert");
    await settled(s);
    expect(qty(s)).toBe("100");
    expect((await reconcile(s)).action).toBe("adopt");
    await waitFor(() => qty(s) === "80", { message: "adopted 80" });
    // adopted once: the next pass is clean and adjusts nothing more
    expect(await reconcile(s)).toMatchObject({ clean: true });
    await settled(s);
    expect(qty(s)).toBe("80");
  });

  it("confirm_passes: 1 adopts at once", async () => {
    const s = await setup({ positions: { AAPL: "95" } }, { "broker_exit_reconciler.confirm_passes": 1 });
    expect((await reconcile(s)).action).toBe("adopt");
    expect(await adjustments(s)).toBe(2); // the seed and the adjustment, on FILLS once the tick ended
    await waitFor(() => qty(s) === "95");
  });

  it("lock is not delayed by confirm_passes", async () => {
    const s = await setup(
      { positions: { AAPL: "95" } },
      { "broker_exit_reconciler.on_drift": "lock", "broker_exit_reconciler.confirm_passes": 3 },
    );
    expect((await reconcile(s)).action).toBe("lock");
    const lock = Subjects.reconcile("lock", "r1");
    const info = await s.jsm.streams.info("RISK_CONTROL", { subjects_filter: lock });
    expect(info.state.subjects?.[lock]).toBe(1);
    await waitFor(() => s.engine.observe.fund("r1")?.lock !== undefined, { message: "locked at once" });
  });
});
