/**
 * Red team, several engines: the owner is paused (SIGSTOP) in the middle of a burst of checks it
 * rejects, with rejections decided and queued in its fund's journal lane (group commit: one write
 * in flight, the rest wait). Another engine takes the fund over (fence) and the OMS cancels the
 * approved orders. After SIGCONT the old owner's queued rejections can no longer be journaled
 * (fenced), yet they are answered.
 *
 * CONTRACT.md "Gates and rejection codes": "Every decision is journaled." and (gate 1) "The same
 * key with the same order returns the original decision again, with details.replayed = "true"."
 * Expected: every rejection the OMS received is in RISK_DECISIONS, and asking again with its key
 * returns it, replayed. Before stop 29's fix (4 runs of 4): 76–268 MAX_POSITION_EXCEEDED answers have no journal
 * record; asked again once headroom is free, the new owner evaluates them afresh and APPROVES them
 * (no `replayed`): one key, two different decisions.
 * Likely cause: src/service/fund-journal.ts `pump` resolves `sent` for every queued item when
 * `mayWrite` turns false (FencedError), and src/service/check.ts `deliver` replies to a rejection
 * once `sent` resolves, whatever the write's outcome (also a conditional write refused with a wrong
 * last sequence has already resolved `sent`).
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

describe("red team: several engines, rejections queued at a paused owner", () => {
  let h: SeveralEngines;
  beforeEach(async () => {
    h = await SeveralEngines.start();
  });
  afterEach(async () => {
    await h?.stop();
  });

  it("every answered rejection is journaled and replays as itself after the takeover", async () => {
    await h.startEngines(2);
    const fund = "q1";
    await h.publishEnvelope(fund, { max_position_pct: "0.10" });
    const first = await h.race(fund, 100);
    expect(first.approved).toBe(100); // the headroom is used up

    const p = partitionOf(fund, PARTITIONS);
    const { engine: owner, view: ownerView } = await h.ownerOf(fund);
    const other = h.engines.find((e) => e !== owner)!;

    // a burst the owner rejects (MAX_POSITION_EXCEEDED); paused in the middle of it
    const replies = new Map<string, RiskDecision>();
    const orders = Array.from({ length: 1500 }, (_, i) => raceOrder(fund, 1000 + i));
    let answered = 0;
    const burst = Promise.all(
      orders.map(async (o, i) => {
        const subject = i % 2 ? Subjects.check : Subjects.checkFund(fund);
        const deadline = Date.now() + 60_000;
        for (;;) {
          const d = await h.request(o, subject, 30_000);
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
    await waitFor(() => answered >= 50, { timeoutMs: 20_000, intervalMs: 1, message: "burst under way" });
    owner.freeze();
    const answeredAtFreeze = answered;
    await waitFor(
      async () => (await h.views()).some((v) => isProcess(v, other) && v.partitions.includes(p)),
      { timeoutMs: 20_000, intervalMs: 100, message: "the other engine took the partition" },
    );
    // the OMS cancels every approved order: the headroom is free again
    const js = jetstream(h.nc);
    for (const d of first.decisions) {
      await js.publish(
        Subjects.orderEvent("cancelled", fund),
        JSON.stringify({
          order_id: d.order_id,
          fund_id: fund,
          event: "cancelled",
          at: new Date().toISOString(),
        }),
      );
    }
    const omsSeq = (await h.jsm.streams.info("OMS_ORDERS")).state.last_seq;
    await waitFor(
      async () =>
        (await h.views()).some((v) => isProcess(v, other) && (v.cursors["OMS_ORDERS"] ?? 0) >= omsSeq),
      { timeoutMs: 10_000, message: "the new owner applied the cancels" },
    );
    owner.thaw();
    await burst;

    const records = await readDecisions(jetstream(h.nc), h.jsm);
    const journaled = new Map<string, { approved: boolean; code: string; instance: string }[]>();
    for (const r of records) {
      if (r.fund_id !== fund || !r.idempotency_key) continue;
      const l = journaled.get(r.idempotency_key) ?? [];
      l.push({ approved: r.decision.approved, code: r.decision.rejection_code, instance: r.instance });
      journaled.set(r.idempotency_key, l);
    }
    const unjournaled: string[] = [];
    for (const [k, d] of replies) {
      const l = journaled.get(k) ?? [];
      if (!l.some((x) => x.approved === d.approved && x.code === d.rejection_code))
        unjournaled.push(`${k}: answered ${show(d)} at ${d.decided_at}, journaled ${JSON.stringify(l)}`);
    }
    // the OMS ends every order approved so far: the headroom is free when it asks again below
    const approvedIds = new Set(
      records.filter((r) => r.fund_id === fund && r.decision.approved).map((r) => r.decision.order_id),
    );
    for (const id of approvedIds) {
      await js.publish(
        Subjects.orderEvent("cancelled", fund),
        JSON.stringify({ order_id: id, fund_id: fund, event: "cancelled", at: new Date().toISOString() }),
      );
    }
    const omsSeq2 = (await h.jsm.streams.info("OMS_ORDERS")).state.last_seq;
    await waitFor(
      async () => {
        const v = await h.views();
        return v.length === 2 && v.every((x) => (x.cursors["OMS_ORDERS"] ?? 0) >= omsSeq2);
      },
      { timeoutMs: 20_000, message: "every engine applied the cancels" },
    );
    // the OMS asks again for every key (those missing from the journal first, one at a time): the
    // original answer, replayed (details.replayed = "true")
    const seen = { notReady: 0, timeouts: 0 };
    const mismatched: string[] = [];
    const notReplayed: string[] = [];
    const missing = new Set(unjournaled.map((u) => u.split(":")[0]!));
    const compare = (o: Record<string, unknown>, now: RiskDecision) => {
      const k = String(o["idempotency_key"]);
      const was = replies.get(k);
      if (!was || now.approved !== was.approved || now.rejection_code !== was.rejection_code)
        mismatched.push(
          `${k}: first ${show(was)} at ${was?.decided_at}, replay ${show(now)} at ${now.decided_at}`,
        );
      if (now.details["replayed"] !== "true")
        notReplayed.push(
          `${k}: first ${show(was)} at ${was?.decided_at}, again ${show(now)} at ${now.decided_at}, not replayed`,
        );
    };
    for (const o of orders.filter((x) => missing.has(String(x["idempotency_key"])))) {
      compare(o, await h.decide(o, Subjects.check, seen));
    }
    const rest = orders.filter((x) => !missing.has(String(x["idempotency_key"])));
    const again = await Promise.all(rest.map((o) => h.decide(o, Subjects.check, seen)));
    rest.forEach((o, i) => compare(o, again[i]!));
    const why =
      `old owner ${ownerView.instance}; answered at freeze ${answeredAtFreeze}\n` +
      `unjournaled answers (${unjournaled.length}):\n${unjournaled.slice(0, 8).join("\n")}\n` +
      `replays differing (${mismatched.length}):\n${mismatched.slice(0, 8).join("\n")}\n` +
      `answers not replayed (${notReplayed.length}):\n${notReplayed.slice(0, 8).join("\n")}`;
    if (unjournaled.length + mismatched.length > 0) console.log(why);
    expect(
      { unjournaled: unjournaled.length, mismatched: mismatched.length, notReplayed: notReplayed.length },
      why,
    ).toEqual({ unjournaled: 0, mismatched: 0, notReplayed: 0 });
  }, 120_000);
});
