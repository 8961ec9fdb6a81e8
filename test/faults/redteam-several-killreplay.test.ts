/**
 * Red team, several engines: the owner is killed (kill -9) in the middle of a burst (approvals,
 * then rejections at the limit); another engine takes the fund over. CONTRACT.md: "Every decision
 * is journaled"; gate 1: "The same key with the same order returns the original decision again,
 * with details.replayed = "true". DUPLICATE_ORDER_ID: an order_id already decided for this fund
 * under another key"; IDEMPOTENCY_CONFLICT: same key, different order. Expected after the takeover,
 * for every order the OMS got an answer for: it is journaled; its key replays it; its order id under
 * a new key is DUPLICATE_ORDER_ID; its key with another quantity is IDEMPOTENCY_CONFLICT; and the
 * fund's approvals never exceed its headroom.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { Subjects } from "../../src/contract/subjects.js";
import { partitionOf } from "../../src/ownership/partition.js";
import { waitFor } from "../support/nats.js";
import { readDecisions } from "./support.js";
import { PARTITIONS, SeveralEngines, isProcess, raceOrder } from "./several-support.js";

const transient = (d: RiskDecision) =>
  d.rejection_code === "STATE_NOT_READY" || d.rejection_code === "NO_ENVELOPE";
const show = (d: RiskDecision | undefined) =>
  d === undefined ? "none" : d.approved ? "APPROVED" : d.rejection_code;

describe("red team: several engines, replays after the owner's kill -9", () => {
  let h: SeveralEngines;
  beforeEach(async () => {
    h = await SeveralEngines.start();
  });
  afterEach(async () => {
    await h?.stop();
  });

  it("answers given before the kill replay, conflict and duplicate the same at the new owner", async () => {
    await h.startEngines(3);
    const fund = "kr1";
    await h.publishEnvelope(fund, { max_position_pct: "0.10" });
    const p = partitionOf(fund, PARTITIONS);
    const { engine: owner } = await h.ownerOf(fund);

    const replies = new Map<string, RiskDecision>();
    const orders = Array.from({ length: 1000 }, (_, i) => raceOrder(fund, i));
    let answered = 0;
    const burst = Promise.all(
      orders.map(async (o, i) => {
        const subject = i % 2 ? Subjects.check : Subjects.checkFund(fund);
        const deadline = Date.now() + 60_000;
        for (;;) {
          const d = await h.request(o, subject, 20_000);
          if (d && !transient(d)) {
            replies.set(String(o["idempotency_key"]), d);
            answered++;
            return;
          }
          if (Date.now() > deadline) throw new Error(`no decision for ${String(o["order_id"])}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }),
    );
    await waitFor(() => answered >= 150, { timeoutMs: 20_000, intervalMs: 1, message: "burst under way" });
    await owner.kill9();
    await burst;
    await waitFor(
      async () => (await h.views()).some((v) => v.partitions.includes(p) && !isProcess(v, owner)),
      { timeoutMs: 20_000, intervalMs: 100, message: "a survivor owns the fund" },
    );
    expect([...replies.values()].filter((d) => d.approved)).toHaveLength(100);

    const records = await readDecisions(jetstream(h.nc), h.jsm);
    const journaled = new Set(
      records
        .filter((r) => r.fund_id === fund)
        .map((r) => `${r.idempotency_key} ${r.decision.approved} ${r.decision.rejection_code}`),
    );
    const problems: string[] = [];
    for (const [k, d] of replies)
      if (!journaled.has(`${k} ${d.approved} ${d.rejection_code}`))
        problems.push(`${k}: ${show(d)} not journaled`);
    expect(
      new Set(records.filter((r) => r.fund_id === fund && r.decision.approved).map((r) => r.idempotency_key))
        .size,
    ).toBe(100);

    const seen = { notReady: 0, timeouts: 0 };
    await Promise.all(
      orders.map(async (o) => {
        const k = String(o["idempotency_key"]);
        const was = replies.get(k)!;
        const again = await h.decide(o, Subjects.check, seen);
        if (
          again.approved !== was.approved ||
          again.rejection_code !== was.rejection_code ||
          again.details["replayed"] !== "true"
        )
          problems.push(
            `${k}: first ${show(was)}, replay ${show(again)} replayed=${again.details["replayed"]}`,
          );
        const dup = await h.decide({ ...o, idempotency_key: `${k}-other` }, Subjects.checkFund(fund), seen);
        if (dup.rejection_code !== "DUPLICATE_ORDER_ID")
          problems.push(`${k}: order id again under a new key: ${show(dup)}`);
        const conflict = await h.decide({ ...o, quantity: "11" }, Subjects.check, seen);
        if (conflict.rejection_code !== "IDEMPOTENCY_CONFLICT")
          problems.push(`${k}: other quantity: ${show(conflict)}`);
      }),
    );
    expect(problems.slice(0, 20), `${problems.length} problems`).toEqual([]);
  }, 120_000);
});
