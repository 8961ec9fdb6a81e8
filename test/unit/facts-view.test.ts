/**
 * The workers' view of what they originated (issue 10 item 6): folded state + the facts this
 * engine published and has not read back yet (facts/emitters.ts), with no overlay of their own.
 * The cases the former overlays protected: a fact in flight is not emitted twice (a second arm,
 * closing order, baseline or halt), a publish that failed is not taken as done (derived again and
 * re-published, or re-sent with its body when the body must not change), and a restart (nothing in
 * flight) derives again from the folded state. Stops run on the in-process stream model
 * (test/support/stop-sim.ts); drawdown on a state fed through the real projector, with a transport
 * that records each publish and lets the test acknowledge or fail it.
 */
import { describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/index.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Alerter } from "../../src/engine/alerts.js";
import type { FactAck } from "../../src/facts/emitters.js";
import { silentLogger } from "../../src/obs/log.js";
import { iso, manualClock } from "../../src/time/clock.js";
import { createDrawdownMonitor } from "../../src/workers/drawdown.js";
import type { WorkerContext } from "../../src/workers/types.js";
import { StopSim } from "../support/stop-sim.js";
import { FUND, Feed, NOW, NOW_ISO } from "./fixtures.js";

/** Lets rejected/resolved publishes settle (no timer: the next turn of the event loop). */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe("the stops worker's view: folded stops + stop facts in flight", () => {
  function sim(): StopSim {
    const s = new StopSim(NOW_ISO, { sweeper_s: 5 });
    s.publish(Subjects.envelopeUpdated("pa"), {
      fund_id: "pa",
      version: 1,
      capital: "1000000",
      allowed_brokers: ["paper"],
      allowed_order_types: ["MARKET", "LIMIT"],
      synthetic_stop_pct: "0.1",
      max_quote_age_ms: 60_000,
    });
    s.deliverAll();
    s.fill({
      fill_id: "f1",
      order_id: "x1",
      fund_id: "pa",
      broker: "paper",
      symbol: "AAA",
      side: "BUY",
      quantity: "10",
      price: "100",
    });
    return s;
  }
  const count = (s: StopSim, event: "armed" | "triggered" | "cleared") =>
    s.logs.get("RISK_CONTROL")!.filter((m) => m.subject === Subjects.stop(event, "pa")).length;
  const quote = (s: StopSim, bid: string) => {
    s.publish(Subjects.quote("AAA"), {
      symbol: "AAA",
      bid,
      ask: String(Number(bid) + 1),
      timestamp: iso(s.clock.now()),
    });
    s.deliver("QUOTES");
  };

  it("given a stop armed and not read back, when the sweeper runs and a crossing quote comes twice, then one arm, one trigger and one closing order", () => {
    const s = sim();
    s.deliver("FILLS");
    expect(count(s, "armed")).toBe(1);
    expect(s.state.stops.size).toBe(0); // not folded yet: the view has it from the tracker
    expect(s.worker.stopOf("pa", "AAA")).toMatchObject({ state: "armed", armSeq: 1 });
    s.advance(6000); // ticks and a sweep
    expect(count(s, "armed")).toBe(1);
    quote(s, "85"); // through the stop at 90
    quote(s, "80");
    s.advance(2000);
    expect(count(s, "triggered")).toBe(1);
    expect(s.emitted.map((e) => e.order["order_id"])).toEqual(["stop-pa-AAA-1"]);
    expect(s.worker.stopOf("pa", "AAA")).toMatchObject({ state: "triggered", armSeq: 1 });
    s.deliver("RISK_CONTROL"); // read back: the folded stop is the same
    expect(s.state.stops.get("pa\u0001AAA")).toMatchObject({ state: "triggered", armSeq: 1 });
    expect(s.worker.stopOf("pa", "AAA")).toBe(s.state.stops.get("pa\u0001AAA"));
    quote(s, "79");
    expect(s.emitted).toHaveLength(1);
  });

  it("given the arm's publish fails, then the worker does not take the stop as armed and the sweeper arms it again with the same identity", async () => {
    const s = sim();
    s.failPublish = (subject) => subject === Subjects.stop("armed", "pa");
    s.deliver("FILLS");
    await settle();
    expect(count(s, "armed")).toBe(0);
    expect(s.worker.stopOf("pa", "AAA")).toBeUndefined();
    s.failPublish = undefined;
    s.advance(5000); // the sweeper
    expect(count(s, "armed")).toBe(1);
    expect(s.worker.stopOf("pa", "AAA")).toMatchObject({ state: "armed", armSeq: 1 });
    s.deliver("RISK_CONTROL");
    expect(s.state.stops.get("pa\u0001AAA")).toMatchObject({ state: "armed", armSeq: 1 });
  });

  it("given a stop armed and not read back, when the engine restarts, then the new worker derives it from the folded streams and arms nothing more", () => {
    const s = sim();
    s.deliver("FILLS");
    expect(count(s, "armed")).toBe(1);
    s.restart(); // nothing in flight; the state is rebuilt from the streams (the arm included)
    expect(s.state.stops.get("pa\u0001AAA")).toMatchObject({ state: "armed", armSeq: 1 });
    s.advance(6000);
    expect(count(s, "armed")).toBe(1);
  });
});

