/**
 * Red team, several engines: a paused owner (SIGSTOP past ownership.takeover_s) holds checks in its
 * socket that the queue group gave it while it slept; meanwhile the new owner freed headroom (OMS
 * cancels) and decided new orders. After SIGCONT every answer the OMS got must be the owner's
 * decision: journaled (CONTRACT.md "Every decision is journaled"), the same on a replay ("The same
 * key with the same order returns the original decision again"), and approvals must fill exactly the
 * freed headroom ("Two engines never approve against the same headroom").
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

describe("red team: several engines, a paused owner with checks queued", () => {
  let h: SeveralEngines;
  beforeEach(async () => {
    h = await SeveralEngines.start();
  });
  afterEach(async () => {
    await h?.stop();
  });

  it("every answer is journaled and replays the same; approvals = freed headroom", async () => {
    await h.startEngines(2);
    const fund = "st1";
    await h.publishEnvelope(fund, { max_position_pct: "0.10" });
    // exhaust the headroom at the owner: 100 approvals of 1 000 notional each
    const first = await h.race(fund, 150);
    expect(first.approved).toBe(100);
    const approvedIds = first.decisions.filter((d) => d.approved).map((d) => d.order_id);

    const p = partitionOf(fund, PARTITIONS);
    const { engine: owner, view: ownerView } = await h.ownerOf(fund);
    const other = h.engines.find((e) => e !== owner)!;
    owner.freeze();
    await waitFor(
      async () => (await h.views()).some((v) => isProcess(v, other) && v.partitions.includes(p)),
      { timeoutMs: 20_000, intervalMs: 100, message: "the other engine took the partition" },
    );

    // the OMS cancels 50 approved orders: 50 orders of headroom free again (at the new owner)
    const js = jetstream(h.nc);
    for (const id of approvedIds.slice(0, 50)) {
      await js.publish(
        Subjects.orderEvent("cancelled", fund),
        JSON.stringify({ order_id: id, fund_id: fund, event: "cancelled", at: new Date().toISOString() }),
      );
    }
    const omsSeq = (await h.jsm.streams.info("OMS_ORDERS")).state.last_seq;
    await waitFor(
      async () =>
        (await h.views()).some((v) => isProcess(v, other) && (v.cursors["OMS_ORDERS"] ?? 0) >= omsSeq),
      { timeoutMs: 10_000, message: "the new owner applied the cancels" },
    );

    // 200 new orders, all at once over both subjects: the queue group gives part of them to the
    // sleeping engine, whose socket holds them until SIGCONT
    const replies = new Map<string, RiskDecision>();
    let answered = 0;
    const orders = Array.from({ length: 200 }, (_, i) => ({
      ...raceOrder(fund, 1000 + i),
    }));
    const sent = Promise.all(
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
    // the awake engine answers its share; the rest wait at the sleeping one
    await waitFor(() => answered >= 60, { timeoutMs: 20_000, message: "the new owner answered its share" });
    owner.thaw();
    await sent;

    const approvedNew = [...replies.values()].filter((d) => d.approved).length;

    // every answer must be a journaled decision (the owner's), with the same outcome
    const records = await readDecisions(jetstream(h.nc), h.jsm);
    const byKey = new Map<string, { approved: boolean; code: string; instance: string }[]>();
    for (const r of records) {
      if (r.fund_id !== fund || !r.idempotency_key) continue;
      const l = byKey.get(r.idempotency_key) ?? [];
      l.push({ approved: r.decision.approved, code: r.decision.rejection_code, instance: r.instance });
      byKey.set(r.idempotency_key, l);
    }
    const unjournaled: string[] = [];
    for (const [k, d] of replies) {
      const l = byKey.get(k) ?? [];
      if (!l.some((x) => x.approved === d.approved && x.code === d.rejection_code))
        unjournaled.push(
          `${k}: answered ${d.approved ? "approved" : d.rejection_code}, journal ${JSON.stringify(l)}`,
        );
    }

    // a replay of every key returns the original answer
    const seen = { notReady: 0, timeouts: 0 };
    const mismatched: string[] = [];
    await Promise.all(
      orders.map(async (o) => {
        const again = await h.decide(o, Subjects.check, seen);
        const was = replies.get(String(o["idempotency_key"]))!;
        if (again.approved !== was.approved || again.rejection_code !== was.rejection_code)
          mismatched.push(
            `${String(o["idempotency_key"])}: first ${was.approved ? "approved" : was.rejection_code}, replay ${again.approved ? "approved" : again.rejection_code}`,
          );
      }),
    );
    const approvalsByOldOwner = records.filter(
      (x) =>
        x.fund_id === fund &&
        x.decision.approved &&
        x.instance === ownerView.instance &&
        x.idempotency_key?.startsWith(`${fund}-key-1`) &&
        Number(x.idempotency_key.slice(`${fund}-key-`.length)) >= 1000,
    );
    const why = `\n${unjournaled.slice(0, 10).join("\n")}\n${mismatched.slice(0, 10).join("\n")}\n${h.notable()}`;
    expect({ unjournaled: unjournaled.length, mismatched: mismatched.length }, why).toEqual({
      unjournaled: 0,
      mismatched: 0,
    });
    expect(approvedNew, why).toBe(50);
    expect(approvalsByOldOwner).toEqual([]);
  }, 120_000);
});
