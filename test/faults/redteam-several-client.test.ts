/**
 * Red team, several engines: the OMS client library (src/client) across a failover. CONTRACT.md
 * "Client library": "on a timeout it retries with the same idempotency_key (so it never gets two
 * decisions for one order) and, when no engine answers within its deadline, returns ...
 * ENGINE_UNAVAILABLE"; "Several engines": a paused owner's funds move within takeover_s.
 * With a deadline (3 s × 5 attempts) longer than takeover_s + the forwarder's hold, every check
 * during a SIGSTOP of the owner gets a decision, every approval is journaled once, and approvals
 * stay within the headroom.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { createRiskClient } from "../../src/client/index.js";
import type { OrderRequest } from "../../src/client/types.js";
import { partitionOf } from "../../src/ownership/partition.js";
import { waitFor } from "../support/nats.js";
import { readDecisions } from "./support.js";
import { PARTITIONS, SeveralEngines, isProcess, raceOrder } from "./several-support.js";

describe("red team: several engines, the client library across a paused owner", () => {
  let h: SeveralEngines;
  beforeEach(async () => {
    h = await SeveralEngines.start();
  });
  afterEach(async () => {
    await h?.stop();
  });

  it("every check decided, approvals journaled once and within headroom", async () => {
    await h.startEngines(2);
    const fund = "cl1";
    await h.publishEnvelope(fund, { max_position_pct: "0.10" });
    const p = partitionOf(fund, PARTITIONS);
    const { engine: owner } = await h.ownerOf(fund);
    const other = h.engines.find((e) => e !== owner)!;
    const client = createRiskClient(h.nc, { timeoutMs: 3000, retries: 4 });

    let answered = 0;
    const all = Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i * 20)); // 50 checks/s for 6 s
        const d = await client.check(raceOrder(fund, i) as unknown as OrderRequest);
        answered++;
        return d;
      }),
    );
    await waitFor(() => answered >= 30, { timeoutMs: 20_000, message: "load under way" });
    owner.freeze();
    await waitFor(
      async () => (await h.views()).some((v) => isProcess(v, other) && v.partitions.includes(p)),
      { timeoutMs: 20_000, intervalMs: 100, message: "the other engine took the partition" },
    );
    owner.thaw();
    const decisions = await all;
    const codes = new Map<string, number>();
    for (const d of decisions) {
      const c = d.approved ? "APPROVED" : d.rejection_code;
      codes.set(c, (codes.get(c) ?? 0) + 1);
    }
    const summary = JSON.stringify(Object.fromEntries(codes));
    expect(codes.get("ENGINE_UNAVAILABLE") ?? 0, summary).toBe(0);
    expect(codes.get("STATE_NOT_READY") ?? 0, summary).toBe(0);
    expect(codes.get("APPROVED"), summary).toBe(100);
    const records = await readDecisions(jetstream(h.nc), h.jsm);
    // replays are journaled too (details.replayed): the decisions themselves, once each
    const approvals = records.filter(
      (r) => r.fund_id === fund && r.decision.approved && r.decision.details["replayed"] !== "true",
    );
    expect(approvals).toHaveLength(100);
    expect(new Set(approvals.map((r) => r.idempotency_key)).size).toBe(100);
    const approvedKeys = new Set(approvals.map((r) => r.decision.order_id));
    for (const d of decisions) if (d.approved) expect(approvedKeys.has(d.order_id)).toBe(true);
  }, 90_000);
});
