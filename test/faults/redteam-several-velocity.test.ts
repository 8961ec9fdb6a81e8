/**
 * Red team, several engines: velocity headroom across a takeover. The owner is paused (SIGSTOP) in
 * the middle of a burst; the rejections it had queued in its journal lane are answered but never
 * journaled (the defect of redteam-several-queued), so the new owner's velocity window misses them
 * and, once the OMS's cancels free position headroom, it approves orders the window no longer
 * allows.
 * CONTRACT.md gates table: `VELOCITY_EXCEEDED` "counts every schema-valid order of the fund in the
 * window, approved or not"; "Velocity windows count every order decided in them"; "Several
 * engines": "Two engines never approve against the same headroom".
 * Expected: no order is approved once `max_orders` (300) orders of the fund were decided (answered;
 * replays and gate-1 rejections not counted) in the window (3 600 s). Before stop 29's fix, in about 2 runs of 3:
 * the new owner's window held 257 journaled decisions while 364–424 had been answered (134–167
 * MAX_POSITION_EXCEEDED answers never journaled), and it approved 43 orders (300 − 257) as
 * decisions #365 and later. The other runs pass because the pause fell where the new owner had no
 * free headroom while its count was short.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { Subjects } from "../../src/contract/subjects.js";
import { partitionOf } from "../../src/ownership/partition.js";
import { waitFor } from "../support/nats.js";
import { PARTITIONS, SeveralEngines, isProcess, raceOrder } from "./several-support.js";

const MAX_ORDERS = 300;
const transient = (d: RiskDecision) =>
  d.rejection_code === "STATE_NOT_READY" || d.rejection_code === "NO_ENVELOPE";

describe("red team: several engines, velocity window across a paused owner", () => {
  let h: SeveralEngines;
  beforeEach(async () => {
    h = await SeveralEngines.start();
  });
  afterEach(async () => {
    await h?.stop();
  });

  it("approves nothing once max_orders orders were decided in the window", async () => {
    await h.startEngines(2);
    const fund = "v1";
    await h.publishEnvelope(fund, {
      max_position_pct: "0.10",
      velocity: { window_s: 3600, max_orders: MAX_ORDERS, max_notional: "1000000000" },
    });
    const p = partitionOf(fund, PARTITIONS);
    const { engine: owner } = await h.ownerOf(fund);
    const other = h.engines.find((e) => e !== owner)!;

    const answers: RiskDecision[] = [];
    const ask = (orders: Record<string, unknown>[]) =>
      Promise.all(
        orders.map(async (o, i) => {
          const subject = i % 2 ? Subjects.check : Subjects.checkFund(fund);
          const deadline = Date.now() + 60_000;
          for (;;) {
            const d = await h.request(o, subject, 30_000);
            if (d && !transient(d)) {
              answers.push(d);
              return;
            }
            if (Date.now() > deadline) throw new Error(`no decision for ${String(o["order_id"])}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        }),
      );
    // 100 approvals (the position headroom), then rejections; paused in the middle of the burst
    const burst = ask(Array.from({ length: 1500 }, (_, i) => raceOrder(fund, i)));
    await waitFor(() => answers.length >= 50, {
      timeoutMs: 20_000,
      intervalMs: 1,
      message: "burst under way",
    });
    owner.freeze();
    // the OMS cancels every approved order: position headroom again (at the new owner), while the old one sleeps
    const js = jetstream(h.nc);
    // (the approvals are among the first orders sent; a cancel of an order rejected is a no-op)
    await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        js.publish(
          Subjects.orderEvent("cancelled", fund),
          JSON.stringify({
            order_id: `${fund}-${i}`,
            fund_id: fund,
            event: "cancelled",
            at: new Date().toISOString(),
          }),
        ),
      ),
    );
    const omsSeq = (await h.jsm.streams.info("OMS_ORDERS")).state.last_seq;
    await waitFor(
      async () => {
        const v = await h.views();
        return v.some((x) => isProcess(x, other) && (x.cursors["OMS_ORDERS"] ?? 0) >= omsSeq);
      },
      { timeoutMs: 20_000, message: "the new owner applied the cancels" },
    );
    await waitFor(
      async () => (await h.views()).some((v) => isProcess(v, other) && v.partitions.includes(p)),
      { timeoutMs: 20_000, intervalMs: 100, message: "the other engine took the partition" },
    );
    owner.thaw();
    await burst;
    await ask(Array.from({ length: 100 }, (_, i) => raceOrder(fund, 5000 + i)));

    // in decision order: every approval must come before the MAX_ORDERS-th decision of the window
    // replays excluded, and (conservatively) gate-1 rejections, which the engine may not count
    const sorted = answers
      .filter((d) => d.details["replayed"] !== "true" && d.rejecting_gate !== "idempotency")
      .sort((a, b) => (a.decided_at < b.decided_at ? -1 : a.decided_at > b.decided_at ? 1 : 0));
    const late = sorted
      .map((d, i) => ({ d, i }))
      .filter(({ d, i }) => d.approved && i >= MAX_ORDERS)
      .map(({ d, i }) => `${d.order_id} approved as decision #${i + 1} at ${d.decided_at}`);
    const codes: Record<string, number> = {};
    for (const d of sorted)
      codes[d.approved ? "APPROVED" : d.rejection_code] =
        (codes[d.approved ? "APPROVED" : d.rejection_code] ?? 0) + 1;
    const why = `${sorted.length} decisions ${JSON.stringify(codes)}; approvals past #${MAX_ORDERS}: ${late.length}\n${late.slice(0, 5).join("\n")}`;
    console.log(why);
    expect(late, why).toEqual([]);
  }, 120_000);
});
