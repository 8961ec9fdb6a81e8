/**
 * The workers' typed emitters (facts/emitters.ts): a fact is checked against its contract schema,
 * lands on the subject its body names with its message id, and is tracked pending → acknowledged →
 * read back. The transport here is a function recording what it was given (as in stop-sim).
 */
import { describe, expect, it } from "vitest";
import { Subjects } from "../../src/contract/subjects.js";
import {
  type FactAck,
  FactIds,
  FactKeys,
  InvalidFactError,
  createFactEmitters,
} from "../../src/facts/emitters.js";

function transport() {
  const sent: {
    subject: string;
    body: unknown;
    msgID: string;
    resolve: (a: FactAck) => void;
    reject: (e: Error) => void;
  }[] = [];
  const publish = (subject: string, body: unknown, msgID: string) =>
    new Promise<FactAck>((resolve, reject) => sent.push({ subject, body, msgID, resolve, reject }));
  return { sent, publish };
}

const stop = {
  fund_id: "alpha",
  symbol: "AAPL",
  side: "LONG" as const,
  quantity: "100",
  stop_price: "95",
  arm_seq: 3,
  at: "2026-11-21T14:30:00.000Z",
};

describe("typed fact emitters", () => {
  it("given a stop, when emitted, then it goes to its fund's stop subject with its identity as message id, and is tracked until read back", async () => {
    const t = transport();
    const facts = createFactEmitters({ publish: t.publish });
    const p = facts.stop("armed", stop);
    expect(t.sent[0]).toMatchObject({ subject: Subjects.stop("armed", "alpha"), body: stop });
    const id = FactIds.stop("armed", "alpha", "AAPL", 3);
    expect(t.sent[0]!.msgID).toBe(id);
    expect(facts.inFlight(id)).toBe("pending");
    expect(facts.tracking()).toBe(true);
    t.sent[0]!.resolve({ seq: 7 });
    await p;
    expect(facts.inFlight(id)).toBe("acknowledged");
    expect(facts.counts()).toEqual({ pending: 0, acknowledged: 1 });
    facts.readBack(id);
    expect(facts.inFlight(id)).toBeUndefined();
    expect(facts.tracking()).toBe(false);
  });

  it("given a duplicate acknowledgement or a failed publish, then the fact is no longer in flight", async () => {
    const t = transport();
    const facts = createFactEmitters({ publish: t.publish });
    const a = facts.halt(
      { fund_id: "alpha", severity: "DAILY_LOSS", reason: "r", at: stop.at, by: "drawdown-monitor" },
      FactIds.halt("alpha", "DAILY_LOSS", 1),
    );
    const b = facts.baseline(
      { fund_id: "alpha", period: "day", starts_at: stop.at, equity: "100", capital: "100" },
      FactIds.baseline("alpha", "day", 1),
    );
    expect(t.sent.map((s) => s.subject)).toEqual([Subjects.halt("alpha"), Subjects.pnlBaseline("alpha")]);
    t.sent[0]!.resolve({ seq: 9, duplicate: true });
    t.sent[1]!.reject(new Error("no stream"));
    await a;
    await expect(b).rejects.toThrow("no stream");
    expect(facts.counts()).toEqual({ pending: 0, acknowledged: 0 });
  });

  it("given intents the engine does not follow (closing orders, cancel-all), then the acknowledgement ends them", async () => {
    const t = transport();
    const facts = createFactEmitters({ publish: t.publish });
    const o = facts.order({
      order_id: "c-1",
      idempotency_key: "stop:alpha:AAPL:3",
      fund_id: "alpha",
      broker: "paper",
      symbol: "AAPL",
      side: "SELL",
      order_type: "MARKET",
      quantity: "100",
    });
    const c = facts.cancelAll(
      { fund_id: "alpha", reason: "kill", at: stop.at },
      FactIds.cancelAll("alpha", 4),
    );
    expect(t.sent.map((s) => [s.subject, s.msgID])).toEqual([
      [Subjects.orderSubmit("alpha"), "stop:alpha:AAPL:3"],
      [Subjects.cancelAll("alpha"), "cancel_all:alpha:4"],
    ]);
    for (const s of t.sent) s.resolve({ seq: 1 });
    await Promise.all([o, c]);
    expect(facts.tracking()).toBe(false);
  });

  it("given a body its schema rejects, then nothing is published and the error names the field", async () => {
    const t = transport();
    const facts = createFactEmitters({ publish: t.publish });
    const bad = facts.stop("armed", { ...stop, arm_seq: 0 });
    await expect(bad).rejects.toBeInstanceOf(InvalidFactError);
    await expect(bad).rejects.toThrow(/arm_seq/);
    await expect(
      facts.adjustment({
        fill_id: "adj:1",
        order_id: "adj:1",
        fund_id: "alpha",
        broker: "paper",
        symbol: "AAPL",
        side: "BUY",
        quantity: "-5",
        price: "1",
        timestamp: stop.at,
      }),
    ).rejects.toMatchObject({ code: "INVALID_FACT" });
    expect(t.sent).toHaveLength(0);
    expect(facts.tracking()).toBe(false);
  });
});