describe("the drawdown monitor's view: folded baselines and halts + those in flight", () => {
  function setup() {
    const feed = new Feed().envelope({ daily_loss_halt_pct: "0.05" });
    feed.quote("AAPL", "100", "100").fill("AAPL", "1000", "100");
    const sent: {
      subject: string;
      body: Record<string, unknown>;
      msgID: string;
      resolve: (a: FactAck) => void;
      reject: (e: Error) => void;
    }[] = [];
    const alerts: { kind: string; message: string }[] = [];
    const alerter: Alerter = {
      alert: (kind, _fund, message) => void alerts.push({ kind, message }),
      deadLetter: () => undefined,
      count: () => ({ alerts: alerts.length, deadLetters: 0 }),
    };
    const ctx = {
      state: feed.state,
      clock: manualClock(NOW),
      log: silentLogger,
      alerter,
      config: ConfigSchema.parse({}),
      publish: (subject: string, body: unknown, msgID: string) =>
        new Promise<FactAck>((resolve, reject) =>
          sent.push({ subject, body: body as Record<string, unknown>, msgID, resolve, reject }),
        ),
    } as unknown as WorkerContext;
    const monitor = () => createDrawdownMonitor(ctx);
    const of = (subject: string) => sent.filter((x) => x.subject === subject);
    /** The follower folds a sent fact and reports its message id. */
    const readBack = (x: (typeof sent)[number]) => {
      feed.publish("RISK_CONTROL", x.subject, x.body);
      ctx.facts!.readBack(x.msgID);
    };
    return { feed, sent, alerts, ctx, monitor, of, readBack };
  }

  it("given baselines published and not read back, when evaluated again, then none is published twice; when the day's publish failed, then the next tick sends it again with the same body and identity", async () => {
    const { feed, sent, monitor, of } = setup();
    const w = monitor();
    w.evaluateAll();
    expect(of(Subjects.pnlBaseline(FUND)).map((x) => x.body["period"])).toEqual(["day", "week", "month"]);
    expect(of(Subjects.pnlBaseline(FUND))[0]!.body).toMatchObject({ equity: "1000000", capital: "1000000" });
    w.evaluateAll();
    expect(sent).toHaveLength(3);
    const day = sent[0]!;
    day.reject(new Error("no responders"));
    sent[1]!.resolve({ stream: "RISK_CONTROL", seq: 2 });
    await settle();
    feed.quote("AAPL", "99", "99"); // equity now 999 000: the day's baseline stays the start's
    w.evaluateAll();
    expect(sent).toHaveLength(3); // kept with its body, not taken again from the state
    w.tick!(); // the retry, once a tick
    expect(sent).toHaveLength(4);
    expect(sent[3]).toMatchObject({ subject: day.subject, msgID: day.msgID, body: day.body });
    w.tick!(); // sent again, in flight: not a third time
    expect(sent).toHaveLength(4);
  });

  it("given a loss past the daily halt, when evaluated twice before the halt is read back, then one halt and one breach alert; read back, none more", async () => {
    const { feed, sent, alerts, monitor, of, readBack } = setup();
    const w = monitor();
    w.evaluateAll();
    for (const [i, x] of sent.entries()) x.resolve({ stream: "RISK_CONTROL", seq: i + 1 });
    await settle();
    feed.quote("AAPL", "40", "40"); // − 60 000: 6 % of 1 000 000
    expect(w.evaluateAll()).toEqual(["DAILY_LOSS"]);
    expect(w.evaluateAll()).toEqual([]);
    expect(of(Subjects.halt(FUND))).toHaveLength(1);
    expect(alerts.filter((a) => a.kind === "breach")).toHaveLength(1);
    const halt = of(Subjects.halt(FUND))[0]!;
    halt.resolve({ stream: "RISK_CONTROL", seq: 4 });
    await settle();
    expect(w.evaluateAll()).toEqual([]);
    readBack(halt);
    expect(feed.state.funds.get(FUND)!.halts.has("DAILY_LOSS")).toBe(true);
    expect(w.evaluateAll()).toEqual([]);
    expect(of(Subjects.halt(FUND))).toHaveLength(1);
  });

  it("given the halt's publish failed, then the next tick sends it again with its body and identity, and it is not decided or alerted again", async () => {
    const { feed, sent, alerts, monitor, of } = setup();
    const w = monitor();
    w.evaluateAll();
    for (const [i, x] of sent.entries()) x.resolve({ stream: "RISK_CONTROL", seq: i + 1 });
    feed.quote("AAPL", "40", "40");
    expect(w.evaluateAll()).toEqual(["DAILY_LOSS"]);
    const first = of(Subjects.halt(FUND))[0]!;
    first.reject(new Error("timeout"));
    await settle();
    feed.quote("AAPL", "30", "30");
    expect(w.evaluateAll()).toEqual([]); // kept: not decided (nor alerted) again
    expect(of(Subjects.halt(FUND))).toHaveLength(1);
    expect(w.tick!()).toEqual([]); // the retry sends it as it was
    const halts = of(Subjects.halt(FUND));
    expect(halts).toHaveLength(2);
    expect(halts[1]).toMatchObject({ msgID: first.msgID, body: first.body });
    expect(alerts.filter((a) => a.kind === "breach")).toHaveLength(1);
  });

  it("given baselines in flight, when the engine restarts (a new monitor, nothing in flight), then it takes them again from the folded state with the same identities", () => {
    const { sent, monitor, ctx, of } = setup();
    monitor().evaluateAll();
    const before = of(Subjects.pnlBaseline(FUND)).map((x) => x.msgID);
    delete ctx.facts; // the restart: the tracker is in memory
    monitor().evaluateAll();
    expect(sent.slice(3).map((x) => x.msgID)).toEqual(before);
  });
});