describe("what the workers see in flight (latest / pendingOf / resend)", () => {
  const settle = () => new Promise<void>((r) => setImmediate(r));
  const key = FactKeys.stop("alpha", "AAPL");

  it("given an arm acknowledged and its trigger sent, when the trigger fails, then the arm is what is in flight about the stop, until read back", async () => {
    const t = transport();
    const facts = createFactEmitters({ publish: t.publish });
    void facts.stop("armed", stop);
    const trig = facts.stop("triggered", { ...stop, closing_order_id: "stop-alpha-AAPL-3" });
    expect(facts.pendingOf("stop", key).map((f) => f.body.event)).toEqual(["armed", "triggered"]);
    expect(facts.latest("stop", key)).toMatchObject({ state: "pending", body: { event: "triggered" } });
    t.sent[0]!.resolve({ stream: "RISK_CONTROL", seq: 5 });
    t.sent[1]!.reject(new Error("timeout"));
    await expect(trig).rejects.toThrow("timeout");
    expect(facts.latest("stop", key)).toMatchObject({
      state: "acknowledged",
      msgId: FactIds.stop("armed", "alpha", "AAPL", 3),
      body: { event: "armed", arm_seq: 3 },
    });
    expect(facts.latestOf("stop")).toHaveLength(1);
    facts.readBack(FactIds.stop("armed", "alpha", "AAPL", 3));
    expect(facts.latest("stop", key)).toBeUndefined();
    expect(facts.latestOf("stop")).toEqual([]);
    expect(facts.tracking()).toBe(false);
  });

  it("given a duplicate acknowledgement, when the follower has not folded that copy yet, then the fact stays in flight until read back; when it has, the fact ends", async () => {
    const t = transport();
    const cursor = { seq: 10 };
    const facts = createFactEmitters({ publish: t.publish, folded: (_s, seq) => seq <= cursor.seq });
    const a = facts.stop("armed", stop);
    const b = facts.stop("armed", { ...stop, symbol: "MSFT" });
    t.sent[0]!.resolve({ stream: "RISK_CONTROL", seq: 12, duplicate: true }); // on its way
    t.sent[1]!.resolve({ stream: "RISK_CONTROL", seq: 9, duplicate: true }); // folded already
    await Promise.all([a, b]);
    expect(facts.inFlight(FactIds.stop("armed", "alpha", "AAPL", 3))).toBe("acknowledged");
    expect(facts.inFlight(FactIds.stop("armed", "alpha", "MSFT", 3))).toBeUndefined();
    expect(facts.latest("stop", FactKeys.stop("alpha", "MSFT"))).toBeUndefined();
    facts.readBack(FactIds.stop("armed", "alpha", "AAPL", 3));
    expect(facts.tracking()).toBe(false);
  });

  it("given a fact read back before its acknowledgement, when the acknowledgement comes, then it stays ended", async () => {
    const t = transport();
    const facts = createFactEmitters({ publish: t.publish });
    const p = facts.stop("armed", stop);
    facts.readBack(FactIds.stop("armed", "alpha", "AAPL", 3));
    t.sent[0]!.resolve({ stream: "RISK_CONTROL", seq: 1 });
    await p;
    expect(facts.latest("stop", key)).toBeUndefined();
    expect(facts.tracking()).toBe(false);
  });

  it("given a baseline whose publish failed, then it is kept with its body (not in flight), and resend publishes the same body and identity once", async () => {
    const t = transport();
    const facts = createFactEmitters({ publish: t.publish });
    const body = {
      fund_id: "alpha",
      period: "day" as const,
      starts_at: stop.at,
      equity: "100",
      capital: "90",
    };
    const id = FactIds.baseline("alpha", "day", Date.parse(stop.at));
    const p = facts.baseline(body, id);
    t.sent[0]!.reject(new Error("no responders"));
    await expect(p).rejects.toThrow("no responders");
    const f = facts.latest("baseline", FactKeys.baseline("alpha", "day"));
    expect(f).toMatchObject({ state: "failed", msgId: id, body });
    expect(facts.inFlight(id)).toBeUndefined();
    expect(facts.counts()).toEqual({ pending: 0, acknowledged: 0 });
    facts.resend(f!);
    facts.resend(f!); // pending again: not sent twice
    expect(t.sent.map((x) => [x.subject, x.msgID, x.body])).toEqual([
      [Subjects.pnlBaseline("alpha"), id, body],
      [Subjects.pnlBaseline("alpha"), id, body],
    ]);
    expect(facts.inFlight(id)).toBe("pending");
    t.sent[1]!.resolve({ stream: "RISK_CONTROL", seq: 3 });
    await settle();
    expect(facts.inFlight(id)).toBe("acknowledged");
    facts.readBack(id);
    expect(facts.latest("baseline", FactKeys.baseline("alpha", "day"))).toBeUndefined();
  });

  it("given an adjustment whose publish failed, then nothing about it is kept (the reconciler decides again)", async () => {
    const t = transport();
    const facts = createFactEmitters({ publish: t.publish });
    const fill = {
      fill_id: FactIds.adjustment("alpha", "paper", "AAPL", 7),
      order_id: FactIds.adjustment("alpha", "paper", "AAPL", 7),
      fund_id: "alpha",
      broker: "paper",
      symbol: "AAPL",
      side: "BUY" as const,
      quantity: "5",
      price: "1",
      timestamp: stop.at,
    };
    const p = facts.adjustment(fill);
    expect(facts.latest("adjustment", FactKeys.adjustment("alpha", "paper", "AAPL"))).toMatchObject({
      msgId: "adj:alpha:paper:AAPL:7",
      state: "pending",
    });
    t.sent[0]!.reject(new Error("no stream"));
    await expect(p).rejects.toThrow("no stream");
    expect(facts.latest("adjustment", FactKeys.adjustment("alpha", "paper", "AAPL"))).toBeUndefined();
    expect(facts.tracking()).toBe(false);
  });
});
